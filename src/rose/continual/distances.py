"""Distances d(theta, theta_ref) between a batched model and its reference, one value per
instance ([instances] tensors), each differentiable in theta (for penalties and dual ascent).

euclidean  ||theta - theta_ref||_2 over all weights and biases            (L2-SP, Li et al. 2018)
fisher     sqrt(sum_i F_i (theta_i - theta_ref,i)^2), F a diagonal empirical Fisher
                                                                         (EWC, Kirkpatrick 2017)
ldifs      mean over hidden layers l of mean over the batch of mean over units of
           (phi_l / ||phi_l|| - phi_l,ref / ||phi_l,ref||)^2, phi_l the layer's activations
           (Mukhoti et al. 2023, loss/ldifs.py: unit-normalised taps, squared difference,
           averaged over taps; we normalise each example's feature vector over units, where the
           ViT code normalises over tokens)
kl         mean over the batch of KL(p_ref(.|x) || p_theta(.|x))        (trust region, TRPO)
cka        1 - linear CKA between last-hidden-layer features of theta and theta_ref on the batch,
           CKA = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F), X, Y centred over the batch
                                                                        (Kornblith et al. 2019)
The feature distances are measured on the current batch (plus replay, where used).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from rose.superposition.shortcut import BatchedMLP

DISTANCES = ("euclidean", "fisher", "ldifs", "kl", "cka")
EPS = 1e-10


def _sq_diff(params: list[torch.Tensor], ref: list[torch.Tensor],
             weight: list[torch.Tensor] | None = None) -> torch.Tensor:
    total = 0.0
    for i, (p, r) in enumerate(zip(params, ref, strict=True)):
        sq = (p - r) ** 2
        if weight is not None:
            sq = sq * weight[i]
        total = total + sq.flatten(1).sum(1)
    return total


def euclidean(params: list[torch.Tensor], ref: list[torch.Tensor]) -> torch.Tensor:
    return torch.sqrt(_sq_diff(params, ref) + EPS ** 2)


def fisher_distance(params: list[torch.Tensor], ref: list[torch.Tensor],
                    fisher: list[torch.Tensor]) -> torch.Tensor:
    return torch.sqrt(_sq_diff(params, ref, fisher) + EPS ** 2)


def _unit(phi: torch.Tensor) -> torch.Tensor:
    return phi / (phi.norm(dim=-1, keepdim=True) + EPS)


def ldifs(taps: list[torch.Tensor], ref_taps: list[torch.Tensor]) -> torch.Tensor:
    """taps: per hidden layer [I, B, units]."""
    per_layer = [((_unit(a) - _unit(r)) ** 2).mean(-1).mean(-1)
                 for a, r in zip(taps, ref_taps, strict=True)]
    return torch.stack(per_layer).mean(0)


def kl(logits: torch.Tensor, ref_logits: torch.Tensor) -> torch.Tensor:
    """mean_x KL(p_ref || p_theta); logits [I, B, C]."""
    lp_ref = F.log_softmax(ref_logits, -1)
    return (lp_ref.exp() * (lp_ref - F.log_softmax(logits, -1))).sum(-1).mean(-1)


def linear_cka(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """[I, B, p], [I, B, q] -> [I]."""
    X = X - X.mean(1, keepdim=True)
    Y = Y - Y.mean(1, keepdim=True)
    cross = (torch.bmm(Y.transpose(1, 2), X) ** 2).sum((1, 2))
    nx = torch.linalg.matrix_norm(torch.bmm(X.transpose(1, 2), X))
    ny = torch.linalg.matrix_norm(torch.bmm(Y.transpose(1, 2), Y))
    return cross / (nx * ny + EPS)


def cka(taps: list[torch.Tensor], ref_taps: list[torch.Tensor]) -> torch.Tensor:
    return 1.0 - linear_cka(taps[-1], ref_taps[-1])


def empirical_fisher(model: BatchedMLP, x: torch.Tensor, y: torch.Tensor
                     ) -> list[torch.Tensor]:
    """Diagonal empirical Fisher, mean over the batch of squared per-example gradients of CE,
    for every weight and bias, in one backward pass: with delta_n = dL_n/dz_l (the gradient of
    the summed loss w.r.t. a layer's pre-activations is per example), the per-example weight
    gradient is h_n delta_n^T, so mean_n of its square is (h^2)^T (delta^2) / B."""
    params = [p.detach().requires_grad_() for p in model.parameters()]
    m = BatchedMLP(params[:len(model.weights)], params[len(model.weights):],
                   model.activation, model.topk)
    logits, hidden = m.forward(x)
    zs = [z for z, _ in hidden] + [logits]
    inputs = [x] + [a for _, a in hidden]
    loss = F.cross_entropy(logits.transpose(1, 2), y, reduction="sum")
    deltas = torch.autograd.grad(loss, zs)
    B = x.shape[1]
    fw = [torch.bmm((h.detach() ** 2).transpose(1, 2), d ** 2) / B
          for h, d in zip(inputs, deltas, strict=True)]
    fb = [(d ** 2).mean(1, keepdim=True) for d in deltas]
    return fw + fb


class Reference:
    """theta_ref and what the distances need of it on one batch (computed once, no grad)."""

    def __init__(self, model: BatchedMLP, x: torch.Tensor,
                 fisher: list[torch.Tensor] | None = None):
        self.params = [p.detach().clone() for p in model.parameters()]
        with torch.no_grad():
            logits, hidden = model.forward(x)
        self.logits = logits
        self.taps = [a for _, a in hidden]
        self.x = x
        self.fisher = fisher

    def distance(self, name: str) -> Callable[[BatchedMLP], torch.Tensor]:
        """d(model) for this reference and batch."""
        if name not in DISTANCES:
            raise ValueError(f"unknown distance {name!r}; expected one of {DISTANCES}")
        if name == "euclidean":
            return lambda m: euclidean(m.parameters(), self.params)
        if name == "fisher":
            if self.fisher is None:
                raise ValueError("the fisher distance needs a Fisher estimate")
            return lambda m: fisher_distance(m.parameters(), self.params, self.fisher)

        def feature_distance(m: BatchedMLP) -> torch.Tensor:
            logits, hidden = m.forward(self.x)
            taps = [a for _, a in hidden]
            if name == "ldifs":
                return ldifs(taps, self.taps)
            if name == "kl":
                return kl(logits, self.logits)
            return cka(taps, self.taps)
        return feature_distance
