"""Read run outputs (metrics.json + history.csv) back into tidy tables."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd


def read_results(run_dirs: Iterable[str | Path], keys: dict[str, str]
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two tables, both tagged with the spec fields named in ``keys`` (column -> dotted spec
    path), reading each run's files once:

    * runs: one row per run with status and every final / early-stopped number
      (``final.test_acc``, ``early_stopped.test_acc``, ...);
    * histories: every per-epoch row of every run.
    """
    rows, frames = [], []
    for d in run_dirs:
        m = json.loads((Path(d) / "metrics.json").read_text())
        tags = {col: _get(m["spec"], path) for col, path in keys.items()}
        rows.append({**tags, "status": m["status"], "spec_hash": m["spec_hash"],
                     "grad_evals": m["grad_evals"], "steps": m["steps"],
                     "diverged_at_step": m["diverged_at_step"],
                     **{f"final.{k}": v for k, v in m["final"].items()},
                     **{f"early_stopped.{k}": v for k, v in m["early_stopped"].items()}})
        frames.append(pd.read_csv(Path(d) / "history.csv").assign(**tags))
    return pd.DataFrame(rows), pd.concat(frames, ignore_index=True)


def _get(d: dict, dotted: str):
    for part in dotted.split("."):
        d = d[part]
    return d
