"""Sharpness measures that survive reparametrisation (Dinh et al. 2017), for stacked models
(theta [S, P], one model per row).

sigma_prime
    Magnitude-aware PAC-Bayes flatness (Jiang et al. 2020, "Fantastic generalization measures";
    nitarshan/robust-generalization-measures@8e90129, measures.py): the largest sigma' such
    that weights perturbed by N(0, sigma'^2 w^2 + eps^2) lose at most ``target_drop`` training
    accuracy, by bisection on [0, 2] (15 steps, 10 Monte-Carlo samples, eps = 1e-3). The noise's
    standard deviation is sqrt(sigma'^2 w^2 + eps^2) (that repository passes a variance-like
    quantity as torch.normal's std: research notes, pitfall 6). Larger = flatter; the measure
    the paper correlates is 1 / sigma'^2.
adaptive_sharpness
    Adaptive m-sharpness (Kwon et al. 2021; Andriushchenko et al. 2023): the mean over chunks
    of m examples of max_{||T^-1 eps||_2 <= rho} L_chunk(w + eps) - L_chunk(w), T = diag(|w|)
    + eta on weight matrices and T = 1 on biases (as ASAM), the max by projected normalised
    gradient ascent in delta = T^-1 eps.
"""

from __future__ import annotations

import torch

from rose.device import generator
from rose.nn import StackedNet


def sigma_prime(net: StackedNet, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor,
                target_drop: float = 0.1, steps: int = 15, samples: int = 10,
                upper: float = 2.0, eps: float = 1e-3, seed: int = 0) -> torch.Tensor:
    """sigma' per row [S] on the shared set (X, y) (labels as trained on)."""
    with torch.no_grad():
        g = generator(seed, theta.device)
        _, base = net.evaluate(theta, X, y)
        lo = torch.zeros(theta.shape[0], device=theta.device)
        hi = torch.full((theta.shape[0],), upper, device=theta.device)
        for _ in range(steps):
            mid = (lo + hi) / 2
            std = torch.sqrt(mid[:, None] ** 2 * theta ** 2 + eps ** 2)
            acc = torch.stack([net.evaluate(theta + std * torch.randn(
                theta.shape, generator=g, device=theta.device), X, y)[1]
                for _ in range(samples)]).mean(0)
            ok = base - acc <= target_drop
            lo = torch.where(ok, mid, lo)
            hi = torch.where(ok, hi, mid)
        return (lo + hi) / 2


def _scale(net: StackedNet, theta: torch.Tensor, eta: float) -> torch.Tensor:
    """T = |w| + eta on weight matrices / kernels, 1 on biases (ASAM's T_w)."""
    return torch.where(net.weight_mask(theta.device), theta.abs() + eta,
                       torch.ones_like(theta))


def adaptive_sharpness(net: StackedNet, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor,
                       rho: float = 0.5, m: int = 128, steps: int = 10, eta: float = 0.01,
                       ) -> torch.Tensor:
    """Adaptive m-sharpness per row [S] on the shared set (X, y) (y [N] or [S, N])."""
    T = _scale(net, theta, eta)
    out = torch.zeros(theta.shape[0], device=theta.device)
    chunks = 0
    step = 2.5 * rho / steps                          # as APGD's initial step, then projected
    for i in range(0, len(X) - m + 1, m):
        x, yy = X[i:i + m], y[..., i:i + m]
        base, g = net.grad(theta, x, yy, shared=True)
        delta = torch.zeros_like(theta)
        best = base.clone()
        for _ in range(steps):
            tg = T * g
            delta = delta + step * tg / (tg.norm(dim=-1, keepdim=True) + 1e-12)
            n = delta.norm(dim=-1, keepdim=True)
            delta = delta * torch.clamp(rho / (n + 1e-12), max=1.0)
            loss, g = net.grad(theta + T * delta, x, yy, shared=True)
            best = torch.maximum(best, loss)
        out += best - base
        chunks += 1
    return out / max(chunks, 1)
