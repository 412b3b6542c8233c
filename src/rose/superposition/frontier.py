"""The Pareto view of the toy penalty study (issue 16): a penalty "reduces superposition" only if
it moves the frontier of reconstruction loss against polysemanticity, not if one point of its
lambda grid looks good.

Per (variant, sparsity, seed) the frontier is the set of the variant's points over its lambda
grid (a variant without a penalty has one point, lambda = 0), each (relative loss = loss over
the zero predictor's, polysemanticity over alive units). Its area is the 2-D hypervolume
(rose.superposition.monosemanticity.frontier_area) with reference (1, 1); a seed's frontier area
is the mean over the sparsities. The primary contrasts compare these per-seed areas, paired by
seed (all variants of a seed share initial weights and data draws).

The area is exploratory: a grid of several lambdas dominates more area than one point by noise
alone (the minimum over noisy points), which favours the penalised variants. The primary toy
metric is therefore one point per variant chosen without reading polysemanticity: polysemanticity
at matched loss, the variant's lambda whose mean relative loss over seeds is closest to
(1 + MATCH_SLACK) times the unpenalised model's at the same sparsity (a variant without a penalty
has one point), per seed, averaged over the sparsities; a seed with no alive unit counts as 1.
"""

from __future__ import annotations

import pandas as pd

from rose.superposition.monosemanticity import frontier_area

TOY_PRIMARY_METRICS = {"poly_at_matched_loss": "polysemanticity at matched loss",
                       "frontier_area": "frontier area (loss vs polysemanticity)"}
MATCH_SLACK = 0.1        # the loss a penalty may cost: 10% above the unpenalised model's
TOY_METRICS = ("relative_loss", "n_represented", "mean_dimensionality",
               "represented_per_dimension", "polysemanticity", "n_alive", "near_mode_share",
               "both_modes_share", "norm_represented", "mean_dimensionality_all",
               "polysemanticity_all_units", "features_per_dimension", "penalty_value")


def areas(toy: pd.DataFrame) -> pd.DataFrame:
    """One row per (variant, sparsity, seed) with its frontier's area and number of points."""
    rows = []
    for (v, s, seed), g in toy.groupby(["variant", "sparsity", "seed"], sort=True):
        rows.append({"variant": v, "sparsity": s, "seed": seed, "points": len(g),
                     "frontier_area": frontier_area(g.relative_loss.to_numpy(),
                                                    g.polysemanticity.to_numpy())})
    return pd.DataFrame(rows)


def matched(toy: pd.DataFrame, reference: str = "none") -> pd.DataFrame:
    """Per (variant, sparsity): the lambda whose mean relative loss is closest to (1 +
    MATCH_SLACK) x the reference's, its mean loss and the reference's (selection reads the loss
    only, never polysemanticity)."""
    rows = []
    for s, gs in toy.groupby("sparsity"):
        target = (1 + MATCH_SLACK) * gs[gs.variant == reference].relative_loss.mean()
        for v, g in gs.groupby("variant", sort=False):
            loss = g.groupby("lam").relative_loss.mean()
            lam = float((loss - target).abs().idxmin())
            rows.append({"variant": v, "sparsity": s, "lam": lam, "loss": loss[lam],
                         "target_loss": target})
    return pd.DataFrame(rows)


def per_seed(toy: pd.DataFrame) -> pd.DataFrame:
    """The contrasts' table: benchmark "toy", arm = variant, seed, poly_at_matched_loss and
    frontier_area (each the mean over the sparsities)."""
    a = areas(toy).groupby(["variant", "seed"], as_index=False)["frontier_area"].mean()
    at = toy.merge(matched(toy)[["variant", "sparsity", "lam"]],
                   on=["variant", "sparsity", "lam"])
    at = at.assign(poly_at_matched_loss=at.polysemanticity.fillna(1.0)).groupby(
        ["variant", "seed"], as_index=False)["poly_at_matched_loss"].mean()
    return a.merge(at, on=["variant", "seed"]).rename(columns={"variant": "arm"}).assign(
        benchmark="toy")
