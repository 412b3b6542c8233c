"""Seed aggregation of the direction's tables: means with 95% intervals (rose.stats), lambda
selected on validation (rose.tuning), and exploratory paired comparisons against the
unpenalised model.

Selection rule (shortcut benchmark): for each (benchmark, variant) the lambda with the highest
mean training-domain validation accuracy. Nothing is chosen on the test environment; the whole
lambda sweep is reported beside it, so an effect seen only at some other lambda is visible as
exactly that. The primary contrasts (config ``superposition.primary``) compare variants at
their selected lambdas (rose.contrasts).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rose.stats import paired_contrast, summarize_frame
from rose.tuning import select, tuning_table

SHORTCUT_METRICS = {
    "train_acc": "train", "val_acc": "val", "test_acc": "test env",
    "test_worst_group_acc": "worst group", "swapped_acc": "swapped",
    "frac_both": "units on both", "nmi_colour": "NMI colour", "nmi_shape": "NMI shape",
}
TOY_METRICS = ("loss", "features_per_dimension", "mean_dimensionality", "n_represented",
               "neuron_polysemanticity", "mid_activation_fraction")


def summarise(df: pd.DataFrame, by: list[str], metrics) -> pd.DataFrame:
    """Long table: one row per (by..., metric) with mean, ci_low, ci_high, n, n_diverged."""
    parts = [summarize_frame(df, by, m).assign(metric=m) for m in metrics]
    return pd.concat(parts, ignore_index=True)


def lambda_tuning(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(selected: benchmark, variant -> lam, the tuning table) with rose.tuning: per
    (benchmark, variant) the grid is its lambdas, the score the training-domain validation
    accuracy of each seed; a lambda with a diverged seed is chosen only if all have one."""
    selected, tables = [], []
    for (b, v), g in runs.groupby(["benchmark", "variant"], sort=True):
        lams = sorted(g.lam.unique())
        scores = np.stack([g[g.lam == lam].sort_values("seed").val_acc.to_numpy()
                           for lam in lams])
        r = select(f"{b}/{v}", [{"lam": float(lam)} for lam in lams], scores)
        selected.append({"benchmark": b, "variant": v, "lam": r.selected_point["lam"]})
        tables.append(tuning_table([r]).assign(benchmark=b, variant=v))
    return pd.DataFrame(selected), pd.concat(tables, ignore_index=True)


def at_selected(runs: pd.DataFrame, selected: pd.DataFrame) -> pd.DataFrame:
    """The per-seed rows of every (benchmark, variant) at its selected lambda; column ``arm``
    = the variant (what the primary contrasts name)."""
    keep = runs.merge(selected, on=["benchmark", "variant", "lam"])
    return keep.assign(arm=keep.variant)


def paired_against_unpenalised(runs: pd.DataFrame, selected: pd.DataFrame,
                               metrics: tuple[str, ...] = ("test_worst_group_acc",
                                                           "swapped_acc", "frac_both")
                               ) -> pd.DataFrame:
    """Exploratory: selected lambda minus lambda = 0 of the same variant, seed by seed (same
    data, colours, initial weights and minibatches): mean difference, Student-t 95% interval,
    paired t-test p, detectable effect per metric (no verdict)."""
    rows = []
    for b, v, lam in selected.itertuples(index=False):
        sub = runs[(runs.benchmark == b) & (runs.variant == v)]
        base = sub[sub.lam == 0].set_index("seed").sort_index()
        pen = sub[sub.lam == lam].set_index("seed").sort_index()
        if lam == 0 or base.empty:
            continue
        for m in metrics:
            c = paired_contrast(pen[m].to_numpy(), base[m].to_numpy())
            rows.append({"benchmark": b, "variant": v, "lam": lam, "metric": m,
                         "difference": c.mean_difference, "ci_low": c.ci_low,
                         "ci_high": c.ci_high, "p_value": c.p_value, "n": c.n,
                         "detectable": c.detectable})
    return pd.DataFrame(rows, columns=["benchmark", "variant", "lam", "metric", "difference",
                                       "ci_low", "ci_high", "p_value", "n", "detectable"])
