"""Toy Models of Superposition (Elhage et al. 2022, transformer-circuits.pub/2022/toy_model),
as the official notebook trains them: many instances at once as one batched weight tensor.

Instance k has W in R^{n x m} (stored [instances, n, m]; row W_i embeds feature i) and b in R^n.
  readout "relu"   (the paper's ReLU output model):  x' = ReLU(W^T W x + b)
  readout "linear" (its linear baseline):            x' = W^T W x + b
  privileged=True  (a neuron basis for per-unit penalties, research/superposition.md pitfall 1):
                   h = act(W x + c), x' = ReLU(W^T h + b), with a hidden bias c (zeros at init)
                   so a unit can be pushed below zero, i.e. "off", when no feature is present
Data: x_i ~ U[0, 1] with probability p_i = 1 - S_i, else 0, independently per feature.
Loss per instance: mean over batch and features of I_i (x_i - x'_i)^2, summed over instances,
plus lambda_k * R(hidden) when a penalty is set. AdamW (torch defaults, as the notebook), lr 1e-3,
batch 1024, constant lr.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass
class ToyModel:
    W: torch.Tensor            # [instances, n, m]
    b: torch.Tensor            # [instances, n]
    c: torch.Tensor | None = None   # [instances, m] hidden bias (privileged basis only)
    readout: str = "relu"      # relu | linear
    privileged: bool = False   # hidden layer h = act(W x) with a neuron basis
    activation: str = "relu"   # hidden act when privileged: relu | solu | topk
    topk: int = 1

    @classmethod
    def init(cls, seeds: Sequence[int], n: int, m: int, device: Device = "cpu",
             **kwargs) -> ToyModel:
        """One instance per entry of ``seeds``; instance k's W is Xavier-normal (std
        sqrt(2 / (n + m)), as nn.init.xavier_normal_ on [n, m]) drawn from seeds[k] alone, so
        instances that share a seed (its arms and penalty strengths) share their start; b = 0."""
        dev = resolve_device(device)
        std = (2.0 / (n + m)) ** 0.5
        W = torch.stack([torch.randn(n, m, generator=generator(s), device="cpu")
                         for s in seeds]).to(dev) * std
        I = len(seeds)
        c = torch.zeros(I, m, device=dev).requires_grad_() if kwargs.get("privileged") \
            else None
        return cls(W.requires_grad_(), torch.zeros(I, n, device=dev).requires_grad_(), c,
                   **kwargs)

    def parameters(self) -> list[torch.Tensor]:
        return [self.W, self.b] + ([self.c] if self.c is not None else [])

    def hidden(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pre-activation z = W x, hidden h) for x [instances, batch, n]."""
        z = torch.bmm(x, self.W)
        if not self.privileged:
            return z, z
        z = z + self.c[:, None, :]
        return z, hidden_activation(z, self.activation, self.topk)

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


def train_toy(model: ToyModel, imp: torch.Tensor, density: torch.Tensor, steps: int,
              batch_size: int, lr: float, gen: torch.Generator,
              penalty: str = "none", lam: torch.Tensor | None = None, tau: float = 1.0,
              level: float = 1.0, anneal_frac: float = 0.0, tail_frac: float = 0.1,
              rows: torch.Tensor | None = None, job: Job | None = None) -> ToyTraining:
    """Train every instance in place (imp, density: [instances, n]; lam: [instances]; rows:
    a seed index per instance for common random numbers, see :func:`sample_features`).

    Instances never interact: the summed loss gives each its own gradient, and AdamW is
    elementwise, so this equals a Python loop over instances with one AdamW each. Resumable
    inside ``job`` (rose.engine); an instance whose loss is non-finite or 100x the zero
    predictor's, mean_i I_i p_i / 3, is recorded as diverged (rose.divergence)."""
    job = job or NoJob()
    instances = model.W.shape[0]
    if penalty != "none" and not model.privileged:
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
        pen = (activation_penalty(penalty, z, h, tau=tau, level=level) if model.privileged
               else recon.new_zeros(recon.shape))
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
