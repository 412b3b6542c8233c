"""Radius controllers: how r changes from batch to batch (vectorised over instances).

fixed        r stays at its initial value.
ratio        trust-region ratio test (Nocedal & Wright 2006, Alg. 4.1), made prequential: the
             K steps train on the whole batch t; the check is the next batch t + 1, before
             the model trains on it (Gama et al. 2013), so no sample is held out of training:
             rho = (L_{t+1}(theta_ref) - L_{t+1}(theta)) / (L_t(theta_ref) - L_t(theta)),
             the actual decrease on unseen data over the decrease on the batch fitted.
             r <- r / 2 if rho < shrink_below (1/4 in Nocedal & Wright); r <- 2 r if
             rho > grow_above (3/4) and the constraint was active (alpha < 1); else unchanged.
             The thresholds are config; the validation stream tunes the start radius r0.
prequential  test-then-train (Gama et al. 2013): before training on batch t + 1, compare the
             loss on it of the model after batch t with the model before batch t; if the last
             update helped on unseen data r <- up r, else r <- down r.
dual         Lagrangian dual ascent on (d / r)^2 <= 1 (the same ball): the K steps minimise
             L + lambda (d / r)^2, then lambda <- max(0, lambda + eta (d / r - 1)) (d measured
             before the projection, which still enforces the ball; Boyd & Vandenberghe 2004,
             ch. 5). r is fixed; lambda is logged.
Every adaptive r is clipped to [r0 / 8, 8 r0] (three halvings or doublings of its start;
config ``controllers.r_range``), so a controller can adapt but not switch learning off.
"""

from __future__ import annotations

import torch

CONTROLLERS = ("fixed", "ratio", "prequential", "dual")


def ratio_update(r: torch.Tensor, rho: torch.Tensor, active: torch.Tensor, r_min,
                 r_max, shrink_below: float = 0.25, grow_above: float = 0.75
                 ) -> torch.Tensor:
    r = torch.where(rho < shrink_below, r / 2,
                    torch.where((rho > grow_above) & active, 2 * r, r))
    return r.clamp(r_min, r_max)


def prequential_update(r: torch.Tensor, helped: torch.Tensor, up: float, down: float,
                       r_min, r_max) -> torch.Tensor:
    return torch.where(helped, r * up, r * down).clamp(r_min, r_max)


def dual_update(lam: torch.Tensor, d: torch.Tensor, r: torch.Tensor, eta: float,
                lam_max: torch.Tensor | float = float("inf")) -> torch.Tensor:
    """lam_max: plain SGD with step lr on lambda (d / r)^2 (curvature 2 lambda / r^2 for the
    Euclidean d) is stable only for lambda < r^2 / lr; the learner caps lambda at half that."""
    return torch.minimum((lam + eta * (d / r - 1.0)).clamp(min=0.0),
                         torch.as_tensor(lam_max))
