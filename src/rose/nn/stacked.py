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
  mlp  {hidden: [h1, ...], activation: relu|gelu|tanh|solu|topk, k: (topk)}; weights stored as
       nn.Linear's [out, in], so instance i equals rose.models.MLP with the same weights
  cnn  {width}: rose.models.SmallCNN (two 3x3 conv-ReLU-maxpool blocks and a linear head),
       the convolutions of all instances as one grouped convolution (groups = I)

Inputs are either one batch per instance, x [I, B, ...], or one batch shared by all instances,
x [B, ...] (``shared=True``). ``forward`` returns the outputs [I, B, out] and the hidden layers'
(pre-activation z, activation a), each [I, B, units] (for the CNN: its flattened last feature
map), for penalties and feature distances.
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


@dataclass(frozen=True)
class ParamSlot:
    """One parameter tensor of an instance: its name, shape and place in the flat vector."""
    name: str
    shape: tuple[int, ...]
    offset: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def is_weight(self) -> bool:
        return len(self.shape) >= 2


class StackedNet:
    """I instances of one architecture as the rows of theta [I, P]."""

    def __init__(self, arch: dict[str, Any], input_shape: Sequence[int], n_out: int) -> None:
        self.arch = dict(arch)
        self.name = self.arch.get("name", "mlp")
        self.input_shape = tuple(input_shape)
        self.n_out = n_out
        self.activation = self.arch.get("activation", "relu")
        self.k = int(self.arch.get("k", 1))
        with torch.device("cpu"):
            template = self.template()
        slots, off = [], 0
        for name, p in template.named_parameters():
            slots.append(ParamSlot(name, tuple(p.shape), off))
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
                rows.append(torch.cat([p.detach().reshape(-1) for p in m.parameters()]))
            else:
                g = torch.Generator(device="cpu").manual_seed(int(s))
                parts = []
                for slot in self.slots:
                    if slot.is_weight:
                        fan_out, fan_in = slot.shape[0], math.prod(slot.shape[1:])
                        bound = (6.0 / (fan_in + fan_out)) ** 0.5
                        w = (torch.rand(slot.shape, generator=g, device="cpu") * 2 - 1) * bound
                        parts.append(w.reshape(-1))
                    else:
                        parts.append(torch.zeros(slot.size, device="cpu"))
                rows.append(torch.cat(parts))
        return torch.stack(rows).to(device)

    def weight_mask(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """[P] True on weight matrices / kernels, False on biases."""
        return torch.cat([torch.full((s.size,), s.is_weight, device=device)
                          for s in self.slots])

    def filter_groups(self) -> list[tuple[int, int, tuple[int, ...]]]:
        """(offset, size, shape) of every parameter tensor in the flat vector; dimension 0 of a
        weight is its output filter / neuron (Li et al. 2018's filter normalisation)."""
        return [(s.offset, s.size, s.shape) for s in self.slots]

    # -- the network --------------------------------------------------------------------------
    def forward(self, theta: torch.Tensor, x: torch.Tensor, shared: bool = False,
                dropout: float = 0.0
                ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """(outputs [I, B, n_out], [(z, a) per hidden layer]). ``dropout`` > 0 drops hidden
        activations after recording them (inverted dropout, torch's global RNG): training with
        dropout and MC-dropout predictions."""
        if self.name == "cnn":
            return self._forward_cnn(theta, x, shared)
        ps = self.views(theta)
        h = x.flatten(1) if shared else x.flatten(2)
        hidden = []
        for layer in range(len(ps) // 2):
            w, b = ps[2 * layer], ps[2 * layer + 1]
            if layer == 0 and shared:       # [B, d] @ [I, d, out]: broadcast, no copy of x
                z = torch.matmul(h, w.transpose(1, 2)) + b[:, None, :]
            else:
                z = torch.baddbmm(b[:, None, :], h, w.transpose(1, 2))
            if layer == len(ps) // 2 - 1:
                return z, hidden
            h = hidden_activation(z, self.activation, self.k)
            hidden.append((z, h))
            if dropout > 0:
                h = F.dropout(h, dropout, training=True)
        raise AssertionError("unreachable")

    def _forward_cnn(self, theta: torch.Tensor, x: torch.Tensor, shared: bool
                     ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        I = theta.shape[0]
        w1, b1, w2, b2, wh, bh = self.views(theta)
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
        return torch.baddbmm(bh[:, None, :], feats, wh.transpose(1, 2)), [(feats, feats)]

    def logits(self, theta: torch.Tensor, x: torch.Tensor, shared: bool = False) -> torch.Tensor:
        return self.forward(theta, x, shared)[0]

    def losses(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
               shared: bool = False) -> torch.Tensor:
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

    @torch.no_grad()
    def evaluate(self, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor,
                 chunk: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean cross-entropy [I], accuracy [I]) of every instance on one shared set X [N, ...];
        labels y [N] shared or [I, N] per instance."""
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

    accuracy = evaluate      # the name direction 1's measurements use
