"""Group-robust training baselines on the whole pool: GroupDRO (oracle groups) and JTT.

GroupDRO (Sagawa et al., ICLR 2020, online algorithm 1): with the batch's mean loss L_g per group,
    q_g <- q_g exp(eta L_g), q <- q / sum q,    minimise sum_g q_g L_g.
Groups absent from a batch have L_g = 0 and keep their weight before renormalisation, as in the
authors' loss.py. Sagawa et al. need three things beside the objective for it to beat ERM on
worst-group accuracy: group-balanced minibatches (``balanced_weights``: every group drawn
equally often), strong L2 and early stopping (rose.active.curriculum tunes both on validation).

IRMv1 and V-REx anneal their penalty as in the authors' code (IRM colored_mnist/main.py, which
V-REx's code follows): weight 1 for the first ``anneal`` steps, then lambda, and the whole loss
divided by the weight when it exceeds 1 (to keep the gradients in range):
    loss = (R + w P) / max(w, 1),   w = lambda if step >= anneal else 1.

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

    def __init__(self, groups: torch.Tensor, rows: torch.Tensor, n_groups: int,
                 eta: float | torch.Tensor):
        """eta: one step size, or one per instance [I] (a tuning grid stacked)."""
        self.groups, self.rows, self.n_groups = groups, rows, n_groups
        self.eta = torch.as_tensor(eta, dtype=torch.float32, device=groups.device).reshape(
            -1, 1)
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


def balanced_weights(groups: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Sampling weights [seeds, n] that draw every present group equally often: 1 / (size of
    the point's group) (Sagawa et al.'s reweighted sampling, the authors' ``--reweight_groups``)."""
    counts = torch.zeros(len(groups), n_groups, device=groups.device).scatter_add(
        1, groups, torch.ones_like(groups, dtype=torch.float32))
    return 1.0 / counts.gather(1, groups)


class _Environments:
    """Per-environment mean losses of a batch: envs [seeds, n] is each pool point's training
    environment, rows [I, 1] each instance's seed. ``weight`` and ``anneal`` are one value or
    one per instance [I]; every call is one training step."""

    uses_logits = False

    def __init__(self, envs: torch.Tensor, rows: torch.Tensor, n_envs: int,
                 weight: float | torch.Tensor, anneal: int | torch.Tensor = 0):
        self.envs, self.rows, self.n_envs = envs, rows, n_envs
        def as_t(v):
            return torch.as_tensor(v, dtype=torch.float32, device=envs.device).reshape(-1)
        self.weight, self.anneal = as_t(weight), as_t(anneal)
        self.step = 0

    def env_means(self, v: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """[I, B] per-example values -> [I, E] their mean per environment (0 where absent)."""
        return means_by(v, self.envs[self.rows, idx], self.n_envs)

    def combine(self, risk: torch.Tensor, penalty: torch.Tensor) -> torch.Tensor:
        """(R + w P) / max(w, 1), w = weight once ``anneal`` steps have passed, else 1."""
        w = torch.where(self.step >= self.anneal, self.weight, torch.ones_like(self.weight))
        self.step += 1
        return (risk + w * penalty) / w.clamp(min=1)


class VREx(_Environments):
    """V-REx objective: mean_e R_e + beta Var_e(R_e) per instance."""

    def __call__(self, loss: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        r = self.env_means(loss, idx)
        return self.combine(r.mean(1), r.var(1, unbiased=False))


class IRMv1(_Environments):
    """IRMv1 objective: mean_e R_e + lambda sum_e g_e^2, g_e = the environment's mean of
    sum_c (softmax(z)_c - 1[c = y]) z_c (the gradient of its risk w.r.t. a scale on z at 1)."""

    uses_logits = True

    def __call__(self, loss: torch.Tensor, idx: torch.Tensor, logits: torch.Tensor,
                 y: torch.Tensor) -> torch.Tensor:
        g = ((torch.softmax(logits, -1) - torch.nn.functional.one_hot(
            y, logits.shape[-1]).to(logits.dtype)) * logits).sum(-1)
        return self.combine(self.env_means(loss, idx).mean(1),
                            (self.env_means(g, idx) ** 2).sum(1))


def jtt_weights(correct: torch.Tensor, upsample: float | torch.Tensor) -> torch.Tensor:
    """Sampling weights: ``upsample`` (one value, or one per row [I]) for the error set
    (misclassified), 1 elsewhere."""
    up = torch.as_tensor(upsample, dtype=torch.float32, device=correct.device)
    if up.dim() == 1:
        up = up[:, None]
    return torch.where(correct, torch.ones_like(up), up).expand_as(correct).contiguous()
