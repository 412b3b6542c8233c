"""Group-robust training baselines on the whole pool: GroupDRO (oracle groups) and JTT.

GroupDRO (Sagawa et al., ICLR 2020, online algorithm 1): with the batch's mean loss L_g per group,
    q_g <- q_g exp(eta L_g), q <- q / sum q,    minimise sum_g q_g L_g.
Groups absent from a batch have L_g = 0 and keep their weight before renormalisation, as in the
authors' loss.py. Uniform minibatches (no group-balanced sampling).

JTT (Liu et al., ICML 2021, anniesch/jtt): train ERM for ``first_steps``; the error set E is the
training points it misclassifies; retrain from scratch with every point of E upsampled
``upsample`` times (here: sampling weight lambda_up instead of copies, the same distribution).
"""

from __future__ import annotations

import torch


class GroupDRO:
    """Stateful objective for :func:`rose.active.learner.train_instances`."""

    def __init__(self, groups: torch.Tensor, rows: torch.Tensor, n_groups: int, eta: float):
        self.groups, self.rows, self.n_groups, self.eta = groups, rows, n_groups, eta
        self.q = torch.full((len(rows), n_groups), 1.0 / n_groups, device=groups.device)

    def group_losses(self, loss: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """[I, B] per-example losses -> [I, G] mean loss per group (0 where absent)."""
        g = self.groups[self.rows, idx]
        sums = torch.zeros(len(loss), self.n_groups, device=loss.device).scatter_add(1, g, loss)
        counts = torch.zeros(len(loss), self.n_groups, device=loss.device).scatter_add(
            1, g, torch.ones_like(loss))
        return sums / counts.clamp(min=1)

    def __call__(self, loss: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        lg = self.group_losses(loss, idx)
        with torch.no_grad():
            self.q = self.q * torch.exp(self.eta * lg)
            self.q = self.q / self.q.sum(1, keepdim=True)
        return (self.q * lg).sum(1)


def jtt_weights(correct: torch.Tensor, upsample: float) -> torch.Tensor:
    """Sampling weights: ``upsample`` for the error set (misclassified), 1 elsewhere."""
    return torch.where(correct, 1.0, float(upsample))
