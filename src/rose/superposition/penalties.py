"""The penalties that push hidden activations to be high or low (the activations themselves,
ReLU, SoLU and top-k, are rose.nn.activations).

Every penalty returns one value per model instance (mean over batch and units), so many
instances with different strengths train in one tensor. All are O(activations) per step.
"""

from __future__ import annotations

import torch

PENALTIES = ("none", "l1", "bimodal_sigmoid", "bimodal_nearest", "bimodal_split",
             "bimodal_standardised")
ACTIVATIONS = ("relu", "solu", "topk")   # the hidden activations this direction compares


def bimodal_sigmoid(z: torch.Tensor, tau: float) -> torch.Tensor:
    """A saturation penalty, kept as the degenerate baseline: R = mean_u s(1 - s), s =
    sigmoid(z_u / (tau * rms_u)): 0 when a unit is clearly off or clearly on, at most 1/4 at
    z = 0. Degenerate minimum: rms includes any constant offset, so a unit that is always
    strongly off (or on) scores about s(1-s) at 1/tau, 0.018 at tau = 0.25, without ever
    switching between inputs (issue 16; tested); :func:`bimodal_split` fixes this.
    rms_u is the unit's root-mean-square pre-activation over
    the batch, held constant (detached): ReLU outputs are unbounded, and a fixed scale lets the
    model satisfy the penalty by inflating its weights instead of separating features
    (research/superposition.md, design note; we measured exactly that before normalising).
    z: [instances, batch, units]."""
    rms = z.detach().pow(2).mean(1, keepdim=True).sqrt().clamp_min(1e-6)
    s = torch.sigmoid(z / (tau * rms))
    return (s * (1 - s)).flatten(1).mean(1)


def _switching(u: torch.Tensor, tau: float) -> torch.Tensor:
    """mean_u s(1 - s), s = sigmoid(u / tau), for a per-unit centred and scaled u."""
    s = torch.sigmoid(u / tau)
    return (s * (1 - s)).flatten(1).mean(1)


def two_level_split(z: torch.Tensor, iters: int = 5) -> tuple[torch.Tensor, torch.Tensor,
                                                              torch.Tensor]:
    """Per unit, the best two-level summary of its values over the batch (dim 1): 1-D 2-means
    (Lloyd's iterations from the mean; for one dimension the same split as Otsu's threshold,
    Otsu 1979). Returns (lo, hi, on): the two cluster means [I, 1, m] and which values sit in
    the upper cluster [I, batch, m]. An empty cluster takes the threshold as its mean. No
    gradient (the statistics are held constant, as the penalty's scale is)."""
    z = z.detach()
    t = z.mean(1, keepdim=True)
    for _ in range(iters):
        on = z > t
        n_on = on.sum(1, keepdim=True)
        n_off = z.shape[1] - n_on
        hi = torch.where(n_on > 0, (z * on).sum(1, keepdim=True) / n_on.clamp_min(1), t)
        lo = torch.where(n_off > 0, (z * ~on).sum(1, keepdim=True) / n_off.clamp_min(1), t)
        t = (hi + lo) / 2
    return lo, hi, z > t


def bimodal_split(z: torch.Tensor, tau: float, floor: float = 1e-2) -> torch.Tensor:
    """A penalty that rewards switching, not saturation (issue 16): u = (z - t_u) / g_u, with
    t_u the midpoint of the unit's two-level split over the batch (:func:`two_level_split`)
    and g_u = max(half the gap between its two levels, floor), both held constant (detached);
    R = mean_u s(1 - s), s = sigmoid(u / tau).

    A unit whose pre-activations sit at two levels, in any proportion (a rarely firing sparse
    unit too), scores s(1-s) at |u| = 1, 0.018 at tau = 0.25; values spread between the levels
    score up to 1/4. A constant unit (always off or always on: the degenerate minimum of
    :func:`bimodal_sigmoid`) has u = 0 and scores the maximum 1/4, a stationary point that is
    a maximum, never a minimum. The absolute ``floor`` keeps a two-level jitter around a
    constant from counting as switching. Cluster means, not the batch's min and max: a
    min-max scale is set by the rare inputs with several features present, and we measured
    that it leaves the bulk of the activations in between. z: [instances, batch, units], the
    hidden activation (activation_penalty passes act(z), not the pre-activation: two negative
    pre-activation levels are a dead ReLU unit, constant after it, so they score the maximum
    too; tested)."""
    lo, hi, _ = two_level_split(z)
    return _switching((z - (hi + lo) / 2) / ((hi - lo) / 2).clamp_min(floor), tau)


def bimodal_standardised(z: torch.Tensor, tau: float, floor: float = 1e-2) -> torch.Tensor:
    """The switching penalty on the unit's standardised pre-activation: u = (z - mean_b z) /
    max(std_b z, floor) (detached statistics), R = mean_u s(1 - s), s = sigmoid(u / tau).
    Constant units score the maximum 1/4, as in :func:`bimodal_split`; unlike it, a two-level
    unit scores least when it is on for half the inputs (its off level sits at u =
    -sqrt(q / (1 - q)) for an on-fraction q), so it also pushes against sparse firing."""
    zd = z.detach()
    return _switching((z - zd.mean(1, keepdim=True)) / zd.std(1, keepdim=True)
                      .clamp_min(floor), tau)


def bimodal_nearest(a: torch.Tensor, c: float) -> torch.Tensor:
    """R = mean_u min(a_u, |a_u - c|)^2 on post-ReLU activations: squared distance to the
    nearest of the two levels {0, c}, so an activation is either off or at level c."""
    return torch.minimum(a.abs(), (a - c).abs()).pow(2).flatten(1).mean(1)


def l1_activation(a: torch.Tensor) -> torch.Tensor:
    """R = mean_u |a_u| (activation sparsity; Bricken et al. 2023 use the same on SAE features)."""
    return a.abs().flatten(1).mean(1)


def activation_penalty(kind: str, z: torch.Tensor, a: torch.Tensor, tau: float = 1.0,
                       level: float = 1.0) -> torch.Tensor:
    """Per-instance penalty [instances] of pre-activations z and activations a, both shaped
    [instances, batch, units]."""
    if kind == "none":
        return z.new_zeros(z.shape[0])
    if kind == "l1":
        return l1_activation(a)
    if kind == "bimodal_sigmoid":
        return bimodal_sigmoid(z, tau)
    if kind == "bimodal_nearest":
        return bimodal_nearest(a, level)
    if kind == "bimodal_split":           # on the activation: a dead ReLU unit is constant
        return bimodal_split(a, tau)
    if kind == "bimodal_standardised":
        return bimodal_standardised(a, tau)
    raise ValueError(f"unknown penalty {kind!r}; expected one of {PENALTIES}")


def penalty_weight(lam: torch.Tensor, step: int, steps: int,
                   anneal_frac: float | torch.Tensor) -> torch.Tensor:
    """lambda_t = lambda * min(1, t / (anneal_frac * steps)): a linear ramp over the first
    ``anneal_frac`` of training (0 = full strength from the first step); ``anneal_frac`` may
    be one value per instance."""
    if isinstance(anneal_frac, torch.Tensor):
        ramp = (step / (anneal_frac * steps).clamp_min(1e-12)).clamp(max=1.0)
        return lam * torch.where(anneal_frac > 0, ramp, torch.ones_like(ramp))
    if anneal_frac <= 0:
        return lam
    return lam * min(1.0, step / (anneal_frac * steps))
