"""SAM and ASAM as a wrapper around any torch optimizer (Foret et al., ICLR 2021; Kwon et al.,
ICML 2021; following davda54/sam@3c3afdb, sam.py, research notes explore.md):

    eps = rho T^2 g / ||T g||,   T = I (SAM) or diag(|w|) (ASAM, adaptive=True)
    g_SAM = grad L_B(w + eps);   restore w;   base optimizer step with g_SAM

Two gradient evaluations per step. Weight decay enters only the base step, not eps. Use:

    loss_fn().backward(); opt.first_step(); loss_fn().backward(); opt.second_step()

or ``opt.step(closure)`` with a closure that zeroes the grads, computes the loss and calls
backward. ``batched=True`` treats dimension 0 of every parameter as S independent models (the
rows of a stacked theta [S, P], rose.nn.StackedNet): ||T g|| is then taken per row. Models with
BatchNorm should freeze running statistics in the second pass (pitfall 1 of the notes); the
MLPs and CNNs here have none.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class SAM(torch.optim.Optimizer):
    def __init__(self, params, base_optimizer: type[torch.optim.Optimizer], rho: float = 0.05,
                 adaptive: bool = False, batched: bool = False, **kwargs):
        if rho < 0:
            raise ValueError(f"SAM rho must be >= 0, got {rho}")
        super().__init__(params, dict(rho=rho, adaptive=adaptive, **kwargs))
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.batched = batched

    def _with_grad(self, group) -> list[torch.Tensor]:
        return [p for p in group["params"] if p.grad is not None]

    def _grad_norm(self) -> torch.Tensor:
        """||T g|| over all parameters (torch._foreach ops, as torch.optim's own loops); a
        tensor [S] of per-model norms when batched."""
        with torch.no_grad():
            norms = []
            for group in self.param_groups:
                params = self._with_grad(group)
                grads = [p.grad for p in params]
                if group["adaptive"]:
                    grads = torch._foreach_mul(grads, torch._foreach_abs(params))
                if self.batched:
                    norms.extend(g.flatten(1).norm(dim=1) for g in grads)
                else:
                    norms.extend(torch._foreach_norm(grads))
            return torch.linalg.vector_norm(torch.stack(norms), dim=0)

    def first_step(self, zero_grad: bool = True) -> None:
        """Move to w + eps (the ascent step), keeping w to restore it exactly. eps is built in
        place in the first pass's gradients (discarded afterwards) and w is copied into
        buffers kept across steps, so a step allocates nothing."""
        with torch.no_grad():
            norm = self._grad_norm()
            for group in self.param_groups:
                params = self._with_grad(group)
                grads = [p.grad for p in params]
                if group["adaptive"]:
                    torch._foreach_mul_(grads, torch._foreach_mul(params, params))
                if self.batched:
                    for g in grads:
                        g.mul_((group["rho"] / (norm + 1e-12)).view(-1, *[1] * (g.dim() - 1)))
                else:
                    torch._foreach_mul_(grads, group["rho"] / (norm + 1e-12))
                old = []
                for p in params:
                    if "old_p" not in self.state[p]:
                        self.state[p]["old_p"] = torch.empty_like(p)
                    old.append(self.state[p]["old_p"])
                torch._foreach_copy_(old, params)
                torch._foreach_add_(params, grads)
                for p in params:
                    self.state[p]["perturbed"] = True
            if zero_grad:
                self.zero_grad(set_to_none=True)

    def second_step(self, zero_grad: bool = True) -> None:
        """Back to w, then the base optimizer's step with the gradient taken at w + eps."""
        with torch.no_grad():
            for group in self.param_groups:
                params = [p for p in group["params"] if self.state[p].pop("perturbed", False)]
                if params:
                    torch._foreach_copy_(params, [self.state[p]["old_p"] for p in params])
            self.base_optimizer.step()
            if zero_grad:
                self.zero_grad(set_to_none=True)

    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:
        if closure is None:
            raise ValueError("SAM needs a closure that computes the loss and calls backward")
        closure = torch.enable_grad()(closure)
        loss = closure()
        self.first_step(zero_grad=True)
        closure()
        self.second_step()
        return loss
