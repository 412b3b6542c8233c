"""Toy Models of Superposition (Elhage et al. 2022, transformer-circuits.pub/2022/toy_model),
as the official notebook trains them: many instances at once as one batched weight tensor.

Instance k has W in R^{n x m} (stored [instances, n, m]; row W_i embeds feature i) and b in R^n.
  readout "relu"   (the paper's ReLU output model):  x' = ReLU(W^T W x + b)
  readout "linear" (its linear baseline):            x' = W^T W x + b
  privileged=True  (a neuron basis for per-unit penalties, research/superposition.md pitfall 1):
                   h = act(W x + c), x' = ReLU(W^T h + b), with a hidden bias c (zeros at init,
                   or negative: Jermyn et al. 2022's negative-bias initialisation) so a unit
                   can be pushed below zero, i.e. "off", when no feature is present. SoLU
                   carries a learned per-unit gain g (ones at init): h = g * LN(z softmax(z)),
                   so a hidden unit can reach zero (LayerNorm alone forces ||h||^2 = m)
Segments: consecutive instances may differ in hidden activation and penalty (one Segment each),
so every variant of a penalty study trains as one batched tensor.
Data: x_i ~ U[0, 1] with probability p_i = 1 - S_i, else 0, independently per feature.
Loss per instance: mean over batch and features of I_i (x_i - x'_i)^2, summed over instances,
plus lambda_k * R(hidden) when a penalty is set. AdamW (torch defaults, as the notebook), lr 1e-3,
batch 1024, constant lr.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from rose.device import Device, generator, resolve_device
from rose.divergence import Divergence
from rose.engine import Job, NoJob, restore_training, training_state
from rose.nn.activations import hidden_activation
from rose.superposition.penalties import activation_penalty, penalty_weight


def importance(n: int, decay: float, device: Device = "cpu") -> torch.Tensor:
    """I_i = decay^i (decay 1 gives uniform importance)."""
    return decay ** torch.arange(n, dtype=torch.float32, device=resolve_device(device))


def sample_features(density: torch.Tensor, batch: int, gen: torch.Generator,
                    rows: torch.Tensor | None = None) -> torch.Tensor:
    """x [instances, batch, n] with x_i ~ U[0,1] w.p. density_i, else 0.

    One uniform u per entry: present iff u < p, and then u / p ~ U[0, 1) given presence, which
    is the notebook's two draws (presence, value) in distribution at half the sampling cost.
    ``rows`` [instances] (a seed index per instance) draws one u per seed and shares it among
    the seed's instances: common random numbers, so arms of one seed see the same draws."""
    n_draws = density.shape[0] if rows is None else int(rows.max()) + 1
    u = torch.rand(n_draws, batch, density.shape[1], generator=gen, device=density.device)
    if rows is not None:
        u = u[rows]
    p = density[:, None, :]
    return torch.where(u < p, u / p, torch.zeros((), device=density.device))


@dataclass(frozen=True)
class Segment:
    """Instances [start, stop) sharing a hidden activation and an activation penalty."""
    start: int
    stop: int
    activation: str = "relu"    # relu | solu | topk
    topk: int = 1
    penalty: str = "none"       # rose.superposition.penalties.PENALTIES
    tau: float = 1.0
    level: float = 1.0

    @property
    def rows(self) -> slice:
        return slice(self.start, self.stop)


@dataclass
class ToyModel:
    W: torch.Tensor            # [instances, n, m]
    b: torch.Tensor            # [instances, n]
    c: torch.Tensor | None = None   # [instances, m] hidden bias (privileged basis only)
    readout: str = "relu"      # relu | linear
    privileged: bool = False   # hidden layer h = act(W x) with a neuron basis
    activation: str = "relu"   # hidden act when privileged and no segments: relu | solu | topk
    topk: int = 1
    segments: tuple[Segment, ...] = field(default=())   # default: one segment, all instances
    g: torch.Tensor | None = None   # [instances, m] SoLU gain (privileged SoLU segments only)

    def __post_init__(self) -> None:
        if not self.segments:
            self.segments = (Segment(0, self.W.shape[0], self.activation, self.topk),)
        if self.segments[0].start != 0 or self.segments[-1].stop != self.W.shape[0] or any(
                a.stop != b.start for a, b in itertools.pairwise(self.segments)):
            raise ValueError("segments must tile the instances in order")
        if self.privileged and self.g is None and any(s.activation == "solu"
                                                     for s in self.segments):
            self.g = torch.ones_like(self.W[:, 0, :]).requires_grad_()

    @classmethod
    def init(cls, seeds: Sequence[int], n: int, m: int, device: Device = "cpu",
             hidden_bias: float | torch.Tensor = 0.0, **kwargs) -> ToyModel:
        """One instance per entry of ``seeds``; instance k's W is Xavier-normal (std
        sqrt(2 / (n + m)), as nn.init.xavier_normal_ on [n, m]) drawn from seeds[k] alone, so
        instances that share a seed (its arms and penalty strengths) share their start; b = 0;
        the hidden bias c (privileged only) = ``hidden_bias`` (a value or one per instance)."""
        dev = resolve_device(device)
        std = (2.0 / (n + m)) ** 0.5
        W = torch.stack([torch.randn(n, m, generator=generator(s), device="cpu")
                         for s in seeds]).to(dev) * std
        I = len(seeds)
        c = None
        if kwargs.get("privileged"):
            hb = torch.as_tensor(hidden_bias, dtype=torch.float32, device=dev)
            c = (torch.zeros(I, m, device=dev) + hb.reshape(-1, 1)).requires_grad_()
        return cls(W.requires_grad_(), torch.zeros(I, n, device=dev).requires_grad_(), c,
                   **kwargs)

    def subset(self, start: int, stop: int) -> ToyModel:
        """Instances [start, stop) as a model of their own (views of the same tensors), with
        the segments clipped to them."""
        segs = tuple(Segment(max(s.start, start) - start, min(s.stop, stop) - start,
                             s.activation, s.topk, s.penalty, s.tau, s.level)
                     for s in self.segments if s.start < stop and s.stop > start)
        def pick(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t[start:stop]

        return ToyModel(self.W[start:stop], self.b[start:stop], pick(self.c), self.readout,
                        self.privileged, self.activation, self.topk, segs, pick(self.g))

    def parameters(self) -> list[torch.Tensor]:
        return [self.W, self.b] + [p for p in (self.c, self.g) if p is not None]

    def hidden(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pre-activation z = W x + c, hidden h) for x [instances, batch, n]."""
        z = torch.bmm(x, self.W)
        if not self.privileged:
            return z, z
        z = z + self.c[:, None, :]
        parts = []
        for s in self.segments:
            h = hidden_activation(z[s.rows], s.activation, s.topk)
            parts.append(h * self.g[s.rows, None, :] if s.activation == "solu" else h)
        return z, parts[0] if len(parts) == 1 else torch.cat(parts)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x', z, h). Without a privileged basis x' uses x (W W^T): the same product in another
        order, 1.5-3x faster on CPU for small m than two thin batched matmuls (measured)."""
        if self.privileged:
            z, h = self.hidden(x)
            out = torch.bmm(h, self.W.transpose(1, 2))
        else:
            out = torch.bmm(x, self.W @ self.W.transpose(1, 2))
            z = h = x.new_empty(0)
        out = out + self.b[:, None, :]
        if self.readout == "relu":
            out = torch.relu(out)
        elif self.readout != "linear":
            raise ValueError(f"unknown readout {self.readout!r}; expected relu or linear")
        return out, z, h


def reconstruction_loss(x: torch.Tensor, out: torch.Tensor, imp: torch.Tensor) -> torch.Tensor:
    """Per-instance mean over batch and features of I_i (x_i - x'_i)^2 -> [instances]."""
    return (imp[:, None, :] * (x - out) ** 2).mean((1, 2))


@dataclass
class ToyTraining:
    model: ToyModel
    loss: torch.Tensor      # [instances] mean reconstruction loss over the last tail of steps
    penalty: torch.Tensor   # [instances] mean penalty R over the same steps (before lambda)
    diverged_at: np.ndarray  # [instances] step at which the instance diverged, -1 if never


def segment_penalty(segments: Sequence[Segment], z: torch.Tensor, h: torch.Tensor
                    ) -> torch.Tensor:
    """Per-instance penalty [instances]: each segment's penalty on its own instances."""
    parts = [activation_penalty(s.penalty, z[s.rows], h[s.rows], tau=s.tau, level=s.level)
             for s in segments]
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def train_toy(model: ToyModel, imp: torch.Tensor, density: torch.Tensor, steps: int,
              batch_size: int, lr: float, gen: torch.Generator,
              penalty: str = "none", lam: torch.Tensor | None = None, tau: float = 1.0,
              level: float = 1.0, anneal_frac: float = 0.0, tail_frac: float = 0.1,
              rows: torch.Tensor | None = None, job: Job | None = None) -> ToyTraining:
    """Train every instance in place (imp, density: [instances, n]; lam: [instances]; rows:
    a seed index per instance for common random numbers, see :func:`sample_features`).

    Instances never interact: the summed loss gives each its own gradient, and AdamW is
    elementwise, so this equals a Python loop over instances with one AdamW each. The penalty
    of each instance is its segment's (``model.segments``); a ``penalty`` other than "none"
    here sets it, with ``tau`` and ``level``, for every segment. Resumable
    inside ``job`` (rose.engine); an instance whose loss is non-finite or 100x the zero
    predictor's, mean_i I_i p_i / 3, is recorded as diverged (rose.divergence)."""
    job = job or NoJob()
    instances = model.W.shape[0]
    segments = model.segments if penalty == "none" else tuple(
        replace(s, penalty=penalty, tau=tau, level=level) for s in model.segments)
    if any(s.penalty != "none" for s in segments) and not model.privileged:
        raise ValueError("a per-unit activation penalty needs the privileged-basis model: "
                         "the plain toy model's loss is invariant to rotating W")
    dev = model.W.device
    lam = torch.zeros(instances, device=dev) if lam is None else lam
    # fused: one kernel for the whole update (CPU too); elementwise, so instances stay separate
    opt = torch.optim.AdamW(model.parameters(), lr=lr, fused=True)
    tail_start = steps - max(1, int(tail_frac * steps))
    loss_sum = torch.zeros(instances, device=dev)
    pen_sum = torch.zeros(instances, device=dev)
    div = Divergence(instances, (imp * density).mean(1).cpu().numpy() / 3)
    start = 0
    state = job.resume()
    if state is not None:
        restore_training(state, model.parameters(), opt, (gen,))
        start, loss_sum, pen_sum = state["step"], state["loss_sum"].to(dev), \
            state["pen_sum"].to(dev)
        div.load(state["diverged_at"])

    def snapshot() -> dict:
        return {**training_state(model.parameters(), opt, (gen,), div.state()),
                "step": step + 1, "loss_sum": loss_sum, "pen_sum": pen_sum}

    for step in range(start, steps):
        x = sample_features(density, batch_size, gen, rows)
        out, z, h = model.forward(x)
        recon = reconstruction_loss(x, out, imp)
        pen = segment_penalty(segments, z, h) if model.privileged \
            else recon.new_zeros(recon.shape)
        total = (recon + penalty_weight(lam, step, steps, anneal_frac) * pen).sum()
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        div.update(recon, step)
        if step >= tail_start:
            loss_sum += recon.detach()
            pen_sum += pen.detach()
        job.tick(snapshot)
    n_tail = steps - tail_start
    for p in model.parameters():
        p.requires_grad_(False)
    return ToyTraining(model, loss_sum / n_tail, pen_sum / n_tail, div.at_step)
