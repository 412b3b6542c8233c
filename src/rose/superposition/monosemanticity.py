"""Metrics of a trained toy model that cannot be fooled by dead units, inflated weights or a
constant predictor (issue 16), and the Pareto view of a penalty's lambda grid.

- represented features: by reconstruction gain, not by ||W_i|| (a norm says "represented" for
  weights scaled by 100 and for features whose every hidden unit is off)
- alive units: a unit whose activation varies across inputs; polysemanticity is averaged over
  alive units only, and is NaN (never 0, "success") when no unit is alive
- scale-free: D_i is invariant to scaling W, and is averaged over represented features only;
  features per dimension counts represented features, not ||W||_F^2
- bimodality of the hidden activations across inputs: the share of activations near the two
  modes of each unit (its best two-level split), and the share of units that take both
- the frontier area: the area a variant's (loss, polysemanticity) points dominate

Every function takes the batched toy model (rose.superposition.toy_model, W [instances, n, m])
and returns one value per instance, or per (instance, feature / unit).
"""

from __future__ import annotations

import numpy as np
import torch

from rose.superposition import geometry
from rose.superposition.penalties import two_level_split
from rose.superposition.toy_model import ToyModel

REPRESENTED_GAIN = 0.25  # antipodal pairs at S = 0.5 recover about 0.55; unlearned features 0
MODE_BAND = 0.25         # near a mode: within a quarter of the gap between the two modes
MODE_SHARE = 0.005       # a unit "takes" a mode when at least 0.5% of inputs sit in it
ALIVE_STD = 1e-6         # a unit whose activation's std over inputs is below this is dead
ALIVE_SHARE = 0.001      # ... or that leaves its minimum on fewer than 0.1% of the inputs


def zero_predictor_loss(imp: torch.Tensor, density: torch.Tensor) -> torch.Tensor:
    """Per (instance, feature) loss of predicting x'_i = 0: I_i E[x_i^2] = I_i p_i / 3
    (x_i ~ U[0, 1] w.p. p_i)."""
    return imp * density / 3


@torch.no_grad()
def reconstruction_gain(model: ToyModel, x: torch.Tensor, imp: torch.Tensor,
                        density: torch.Tensor, gen: torch.Generator | None = None
                        ) -> torch.Tensor:
    """G_i = (L_i(W with row i zeroed) - L_i(W)) / (I_i p_i / 3), per (instance, feature)
    [I, n]: the share of feature i's zero-predictor loss the model recovers on feature i's
    own output, L_i = E[I_i (x_i - x'_i)^2].

    Zeroing row W_i removes feature i from the model (it neither reaches the hidden layer nor
    is read out: x'_i = ReLU(b_i)). G_i is about 1 for a dedicated feature and 0 for an
    unlearned one, for a model whose hidden units are all off and for a constant predictor;
    negative when the model's output for the feature is worse than not having it (weights
    scaled by 100). The interference feature i causes on the others is not subtracted: with
    it, both members of an antipodal pair at S = 0.5 scored below 1/2 (measured).

    Stratified by presence, so rare features are measured as well as common ones:
    L_i = p_i E[l_i | x_i ~ U[0, 1]] + (1 - p_i) E[l_i | x_i = 0], each expectation over the
    inputs x [I, batch, n] with coordinate i replaced; at S = 0.999 a plain sample of 4096
    inputs held about 4 presences per feature. The present values u ~ U[0, 1] come from
    ``gen`` (default: seed 0), the same for every instance, so an instance's gain does not
    depend on which others are measured beside it. Costs 4n forward passes."""
    n = model.W.shape[1]
    W = model.W
    gen = gen or torch.Generator(x.device).manual_seed(0)
    # one set of present values for every instance: instances (and their seeds' arms) paired
    u = torch.rand(x.shape[1], generator=gen, device=x.device).expand(x.shape[:2])
    gains = []
    for i in range(n):
        keep = torch.ones(n, 1, device=W.device)
        keep[i] = 0
        diff = torch.zeros(x.shape[0], device=x.device)
        for value, weight in ((u, density[:, i]), (torch.zeros_like(u), 1 - density[:, i])):
            xi = x.clone()
            xi[:, :, i] = value
            model.W = W
            with_i = (xi[:, :, i] - model.forward(xi)[0][:, :, i]) ** 2
            model.W = W * keep
            without = (xi[:, :, i] - model.forward(xi)[0][:, :, i]) ** 2
            diff += weight * (without - with_i).mean(1)
        gains.append(imp[:, i] * diff)
    model.W = W
    return torch.stack(gains, 1) / zero_predictor_loss(imp, density).clamp_min(1e-12)


def represented(gain: torch.Tensor, threshold: float = REPRESENTED_GAIN) -> torch.Tensor:
    """Boolean [I, n]: the model recovers more than ``threshold`` of the feature's loss."""
    return gain > threshold


def mean_dimensionality(W: torch.Tensor, rep: torch.Tensor) -> torch.Tensor:
    """Mean D_i over represented features [I] (NaN when none is): D_i is invariant to scaling
    W, and averaging unlearned features' zeros in would let dropping features lower it."""
    D = geometry.dimensionality(W)
    k = rep.sum(1)
    return torch.where(k > 0, (D * rep).sum(1) / k.clamp_min(1), torch.nan)


def features_per_dimension(rep: torch.Tensor, m: int) -> torch.Tensor:
    """Represented features per hidden dimension [I]: ||W||_F^2 / m without its scale."""
    return rep.sum(1) / m


def alive_units(h: torch.Tensor, tol: float = ALIVE_STD, share: float = ALIVE_SHARE
                ) -> torch.Tensor:
    """Boolean [I, m]: the unit's activation varies over the inputs (h [I, batch, m]) and
    leaves its minimum on at least ``share`` of them. An always-off ReLU, a SoLU unit with
    gain 0, an always-on constant unit and a unit that fires on one input in thousands are
    dead."""
    above = (h > h.amin(1, keepdim=True) + tol).float().mean(1)
    return (h.std(1) > tol) & (above >= share)


def polysemanticity_alive(W: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
    """Mean over alive units of 1 - max_i W_ik^2 / sum_i W_ik^2 [I] (a ratio: scale-free);
    NaN when no unit is alive, so a dead model cannot score as monosemantic."""
    P = geometry.neuron_polysemanticity(W)
    k = alive.sum(1)
    return torch.where(k > 0, (P * alive).sum(1) / k.clamp_min(1), torch.nan)


def bimodality(h: torch.Tensor, alive: torch.Tensor, band: float = MODE_BAND,
               share: float = MODE_SHARE) -> tuple[torch.Tensor, torch.Tensor]:
    """(near-mode share [I], both-modes share [I]) of activations h [I, batch, m].

    Per unit, its two modes are the means lo < hi of its best two-level split over the inputs
    (1-D 2-means, rose.superposition.penalties.two_level_split); an activation is near a mode
    when within band * (hi - lo) of its cluster's mean. near-mode share = mean over alive
    units of the share of inputs near a mode (NaN when none is alive): 1 for a two-level
    unit, 2 * band for a uniformly spread one. both-modes share = the fraction of all m units
    that are alive with at least ``share`` of the inputs in each mode (0 for a model of
    constant units)."""
    lo, hi, on = two_level_split(h)
    centre = torch.where(on, hi, lo)
    near = ((h - centre).abs() <= band * (hi - lo)).float().mean(1)
    k = alive.sum(1)
    near_share = torch.where(k > 0, (near * alive).sum(1) / k.clamp_min(1), torch.nan)
    frac_on, frac_off = on.float().mean(1), (~on).float().mean(1)
    both = (alive & (frac_on >= share) & (frac_off >= share)).float().mean(1)
    return near_share, both


def frontier_area(loss: np.ndarray, poly: np.ndarray) -> float:
    """Area of [0, 1]^2 dominated by the points (loss, poly), both to be minimised, with the
    reference point (1, 1): the 2-D hypervolume indicator (Zitzler & Thiele 1999), computed by
    a sweep over loss. ``loss`` is the reconstruction loss over the zero predictor's (1 = a
    model that learned nothing), clipped to [0, 1]; a NaN polysemanticity (no alive unit)
    counts as 1, the worst. One point (l, q) alone gives (1 - l)(1 - q)."""
    x = np.clip(np.nan_to_num(np.asarray(loss, float), nan=1.0), 0, 1)
    y = np.clip(np.nan_to_num(np.asarray(poly, float), nan=1.0), 0, 1)
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    best = np.minimum.accumulate(y)
    widths = np.diff(np.append(x, 1.0))
    return float((widths * (1 - best)).sum())
