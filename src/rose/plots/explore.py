"""Figures of direction 1 (the contour warm-up against the flat-minima methods), each a function
of a results table. Error bars are 95% bootstrap CIs over seeds (seaborn), the interval the
tables report."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from rose.plots import style
from rose.stats import CONFIDENCE

BAND = ("ci", round(100 * CONFIDENCE))


def accuracy(runs: pd.DataFrame, references: tuple[str, ...] = ("sgd_or_warmup", "sgd")
             ) -> plt.Figure:
    """Every arm minus the setting's reference on the same seed (the paired differences the
    contrasts are made of), early-stopped and final test accuracy in points, per setting: mean
    and Student-t 95% interval over seeds (rose.stats.paired_contrast, as the tables). The
    reference is the first of ``references`` that the setting ran (the pool of tuned SGD and
    warm-up, else SGD)."""
    from rose.stats import paired_contrast

    settings = list(dict.fromkeys(runs.setting))
    rows = []
    used = {}
    for s in settings:
        sub = runs[runs.setting == s].set_index("seed")
        reference = next((r for r in references if (sub.arm == r).any()), None)
        if reference is None:
            continue
        used[s] = reference
        ref = sub[sub.arm == reference]
        for a in dict.fromkeys(sub.arm):
            if a == reference:
                continue
            mine = sub[sub.arm == a]
            common = mine.index.intersection(ref.index)
            for when in ("early", "final"):
                c = paired_contrast(mine.loc[common, f"{when}_test_acc"].to_numpy(),
                                    ref.loc[common, f"{when}_test_acc"].to_numpy())
                rows.append({"setting": s, "arm": a, "when": when,
                             "d": 100 * c.mean_difference, "lo": 100 * c.ci_low,
                             "hi": 100 * c.ci_high})
    df = pd.DataFrame(rows, columns=["setting", "arm", "when", "d", "lo", "hi"])
    # each panel its own y axis (the settings may run different arms), two panels a row
    n_rows, n_cols = style.grid(max(1, len(settings)), 2)
    fig, axes = style.subplots(n_rows, n_cols, height=2.4 * n_rows)
    for ax in axes.flat[len(settings):]:
        ax.axis("off")
    colours = {"early": style.PALETTE[0], "final": style.PALETTE[1]}
    for j, s in enumerate(settings):
        ax = axes.flat[j]
        sub = df[df.setting == s]
        arms = list(dict.fromkeys(sub.arm))
        for k, when in enumerate(("early", "final")):
            w = sub[sub.when == when]
            y = [arms.index(a) + (k - 0.5) * 0.3 for a in w.arm]
            ax.errorbar(w.d, y, xerr=[w.d - w.lo, w.hi - w.d], fmt="o", ms=3, capsize=2,
                        color=colours[when], label=f"{when}-stopped" if when == "early"
                        else "final")
        ax.axvline(0, color="0.5", ls=":", lw=0.8)
        ax.set_yticks(range(len(arms)), arms)
        ax.set_title(s)
        ax.set_xlabel(f"test accuracy minus {used.get(s, 'reference')} (points)")
    style.legend_below(fig, axes[0, 0], max_cols=2)
    return fig


def sharpness(runs: pd.DataFrame) -> plt.Figure:
    """Each sharpness measure against final test accuracy, one point per (arm, seed) run."""
    measures = [("lambda_max", "$\\lambda_{\\max}$", True), ("trace", "tr $H$", True),
                ("sigma_prime", "$\\sigma'$ (larger = flatter)", False),
                ("adaptive_sharpness", "adaptive sharpness", False)]
    settings = list(dict.fromkeys(runs.setting))
    fig, axes = style.subplots(len(settings), len(measures), height=1.7 * len(settings) + 1.0)
    for i, s in enumerate(settings):
        sub = runs[runs.setting == s]
        for j, (m, label, log) in enumerate(measures):
            ax = axes[i, j]
            sns.scatterplot(data=sub, x=m, y="final_test_acc", hue="arm", s=10, ax=ax,
                            palette=style.palette(sub.arm.unique()),
                            legend=(i == 0 and j == 0))
            if log and (sub[m] > 0).all():
                ax.set_xscale("log")
                ax.xaxis.set_minor_formatter(plt.NullFormatter())
            ax.set_xlabel(label if i == len(settings) - 1 else "")
            ax.set_ylabel(f"{s}\nfinal test acc." if j == 0 else "")
    style.legend_below(fig, axes[0, 0], max_cols=6)
    return fig


def spectrum(spec: pd.DataFrame, sigma_frac: float = 0.01) -> plt.Figure:
    """Hessian spectral density of the final weights (seed 0) by stochastic Lanczos quadrature,
    each Ritz value smoothed by a Gaussian of width sigma_frac x the spectrum's range; log scale.
    """
    if spec.empty:
        return plt.figure()
    settings = list(dict.fromkeys(spec.setting))
    fig, axes = style.subplots(1, len(settings), height=2.6)
    for j, s in enumerate(settings):
        sub = spec[spec.setting == s]
        lo, hi = sub.node.min(), sub.node.max()
        sigma = sigma_frac * max(hi - lo, 1e-6)
        grid = np.linspace(lo - 5 * sigma, hi + 5 * sigma, 400)
        ax = axes[0, j]
        for arm, g in sub.groupby("arm", sort=False):
            dens = (g.weight.to_numpy()[:, None] * np.exp(
                -(grid[None] - g.node.to_numpy()[:, None]) ** 2 / (2 * sigma ** 2))
                / (sigma * np.sqrt(2 * np.pi))).sum(0)
            ax.semilogy(grid, dens + 1e-8, lw=1, label=arm, color=style.colour(arm))
        ax.set_title(s)
        ax.set_xlabel("eigenvalue of H")
        ax.set_ylabel("density" if j == 0 else "")
    style.legend_below(fig, axes[0, 0], max_cols=6)
    return fig


def curves(curves_: pd.DataFrame) -> plt.Figure:
    """Filter-normalised 1-D loss curves L(theta + a d) on the probe batch through every arm's
    final weights (mean over seeds, 95% band), per setting."""
    settings = list(dict.fromkeys(curves_.setting))
    fig, axes = style.subplots(1, len(settings), height=2.8)
    for j, s in enumerate(settings):
        sub = curves_[curves_.setting == s]
        sns.lineplot(data=sub, x="alpha", y="loss", hue="arm", errorbar=BAND, n_boot=200,
                     seed=0, ax=axes[0, j], legend=(j == 0), lw=0.9,
                     palette=style.palette(sub.arm.unique()))
        axes[0, j].set_yscale("log")
        axes[0, j].set_title(s)
        axes[0, j].set_xlabel("a (filter-normalised direction)")
    style.legend_below(fig, axes[0, 0], max_cols=6)
    return fig


def surfaces(surface: pd.DataFrame, walk: pd.DataFrame) -> plt.Figure:
    """Top: filter-normalised 2-D loss surfaces (seed 0) at the point the walk started from and
    at the point it selected, per setting. Bottom: along the walk, |L_P - c| and the distance
    from the start (mean over seeds)."""
    settings = list(dict.fromkeys(surface.setting)) if len(surface) else []
    n = max(1, len(settings))
    fig, axes = style.subplots(2, 2 * n, height=4.0)
    for j, s in enumerate(settings):
        sub = surface[surface.setting == s]
        vmax = np.quantile(sub.loss, 0.95)
        for k, where in enumerate(("before", "after")):
            ax = axes[0, 2 * j + k]
            g = sub[sub["where"] == where].pivot_table(index="a", columns="b", values="loss")
            cs = ax.contourf(g.columns, g.index, g.to_numpy(), levels=20, cmap="viridis",
                             vmax=vmax)
            ax.contour(g.columns, g.index, g.to_numpy(), levels=10, colors="w",
                       linewidths=0.4)
            ax.plot(0, 0, "r+")
            ax.set_title(f"{s}:\n{where} the walk")
            fig.colorbar(cs, ax=ax, shrink=0.8)
        w = walk[(walk.setting == s) & (walk.arm == sub.arm.iloc[0])] if len(walk) else walk
        if len(w):
            m = w.assign(err=(w.loss - w.level).abs()).groupby("k")[["err", "distance"]].mean()
            ax = axes[1, 2 * j]
            ax.semilogy(m.index, m.err + 1e-12, lw=1)
            ax.set_xlabel("walk step")
            ax.set_ylabel("|L_P - c|")
            ax = axes[1, 2 * j + 1]
            ax.plot(m.index, m.distance, lw=1)
            ax.set_xlabel("walk step")
            ax.set_ylabel("distance from start")
    return fig


def trajectories(traj: pd.DataFrame) -> plt.Figure:
    """Each arm's trajectory (seed 0, one point per evaluation) on the first two principal
    components of its own snapshots minus the final point (Li et al. 2018); colour: training
    loss."""
    if traj.empty:
        return plt.figure()
    keys = list(traj.groupby(["setting", "arm"], sort=False).groups)
    rows, cols = style.grid(len(keys), 3)
    fig, axes = style.subplots(rows, cols, height=2.2 * rows)
    for ax in axes.flat[len(keys):]:
        ax.axis("off")
    for j, (s, a) in enumerate(keys):
        g = traj[(traj.setting == s) & (traj.arm == a)]
        ax = axes.flat[j]
        ax.plot(g.pc1, g.pc2, "-", color="0.6", lw=0.8)
        sc = ax.scatter(g.pc1, g.pc2, c=g.train_loss, cmap="magma", s=14)
        walk = g[g.phase == "walk"]
        ax.scatter(walk.pc1, walk.pc2, marker="*", s=60, color="tab:blue", label="after walk")
        ax.set_title(f"{s}: {a}\nPC1 {100 * g.explained1.iloc[0]:.0f}%, PC2 "
                     f"{100 * g.explained2.iloc[0]:.0f}%, tortuosity "
                     f"{g.tortuosity.iloc[0]:.2f}")
        fig.colorbar(sc, ax=ax, shrink=0.8, label="train loss")
    return fig


def ablation(paired: pd.DataFrame) -> plt.Figure:
    """Every ablation variant minus the contour arm, paired by seed (95% CI)."""
    metrics = [m for m in ("early_test_acc", "final_test_acc", "lambda_max")
               if m in set(paired.metric)]
    fig, axes = style.subplots(1, max(1, len(metrics)), height=2.4)
    for j, m in enumerate(metrics):
        sub = paired[paired.metric == m].sort_values("arm")
        ax = axes[0, j]
        y = np.arange(len(sub))
        ax.errorbar(sub.difference, y, xerr=[sub.difference - sub.ci_low,
                                             sub.ci_high - sub.difference],
                    fmt="o", ms=3, capsize=2)
        ax.axvline(0, color="0.5", ls=":", lw=0.8)
        ax.set_yticks(y, sub.arm if j == 0 else [""] * len(sub))
        ax.set_xlabel(f"{m}:\nvariant - contour")
    return fig


def lr_sweep(sweep: pd.DataFrame) -> plt.Figure:
    """The learning-rate sweep behind the tuning, per setting: each arm's early-stopped
    validation accuracy (top) and final training loss (bottom) against its learning rate, at the
    best value of its other hyperparameters for that rate (chosen on validation; mean over seeds,
    a diverged seed counts as chance accuracy and is marked). The selected point is circled."""
    if "hp.lr" not in sweep:
        fig, ax = plt.subplots(figsize=(3.6, 1.2))
        ax.text(0.5, 0.5, "no learning-rate grid in this configuration", ha="center",
                va="center")
        ax.axis("off")
        return fig
    sw = sweep[sweep["hp.lr"].notna()].copy()
    settings = list(dict.fromkeys(sw.setting))
    fig, axes = style.subplots(2, len(settings), height=4.2, sharex="col")
    for j, s in enumerate(settings):
        sub = sw[sw.setting == s]
        per_point = sub.groupby(["arm", "point", "hp.lr"], sort=False).agg(
            val=("early_val_acc", lambda v: v.fillna(0.0).mean()),
            loss=("final_train_loss", "mean"), diverged=("diverged", "mean"),
            selected=("selected", "any")).reset_index()
        best = per_point.loc[per_point.groupby(["arm", "hp.lr"]).val.idxmax()]
        for arm, g in best.groupby("arm", sort=False):
            g = g.sort_values("hp.lr")
            line = axes[0, j].plot(g["hp.lr"], g.val, marker="o", ms=3, lw=1, label=arm,
                                   color=style.colour(arm))[0]
            axes[1, j].plot(g["hp.lr"], g.loss, marker="o", ms=3, lw=1,
                            color=line.get_color())
            for _, r in g[g.selected].iterrows():
                axes[0, j].plot(r["hp.lr"], r.val, "o", ms=8, mfc="none",
                                color=line.get_color())
            dead = g[g.diverged > 0]
            axes[0, j].plot(dead["hp.lr"], dead.val, "x", ms=6, color=line.get_color())
        for i in range(2):
            axes[i, j].set_xscale("log", base=2)
        axes[1, j].set_yscale("log")
        axes[0, j].set_title(s)
        axes[1, j].set_xlabel("learning rate")
        axes[0, j].set_ylabel("early-stopped val. acc." if j == 0 else "")
        axes[1, j].set_ylabel("final train loss" if j == 0 else "")
    style.legend_below(fig, axes[0, 0], max_cols=6)
    return fig
