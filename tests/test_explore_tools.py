"""Direction 1 building blocks: HVPs against torch.func.hessian, power iteration, Lanczos and
Hutchinson against known spectra, and SAM's update against its closed form on a quadratic."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call, hessian

from rose.explore.sam import SAM
from rose.measure.hessian import (
    double_backward_hvp,
    flat_hvp,
    hutchinson_trace,
    jvp_hvp,
    lanczos_top,
    top_eigenvalue,
)


def _tiny():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    x, y = torch.randn(16, 3), torch.randint(0, 2, (16,))
    return model, x, y


def _explicit_hessian(model, x, y) -> torch.Tensor:
    names = [n for n, _ in model.named_parameters()]
    params = {n: p.detach() for n, p in model.named_parameters()}
    sizes = [p.numel() for p in params.values()]
    shapes = [p.shape for p in params.values()]

    def f(flat):
        p = {n: t.view(s) for n, t, s in zip(names, flat.split(sizes), shapes, strict=True)}
        return F.cross_entropy(functional_call(model, p, (x,)), y)
    flat = torch.cat([p.reshape(-1) for p in params.values()])
    return hessian(f)(flat)


def test_hvp_equals_the_explicit_hessian_times_v():
    model, x, y = _tiny()
    H = _explicit_hessian(model, x, y)
    hvp, dim = flat_hvp(model, F.cross_entropy, x, y)
    v = torch.randn(dim)
    for fn in (hvp, jvp_hvp(model, F.cross_entropy, x, y)[0],
               double_backward_hvp(model, F.cross_entropy, x, y)):
        torch.testing.assert_close(fn(v), H @ v, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(fn(2 * v), 2 * (H @ v), rtol=1e-4, atol=1e-6)


def test_spectrum_of_a_known_quadratic():
    eig = torch.tensor([5.0, 3.0, 1.0, 0.5, -0.2, 0.1])
    Q, _ = torch.linalg.qr(torch.randn(6, 6, generator=torch.Generator().manual_seed(1)))
    A = Q @ torch.diag(eig) @ Q.T

    def hvp(v):
        return A @ v
    lam, vec = top_eigenvalue(hvp, 6, iters=500, tol=1e-9)
    assert lam == pytest.approx(5.0, rel=1e-4)
    assert abs(float(vec @ Q[:, 0])) == pytest.approx(1.0, abs=1e-3)
    np.testing.assert_allclose(lanczos_top(hvp, 6, k=2), [5.0, 3.0], rtol=1e-5)
    D = torch.diag(eig)
    tr, se = hutchinson_trace(lambda v: D @ v, 6, probes=5)
    assert tr == pytest.approx(float(eig.sum()), abs=1e-5) and se == pytest.approx(0, abs=1e-6)
    tr, se = hutchinson_trace(hvp, 6, probes=2000)
    assert abs(tr - float(eig.sum())) < 4 * se


def test_power_iteration_and_lanczos_on_a_small_nets_hessian():
    model, x, y = _tiny()
    H = _explicit_hessian(model, x, y)
    evals = torch.linalg.eigvalsh(H)
    hvp, dim = flat_hvp(model, F.cross_entropy, x, y)
    top = float(evals[evals.abs().argmax()])
    lam, _ = top_eigenvalue(hvp, dim, iters=1000, tol=1e-10)
    assert lam == pytest.approx(top, rel=1e-3)
    np.testing.assert_allclose(lanczos_top(hvp, dim, k=1), [float(evals.max())], rtol=1e-4)
    tr, se = hutchinson_trace(hvp, dim, probes=400)
    assert abs(tr - float(torch.trace(H))) < 4 * se + 1e-6


@pytest.mark.parametrize("adaptive", [False, True])
def test_sam_update_on_a_quadratic_matches_the_closed_form(adaptive):
    """L(w) = 1/2 w^T A w: w' = w - lr A (w + eps), eps = rho T^2 A w / ||T A w||."""
    A = torch.tensor([[3.0, 0.5], [0.5, 1.0]])
    w0 = torch.tensor([1.0, -2.0])
    w = torch.nn.Parameter(w0.clone())
    rho, lr = 0.1, 0.05
    opt = SAM([w], torch.optim.SGD, rho=rho, adaptive=adaptive, lr=lr)

    def closure():
        opt.zero_grad()
        loss = 0.5 * w @ A @ w
        loss.backward()
        return loss
    opt.step(closure)
    g = A @ w0
    T = w0.abs() if adaptive else torch.ones(2)
    eps = rho * T ** 2 * g / (T * g).norm()
    torch.testing.assert_close(w.detach(), w0 - lr * A @ (w0 + eps))


def test_sam_with_rho_zero_is_the_base_optimizer_and_negative_rho_is_rejected():
    torch.manual_seed(0)
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    sam = SAM(a.parameters(), torch.optim.SGD, rho=0.0, lr=0.1, momentum=0.9)
    sgd = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        def closure():
            sam.zero_grad()
            loss = F.cross_entropy(a(x), y)
            loss.backward()
            return loss
        sam.step(closure)
        sgd.zero_grad()
        F.cross_entropy(b(x), y).backward()
        sgd.step()
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    with pytest.raises(ValueError, match="rho"):
        SAM(a.parameters(), torch.optim.SGD, rho=-0.1, lr=0.1)


def test_spectral_density_by_lanczos_quadrature():
    """Full Lanczos (m = n) on a diagonal H recovers its eigenvalues as nodes; the weights sum
    to 1 and their first moment is v^T H v / n (the quadrature is exact for polynomials of
    degree < 2m)."""
    from rose.measure.hessian import lanczos_tridiagonal, spectral_density

    eig = torch.tensor([4.0, 2.0, 1.0, 0.5, -0.5, 0.1])
    H = torch.diag(eig)

    def hvp(v):
        return H @ v
    nodes, w = spectral_density(hvp, 6, steps=6, probes=1)
    assert np.allclose(np.sort(nodes), np.sort(eig.numpy()), atol=1e-4)
    assert w.sum() == pytest.approx(1.0)
    assert (w * nodes).sum() == pytest.approx(float(eig.mean()), rel=1e-4)   # Rademacher v
    a, b = lanczos_tridiagonal(hvp, torch.ones(6), 3)
    assert len(a) == 3 and len(b) == 2
