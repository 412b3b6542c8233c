"""The penalties that push hidden activations to be high or low (the activations themselves,
ReLU, SoLU and top-k, are rose.nn.activations).

Every penalty returns one value per model instance (mean over batch and units), so many
instances with different strengths train in one tensor. All are O(activations) per step.
"""

from __future__ import annotations

import torch

PENALTIES = ("none", "l1", "bimodal_sigmoid", "bimodal_nearest")
ACTIVATIONS = ("relu", "solu", "topk")   # the hidden activations this direction compares


def bimodal_sigmoid(z: torch.Tensor, tau: float) -> torch.Tensor:
    """R = mean_u s(1 - s), s = sigmoid(z_u / (tau * rms_u)): 0 when a unit is clearly off or
    clearly on, at most 1/4 at z = 0. rms_u is the unit's root-mean-square pre-activation over
    the batch, held constant (detached): ReLU outputs are unbounded, and a fixed scale lets the
    model satisfy the penalty by inflating its weights instead of separating features
    (research/superposition.md, design note; we measured exactly that before normalising).
    z: [instances, batch, units]."""
    rms = z.detach().pow(2).mean(1, keepdim=True).sqrt().clamp_min(1e-6)
    s = torch.sigmoid(z / (tau * rms))
    return (s * (1 - s)).flatten(1).mean(1)


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
    raise ValueError(f"unknown penalty {kind!r}; expected one of {PENALTIES}")


def penalty_weight(lam: torch.Tensor, step: int, steps: int, anneal_frac: float) -> torch.Tensor:
    """lambda_t = lambda * min(1, t / (anneal_frac * steps)): a linear ramp over the first
    ``anneal_frac`` of training (0 = full strength from the first step)."""
    if anneal_frac <= 0:
        return lam
    return lam * min(1.0, step / (anneal_frac * steps))
