"""One network per seed, trained side by side: S seeds' weights as the rows of one flat tensor
theta [S, P], and the network applied to each row with torch.func.vmap(functional_call).

Row s is seed s's whole parameter vector, so every per-model vector operation of this direction
(norms, the tangent projection of the contour walk, SAM's and GAM's normalised perturbations,
filter-normalised directions) is a row-wise operation, and one backward pass of sum_s L_s(theta_s)
gives every seed's gradient at once (the seeds do not interact). Elementwise torch optimizers
(SGD, Adam, RAdam) and swa_utils.AveragedModel act on theta directly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap


class StackedNet:
    """``template``'s architecture with S independent weight vectors.

    apply(theta, x)   x [S, B, ...] (one batch per seed) or [B, ...] (shared) -> [S, B, C]
    losses(theta, x, y)  mean cross-entropy per seed, [S]
    """

    def __init__(self, template: nn.Module) -> None:
        self.template = template
        named = [(n, p) for n, p in template.named_parameters()]
        self.names = [n for n, _ in named]
        self.shapes = [p.shape for _, p in named]
        self.sizes = [p.numel() for _, p in named]
        self.dim = sum(self.sizes)

        def one(theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            return functional_call(self.template, self.unflatten(theta), (x,))
        self._shared = vmap(one, in_dims=(0, None))
        self._per_seed = vmap(one, in_dims=(0, 0))

    def unflatten(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        """One seed's flat vector -> {parameter name: view}."""
        return {n: t.view(s) for n, t, s in
                zip(self.names, theta.split(self.sizes, dim=-1), self.shapes, strict=True)}

    def init(self, seeds: list[int], build: Callable[[], nn.Module]) -> torch.Tensor:
        """theta [S, P]: row s is ``build()``'s default initialisation under torch.manual_seed
        (seeds[s]), the same weights a single-model run with that seed starts from."""
        rows = []
        for s in seeds:
            torch.manual_seed(s)
            m = build()
            rows.append(torch.cat([p.detach().reshape(-1) for p in m.parameters()]))
        return torch.stack(rows)

    def losses(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
               shared: bool = False) -> torch.Tensor:
        """Mean cross-entropy per seed, [S]. ``shared``: x is one batch [B, ...] for all seeds
        (y [B]); otherwise x [S, B, ...] and y [S, B]."""
        out = self.apply(theta, x, shared)
        S, B, C = out.shape
        yy = y.expand(S, B) if y.dim() == 1 else y
        return F.cross_entropy(out.reshape(S * B, C), yy.reshape(-1),
                               reduction="none").view(S, B).mean(1)

    def apply(self, theta: torch.Tensor, x: torch.Tensor, shared: bool = False) -> torch.Tensor:
        """Logits [S, B, C] of every seed; x [S, B, ...], or [B, ...] with shared=True."""
        return (self._shared if shared else self._per_seed)(theta, x)

    def grad(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
             shared: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(losses [S], gradients [S, P]): one backward of sum_s L_s gives every row's own
        gradient, since L_s depends on row s only."""
        with torch.enable_grad():
            t = theta.detach().requires_grad_(True)
            losses = self.losses(t, x, y, shared)
            g, = torch.autograd.grad(losses.sum(), t)
        return losses.detach(), g

    def hvp(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
            shared: bool = False) -> Callable[[torch.Tensor], torch.Tensor]:
        """v [S, P] -> H_s v_s for every row: double backward on one cached gradient graph (the
        faster HVP on these CPUs, rose.measure.hessian.flat_hvp). The Hessian of sum_s L_s is
        block diagonal, so one product gives every seed's."""
        t = theta.detach().requires_grad_(True)
        with torch.enable_grad():
            g, = torch.autograd.grad(self.losses(t, x, y, shared).sum(), t, create_graph=True)

        def hv(v: torch.Tensor) -> torch.Tensor:
            out, = torch.autograd.grad(g, t, grad_outputs=v, retain_graph=True)
            return out.detach()
        return hv

    @torch.no_grad()
    def accuracy(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                 chunk: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean loss [S], accuracy [S]) of every seed on one shared set x [N, ...]; labels
        y [N] shared or [S, N] per seed."""
        loss = torch.zeros(theta.shape[0])
        correct = torch.zeros(theta.shape[0])
        n = x.shape[0]
        for i in range(0, n, chunk):
            out = self._shared(theta, x[i:i + chunk])
            yy = y[..., i:i + chunk].expand(out.shape[0], -1)
            loss += F.cross_entropy(out.flatten(0, 1), yy.reshape(-1),
                                    reduction="none").view(out.shape[:2]).sum(1)
            correct += (out.argmax(-1) == yy).sum(1)
        return loss / n, correct / n

    def filter_groups(self) -> list[tuple[int, int, tuple[int, ...]]]:
        """(offset, size, shape) of every parameter tensor in the flat vector."""
        out, off = [], 0
        for size, shape in zip(self.sizes, self.shapes, strict=True):
            out.append((off, size, tuple(shape)))
            off += size
        return out
