"""The regularising baselines' penalties (research notes, section 5), one value per instance
[I] of a stacked model (weights theta [I, P]), and the replay memory.

ewc_penalty        lam / 2 sum_i F*_i (theta_i - theta*_i)^2            (Kirkpatrick et al. 2017)
consolidate_fisher online EWC's F* <- gamma F* + F_task, F_task the mean empirical Fisher over
                   the task's batches                                    (Schwarz et al. 2018)
l2sp_penalty       lam ||theta - theta*||^2                              (Li et al. 2018)
lwf_penalty        lam T^2 mean_x KL(softmax(z_old / T) || softmax(z / T))   (Li & Hoiem 2017)
ldifs_penalty      lam LDIFS(features, features of theta*)               (Mukhoti et al. 2023)
reservoir          reservoir sampling into a fixed memory                (Vitter 1985, alg. R)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rose.continual.distances import ldifs


def ewc_penalty(theta: torch.Tensor, anchor: torch.Tensor, fisher: torch.Tensor,
                lam: torch.Tensor) -> torch.Tensor:
    return lam / 2 * (fisher * (theta - anchor) ** 2).sum(-1)


def consolidate_fisher(f_star: torch.Tensor, task_sum: torch.Tensor, task_batches: int,
                       gamma: torch.Tensor) -> torch.Tensor:
    """F* after a task boundary: gamma F* + (sum of the task's batch Fishers) / batches."""
    return gamma[:, None] * f_star + task_sum / max(task_batches, 1)


def l2sp_penalty(theta: torch.Tensor, anchor: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    return lam * ((theta - anchor) ** 2).sum(-1)


def lwf_penalty(logits: torch.Tensor, old_logits: torch.Tensor, lam: torch.Tensor,
                temperature: float) -> torch.Tensor:
    """logits, old_logits [I, B, C]: distillation towards the old model's softened outputs."""
    T = temperature
    kl = F.kl_div(F.log_softmax(logits / T, -1), F.log_softmax(old_logits / T, -1),
                  log_target=True, reduction="none").sum(-1).mean(-1)
    return lam * T ** 2 * kl


def ldifs_penalty(taps: list[torch.Tensor], anchor_taps: list[torch.Tensor],
                  lam: torch.Tensor) -> torch.Tensor:
    return lam * ldifs(taps, anchor_taps)


def reservoir(mem_x: torch.Tensor, mem_y: torch.Tensor, n_seen: torch.Tensor,
              cap: torch.Tensor, xb: torch.Tensor, yb: torch.Tensor,
              g: torch.Generator) -> None:
    """Algorithm R per instance, in place: sample number n (1-based) is stored if
    n <= capacity, else replaces slot j ~ U{0, n - 1} when j < capacity, so every sample seen so
    far is in memory with probability capacity / n."""
    for i in range(xb.shape[1]):
        n_seen += 1
        j = (torch.rand(len(n_seen), generator=g, device=n_seen.device) * n_seen).long()
        slot = torch.where(n_seen <= cap, n_seen - 1, j)
        keep = (slot < cap) & (cap > 0)
        rows = torch.nonzero(keep).squeeze(1)
        mem_x[rows, slot[rows]] = xb[rows, i]
        mem_y[rows, slot[rows]] = yb[rows, i]
