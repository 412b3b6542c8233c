"""Group-robust training baselines on the whole pool: GroupDRO (oracle groups) and JTT.

GroupDRO (Sagawa et al., ICLR 2020, online algorithm 1): with the batch's mean loss L_g per group,
    q_g <- q_g exp(eta L_g), q <- q / sum q,    minimise sum_g q_g L_g.
Groups absent from a batch have L_g = 0 and keep their weight before renormalisation, as in the
authors' loss.py. Uniform minibatches (no group-balanced sampling).

IRMv1 (Arjovsky et al. 2019, the authors' colored_mnist/main.py): with R_e the batch's mean
cross-entropy in training environment e and z the logits,
    minimise mean_e R_e + lambda sum_e (d/dw R_e(w z) at w = 1)^2,
where d/dw CE(w z, y) at w = 1 = sum_c (softmax(z)_c - 1[c = y]) z_c (closed form of the
authors' autograd on a dummy scale; tested against it).

V-REx (Krueger et al., ICML 2021): minimise mean_e R_e + beta Var_e(R_e), the population
variance of the environments' risks.

JTT (Liu et al., ICML 2021, anniesch/jtt): train ERM for ``first_steps``; the error set E is the
training points it misclassifies; retrain from scratch with every point of E upsampled
``upsample`` times (here: sampling weight lambda_up instead of copies, the same distribution).
"""

from __future__ import annotations

import torch


def means_by(v: torch.Tensor, label: torch.Tensor, n: int) -> torch.Tensor:
    """[I, B] per-example values and their labels in 0..n-1 -> [I, n] the mean per label (0
    where a label is absent from the batch): GroupDRO's group losses, IRM/V-REx's risks."""
    sums = torch.zeros(len(v), n, device=v.device).scatter_add(1, label, v)
    counts = torch.zeros(len(v), n, device=v.device).scatter_add(1, label, torch.ones_like(v))
    return sums / counts.clamp(min=1)


class GroupDRO:
    """Stateful objective for :func:`rose.active.learner.train_instances`."""

    def __init__(self, groups: torch.Tensor, rows: torch.Tensor, n_groups: int, eta: float):
        self.groups, self.rows, self.n_groups, self.eta = groups, rows, n_groups, eta
        self.q = torch.full((len(rows), n_groups), 1.0 / n_groups, device=groups.device)

    def group_losses(self, loss: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """[I, B] per-example losses -> [I, G] mean loss per group (0 where absent)."""
        return means_by(loss, self.groups[self.rows, idx], self.n_groups)

    def __call__(self, loss: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        lg = self.group_losses(loss, idx)
        with torch.no_grad():
            self.q = self.q * torch.exp(self.eta * lg)
            self.q = self.q / self.q.sum(1, keepdim=True)
        return (self.q * lg).sum(1)


class _Environments:
    """Per-environment mean losses of a batch: envs [seeds, n] is each pool point's training
    environment, rows [I, 1] each instance's seed."""

    uses_logits = False

    def __init__(self, envs: torch.Tensor, rows: torch.Tensor, n_envs: int, weight: float):
        self.envs, self.rows, self.n_envs, self.weight = envs, rows, n_envs, weight

    def env_means(self, v: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """[I, B] per-example values -> [I, E] their mean per environment (0 where absent)."""
        return means_by(v, self.envs[self.rows, idx], self.n_envs)


class VREx(_Environments):
    """V-REx objective: mean_e R_e + beta Var_e(R_e) per instance."""

    def __call__(self, loss: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        r = self.env_means(loss, idx)
        return r.mean(1) + self.weight * r.var(1, unbiased=False)


class IRMv1(_Environments):
    """IRMv1 objective: mean_e R_e + lambda sum_e g_e^2, g_e = the environment's mean of
    sum_c (softmax(z)_c - 1[c = y]) z_c (the gradient of its risk w.r.t. a scale on z at 1)."""

    uses_logits = True

    def __call__(self, loss: torch.Tensor, idx: torch.Tensor, logits: torch.Tensor,
                 y: torch.Tensor) -> torch.Tensor:
        g = ((torch.softmax(logits, -1) - torch.nn.functional.one_hot(
            y, logits.shape[-1]).to(logits.dtype)) * logits).sum(-1)
        return self.env_means(loss, idx).mean(1) + self.weight * (
            self.env_means(g, idx) ** 2).sum(1)


def jtt_weights(correct: torch.Tensor, upsample: float) -> torch.Tensor:
    """Sampling weights: ``upsample`` for the error set (misclassified), 1 elsewhere."""
    return torch.where(correct, 1.0, float(upsample))
