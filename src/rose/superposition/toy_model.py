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

from dataclasses import dataclass

import torch

from rose.superposition.penalties import activation_penalty, hidden_activation, penalty_weight


def importance(n: int, decay: float) -> torch.Tensor:
    """I_i = decay^i (decay 1 gives uniform importance)."""
    return decay ** torch.arange(n, dtype=torch.float32)


def sample_features(density: torch.Tensor, batch: int, generator: torch.Generator) -> torch.Tensor:
    """x [instances, batch, n] with x_i ~ U[0,1] w.p. density_i, else 0.

    One uniform u per entry: present iff u < p, and then u / p ~ U[0, 1) given presence, which
    is the notebook's two draws (presence, value) in distribution at half the sampling cost.
    """
    p = density[:, None, :]
    u = torch.rand(density.shape[0], batch, density.shape[1], generator=generator)
    return torch.where(u < p, u / p, torch.zeros(()))


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
    def init(cls, instances: int, n: int, m: int, generator: torch.Generator,
             **kwargs) -> ToyModel:
        """Xavier-normal W (std sqrt(2 / (n + m)), as nn.init.xavier_normal_ on [n, m]), b = 0."""
        std = (2.0 / (n + m)) ** 0.5
        W = torch.randn(instances, n, m, generator=generator) * std
        c = torch.zeros(instances, m, requires_grad=True) if kwargs.get("privileged") else None
        return cls(W.requires_grad_(), torch.zeros(instances, n, requires_grad=True), c,
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


def train_toy(model: ToyModel, imp: torch.Tensor, density: torch.Tensor, steps: int,
              batch_size: int, lr: float, generator: torch.Generator,
              penalty: str = "none", lam: torch.Tensor | None = None, tau: float = 1.0,
              level: float = 1.0, anneal_frac: float = 0.0,
              tail_frac: float = 0.1) -> ToyTraining:
    """Train every instance in place (imp, density: [instances, n]; lam: [instances]).

    Instances never interact: the summed loss gives each its own gradient, and AdamW is
    elementwise, so this equals a Python loop over instances with one AdamW each.
    """
    instances = model.W.shape[0]
    if penalty != "none" and not model.privileged:
        raise ValueError("a per-unit activation penalty needs the privileged-basis model: "
                         "the plain toy model's loss is invariant to rotating W")
    lam = torch.zeros(instances) if lam is None else lam
    # fused: one kernel for the whole update (CPU too); elementwise, so instances stay separate
    opt = torch.optim.AdamW(model.parameters(), lr=lr, fused=True)
    tail_start = steps - max(1, int(tail_frac * steps))
    loss_sum = torch.zeros(instances)
    pen_sum = torch.zeros(instances)
    for step in range(steps):
        x = sample_features(density, batch_size, generator)
        out, z, h = model.forward(x)
        recon = reconstruction_loss(x, out, imp)
        pen = (activation_penalty(penalty, z, h, tau=tau, level=level) if model.privileged
               else recon.new_zeros(recon.shape))
        total = (recon + penalty_weight(lam, step, steps, anneal_frac) * pen).sum()
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        if step >= tail_start:
            loss_sum += recon.detach()
            pen_sum += pen.detach()
    n_tail = steps - tail_start
    for p in model.parameters():
        p.requires_grad_(False)
    return ToyTraining(model, loss_sum / n_tail, pen_sum / n_tail)
