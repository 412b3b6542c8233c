"""The Pareto view of the toy penalty study (issue 16): a penalty "reduces superposition" only if
it moves the frontier of reconstruction loss against polysemanticity, not if one point of its
lambda grid looks good.

Per (variant, sparsity, seed) the frontier is the set of the variant's points over its lambda
grid (a variant without a penalty has one point, lambda = 0), each (relative loss = loss over
the zero predictor's, polysemanticity over alive units). Its area is the 2-D hypervolume
(rose.superposition.monosemanticity.frontier_area) with reference (1, 1); a seed's frontier area
is the mean over the sparsities. The primary contrasts compare these per-seed areas, paired by
seed (all variants of a seed share initial weights and data draws).

Caveat, stated in the paper: a grid of several lambdas can dominate more area than one point by
noise alone; the unpenalised model's lambda = 0 point is never part of a penalised variant's
frontier, so a penalty that does nothing scores its own, usually worse, points.
"""

from __future__ import annotations

import pandas as pd

from rose.superposition.monosemanticity import frontier_area

TOY_PRIMARY_METRICS = {"frontier_area": "frontier area (loss vs polysemanticity)"}
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


def per_seed(toy: pd.DataFrame) -> pd.DataFrame:
    """The contrasts' table: benchmark "toy", arm = variant, seed, frontier_area (mean over the
    sparsities)."""
    a = areas(toy).groupby(["variant", "seed"], as_index=False)["frontier_area"].mean()
    return a.rename(columns={"variant": "arm"}).assign(benchmark="toy")
