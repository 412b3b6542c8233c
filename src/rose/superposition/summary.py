"""Seed aggregation of the direction's tables: means with 95% intervals (rose.stats), lambda
selected on validation (rose.tuning), and exploratory paired comparisons.

Selection rules (shortcut benchmark), for each (benchmark, variant) over its lambda grid:
  training_domain  the highest mean training-domain validation accuracy (val_acc). The only
                   rule any claim uses: the primary contrasts and the paired comparisons.
  test_env_oracle  the highest mean worst-group accuracy on the test-environment validation
                   half (test_val_worst_group_acc), never on the test half. It reads
                   test-environment labels, so it is shown only as a labelled upper bound
                   (Gulrajani & Lopez-Paz 2021's "test-domain validation").
The whole lambda sweep is reported beside them, so an effect seen only at some other lambda is
visible as exactly that. Variants without a penalty (erm, solu, top-k: lambda = 0 only) are
compared with erm seed by seed (paired_against_reference).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rose.stats import paired_contrast, summarize_frame
from rose.tuning import select, tuning_table

SHORTCUT_METRICS = {
    "train_acc": "train", "val_acc": "val", "test_acc": "test env",
    "test_worst_group_acc": "worst group", "swapped_acc": "swapped",
    "test_val_acc": "test-env val", "test_val_worst_group_acc": "test-env val worst group",
    "frac_both": "units on both", "nmi_colour": "NMI colour", "nmi_shape": "NMI shape",
    "class_selectivity": "class selectivity",
}
SELECTION_RULES = {"training_domain": "val_acc",               # rule -> the score it maximises
                   "test_env_oracle": "test_val_worst_group_acc"}
PAIRED_METRICS = ("test_worst_group_acc", "swapped_acc", "frac_both")
TOY_METRICS = ("loss", "features_per_dimension", "mean_dimensionality", "n_represented",
               "neuron_polysemanticity", "mid_activation_fraction")
_PAIRED_COLUMNS = ["benchmark", "variant", "lam", "metric", "difference", "ci_low", "ci_high",
                   "p_value", "n", "detectable"]


def summarise(df: pd.DataFrame, by: list[str], metrics) -> pd.DataFrame:
    """Long table: one row per (by..., metric) with mean, ci_low, ci_high, n, n_diverged."""
    parts = [summarize_frame(df, by, m).assign(metric=m) for m in metrics]
    return pd.concat(parts, ignore_index=True)


def lambda_tuning(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(selected: one row per (rule, benchmark, variant) with its lam; the tuning table, its
    rows labelled with rule and score) with rose.tuning, for every rule of SELECTION_RULES
    whose score column ``runs`` has (training_domain is required): per (benchmark, variant) the
    grid is its lambdas, the score the rule's metric of each seed; a lambda with a diverged
    seed is chosen only if all have one."""
    rules = {r: m for r, m in SELECTION_RULES.items()
             if r == "training_domain" or m in runs.columns}
    selected, tables = [], []
    for rule, metric in rules.items():
        for (b, v), g in runs.groupby(["benchmark", "variant"], sort=True):
            lams = sorted(g.lam.unique())
            scores = np.stack([g[g.lam == lam].sort_values("seed")[metric].to_numpy()
                               for lam in lams])
            r = select(f"{b}/{v}", [{"lam": float(lam)} for lam in lams], scores)
            selected.append({"rule": rule, "benchmark": b, "variant": v,
                             "lam": r.selected_point["lam"]})
            tables.append(tuning_table([r]).assign(rule=rule, score=metric, benchmark=b,
                                                   variant=v))
    return pd.DataFrame(selected), pd.concat(tables, ignore_index=True)


def _rule(selected: pd.DataFrame, rule: str) -> pd.DataFrame:
    """The (benchmark, variant, lam) rows ``rule`` selected."""
    if rule not in SELECTION_RULES:
        raise ValueError(f"unknown selection rule {rule!r}; expected one of "
                         f"{list(SELECTION_RULES)}")
    return selected.loc[selected["rule"] == rule, ["benchmark", "variant", "lam"]]


def at_selected(runs: pd.DataFrame, selected: pd.DataFrame,
                rule: str = "training_domain") -> pd.DataFrame:
    """The per-seed rows of every (benchmark, variant) at the lambda ``rule`` selected; column
    ``arm`` = the variant (what the primary contrasts name)."""
    keep = runs.merge(_rule(selected, rule), on=["benchmark", "variant", "lam"])
    return keep.assign(arm=keep.variant)


def _paired_rows(pen: pd.DataFrame, base: pd.DataFrame, metrics: tuple[str, ...],
                 key: dict) -> list[dict]:
    """One row per metric: ``pen`` minus ``base`` on the seeds both have."""
    cols = ["seed", *metrics]
    both = pen[cols].merge(base[cols], on="seed", suffixes=("_pen", "_base"))
    rows = []
    for m in metrics:
        c = paired_contrast(both[f"{m}_pen"].to_numpy(), both[f"{m}_base"].to_numpy())
        rows.append({**key, "metric": m, "difference": c.mean_difference, "ci_low": c.ci_low,
                     "ci_high": c.ci_high, "p_value": c.p_value, "n": c.n,
                     "detectable": c.detectable})
    return rows


def paired_against_unpenalised(runs: pd.DataFrame, selected: pd.DataFrame,
                               metrics: tuple[str, ...] = PAIRED_METRICS) -> pd.DataFrame:
    """Exploratory: the training-domain-selected lambda minus lambda = 0 of the same variant,
    seed by seed (same data, colours, initial weights and minibatches): mean difference,
    Student-t 95% interval, paired t-test p, detectable effect per metric (no verdict).
    Variants selected at lambda = 0 have no row."""
    rows = []
    for b, v, lam in _rule(selected, "training_domain").itertuples(index=False):
        sub = runs[(runs.benchmark == b) & (runs.variant == v)]
        base = sub[sub.lam == 0]
        if lam == 0 or base.empty:
            continue
        rows += _paired_rows(sub[sub.lam == lam], base, metrics,
                             {"benchmark": b, "variant": v, "lam": lam})
    return pd.DataFrame(rows, columns=_PAIRED_COLUMNS)


def paired_against_reference(runs: pd.DataFrame, selected: pd.DataFrame, reference: str = "erm",
                             metrics: tuple[str, ...] = PAIRED_METRICS) -> pd.DataFrame:
    """Exploratory: every other variant at its training-domain-selected lambda minus
    ``reference`` at lambda = 0 on the same benchmark, seed by seed (the seeds share data,
    colours, initial weights and minibatches): how a penalty, or an activation without one
    (solu, top-k), compares with no penalty at all. Columns as paired_against_unpenalised's,
    plus ``reference``."""
    rows = []
    for b, v, lam in _rule(selected, "training_domain").itertuples(index=False):
        base = runs[(runs.benchmark == b) & (runs.variant == reference) & (runs.lam == 0)]
        if v == reference or base.empty:
            continue
        pen = runs[(runs.benchmark == b) & (runs.variant == v) & (runs.lam == lam)]
        rows += _paired_rows(pen, base, metrics, {"benchmark": b, "variant": v,
                                                  "reference": reference, "lam": lam})
    return pd.DataFrame(rows, columns=[*_PAIRED_COLUMNS[:2], "reference",
                                       *_PAIRED_COLUMNS[2:]])
