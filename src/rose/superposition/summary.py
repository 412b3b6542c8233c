"""Seed aggregation of the direction's tables: means with 95% bootstrap CIs (rose.stats), the
stated lambda-selection rule, and paired comparisons against the unpenalised model.

Selection rule (shortcut benchmark): for each (benchmark, variant) the lambda with the highest
mean training-domain validation accuracy. Nothing is chosen on the test environment; the whole
lambda sweep is reported beside it, so an effect seen only at some other lambda is visible as
exactly that.
"""

from __future__ import annotations

import pandas as pd

from rose.stats import paired_comparison, summarize_frame

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


def select_lambda(runs: pd.DataFrame) -> pd.DataFrame:
    """(benchmark, variant) -> the lambda with the best mean validation accuracy."""
    mean_val = runs.groupby(["benchmark", "variant", "lam"], as_index=False)["val_acc"].mean()
    best = mean_val.loc[mean_val.groupby(["benchmark", "variant"])["val_acc"].idxmax()]
    return best[["benchmark", "variant", "lam"]].reset_index(drop=True)


def paired_against_unpenalised(runs: pd.DataFrame, selected: pd.DataFrame,
                               metrics: tuple[str, ...] = ("test_worst_group_acc",
                                                           "swapped_acc", "frac_both")
                               ) -> pd.DataFrame:
    """Selected lambda minus lambda = 0 of the same variant, seed by seed (same data, same
    colours): mean difference, bootstrap CI and Wilcoxon p per metric."""
    rows = []
    for b, v, lam in selected.itertuples(index=False):
        sub = runs[(runs.benchmark == b) & (runs.variant == v)]
        base = sub[sub.lam == 0].set_index("seed").sort_index()
        pen = sub[sub.lam == lam].set_index("seed").sort_index()
        if lam == 0 or base.empty:
            continue
        for m in metrics:
            c = paired_comparison(pen[m].to_numpy(), base[m].to_numpy())
            rows.append({"benchmark": b, "variant": v, "lam": lam, "metric": m,
                         "difference": c.mean_difference, "ci_low": c.ci_low,
                         "ci_high": c.ci_high, "p_value": c.p_value, "n": c.n})
    return pd.DataFrame(rows, columns=["benchmark", "variant", "lam", "metric", "difference",
                                       "ci_low", "ci_high", "p_value", "n"])
