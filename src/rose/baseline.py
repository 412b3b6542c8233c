"""The first baseline through the whole DAG: an MLP trained with SGD, several seeds.

It is the reference every direction compares against, and the smallest experiment that
exercises data -> training -> statistics -> figure -> generated LaTeX -> paper.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
# pandas and scipy are imported inside the functions: the Snakefile imports run_spec, and every
# Snakemake invocation (and cluster job) would otherwise pay ~1 s for them.

RUN_KEYS = {"dataset": "dataset", "method": "method", "seed": "seed"}
REPORTED = {  # column in the runs table -> label in the paper
    "final.test_acc": "final test accuracy",
    "early_stopped.test_acc": "early-stopped test accuracy",
    "final.generalisation_gap": "gap (train - test)",
}


def run_spec(config: dict[str, Any], dataset: str, method: str, seed: int) -> dict[str, Any]:
    """The spec of one baseline run, derived from the validated config and the wildcards."""
    b = config["baseline"]
    m = b["methods"][method]
    return {
        "direction": "baseline",
        "dataset": dataset,
        "method": method,
        "seed": int(seed),
        "device": config["device"],
        "model": dict(m.get("model", b["model"])),
        "optimizer": {k: v for k, v in m.items() if k not in ("schedule", "model")},
        "schedule": dict(m.get("schedule", {"name": "constant"})),
        "epochs": b["epochs"],
        "batch_size": b["batch_size"],
        "checkpoint_every": b["checkpoint_every"],
    }


def summarise_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Long table: (dataset, method, metric) -> mean, 95% CI, seeds, diverged seeds."""
    import pandas as pd

    from rose.stats import summarize_frame

    frames = []
    for col in REPORTED:
        s = summarize_frame(runs, ["dataset", "method"], col)
        s.insert(2, "metric", col)
        frames.append(s)
    return pd.concat(frames, ignore_index=True)


def dvc_metrics(summary: pd.DataFrame) -> dict[str, Any]:
    """Nested dict for ``dvc metrics show``: dataset -> method -> metric -> mean/ci/n."""
    out: dict[str, Any] = {}
    for r in summary.itertuples(index=False):
        out.setdefault(r.dataset, {}).setdefault(r.method, {})[r.metric] = {
            "mean": _num(r.mean), "ci_low": _num(r.ci_low), "ci_high": _num(r.ci_high),
            "n": int(r.n), "n_diverged": int(r.n_diverged)}
    return out


def _num(x: float) -> float | None:
    return None if math.isnan(x) else round(float(x), 6)
