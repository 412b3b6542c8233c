"""Gradient norm aware minimisation, accelerated (GAM; Zhang et al., CVPR 2023, Algorithm 2;
xxgege/GAM@3b5c7eb, gam/gam.py), on the rows of a stacked theta [S, P] (one model per row):

    g0 = grad L(th);            g1 = grad L(th + rho' g0/||g0||)
    h0 = g1 - g0                (finite-difference estimate of grad ||grad L||, up to scale)
    th2 = th + rho h0/||h0||;   g2 = grad L(th2);   g3 = grad L(th2 + rho' g2/||g2||)
    h+ = b1 g1 + b3 g3;         h- = g0 + |b2| g2
    direction = h+ - gamma (h- - (h-.h+ / ||h+||^2) h+)      (h-'s part orthogonal to h+)

then the base optimizer's step at th with that direction. Four gradient evaluations per step.
Code defaults: rho' (grad_rho) 0.02, rho (grad_norm_rho) 0.2, gamma 0.03, b1 = b3 = 1, b2 = -1.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

EPS = 1e-12
Grad = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _unit(g: torch.Tensor) -> torch.Tensor:
    return g / (g.norm(dim=-1, keepdim=True) + EPS)


def gam_direction(theta: torch.Tensor, grad: Grad, grad_rho: float = 0.02,
                  grad_norm_rho: float = 0.2, gamma: float = 0.03, beta1: float = 1.0,
                  beta2: float = -1.0, beta3: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(losses at theta [S], GAM's update direction [S, P]); ``grad(theta)`` returns (losses,
    gradients) on the current minibatch."""
    with torch.no_grad():
        loss, g0 = grad(theta)
        _, g1 = grad(theta + grad_rho * _unit(g0))
        th2 = theta + grad_norm_rho * _unit(g1 - g0)
        _, g2 = grad(th2)
        _, g3 = grad(th2 + grad_rho * _unit(g2))
        h_plus = beta1 * g1 + beta3 * g3
        h_minus = g0 + abs(beta2) * g2
        coef = (h_minus * h_plus).sum(-1, keepdim=True) / ((h_plus * h_plus).sum(-1, keepdim=True)
                                                           + EPS)
        return loss, h_plus - gamma * (h_minus - coef * h_plus)
