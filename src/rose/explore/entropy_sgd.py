"""Entropy-SGD (Chaudhari et al., ICLR 2017; ucla-vision/entropy-sgd@61329f9, python/optim.py),
on the rows of a stacked theta [S, P]. One outer step runs L Langevin steps from w' = w, each on
a fresh minibatch:

    g' = grad L(w') + gamma (w' - w) + (eps / sqrt(0.5 eta')) N(0, I)      (Nesterov momentum)
    w' <- w' - eta' g';     mu <- beta1 mu + (1 - beta1) w'

then the outer optimizer (momentum SGD) steps with the "gradient" w - mu. Scoping:
gamma_t = gamma0 (1 + gamma1)^t over outer steps t. L gradient evaluations per outer step.
Reference MNIST settings: L = 20, gamma0 = 1e-4, gamma1 = 1e-3, eps = 1e-4, beta1 = 0.75.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from rose.measure.landscape import random_rows


def entropy_sgd_direction(theta: torch.Tensor, grad: Callable[[torch.Tensor],
                          tuple[torch.Tensor, torch.Tensor]], t: int, langevin_steps: int = 20,
                          inner_lr: float = 0.1, gamma0: float = 1e-4, gamma1: float = 1e-3,
                          noise: float = 1e-4, beta1: float = 0.75, inner_momentum: float = 0.9,
                          weight_decay: float = 0.0, generator: torch.Generator | None = None,
                          rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean minibatch loss over the Langevin steps [S], outer direction w - mu [S, P]).
    ``grad(w')`` draws a fresh minibatch on every call. ``rows`` [S] (each row's seed index)
    shares the Langevin noise among the rows of one seed (grid points stay paired)."""
    with torch.no_grad():
        gamma = gamma0 * (1 + gamma1) ** t
        w_in = theta.clone()
        mu = theta.clone()
        buf = torch.zeros_like(theta)
        losses = []
        for _ in range(langevin_steps):
            loss, g = grad(w_in)
            losses.append(loss)
            g = g + weight_decay * w_in + gamma * (w_in - theta)
            if noise > 0:
                g = g + noise / (0.5 * inner_lr) ** 0.5 * random_rows(
                    theta.shape, generator, theta.device, rows)
            buf.mul_(inner_momentum).add_(g)
            g = g + inner_momentum * buf                   # Nesterov
            w_in.sub_(inner_lr * g)
            mu.mul_(beta1).add_((1 - beta1) * w_in)
        return torch.stack(losses).mean(0), theta - mu
