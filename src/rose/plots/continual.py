"""Figures of direction 2 (continual learning), each a function of a results table. Bands are
95% bootstrap CIs over seeds (seaborn), the interval the tables report."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

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
    fig, axes = plt.subplots(len(streams), len(arms), figsize=(1.9 * len(arms),
                                                               1.9 * len(streams)),
                             squeeze=False)
    for i, s in enumerate(streams):
        for j, a in enumerate(arms):
            sub = matrix[(matrix.stream == s) & (matrix.arm == a)]
            grid = sub.pivot_table(index="after_task", columns="task", values="acc")
            sns.heatmap(grid, ax=axes[i, j], vmin=0, vmax=1, cmap="viridis", cbar=False,
                        annot=grid.shape[0] <= 5, fmt=".2f", annot_kws={"fontsize": 5})
            axes[i, j].set_title(f"{s}: {a}", fontsize=7)
            axes[i, j].tick_params(labelsize=6)
            axes[i, j].set_xlabel("task" if i == len(streams) - 1 else "")
            axes[i, j].set_ylabel("after task" if j == 0 else "")
    fig.tight_layout()
    return fig


def anytime(any_: pd.DataFrame) -> plt.Figure:
    """Mean accuracy on the tasks seen so far against samples seen (95% band over seeds)."""
    streams = list(dict.fromkeys(any_.stream))
    arms = _shown(any_.arm)
    fig, axes = plt.subplots(1, len(streams), figsize=(4.2 * len(streams), 3.2), squeeze=False)
    for j, s in enumerate(streams):
        sub = any_[(any_.stream == s) & any_.arm.isin(arms)]
        sns.lineplot(data=sub, x="samples", y="seen_acc", hue="arm", hue_order=arms,
                     errorbar=BAND, n_boot=500, seed=0, ax=axes[0, j], legend=(j == 0), lw=1)
        axes[0, j].set_title(s, fontsize=9)
        axes[0, j].set_ylabel("accuracy on tasks seen")
    if axes[0, 0].get_legend():
        sns.move_legend(axes[0, 0], "lower left", fontsize=6)
    fig.tight_layout()
    return fig


def frontier(runs: pd.DataFrame) -> plt.Figure:
    """Plasticity (learning accuracy) against forgetting: the fixed-radius ball over r x K
    (colour: K, size: r; crosses: no constraint), the tuned ball arms, the adaptive controllers
    and the baselines at their selected points (mean over seeds); a star marks tuned
    fine-tuning (K = 1, learning rate chosen on the validation stream), the reference of the
    primary contrasts."""
    streams = list(dict.fromkeys(runs.stream))
    fig, axes = plt.subplots(1, len(streams), figsize=(4.4 * len(streams), 3.8), squeeze=False)
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
        style = {"distance": ("o", "tab:blue"), "controller": ("s", "tab:red"),
                 "baseline": ("^", "0.4")}
        for r in others.itertuples():
            marker, colour = style[r.group]
            ax.scatter(r.learning_acc, r.forgetting, marker=marker, s=18, color=colour)
            ax.annotate(r.arm, (r.learning_acc, r.forgetting), fontsize=5)
        tuned = m[m.arm == "finetune"]
        ax.scatter(tuned.learning_acc, tuned.forgetting, marker="*", s=120, color="gold",
                   edgecolor="k", zorder=5, label="tuned K=1")
        ax.set_title(s, fontsize=9)
        ax.set_xlabel("learning accuracy (plasticity)")
        ax.set_ylabel("forgetting")
    axes[0, 0].legend(fontsize=6)
    fig.tight_layout()
    return fig


def radius_traces(trace: pd.DataFrame) -> plt.Figure:
    """r along the stream for every ball arm (mean over seeds; dotted lines: task boundaries)
    and the fraction of the K-step segment kept (alpha)."""
    streams = list(dict.fromkeys(trace.stream))
    fig, axes = plt.subplots(2, len(streams), figsize=(4.2 * len(streams), 5.2), squeeze=False)
    for j, s in enumerate(streams):
        sub = trace[trace.stream == s]
        arms = sorted(sub.arm.unique())
        for row, (col, label) in enumerate((("radius", "radius r"), ("alpha", "alpha kept"))):
            ax = axes[row, j]
            for a in arms:
                g = sub[sub.arm == a].groupby("batch")[col].mean()
                ax.plot(g.index, g.to_numpy(), lw=0.8, label=a)
            for b in sub.groupby("task").batch.min().iloc[1:]:
                ax.axvline(b, color="0.7", ls=":", lw=0.8)
            if col == "radius":
                ax.set_yscale("log")
            ax.set_title(s, fontsize=9)
            ax.set_xlabel("batch")
            ax.set_ylabel(label)
    axes[0, 0].legend(fontsize=5)
    fig.tight_layout()
    return fig
