"""Figures of the first baseline (an MLP trained with SGD): learning curves over seeds."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from rose.plots import style
from rose.stats import CONFIDENCE


def learning_curves(history: pd.DataFrame, runs: pd.DataFrame) -> plt.Figure:
    """Test accuracy and training loss per epoch, mean over seeds with a 95% bootstrap band.

    ``history``: one row per (dataset, method, seed, epoch). ``runs``: one row per run with
    ``status``; diverged runs are drawn with an ``x`` where they stopped and counted in the
    panel title instead of being averaged in.
    """
    datasets = sorted(history["dataset"].unique())
    fig, axes = style.subplots(2, len(datasets), height=4.2, sharex="col")
    ok = runs.loc[runs["status"] == "ok", ["dataset", "method", "seed"]]
    good = history.merge(ok, on=["dataset", "method", "seed"])
    # seaborn's ("ci", 95) band is a percentile bootstrap of the mean, as in rose.stats
    band = ("ci", round(100 * CONFIDENCE))
    for j, ds in enumerate(datasets):
        sub = good[good["dataset"] == ds]
        for i, (col, label) in enumerate([("test_acc", "test accuracy"),
                                          ("train_loss", "training loss")]):
            ax = axes[i, j]
            sns.lineplot(data=sub, x="epoch", y=col, hue="method", errorbar=band, n_boot=2000,
                         seed=0, ax=ax, legend=(i == 0 and j == 0),
                         palette=style.palette(sub.method.unique()))
            if col == "train_loss":
                ax.set_yscale("log")
            ax.set_ylabel(label)
            div = runs[(runs["dataset"] == ds) & (runs["status"] == "diverged")]
            for _, r in div.iterrows():
                last = history[(history["dataset"] == ds) & (history["method"] == r["method"])
                               & (history["seed"] == r["seed"])]
                if len(last):
                    ax.plot(last["epoch"].iloc[-1], last[col].iloc[-1], "kx", ms=8)
        n_seeds = runs[runs["dataset"] == ds].groupby("method")["seed"].nunique().min()
        title = f"{ds} ({n_seeds} seeds, mean ± 95% CI)"
        if len(div := runs[(runs["dataset"] == ds) & (runs["status"] == "diverged")]):
            title += f"\n{len(div)} diverged run(s) left out (x)"
        axes[0, j].set_title(title)
    return fig
