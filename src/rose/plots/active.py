"""Figures of direction 3a (active and curriculum learning), each a function of a results
table. Bands and error bars are 95% percentile-bootstrap CIs over seeds (seaborn), the same
interval the tables report."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from scipy import stats as sps

from rose.plots import style
from rose.stats import CONFIDENCE

BAND = ("ci", round(100 * CONFIDENCE))
# the main-text figure: the primary contrasts' arms, their reference, the closest baseline and
# the group oracle (every acquisition is in the appendix figures)
MAIN = ("random", "alvin", "analogy", "alfa_mix", "badge", "oracle")



def _summary_lines(ax, summary: pd.DataFrame, metric: str, palette: dict) -> None:
    for a, g in summary[summary.metric == metric].groupby("acquisition", sort=False):
        g = g.sort_values("n_labels")
        style = "--" if a in ("random", "oracle") else "-"
        ax.plot(g.n_labels, g["mean"], style, color=palette[a], label=a, lw=1.3)
        ax.fill_between(g.n_labels, g.ci_low, g.ci_high, color=palette[a], alpha=0.12, lw=0)


def budget_curves(al_summary: pd.DataFrame, acquisitions=None) -> plt.Figure:
    """Worst-group and bias-conflicting accuracy against the number of labels (columns: the
    benchmarks; mean over seeds, 95% bootstrap band; dashed: random and the group oracle), for
    ``acquisitions`` (default: every one)."""
    rows = [("test_worst_group_acc", "worst-group acc."),
            ("test_conflicting_acc", "bias-conflicting acc.")]
    benches = sorted(al_summary.benchmark.unique())
    acqs = [a for a in dict.fromkeys(al_summary.acquisition)
            if acquisitions is None or a in acquisitions]
    sub_all = al_summary[al_summary.acquisition.isin(acqs)]
    palette = style.palette(acqs)
    fig, axes = style.subplots(len(rows), len(benches), height=1.6 * len(rows) + 0.6,
                               sharex="col")
    for i, (m, label) in enumerate(rows):
        for j, b in enumerate(benches):
            ax = axes[i, j]
            _summary_lines(ax, sub_all[sub_all.benchmark == b], m, palette)
            ax.set_title(b if i == 0 else "")
            ax.set_xlabel("labels" if i == len(rows) - 1 else "")
            ax.set_ylabel(label if j == 0 else "")
    style.legend_below(fig, axes[0, 0], max_cols=min(len(acqs), 7))
    return fig


def composition(al_summary: pd.DataFrame, comp: pd.DataFrame) -> plt.Figure:
    """Left: the share of bias-conflicting (minority) points among the labels, per round.
    Right: the final labelled set's mean count per (class, majority or minority attribute);
    for two attributes these are the four groups, for cmnist10 the 9 minority colours of a
    class are summed."""
    benches = sorted(al_summary.benchmark.unique())
    palette = style.palette(list(dict.fromkeys(al_summary.acquisition)))
    fig, axes = style.subplots(len(benches), 2, height=2.6 * len(benches) + 0.8,
                               gridspec_kw={"width_ratios": [1, 1.6]})
    for i, b in enumerate(benches):
        ax = axes[i, 0]
        _summary_lines(ax, al_summary[al_summary.benchmark == b], "labelled_conflicting_frac",
                       palette)
        ax.set_title(b)
        ax.set_xlabel("labels")
        ax.set_ylabel("minority share of labels")
        c = comp[comp.benchmark == b]
        last = c[c["round"] == c["round"].max()].copy()
        last["column"] = [f"y={int(y)} {'maj' if a else 'min'}"
                          for y, a in zip(last.label, last.aligned, strict=True)]
        grid = last.pivot_table(index="acquisition", columns="column", values="count",
                                aggfunc="sum")
        grid = grid[sorted(grid.columns, key=lambda s: (int(s.split()[0][2:]), s))]
        sns.heatmap(grid, ax=axes[i, 1], cmap="viridis", cbar_kws={"label": "labels"},
                    annot=grid.shape[1] <= 4, fmt=".0f", annot_kws={"fontsize": style.MIN_PT},
                    xticklabels=grid.shape[1] <= 8, yticklabels=True)
        axes[i, 1].set_title(f"{b}: labels per (class, maj./min. attribute), final budget")
        axes[i, 1].set_xlabel("")
        axes[i, 1].set_ylabel("")
    style.legend_below(fig, axes[0, 0], max_cols=5)
    return fig


def minority_vs_worst_group(al_runs: pd.DataFrame) -> plt.Figure:
    """Every (acquisition, seed, round): worst-group accuracy (top) and accuracy on
    bias-conflicting test points (bottom) against the minority share of the labelled set;
    Spearman's rho over all points in each title (scipy.stats.spearmanr)."""
    benches = sorted(al_runs.benchmark.unique())
    palette = style.palette(list(dict.fromkeys(al_runs.acquisition)))
    rows = [("test_worst_group_acc", "worst-group acc."),
            ("test_conflicting_acc", "bias-conflicting acc.")]
    fig, axes = style.subplots(len(rows), len(benches), height=5.2)
    for i, (m, label) in enumerate(rows):
        for j, b in enumerate(benches):
            sub = al_runs[al_runs.benchmark == b]
            ax = axes[i, j]
            sns.scatterplot(data=sub, x="labelled_conflicting_frac", y=m, hue="acquisition",
                            palette=palette, size="n_labels", sizes=(6, 40), alpha=0.6, ax=ax,
                            legend=(i == 0 and j == len(benches) - 1))
            rho = sps.spearmanr(sub.labelled_conflicting_frac, sub[m],
                                nan_policy="omit").statistic
            ax.set_title(f"{b}: Spearman $\\rho$ = {rho:.2f}")
            ax.set_xlabel("minority share of labels" if i == len(rows) - 1 else "")
            ax.set_ylabel(label if j == 0 else "")
    style.legend_below(fig, axes[0, -1], max_cols=6)
    return fig


def curriculum(cur: pd.DataFrame) -> plt.Figure:
    """Whole-pool training: mean and 95% CI over seeds per method (RHO-LOSS holdout ablation,
    group-robust baselines, ERM without the attribute), each under both selection rules
    (training-domain validation; group-labelled validation, the labelled bound)."""
    cols = [("test_worst_group_acc", "worst-group acc."), ("test_acc", "test-environment acc."),
            ("train_acc", "train acc.")]
    benches = sorted(cur.benchmark.unique())
    height = 0.17 * cur.method.nunique() * len(benches) + 1.2
    fig, axes = style.subplots(len(benches), len(cols), height=height, sharey="row")
    for i, b in enumerate(benches):
        for j, (m, label) in enumerate(cols):
            ax = axes[i, j]
            sns.pointplot(data=cur[cur.benchmark == b], y="method", x=m, errorbar=BAND,
                          n_boot=1000, seed=0, linestyle="none", ax=ax, hue="selection",
                          dodge=0.4, legend=(i == 0 and j == 0), markersize=3)
            ax.set_title(b if j == 1 else "")
            ax.set_xlabel(label if i == len(benches) - 1 else "")
            ax.set_ylabel("")
    style.legend_below(fig, axes[0, 0], max_cols=2)
    return fig
