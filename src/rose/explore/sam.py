"""SAM, ASAM and GSAM as a wrapper around any torch optimizer (Foret et al., ICLR 2021; Kwon et
al., ICML 2021; following davda54/sam@3c3afdb, sam.py, research notes explore.md):

    eps = rho T^2 g / ||T g||,   T = I (SAM) or diag(|w|) (ASAM, adaptive=True)
    g_SAM = grad L_B(w + eps);   restore w;   base optimizer step with g_SAM

GSAM (Zhuang et al., ICLR 2022, "Surrogate Gap Guided Sharpness-Aware Minimization"; following
juntang-zhuang/GSAM@a770275, gsam/gsam.py, gradient_decompose) hands the base optimizer instead

    g_GSAM = g_p - alpha (g - (g . g_p / ||g_p||^2) g_p),   g = grad L_B(w),  g_p = g_SAM

g_p minus alpha times the component of the first pass's gradient orthogonal to g_p, which
descends the surrogate gap without changing the step along g_p. The dot product and the norm run
over every parameter with a gradient in both passes (all param groups; per row when batched);
each group applies its own alpha, and alpha = 0 (the default) is SAM exactly, with no extra work.
adaptive=True gives GSAM with ASAM's eps, as the authors' code allows. The authors schedule rho
in proportion to the learning rate; here rho stays constant.

Two gradient evaluations per step. Weight decay enters only the base step, not eps or the GSAM
decomposition. Use:

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
    def __init__(self, params, base_optimizer: type[torch.optim.Optimizer],
                 rho: float | torch.Tensor = 0.05, adaptive: bool = False, batched: bool = False,
                 alpha: float = 0.0, **kwargs):
        """``rho`` may be a tensor [S] of per-row radii when ``batched`` (a tuning grid of
        radii trained as stacked rows)."""
        if torch.is_tensor(rho) and rho.dim() > 0 and not batched:
            raise ValueError("a per-row SAM rho needs batched=True")
        if (torch.as_tensor(rho) < 0).any() or torch.as_tensor(rho).isnan().any():
            raise ValueError(f"SAM rho must be >= 0, got {rho}")
        if alpha < 0:
            raise ValueError(f"GSAM alpha must be >= 0, got {alpha}")
        super().__init__(params, dict(rho=rho, adaptive=adaptive, alpha=alpha, **kwargs))
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.batched = batched
        self._decompose = False         # first_step kept g for GSAM's second_step

    def _with_grad(self, group) -> list[torch.Tensor]:
        return [p for p in group["params"] if p.grad is not None]

    def _buffers(self, params: list[torch.Tensor], key: str) -> list[torch.Tensor]:
        """self.state[p][key] for each p, allocated like p on first use and reused after."""
        out = []
        for p in params:
            if key not in self.state[p]:
                self.state[p][key] = torch.empty_like(p)
            out.append(self.state[p][key])
        return out

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
        buffers kept across steps, so a step allocates nothing. When some group has alpha > 0
        (GSAM), g is first copied into buffers kept across steps too, for every parameter."""
        with torch.no_grad():
            norm = self._grad_norm()
            self._decompose = any(group["alpha"] > 0 for group in self.param_groups)
            for group in self.param_groups:
                params = self._with_grad(group)
                grads = [p.grad for p in params]
                if self._decompose and params:
                    torch._foreach_copy_(self._buffers(params, "old_g"), grads)
                if group["adaptive"]:
                    torch._foreach_mul_(grads, torch._foreach_mul(params, params))
                if self.batched:
                    for g in grads:
                        g.mul_((group["rho"] / (norm + 1e-12)).view(-1, *[1] * (g.dim() - 1)))
                else:
                    torch._foreach_mul_(grads, group["rho"] / (norm + 1e-12))
                torch._foreach_copy_(self._buffers(params, "old_p"), params)
                torch._foreach_add_(params, grads)
                for p in params:
                    self.state[p]["perturbed"] = True
            if zero_grad:
                self.zero_grad(set_to_none=True)

    def second_step(self, zero_grad: bool = True) -> None:
        """Back to w, then the base optimizer's step with the gradient taken at w + eps (with
        GSAM's g_GSAM = g_p - alpha (g - (g . g_p / ||g_p||^2) g_p) in its place)."""
        with torch.no_grad():
            perturbed = []
            for group in self.param_groups:
                params = [p for p in group["params"] if self.state[p].pop("perturbed", False)]
                if params:
                    torch._foreach_copy_(params, [self.state[p]["old_p"] for p in params])
                perturbed.append(params)
            decompose, self._decompose = self._decompose, False
            if decompose:
                self._gsam_decompose(perturbed)
            self.base_optimizer.step()
            if zero_grad:
                self.zero_grad(set_to_none=True)

    def _gsam_decompose(self, perturbed: list[list[torch.Tensor]]) -> None:
        """p.grad = g_p becomes g_p - alpha (g - c g_p) = (1 + alpha c) g_p - alpha g in place,
        c = g . g_p / ||g_p||^2 over all parameters with a gradient in both passes (a tensor [S]
        of per-row values when batched); perturbed lists each group's parameters moved by
        first_step, whose g is in self.state[p]["old_g"]."""
        pairs = [[(p.grad, self.state[p]["old_g"]) for p in params if p.grad is not None]
                 for params in perturbed]
        flat = [pair for group_pairs in pairs for pair in group_pairs]
        if not flat:
            return
        if self.batched:
            dot = sum(torch.linalg.vecdot(gp.flatten(1), g.flatten(1)) for gp, g in flat)
            sq = sum(torch.linalg.vecdot(gp.flatten(1), gp.flatten(1)) for gp, _ in flat)
        else:
            dot = torch.stack([torch.dot(gp.flatten(), g.flatten()) for gp, g in flat]).sum()
            sq = torch.linalg.vector_norm(torch.stack(torch._foreach_norm([gp for gp, _ in flat])))
            sq = sq * sq
        c = dot / sq.clamp_min(torch.finfo(sq.dtype).tiny)           # g_p = 0 has dot = 0
        for group, group_pairs in zip(self.param_groups, pairs, strict=True):
            alpha = group["alpha"]
            if alpha == 0 or not group_pairs:
                continue
            grads = [gp for gp, _ in group_pairs]
            scale = 1 + alpha * c
            if self.batched:
                for gp in grads:
                    gp.mul_(scale.view(-1, *[1] * (gp.dim() - 1)))
            else:
                torch._foreach_mul_(grads, scale)
            torch._foreach_add_(grads, [g for _, g in group_pairs], alpha=-alpha)

    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:
        if closure is None:
            raise ValueError("SAM needs a closure that computes the loss and calls backward")
        closure = torch.enable_grad()(closure)
        loss = closure()
        self.first_step(zero_grad=True)
        closure()
        self.second_step()
        return loss
