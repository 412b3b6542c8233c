"""Many instances of one small network trained as one model: instance i's whole parameter
vector is row i of a flat tensor theta [I, P].

An instance is an (arm, seed, grid point) of an experiment. Every per-model vector operation
(norms, projections, SAM's and GAM's normalised perturbations, a ball around a reference,
filter-normalised directions) is a row operation on theta; one backward pass of
sum_i L_i(theta_i) gives every instance's gradient (instances never interact), one double
backward every instance's H v; elementwise torch optimisers (SGD, Adam, RAdam) and
torch.optim.swa_utils act on theta directly.

The forward pass is written with batched matrix products (``torch.baddbmm`` on views of theta)
and grouped convolutions, not ``torch.func.vmap(functional_call)``: on these CPUs the bmm stack
trains 20 instances of a 784-256-256-10 MLP 1.6x faster per instance than one model alone,
while the vmap path measured 1.39x *slower* than a loop (benchmarks/bench_stacked.py).

Architectures (``arch``, the ``model:`` block of a config, as rose.models.build_model):
  mlp  {hidden: [h1, ...], activation: relu|gelu|tanh|solu|topk, k: (topk)}; instance i equals
       rose.models.MLP with the same weights
  cnn  {width}: rose.models.SmallCNN (two 3x3 conv-ReLU-maxpool blocks and a linear head),
       the convolutions of all instances as one grouped convolution (groups = I)

Inputs are either one batch per instance, x [I, B, ...], or one batch shared by all instances,
x [B, ...] (``shared=True``). ``forward`` returns the outputs [I, B, out] and the hidden layers'
(pre-activation z, activation a), each [I, B, units] (for the CNN: its flattened last feature
map), for penalties and feature distances.

Layout of theta: the template network's parameters in order, linear weights stored transposed
([in, out], the layout ``torch.baddbmm`` multiplies without copying; storing nn.Linear's
[out, in] cost a transposed copy of every weight gradient, 20% of a step), convolution kernels
as [out, in, kh, kw]. ``filter_norm`` gives each entry the norm of its output filter / neuron,
whatever the layout (Li et al. 2018's filter normalisation, ASAM's and sigma''s scales).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from rose.models import build_model
from rose.nn.activations import hidden_activation

INIT_SCHEMES = ("torch", "xavier")


class _Views(torch.autograd.Function):
    """theta [I, P] -> its parameter tensors [I, *shape] as views. Same as theta.split + view,
    but the backward writes each gradient into its slice of one [I, P] buffer: 4-6x faster on
    these CPUs than the torch.cat that split's backward runs (3.2 of a 26 ms stacked step of
    the 784-256-256-10 MLP, measured). Under create_graph (HVPs) it falls back to the cat,
    which autograd can differentiate again."""

    @staticmethod
    def forward(ctx, theta: torch.Tensor, sizes: list[int], shapes: list[tuple[int, ...]]):
        ctx.sizes, ctx.shape = sizes, theta.shape
        I = theta.shape[0]
        return tuple(t.view(I, *s) for t, s in zip(theta.split(sizes, -1), shapes, strict=True))

    @staticmethod
    def backward(ctx, *grads: torch.Tensor):
        I = ctx.shape[0]
        if torch.is_grad_enabled():
            parts = [torch.zeros(I, n, dtype=ref.dtype, device=ref.device) if g is None
                     else g.reshape(I, n) for g, n, ref in
                     zip(grads, ctx.sizes, [next(x for x in grads if x is not None)] *
                         len(grads), strict=True)]
            return torch.cat(parts, -1), None, None
        ref = next(g for g in grads if g is not None)
        out = torch.empty(ctx.shape, dtype=ref.dtype, device=ref.device)
        for g, part in zip(grads, out.split(ctx.sizes, -1), strict=True):
            if g is None:
                part.zero_()
            else:
                part.copy_(g.reshape(I, -1))
        return out, None, None


@dataclass(frozen=True)
class ParamSlot:
    """One parameter tensor of an instance: its name, its shape as stored in theta, its place
    in the flat vector, and whether it is a linear weight stored transposed ([in, out])."""
    name: str
    shape: tuple[int, ...]
    offset: int
    transposed: bool = False

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def is_weight(self) -> bool:
        return len(self.shape) >= 2

    @property
    def n_filters(self) -> int:
        """Output neurons / channels of a weight."""
        return self.shape[-1] if self.transposed else self.shape[0]


class StackedNet:
    """I instances of one architecture as the rows of theta [I, P]."""

    def __init__(self, arch: dict[str, Any], input_shape: Sequence[int], n_out: int) -> None:
        self.arch = dict(arch)
        self.name = self.arch.get("name", "mlp")
        self.input_shape = tuple(input_shape)
        self.n_out = n_out
        self.activation = self.arch.get("activation", "relu")
        self.k = int(self.arch.get("k", 1))
        with torch.random.fork_rng(devices=[]), torch.device("cpu"):
            template = self.template()      # (building it draws from the global RNG)
        slots, off = [], 0
        for name, p in template.named_parameters():
            linear = p.dim() == 2
            shape = tuple(p.shape[::-1]) if linear else tuple(p.shape)
            slots.append(ParamSlot(name, shape, off, linear))
            off += p.numel()
        self.slots = slots
        self.dim = off
        self.sizes = [s.size for s in slots]

    def template(self) -> torch.nn.Module:
        """The single-model network an instance equals (rose.models), on the current device."""
        cfg = {k: v for k, v in self.arch.items() if k not in ("k",)}
        cfg["name"] = self.name
        if self.name == "mlp" and self.activation not in ("relu", "gelu", "tanh"):
            cfg["activation"] = "relu"     # same parameters; solu/top-k exist only stacked
        return build_model(cfg, self.input_shape, self.n_out)

    # -- parameters ---------------------------------------------------------------------------
    def views(self, theta: torch.Tensor) -> list[torch.Tensor]:
        """Every parameter tensor of every instance, [I, *shape], as views of theta."""
        if theta.requires_grad and torch.is_grad_enabled():
            return list(_Views.apply(theta, self.sizes, [s.shape for s in self.slots]))
        I = theta.shape[0]
        return [t.view(I, *s.shape)
                for t, s in zip(theta.split(self.sizes, dim=-1), self.slots, strict=True)]

    def init(self, seeds: Sequence[int], device: torch.device | str = "cpu",
             scheme: str = "torch") -> torch.Tensor:
        """theta [len(seeds), P]; row i depends only on seeds[i] (so arms that share a seed share
        their initial weights):

        torch   the network's default initialisation under torch.manual_seed(seed), the same
                weights a single-model run with that seed starts from (rose.train)
        xavier  Xavier-uniform weights, zero biases (as the IRM code's MLP), drawn from
                torch.Generator().manual_seed(seed)
        Drawn on the CPU, then moved, so a seed gives the same weights on every device."""
        if scheme not in INIT_SCHEMES:
            raise ValueError(f"unknown init scheme {scheme!r}; expected one of {INIT_SCHEMES}")
        rows = []
        for s in seeds:
            if scheme == "torch":
                with torch.random.fork_rng(devices=[]), torch.device("cpu"):
                    torch.manual_seed(int(s))
                    m = self.template()
                rows.append(self.flatten_module(m.parameters()))
            else:
                g = torch.Generator(device="cpu").manual_seed(int(s))
                parts = []
                for slot in self.slots:
                    if slot.is_weight:
                        fan_out, fan_in = slot.n_filters, slot.size // slot.n_filters
                        bound = (6.0 / (fan_in + fan_out)) ** 0.5
                        w = (torch.rand(slot.shape, generator=g, device="cpu") * 2 - 1) * bound
                        parts.append(w.reshape(-1))
                    else:
                        parts.append(torch.zeros(slot.size, device="cpu"))
                rows.append(torch.cat(parts))
        return torch.stack(rows).to(device)

    def parameters(self, theta: torch.Tensor) -> list[torch.nn.Parameter]:
        """Leaf Parameters [I, *shape], one per parameter tensor, that alias theta's storage: an
        optimiser steps them (each its own gradient, nothing flattened) and theta, which
        holds the same memory, always shows the current weights for row operations and
        checkpoints. Training through these measured 1.17x faster per step than through one
        [I, P] leaf, whose gradient must be assembled from the layers' (bench_stacked)."""
        if not theta.is_contiguous():
            raise ValueError("theta must be contiguous to be shared by its parameters")
        return [torch.nn.Parameter(v) for v in self.views(theta.detach())]

    def flatten_module(self, tensors) -> torch.Tensor:
        """One instance's flat vector [P] from the template's parameters (or their gradients),
        in the template's order and layout."""
        return torch.cat([(t.detach().t() if slot.transposed else t.detach()).reshape(-1)
                          for t, slot in zip(tensors, self.slots, strict=True)])

    def module_params(self, row: torch.Tensor) -> dict[str, torch.Tensor]:
        """One instance's flat vector [P] as the template's named parameters (differentiable
        views, transposed back where theta stores a linear weight as [in, out]): what
        torch.func.functional_call(self.template(), ...) takes."""
        return {s.name: (t.view(s.shape).t() if s.transposed else t.view(s.shape))
                for s, t in zip(self.slots, row.split(self.sizes), strict=True)}

    def weight_mask(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """[P] True on weight matrices / kernels, False on biases."""
        return torch.cat([torch.full((s.size,), s.is_weight, device=device)
                          for s in self.slots])

    def filter_norm(self, v: torch.Tensor) -> torch.Tensor:
        """[I, P]: every weight entry of ``v`` [I, P] replaced by the Euclidean norm of its
        output filter (a conv kernel's [in, kh, kw] block, a linear weight's column of
        inputs), every bias entry by 1."""
        out = torch.ones_like(v)
        for slot, t, o in zip(self.slots, self.views(v), self.views(out), strict=True):
            if not slot.is_weight:
                continue
            if slot.transposed:        # [I, in, out]: a neuron's weights are a column
                o.copy_(t.norm(dim=1, keepdim=True).expand_as(t))
            else:                      # [I, out, in, kh, kw]
                o.copy_(t.flatten(2).norm(dim=2).view(*t.shape[:2], *[1] * (t.dim() - 2))
                        .expand_as(t))
        return out

    # -- the network --------------------------------------------------------------------------
    def forward(self, theta: torch.Tensor | Sequence[torch.Tensor], x: torch.Tensor,
                shared: bool = False, dropout: float = 0.0,
                dropout_rows: torch.Tensor | None = None,
                generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """(outputs [I, B, n_out], [(z, a) per hidden layer]) for theta [I, P] or its
        parameter tensors (:meth:`parameters`). ``dropout`` > 0 drops hidden activations after
        recording them (inverted dropout): training with dropout and MC-dropout predictions.
        Masks come from torch's global RNG, or, with ``dropout_rows`` (a row index per
        instance) and ``generator``, one mask per row shared by the instances of that row
        (the arms of one seed drop the same units: paired)."""
        ps = self.views(theta) if isinstance(theta, torch.Tensor) else list(theta)
        if self.name == "cnn":
            return self._forward_cnn(ps, x, shared)
        h = x.flatten(1) if shared else x.flatten(2)
        hidden = []
        for layer in range(len(ps) // 2):
            w, b = ps[2 * layer], ps[2 * layer + 1]
            if layer == 0 and shared:       # [B, d] @ [I, d, out]: broadcast, no copy of x
                z = torch.matmul(h, w) + b[:, None, :]
            else:
                z = torch.baddbmm(b[:, None, :], h, w)
            if layer == len(ps) // 2 - 1:
                return z, hidden
            h = hidden_activation(z, self.activation, self.k)
            hidden.append((z, h))
            if dropout > 0:
                if dropout_rows is None:
                    h = F.dropout(h, dropout, training=True)
                else:
                    u = torch.rand(int(dropout_rows.max()) + 1, *h.shape[1:],
                                   generator=generator, device=h.device)
                    h = h * (u[dropout_rows] >= dropout) / (1 - dropout)
        raise AssertionError("unreachable")

    def _forward_cnn(self, ps: list[torch.Tensor], x: torch.Tensor, shared: bool
                     ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        w1, b1, w2, b2, wh, bh = ps
        I = w1.shape[0]
        if shared:                           # [B, C, H, W] -> [B, I*C, H, W]
            B = x.shape[0]
            h = x.repeat(1, I, 1, 1)
        else:                                # [I, B, C, H, W] -> [B, I*C, H, W]
            B = x.shape[1]
            h = x.transpose(0, 1).reshape(B, I * x.shape[2], *x.shape[3:])
        for w, b in ((w1, b1), (w2, b2)):
            h = F.conv2d(h, w.reshape(-1, *w.shape[2:]), b.reshape(-1), padding=1, groups=I)
            h = F.max_pool2d(torch.relu(h), 2)
        feats = h.reshape(B, I, -1).transpose(0, 1)          # [I, B, 2w * side * side]
        return torch.baddbmm(bh[:, None, :], feats, wh), [(feats, feats)]

    def logits(self, theta: torch.Tensor | Sequence[torch.Tensor], x: torch.Tensor,
               shared: bool = False) -> torch.Tensor:
        return self.forward(theta, x, shared)[0]

    def losses(self, theta: torch.Tensor | Sequence[torch.Tensor], x: torch.Tensor,
               y: torch.Tensor, shared: bool = False) -> torch.Tensor:
        """Mean cross-entropy per instance [I]; y [B] (shared by all) or [I, B]."""
        out = self.logits(theta, x, shared)
        yy = y.expand(out.shape[0], -1) if y.dim() == 1 else y
        return F.cross_entropy(out.transpose(1, 2), yy, reduction="none").mean(1)

    def grad(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
             shared: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(losses [I], gradients [I, P]): one backward of sum_i L_i gives every row its own
        gradient, since L_i depends on row i only."""
        with torch.enable_grad():
            t = theta.detach().requires_grad_(True)
            losses = self.losses(t, x, y, shared)
            g, = torch.autograd.grad(losses.sum(), t)
        return losses.detach(), g

    def hvp(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
            shared: bool = False) -> Callable[[torch.Tensor], torch.Tensor]:
        """v [I, P] -> H_i v_i for every row: double backward on one cached gradient graph (the
        faster HVP on these CPUs, rose.measure.hessian.flat_hvp). The Hessian of sum_i L_i is
        block diagonal, so one product gives every instance's."""
        t = theta.detach().requires_grad_(True)
        with torch.enable_grad():
            g, = torch.autograd.grad(self.losses(t, x, y, shared).sum(), t, create_graph=True)

        def hv(v: torch.Tensor) -> torch.Tensor:
            out, = torch.autograd.grad(g, t, grad_outputs=v, retain_graph=True)
            return out.detach()
        return hv

    def evaluate(self, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor,
                 chunk: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean cross-entropy [I], accuracy [I]) of every instance on one shared set X [N, ...];
        labels y [N] shared or [I, N] per instance."""
        with torch.no_grad():
            I = theta.shape[0]
            loss = torch.zeros(I, device=theta.device)
            correct = torch.zeros(I, device=theta.device)
            n = X.shape[0]
            for i in range(0, n, chunk):
                out = self.logits(theta, X[i:i + chunk], shared=True)
                yy = y[..., i:i + chunk].expand(I, -1)
                loss += F.cross_entropy(out.transpose(1, 2), yy, reduction="none").sum(1)
                correct += (out.argmax(-1) == yy).sum(1)
            return loss / n, correct / n

