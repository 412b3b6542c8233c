"""Per-instance hyperparameters for one optimiser over a stacked theta [I, P].

torch.optim takes one learning rate per parameter group, and a stacked model is one tensor.
For SGD (with momentum, Nesterov, weight decay), Adam, AdamW and RAdam the update is linear in
the learning rate given the optimiser's state (the moment buffers never see lr), so a step with
lr = 1 scaled row by row is a step with each row's own rate:

    theta_i <- theta_i + lr_i (step_{lr=1}(theta)_i - theta_i)

This lets a tuning grid of learning rates train as stacked instances. The same holds for
rose.explore.sam.SAM (GSAM, ASAM) over one of these: its ascent does not depend on lr and its
descent is its base optimiser's step. The rates may change between steps (``set_rates``: a
learning-rate warm-up per row multiplies them).
"""

from __future__ import annotations

import torch

LINEAR_IN_LR = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.RAdam)


class PerInstanceLR:
    """Wraps an optimiser built with lr = 1 over the single parameter ``theta`` [I, P]."""

    def __init__(self, optimizer: torch.optim.Optimizer, theta: torch.Tensor,
                 lr: torch.Tensor) -> None:
        base = getattr(optimizer, "base_optimizer", optimizer)      # SAM: its descent step
        if not isinstance(base, LINEAR_IN_LR):
            raise TypeError(f"{type(base).__name__}'s step is not linear in lr")
        if any(g["lr"] != 1.0 for g in optimizer.param_groups):
            raise ValueError("build the wrapped optimiser with lr=1.0")
        self.optimizer, self.theta = optimizer, theta
        self.set_rates(lr)

    def set_rates(self, lr: torch.Tensor) -> None:
        """Each row's learning rate for the following steps ([I] or [I, 1])."""
        self.lr = lr.reshape(-1, *([1] * (self.theta.dim() - 1)))

    def step(self, closure=None):
        """One step of the wrapped optimiser at lr = 1 (with ``closure`` if it needs one, as
        SAM does), then each row scaled to its own rate; returns what the step returned."""
        with torch.no_grad():
            before = self.theta.detach().clone()
            out = self.optimizer.step() if closure is None else self.optimizer.step(closure)
            self.theta.copy_(torch.lerp(before, self.theta, self.lr))
        return out

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state)
