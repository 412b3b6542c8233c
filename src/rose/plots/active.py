"""Figures of direction 3a (active and curriculum learning), each a function of a results
table. Bands and error bars are 95% percentile-bootstrap CIs over seeds (seaborn), the same
interval the tables report."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from scipy import stats as sps

from rose.stats import CONFIDENCE

BAND = ("ci", round(100 * CONFIDENCE))
HIGHLIGHT = {"random": "k", "oracle": "0.6"}


def _palette(acqs) -> dict:
    colours = iter(sns.color_palette("tab10", len(acqs)))
    return {a: HIGHLIGHT.get(a) or next(colours) for a in acqs}


def _summary_lines(ax, summary: pd.DataFrame, metric: str, palette: dict) -> None:
    for a, g in summary[summary.metric == metric].groupby("acquisition", sort=False):
        g = g.sort_values("n_labels")
        style = "--" if a in ("random", "oracle") else "-"
        ax.plot(g.n_labels, g["mean"], style, color=palette[a], label=a, lw=1.3)
        ax.fill_between(g.n_labels, g.ci_low, g.ci_high, color=palette[a], alpha=0.12, lw=0)


def budget_curves(al_summary: pd.DataFrame) -> plt.Figure:
    """Test-environment and worst-group accuracy against the number of labels, per benchmark
    (mean over seeds, 95% bootstrap band; dashed: random and the group oracle)."""
    cols = [("test_acc", "test-environment acc."), ("test_worst_group_acc", "worst-group acc.")]
    benches = sorted(al_summary.benchmark.unique())
    palette = _palette(list(dict.fromkeys(al_summary.acquisition)))
    fig, axes = plt.subplots(len(benches), len(cols), figsize=(4.2 * len(cols),
                                                               2.8 * len(benches)),
                             squeeze=False)
    for i, b in enumerate(benches):
        for j, (m, label) in enumerate(cols):
            ax = axes[i, j]
            _summary_lines(ax, al_summary[al_summary.benchmark == b], m, palette)
            ax.set_title(b, fontsize=9)
            ax.set_xlabel("labels")
            ax.set_ylabel(label)
    axes[0, -1].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return fig


def composition(al_summary: pd.DataFrame, comp: pd.DataFrame) -> plt.Figure:
    """Left: the share of bias-conflicting (minority) points among the labels, per round.
    Right: the final labelled set's mean count per (class, majority or minority attribute);
    for two attributes these are the four groups, for cmnist10 the 9 minority colours of a
    class are summed."""
    benches = sorted(al_summary.benchmark.unique())
    palette = _palette(list(dict.fromkeys(al_summary.acquisition)))
    fig, axes = plt.subplots(len(benches), 2, figsize=(10, 3.0 * len(benches)), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1.4]})
    for i, b in enumerate(benches):
        ax = axes[i, 0]
        _summary_lines(ax, al_summary[al_summary.benchmark == b], "labelled_conflicting_frac",
                       palette)
        ax.set_title(b, fontsize=9)
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
                    annot=grid.shape[1] <= 8, fmt=".0f", annot_kws={"fontsize": 6})
        axes[i, 1].set_title(f"{b}: labels per (class, majority / minority attribute) at the "
                             "final budget", fontsize=8)
        axes[i, 1].set_xlabel("")
        axes[i, 1].tick_params(labelsize=6)
    axes[0, 0].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return fig


def minority_vs_worst_group(al_runs: pd.DataFrame) -> plt.Figure:
    """Every (acquisition, seed, round): worst-group accuracy (top) and accuracy on
    bias-conflicting test points (bottom) against the minority share of the labelled set;
    Spearman's rho over all points in each title (scipy.stats.spearmanr)."""
    benches = sorted(al_runs.benchmark.unique())
    palette = _palette(list(dict.fromkeys(al_runs.acquisition)))
    rows = [("test_worst_group_acc", "worst-group acc."),
            ("test_conflicting_acc", "bias-conflicting acc.")]
    fig, axes = plt.subplots(len(rows), len(benches), figsize=(4.2 * len(benches), 6.4),
                             squeeze=False)
    for i, (m, label) in enumerate(rows):
        for j, b in enumerate(benches):
            sub = al_runs[al_runs.benchmark == b]
            ax = axes[i, j]
            sns.scatterplot(data=sub, x="labelled_conflicting_frac", y=m, hue="acquisition",
                            palette=palette, size="n_labels", sizes=(6, 40), alpha=0.6, ax=ax,
                            legend=(i == 0 and j == len(benches) - 1))
            rho = sps.spearmanr(sub.labelled_conflicting_frac, sub[m],
                                nan_policy="omit").statistic
            ax.set_title(f"{b}: Spearman $\\rho$ = {rho:.2f}", fontsize=9)
            ax.set_xlabel("minority share of labels")
            ax.set_ylabel(label)
    leg_ax = axes[0, -1]
    if leg_ax.get_legend():
        sns.move_legend(leg_ax, "upper left", fontsize=5, bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def curriculum(cur: pd.DataFrame) -> plt.Figure:
    """Whole-pool training: mean and 95% CI over seeds per method (RHO-LOSS holdout ablation,
    group-robust baselines, ERM without the attribute), each under both selection rules
    (training-domain validation; group-labelled validation, the labelled bound)."""
    cols = [("test_worst_group_acc", "worst-group acc."), ("test_acc", "test-environment acc."),
            ("train_acc", "train acc.")]
    benches = sorted(cur.benchmark.unique())
    height = 0.4 * cur.method.nunique() * len(benches) + 1.2
    fig, axes = plt.subplots(len(benches), len(cols), figsize=(3.6 * len(cols), height),
                             squeeze=False, sharey="row")
    for i, b in enumerate(benches):
        for j, (m, label) in enumerate(cols):
            ax = axes[i, j]
            sns.pointplot(data=cur[cur.benchmark == b], y="method", x=m, errorbar=BAND,
                          n_boot=1000, seed=0, linestyle="none", ax=ax, hue="selection",
                          dodge=0.4, legend=(i == 0 and j == len(cols) - 1))
            ax.set_title(b, fontsize=9)
            ax.set_xlabel(label)
    fig.tight_layout()
    return fig
