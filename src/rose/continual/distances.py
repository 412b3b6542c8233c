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

from rose.nn import StackedNet

DISTANCES = ("euclidean", "fisher", "ldifs", "kl", "cka")
EPS = 1e-10


def euclidean(theta: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """||theta - theta_ref|| per instance (rows of [I, P])."""
    return torch.sqrt(((theta - ref) ** 2).sum(-1) + EPS ** 2)


def fisher_distance(theta: torch.Tensor, ref: torch.Tensor, fisher: torch.Tensor
                    ) -> torch.Tensor:
    return torch.sqrt((fisher * (theta - ref) ** 2).sum(-1) + EPS ** 2)


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


def centred_gram(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """K = Xc Xc^T [I, B, B] (Xc centred over the batch) and ||K||_F [I]."""
    Xc = X - X.mean(1, keepdim=True)
    K = torch.bmm(Xc, Xc.transpose(1, 2))
    return K, torch.linalg.matrix_norm(K)


def cka_to_gram(X: torch.Tensor, K_ref: torch.Tensor, norm_ref: torch.Tensor) -> torch.Tensor:
    """1 - linear CKA against a fixed reference's centred Gram matrix: the same value as
    ``cka`` (||Y^T X||_F^2 = <X X^T, Y Y^T>_F and ||X^T X||_F = ||X X^T||_F, Kornblith et al.
    2019, eq. 3 / sec. 3), one [B, B] product per call instead of three [p, p] ones, the
    reference's half computed once per batch (the line search calls this ~10 times)."""
    K, norm = centred_gram(X)
    return 1.0 - (K * K_ref).sum((1, 2)) / (norm * norm_ref + EPS)


def empirical_fisher(net: StackedNet, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor
                     ) -> torch.Tensor:
    """Diagonal empirical Fisher [I, P], mean over the batch of squared per-example gradients
    of CE, for every weight and bias, in one backward pass: with delta_n = dL_n/dz_l (the
    gradient of the summed loss w.r.t. a layer's pre-activations is per example), the
    per-example weight gradient is h_n delta_n^T, so mean_n of its square is
    (h^2)^T (delta^2) / B, [in, out] as theta stores a linear weight."""
    with torch.enable_grad():
        logits, hidden = net.forward(theta.detach().requires_grad_(), x)
        zs = [z for z, _ in hidden] + [logits]
        loss = F.cross_entropy(logits.transpose(1, 2), y, reduction="sum")
        deltas = torch.autograd.grad(loss, zs)
    inputs = [x] + [a.detach() for _, a in hidden]
    B = x.shape[1]
    parts = []
    for h, d in zip(inputs, deltas, strict=True):
        parts.append((torch.bmm((h ** 2).transpose(1, 2), d ** 2) / B).flatten(1))
        parts.append((d ** 2).mean(1))
    return torch.cat(parts, -1)


def corrected_fisher(ema: torch.Tensor, n: int, decay: float) -> torch.Tensor:
    """The running Fisher with Adam's bias correction (Kingma & Ba 2015, alg. 1): the EMA
    F_n = decay F_{n-1} + (1 - decay) F_batch started at zero is (1 - decay^n) times the
    decay-weighted mean of the n batch Fishers; dividing by (1 - decay^n) gives that mean.
    Uncorrected, the Fisher ball after n batches is 1 / sqrt(1 - decay^n) times wider than its
    nominal radius (10x at n = 1 with decay 0.99)."""
    if n < 1:
        raise ValueError("the running Fisher has seen no batch")
    return ema / (1 - decay ** n)


class Reference:
    """theta_ref and what the distances need of it on one batch (computed once, no grad)."""

    def __init__(self, net: StackedNet, theta: torch.Tensor, x: torch.Tensor,
                 fisher: torch.Tensor | None = None):
        self.net = net
        self.theta = theta.detach().clone()
        with torch.no_grad():
            logits, hidden = net.forward(self.theta, x)
        self.logits = logits
        self.taps = [a for _, a in hidden]
        self.x = x
        self.fisher = fisher
        self._gram = None

    def distance(self, name: str) -> Callable[[torch.Tensor], torch.Tensor]:
        """d(theta) [I] for this reference and batch; theta [I, P] or its parameter tensors
        (the feature distances run the network, the norms need the flat theta)."""
        if name not in DISTANCES:
            raise ValueError(f"unknown distance {name!r}; expected one of {DISTANCES}")
        if name == "euclidean":
            return lambda th: euclidean(_flat(th), self.theta)
        if name == "fisher":
            if self.fisher is None:
                raise ValueError("the fisher distance needs a Fisher estimate")
            return lambda th: fisher_distance(_flat(th), self.theta, self.fisher)

        def feature_distance(th) -> torch.Tensor:
            logits, hidden = self.net.forward(th, self.x)
            taps = [a for _, a in hidden]
            if name == "ldifs":
                return ldifs(taps, self.taps)
            if name == "kl":
                return kl(logits, self.logits)
            if self._gram is None:
                self._gram = centred_gram(self.taps[-1])
            return cka_to_gram(taps[-1], *self._gram)
        return feature_distance


def _flat(th) -> torch.Tensor:
    """theta [I, P] from theta or its parameter tensors [I, *shape] (differentiably)."""
    if isinstance(th, torch.Tensor):
        return th
    return torch.cat([p.reshape(p.shape[0], -1) for p in th], -1)
