"""Read run outputs (metrics.json + history.csv) back into tidy tables."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd


def read_runs(run_dirs: Iterable[str | Path], keys: dict[str, str]) -> pd.DataFrame:
    """One row per run: the spec fields named in ``keys`` (column -> dotted spec path), status,
    and every final / early-stopped number (``final.test_acc``, ``early_stopped.test_acc``...)."""
    rows = []
    for d in run_dirs:
        m = json.loads((Path(d) / "metrics.json").read_text())
        row = {col: _get(m["spec"], path) for col, path in keys.items()}
        row.update({"status": m["status"], "spec_hash": m["spec_hash"],
                    "grad_evals": m["grad_evals"], "steps": m["steps"],
                    "diverged_at_step": m["diverged_at_step"]})
        row.update({f"final.{k}": v for k, v in m["final"].items()})
        row.update({f"early_stopped.{k}": v for k, v in m["early_stopped"].items()})
        rows.append(row)
    return pd.DataFrame(rows)


def read_histories(run_dirs: Iterable[str | Path], keys: dict[str, str]) -> pd.DataFrame:
    """All per-epoch rows of the runs, tagged with the spec fields named in ``keys``."""
    frames = []
    for d in run_dirs:
        spec = json.loads((Path(d) / "metrics.json").read_text())["spec"]
        h = pd.read_csv(Path(d) / "history.csv")
        for col, path in keys.items():
            h[col] = _get(spec, path)
        frames.append(h)
    return pd.concat(frames, ignore_index=True)


def _get(d: dict, dotted: str):
    for part in dotted.split("."):
        d = d[part]
    return d
