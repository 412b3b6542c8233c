"""Hessian-vector products and the Hessian's spectrum from them, on torch.func (the PyPI
pyhessian 0.1 is outdated: research notes, explore.md, pitfall 5).

hvp          H v by double backward on one cached gradient graph (flat_hvp), or by
             forward-over-reverse, torch.func.jvp of torch.func.grad (jvp_hvp); the first
             measured faster here (benchmarks/bench_explore.py)
top_eigenvalue
             power iteration on v <- H v / ||H v||; converges to the eigenvalue of largest
             magnitude (can be negative away from a minimum); Rayleigh quotient v^T H v
lanczos_top  the largest algebraic eigenvalues by Lanczos: scipy.sparse.linalg.eigsh on a
             LinearOperator wrapping hvp (which="LA")
hutchinson_trace
             tr(H) = E[v^T H v], v Rademacher (Hutchinson 1989); exact for diagonal H
spectral_density
             stochastic Lanczos quadrature: Ritz values of m Lanczos steps as nodes, squared
             first components of their eigenvectors as weights (Ghorbani et al. 2019)
Everything works on a flat parameter vector; ``flat_hvp`` builds the closure for a module, a
batch and a loss.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal
from torch.func import functional_call, grad, jvp

from rose.device import Device, generator

HVP = Callable[[torch.Tensor], torch.Tensor]


def flat_hvp(model: torch.nn.Module, loss_fn: Callable, x: torch.Tensor, y: torch.Tensor
             ) -> tuple[HVP, int]:
    """(v -> H v on flat vectors, dimension) for L(theta) = loss_fn(model_theta(x), y) over all
    parameters that require grad, at the parameters as they are now.

    Double backward with one cached gradient graph: g = grad L (create_graph) once, then each
    H v = grad(g . v). On these CPUs it measured 4x faster per HVP than torch.func's
    forward-over-reverse (jvp of grad, :func:`jvp_hvp`), which recomputes the gradient on every
    call (benchmarks/bench_explore.py). The graph holds the batch's activations: build a new
    closure per batch and after any parameter update."""
    params = [p for p in model.parameters() if p.requires_grad]
    loss = loss_fn(model(x), y)
    g = torch.cat([t.reshape(-1) for t in torch.autograd.grad(loss, params,
                                                              create_graph=True)])

    def hvp(v: torch.Tensor) -> torch.Tensor:
        hv = torch.autograd.grad(g, params, grad_outputs=v, retain_graph=True)
        return torch.cat([t.reshape(-1) for t in hv]).detach()
    return hvp, g.numel()


def jvp_hvp(model: torch.nn.Module, loss_fn: Callable, x: torch.Tensor, y: torch.Tensor
            ) -> tuple[HVP, int]:
    """H v = d/dt grad L(theta + t v): torch.func forward-over-reverse (jvp of grad), no state
    kept between calls. Buffers (e.g. BatchNorm statistics) are held fixed."""
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    shapes = [params[n].shape for n in names]
    sizes = [params[n].numel() for n in names]
    buffers = dict(model.named_buffers())

    def unflatten(v: torch.Tensor) -> dict[str, torch.Tensor]:
        return {n: t.view(s) for n, t, s in zip(names, v.split(sizes), shapes, strict=True)}

    def loss(p: dict[str, torch.Tensor]) -> torch.Tensor:
        return loss_fn(functional_call(model, {**p, **buffers}, (x,)), y)

    def hvp(v: torch.Tensor) -> torch.Tensor:
        _, hv = jvp(grad(loss), (params,), (unflatten(v),))
        return torch.cat([hv[n].reshape(-1) for n in names])
    return hvp, sum(sizes)


def double_backward_hvp(model: torch.nn.Module, loss_fn: Callable, x: torch.Tensor,
                        y: torch.Tensor) -> HVP:
    """A plain double-backward H v computed from scratch on every call (the benchmark's
    reference: gradient with create_graph, then a second backward)."""
    params = [p for p in model.parameters() if p.requires_grad]

    def hvp(v: torch.Tensor) -> torch.Tensor:
        g = torch.autograd.grad(loss_fn(model(x), y), params, create_graph=True)
        g = torch.cat([t.reshape(-1) for t in g])
        hv = torch.autograd.grad(g, params, grad_outputs=v)
        return torch.cat([t.reshape(-1) for t in hv])
    return hvp


def top_eigenvalue(hvp: HVP, dim: int | tuple[int, int], iters: int = 100, tol: float = 1e-4,
                   seed: int = 0, device: Device = "cpu"
                   ) -> tuple[float | torch.Tensor, torch.Tensor]:
    """Power iteration: (eigenvalue of largest magnitude, its unit eigenvector). Stops when
    the Rayleigh quotient changes by less than tol (relative).

    ``dim`` (S, P) runs S independent iterations at once on the rows of v (block-diagonal H,
    as rose.nn.StackedNet.hvp gives); the eigenvalues are then a tensor [S] and
    iteration stops when every row has converged."""
    g = generator(seed, device)
    batched = not isinstance(dim, int)
    v = torch.randn(dim if batched else (1, dim), generator=g, device=g.device)
    v /= v.norm(dim=-1, keepdim=True)
    lam = torch.zeros(v.shape[0], device=g.device)
    for _ in range(iters):
        hv = hvp(v if batched else v[0]).reshape(v.shape)
        new = (v * hv).sum(-1)
        v = hv / (hv.norm(dim=-1, keepdim=True) + 1e-30)
        done = bool(((new - lam).abs() <= tol * (lam.abs() + 1e-12)).all())
        lam = new
        if done:
            break
    return (lam, v) if batched else (float(lam[0]), v[0])


def lanczos_top(hvp: HVP, dim: int, k: int = 1, tol: float = 1e-6, seed: int = 0,
                device: Device = "cpu") -> np.ndarray:
    """The k largest (algebraic) eigenvalues, by ARPACK's Lanczos (scipy eigsh)."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    def mv(v: np.ndarray) -> np.ndarray:
        return hvp(torch.as_tensor(v, dtype=torch.float32, device=device).reshape(-1)) \
            .double().cpu().numpy()
    op = LinearOperator((dim, dim), matvec=mv, dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(dim)
    vals = eigsh(op, k=k, which="LA", tol=tol, v0=v0, return_eigenvectors=False)
    return np.sort(vals)[::-1]


def hutchinson_trace(hvp: HVP, dim: int | tuple[int, int], probes: int = 50, seed: int = 0,
                     device: Device = "cpu"
                     ) -> tuple[float, float] | tuple[torch.Tensor, torch.Tensor]:
    """(mean of v^T H v over Rademacher probes, its standard error); with ``dim`` (S, P), one
    estimate per row (tensors [S])."""
    g = generator(seed, device)
    batched = not isinstance(dim, int)
    shape = dim if batched else (1, dim)
    vals = []
    for _ in range(probes):
        v = torch.randint(0, 2, shape, generator=g, device=g.device).float() * 2 - 1
        vals.append((v * hvp(v if batched else v[0]).reshape(shape)).sum(-1))
    a = torch.stack(vals)                                   # [probes, S]
    se = a.std(0) / probes ** 0.5 if probes > 1 else torch.zeros(shape[0], device=g.device)
    if batched:
        return a.mean(0), se
    return float(a.mean()), float(se[0])


def lanczos_tridiagonal(hvp: HVP, v0: torch.Tensor, steps: int
                        ) -> tuple[np.ndarray, np.ndarray]:
    """m = ``steps`` Lanczos iterations from v0 with full reorthogonalisation: the diagonal
    alpha [m] and off-diagonal beta [m - 1] of the tridiagonal T = Q^T H Q (stops early if the
    Krylov space is exhausted)."""
    q = v0 / v0.norm()
    Q = [q]
    alphas, betas = [], []
    for j in range(steps):
        w = hvp(Q[-1])
        a = float(w @ Q[-1])
        alphas.append(a)
        basis = torch.stack(Q)
        w = w - basis.T @ (basis @ w)              # full reorthogonalisation (twice is enough)
        w = w - basis.T @ (basis @ w)
        b = float(w.norm())
        if j == steps - 1 or b < 1e-10:
            break
        betas.append(b)
        Q.append(w / b)
    return np.asarray(alphas), np.asarray(betas)


def spectral_density(hvp: HVP, dim: int, steps: int = 30, probes: int = 1, seed: int = 0,
                     device: Device = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Stochastic Lanczos quadrature (Ghorbani et al. 2019; the PyHessian fix b5b6772: weights
    are the squared first components of T's eigenvectors): (nodes, weights) pooled over
    ``probes`` Rademacher start vectors, weights summing to 1. The density is
    sum_i w_i N(lambda; node_i, sigma^2) for a chosen smoothing sigma."""
    g = generator(seed, device)
    nodes, weights = [], []
    for _ in range(probes):
        v = torch.randint(0, 2, (dim,), generator=g, device=g.device).float() * 2 - 1
        a, b = lanczos_tridiagonal(hvp, v, steps)
        vals, vecs = eigh_tridiagonal(a, b)
        nodes.append(vals)
        weights.append(vecs[0] ** 2 / probes)
    return np.concatenate(nodes), np.concatenate(weights)
