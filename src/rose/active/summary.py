"""Seed aggregation of the direction's tables (rose.stats): means with 95% intervals; the paired
comparisons on the same seeds are rose.stats.paired_against (exploratory) and the primary
contrasts of the config (rose.contrasts).

Active learning: every acquisition starts from the same initial labelled set per seed and holds
the same number of labels each round, so acquisition vs random is paired by (seed, round).
Scalar summaries per run: the final round, and the area under the label-budget curve
(mean over rounds of the metric, rounds equally spaced in labels). Curriculum: each method vs
ERM on the same seed's data. Model selection is the rule in each row's ``selection`` column.
"""

from __future__ import annotations

import pandas as pd

from rose.stats import summarize_frame

AL_METRICS = {"test_acc": "test env", "test_worst_group_acc": "worst group",
              "test_mean_group_acc": "mean group", "test_conflicting_acc": "conflicting",
              "val_acc": "val", "labelled_conflicting_frac": "minority labels",
              "labelled_groups_seen": "groups seen"}
CURRICULUM_METRICS = {"train_acc": "train", "val_acc": "val", "test_acc": "test env",
                      "test_worst_group_acc": "worst group", "test_mean_group_acc": "mean group",
                      "test_conflicting_acc": "conflicting"}
PAIRED_AL = ("test_worst_group_acc", "test_conflicting_acc", "test_acc",
             "labelled_conflicting_frac")
PAIRED_CURRICULUM = ("test_worst_group_acc", "test_acc", "test_mean_group_acc")


def summarise(df: pd.DataFrame, by: list[str], metrics) -> pd.DataFrame:
    """Long table: one row per (by..., metric) with mean, ci_low, ci_high, n, n_diverged."""
    parts = [summarize_frame(df, by, m).assign(metric=m) for m in metrics if m in df]
    return pd.concat(parts, ignore_index=True)


def per_run(rounds: pd.DataFrame) -> pd.DataFrame:
    """One row per (benchmark, acquisition, seed): the final round's metrics and the area under
    the budget curve (``auc_`` + metric, the mean over rounds)."""
    key = ["benchmark", "acquisition", "seed"]
    last = rounds.loc[rounds.groupby(key)["round"].idxmax()].set_index(key)
    auc = rounds.groupby(key)[list(PAIRED_AL)].mean().add_prefix("auc_")
    return last.join(auc).reset_index()
