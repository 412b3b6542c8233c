"""Figures of direction 3b: toy-model geometry, the phase diagram, and the penalty sweeps."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from rose.plots import style
from rose.stats import CONFIDENCE

BAND = ("ci", round(100 * CONFIDENCE))
# sticky dimensionalities drawn in the original plotting code (research/superposition.md)
STICKY = (1.0, 3 / 4, 2 / 3, 1 / 2, 2 / 5, 3 / 8)


def _by_sparsity(weights: dict) -> list[tuple[float, np.ndarray]]:
    """(sparsity, W [n, m]) of seed 0 for each sparsity."""
    return [(float(s), W) for s, W, seed in zip(weights["sparsity"], weights["W"],
                                                 weights["seed"], strict=True) if seed == 0]


def feature_geometry_2d(weights: dict) -> plt.Figure:
    """Each feature's embedding W_i in the 2-D hidden space, one panel per sparsity (the n=5,
    m=2 model: two features, then antipodal pairs, then a pentagon as S grows)."""
    panels = _by_sparsity(weights)
    fig, axes = style.subplots(1, len(panels), height=1.8)
    colours = sns.color_palette("viridis", weights["W"].shape[1])
    for ax, (s, W) in zip(axes[0], panels, strict=True):
        for i, (x, y) in enumerate(W):
            ax.plot([0, x], [0, y], color=colours[i], lw=1.5)
            ax.plot(x, y, "o", color=colours[i], ms=4)
        ax.set_xlim(-1.4, 1.4)
        ax.set_ylim(-1.4, 1.4)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"S = {s:g}")
    fig.suptitle("Feature embeddings $W_i$ (colour: importance rank, dark = most important)")
    return fig


def gram_heatmaps(weights: dict) -> plt.Figure:
    """W W^T (feature x feature, the paper's W^T W in its [m, n] convention) and ||W_i|| per
    sparsity, as in the paper's main figure."""
    panels = _by_sparsity(weights)
    fig, axes = style.subplots(2, len(panels), height=2.6,
                               gridspec_kw={"height_ratios": [3, 1]})
    for j, (s, W) in enumerate(panels):
        axes[0, j].imshow(W @ W.T, cmap="RdBu_r", vmin=-1, vmax=1)
        axes[0, j].set_title(f"S = {s:g}")
        axes[0, j].axis("off")
        axes[1, j].bar(np.arange(len(W)), np.linalg.norm(W, axis=1), color="0.3")
        axes[1, j].set_ylim(0, 1.3)
        axes[1, j].set_xticks([])
        if j:
            axes[1, j].set_yticks([])
    axes[1, 0].set_ylabel("$\\|W_i\\|$")
    return fig


def dimensionality_vs_sparsity(instances: pd.DataFrame, features: pd.DataFrame, m: int
                               ) -> plt.Figure:
    """Left: dimensions per feature m / ||W||_F^2 against 1/(1-S) (plateau at 1/2 expected).
    Right: every feature's D_i against 1/(1-S) with the sticky fractions marked."""
    fig, axes = style.subplots(1, 2, height=2.6)
    a, b = axes[0]
    inv = 1 / (1 - instances["sparsity"])
    a.plot(inv, 1 / instances["features_per_dimension"], "o-", color="k", ms=4)
    a.axhline(0.5, ls=":", color="0.5")
    a.set_xscale("log")
    a.set_xlabel("1 / (1 - S)")
    a.set_ylabel("dimensions per feature\n$m / \\|W\\|_F^2$")
    feats = features[features["norm"] > 0.5]
    rng = np.random.default_rng(0)
    x = (1 / (1 - feats["sparsity"])) * np.exp(rng.normal(0, 0.04, len(feats)))
    b.scatter(x, feats["dimensionality"], s=4, alpha=0.4, color="C0")
    for v in STICKY:
        b.axhline(v, ls=":", lw=0.7, color="0.5")
        b.text(x.max() * 1.15, v, f"{v:.3g}", fontsize=style.MIN_PT, va="center")
    b.set_xscale("log")
    b.set_xlabel("1 / (1 - S)")
    b.set_ylabel("$D_i$ (represented features)")
    fig.suptitle(f"Uniform importance, m = {m}")
    return fig


PHASE_TITLES = {"elhage": "Elhage et al. model", "privileged": "neuron basis, $\\lambda = 0$"}


def phase_diagram_plot(phase: pd.DataFrame) -> plt.Figure:
    """The phase of the best seed in each (relative importance, density) cell, one panel per
    model (column ``model``: Elhage et al.'s, the neuron-basis model without and with the
    penalty)."""
    from matplotlib.colors import ListedColormap

    order = ["not_represented", "dedicated", "superposition", "other"]
    if "model" not in phase:
        phase = phase.assign(model="elhage")
    models = list(dict.fromkeys(phase["model"]))
    fig, axes = style.subplots(1, len(models), height=2.6, sharey=True)
    cmap = ListedColormap(["#d9d9d9", "#4c72b0", "#dd8452", "#000000"])
    for ax, model in zip(axes[0], models, strict=True):
        grid = phase[phase["model"] == model].pivot(index="density", columns="importance",
                                                    values="phase")
        codes = grid.apply(lambda col: col.map(order.index)).to_numpy(dtype=float)
        r, p = grid.columns.to_numpy(), grid.index.to_numpy()
        ax.pcolormesh(_edges(r), _edges(p), codes, cmap=cmap, vmin=-0.5, vmax=3.5)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("relative importance of feature 2")
        ax.set_ylabel("feature density 1 - S" if ax is axes[0, 0] else "")
        ax.set_title(PHASE_TITLES.get(model, model.replace("privileged_", "neuron basis, ")))
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(i)) for i in range(4)]
    fig.legend(handles, ["feature 2 not represented", "feature 2 dedicated", "superposition",
                         "other"], loc="outside lower center", ncol=4)
    return fig


def _edges(c: np.ndarray) -> np.ndarray:
    """Cell edges of a log-spaced grid of centres."""
    lc = np.log(c)
    mid = (lc[1:] + lc[:-1]) / 2
    return np.exp(np.concatenate([[2 * lc[0] - mid[0]], mid, [2 * lc[-1] - mid[-1]]]))


FRONTIER_AXES = (("n_represented", "features represented"),
                 ("mean_dimensionality", "mean $D_i$"),
                 ("polysemanticity", "polysemanticity"))


def penalty_frontier(instances: pd.DataFrame) -> plt.Figure:
    """The Pareto view: per sparsity (rows), relative reconstruction loss against features
    represented, mean D_i and polysemanticity (columns); each variant's mean over seeds per
    lambda, joined in lambda order (a variant without a penalty is one point)."""
    sparsities = sorted(instances["sparsity"].unique())
    variants = list(dict.fromkeys(instances["variant"]))
    colours = style.palette(variants)
    # a seed with no alive unit has no polysemanticity: drawn as 1, the worst, not left out
    filled = instances.assign(polysemanticity=instances.polysemanticity.fillna(1.0))
    means = filled.groupby(["variant", "sparsity", "lam"], as_index=False, sort=False)[
        ["relative_loss", *(c for c, _ in FRONTIER_AXES)]].mean()
    fig, axes = style.subplots(len(sparsities), len(FRONTIER_AXES),
                               height=1.6 * len(sparsities) + 0.9, sharex=True)
    for i, s in enumerate(sparsities):
        for j, (c, label) in enumerate(FRONTIER_AXES):
            ax = axes[i, j]
            for v in variants:
                g = means[(means.variant == v) & (means.sparsity == s)].sort_values("lam")
                ax.plot(g["relative_loss"], g[c], marker="o" if len(g) > 1 else "*",
                        ms=4 if len(g) > 1 else 9, lw=1, color=colours[v], label=v)
            ax.set_xscale("log")
            ax.set_xlabel("loss / zero predictor's" if i == len(sparsities) - 1 else "")
            ax.set_ylabel(f"S = {s:g}\n{label}" if j == 0 else label)
    style.legend_below(fig, axes[0, 0], max_cols=4)
    return fig


def dimensionality_histograms(features: pd.DataFrame) -> plt.Figure:
    """D_i of the represented features per sparsity (panels), no penalty against each
    penalised variant at its largest lambda (hue), pooled over seeds."""
    top = features.groupby("variant")["lam"].transform("max")
    df = features[(features["lam"] == top) & features["represented"].astype(bool)]
    sparsities = sorted(features["sparsity"].unique())
    fig, axes = style.subplots(1, len(sparsities), height=2.8, sharey=True)
    for ax, s in zip(axes[0], sparsities, strict=True):
        sub = df[df["sparsity"] == s]
        if len(sub):
            sns.histplot(data=sub, x="dimensionality", hue="variant", bins=np.linspace(0, 1, 21),
                         element="step", fill=False, stat="count", common_norm=False, ax=ax,
                         palette=style.palette(sub.variant.unique()), legend=ax is axes[0, 0])
        for d in STICKY:
            ax.axvline(d, ls=":", lw=0.6, color="0.5")
        ax.set_xlabel("$D_i$ of represented features")
        ax.set_title(f"S = {s:g}")
    if axes[0, 0].get_legend() is not None:
        sns.move_legend(axes[0, 0], "lower center", bbox_to_anchor=(0.5, -0.55),
                        ncol=4, title=None)
    return fig


def shortcut_sweep(runs: pd.DataFrame) -> plt.Figure:
    """Colored MNIST: test-environment worst-group accuracy, swapped-colour accuracy and the
    share of units carrying both colour and shape, against lambda, per benchmark."""
    cols = [("test_worst_group_acc", "worst-group test acc."),
            ("swapped_acc", "swapped-colour acc."),
            ("train_acc", "train acc."), ("frac_both", "units on colour and shape")]
    benches = sorted(runs["benchmark"].unique())
    fig, axes = style.subplots(len(benches), len(cols), height=1.7 * len(benches) + 0.9)
    pos = runs.copy()
    # lambda = 0 drawn at the left edge of the log axis
    lam_min = pos.loc[pos["lam"] > 0, "lam"].min() if (pos["lam"] > 0).any() else 1.0
    pos["lam_plot"] = pos["lam"].where(pos["lam"] > 0, lam_min / 10)
    for i, bench in enumerate(benches):
        sub = pos[pos["benchmark"] == bench]
        for j, (c, label) in enumerate(cols):
            ax = axes[i, j]
            sns.lineplot(data=sub, x="lam_plot", y=c, hue="variant", errorbar=BAND, n_boot=1000,
                         seed=0, marker="o", ms=3, ax=ax, legend=(i == 0 and j == 0),
                         palette=style.palette(sub.variant.unique()))
            ax.set_xscale("log")
            ax.set_xlabel("$\\lambda$ (left: 0)" if i == len(benches) - 1 else "")
            ax.set_ylabel(f"{bench}\n{label}" if j == 0 else label)
    style.legend_below(fig, axes[0, 0], max_cols=4)
    return fig
