"""Figures of direction 2 (continual learning), each a function of a results table. Bands are
95% bootstrap CIs over seeds (seaborn), the interval the tables report."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from rose.plots import style
from rose.stats import CONFIDENCE

BAND = ("ci", round(100 * CONFIDENCE))
SHOWN = ("finetune", "finetune_k", "ewc", "replay_200", "ball_euclidean", "ball_fisher",
         "euclidean_prequential")


def _shown(arms) -> list[str]:
    present = [a for a in SHOWN if a in set(arms)]
    return present or sorted(set(arms))[:6]


def matrices(matrix: pd.DataFrame) -> plt.Figure:
    """Accuracy matrix a[i, j] (rows: after task i, columns: task j), mean over seeds."""
    streams = list(dict.fromkeys(matrix.stream))
    arms = _shown(matrix.arm)
    fig, axes = style.subplots(len(streams), len(arms), height=1.25 * len(streams) + 0.4)
    for i, s in enumerate(streams):
        for j, a in enumerate(arms):
            sub = matrix[(matrix.stream == s) & (matrix.arm == a)]
            grid = sub.pivot_table(index="after_task", columns="task", values="acc")
            sns.heatmap(grid, ax=axes[i, j], vmin=0, vmax=1, cmap="viridis", cbar=False,
                        xticklabels=False, yticklabels=False, square=True)
            axes[i, j].set_title(a if i == 0 else "")
            axes[i, j].set_xlabel("task" if i == len(streams) - 1 else "")
            axes[i, j].set_ylabel(f"{s}\nafter task" if j == 0 else "")
    fig.colorbar(axes[0, 0].collections[0], ax=axes, shrink=0.6, label="accuracy")
    return fig


def anytime(any_: pd.DataFrame) -> plt.Figure:
    """Mean accuracy on the tasks seen so far against samples seen (95% band over seeds)."""
    streams = list(dict.fromkeys(any_.stream))
    arms = _shown(any_.arm)
    fig, axes = style.subplots(1, len(streams), height=2.6)
    for j, s in enumerate(streams):
        sub = any_[(any_.stream == s) & any_.arm.isin(arms)]
        sns.lineplot(data=sub, x="samples", y="seen_acc", hue="arm", hue_order=arms,
                     palette=style.palette(arms), errorbar=BAND, n_boot=500, seed=0,
                     ax=axes[0, j], legend=(j == 0), lw=1)
        axes[0, j].set_title(s)
        axes[0, j].set_ylabel("accuracy on tasks seen" if j == 0 else "")
    style.legend_below(fig, axes[0, 0], max_cols=4)
    return fig


def frontier(runs: pd.DataFrame) -> plt.Figure:
    """Plasticity (learning accuracy) against forgetting: the fixed-radius ball over r x K
    (colour: K, size: r; crosses: no constraint), the tuned ball arms, the adaptive controllers
    and the baselines at their selected points (mean over seeds); a star marks tuned
    fine-tuning (K = 1, learning rate chosen on the validation stream), the reference of the
    primary contrasts."""
    streams = list(dict.fromkeys(runs.stream))
    fig, axes = style.subplots(1, len(streams), height=3.0)
    means = runs.groupby(["stream", "group", "arm", "kind", "k", "radius"], as_index=False)[
        ["learning_acc", "forgetting", "final_acc"]].mean()
    ks = sorted(means[means.group == "frontier"].k.unique())
    colours = dict(zip(ks, sns.color_palette("viridis", len(ks)), strict=True))
    for j, s in enumerate(streams):
        ax = axes[0, j]
        m = means[means.stream == s]
        f = m[m.group == "frontier"]
        finite = f[np.isfinite(f.radius)]
        for k, g in finite.groupby("k"):
            g = g.sort_values("radius")
            ax.plot(g.learning_acc, g.forgetting, "-", color=colours[k], lw=0.8)
            ax.scatter(g.learning_acc, g.forgetting, s=20 + 60 * g.radius / g.radius.max(),
                       color=colours[k], label=f"ball, K={k}")
        free = f[~np.isfinite(f.radius)]
        ax.scatter(free.learning_acc, free.forgetting, marker="x", c=[colours[k] for k in free.k],
                   label="no constraint")
        others = m[m.group.isin(["distance", "controller", "baseline"]) & (m.arm != "finetune")]
        marks = {"distance": ("o", style.PALETTE[0], "ball arms (tuned)"),
                 "controller": ("s", style.PALETTE[3], "controllers (tuned)"),
                 "baseline": ("^", "0.4", "baselines (tuned)")}
        for group, g in others.groupby("group"):
            marker, colour, label = marks[group]
            ax.scatter(g.learning_acc, g.forgetting, marker=marker, s=14, color=colour,
                       label=label)
        best = m[m.arm == "ball_best"] if (m.arm == "ball_best").any() else m.iloc[:0]
        ax.scatter(best.learning_acc, best.forgetting, marker="D", s=40, facecolor="none",
                   edgecolor="k", zorder=6, label="ball_best")
        tuned = m[m.arm == "finetune"]
        ax.scatter(tuned.learning_acc, tuned.forgetting, marker="*", s=120, color="gold",
                   edgecolor="k", zorder=5, label="tuned K=1")
        free_k = m[m.arm == "finetune_k"]
        ax.scatter(free_k.learning_acc, free_k.forgetting, marker="P", s=60, color="gold",
                   edgecolor="k", zorder=5, label="tuned K-step SGD")
        ax.set_title(s)
        ax.set_xlabel("learning accuracy")
        ax.set_ylabel("forgetting" if j == 0 else "")
    style.legend_below(fig, axes[0, 0], max_cols=4)
    return fig


def radius_traces(trace: pd.DataFrame) -> plt.Figure:
    """r along the stream for every ball arm (mean over seeds; dotted lines: task boundaries)
    and the fraction of the K-step segment kept (alpha)."""
    streams = list(dict.fromkeys(trace.stream))
    fig, axes = style.subplots(2, len(streams), height=4.4)
    for j, s in enumerate(streams):
        sub = trace[trace.stream == s]
        arms = sorted(sub.arm.unique())
        for row, (col, label) in enumerate((("radius", "radius r"), ("alpha", "alpha kept"))):
            ax = axes[row, j]
            for a in arms:
                g = sub[sub.arm == a].groupby("batch")[col].mean()
                ax.plot(g.index, g.to_numpy(), lw=0.8, label=a, color=style.colour(a))
            for b in sub.groupby("task").batch.min().iloc[1:]:
                ax.axvline(b, color="0.7", ls=":", lw=0.8)
            if col == "radius":
                ax.set_yscale("log")
            ax.set_title(s if row == 0 else "")
            ax.set_xlabel("batch" if row == 1 else "")
            ax.set_ylabel(label if j == 0 else "")
    style.legend_below(fig, axes[0, 0], max_cols=6)
    return fig
