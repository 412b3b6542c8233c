"""Direction 1's measurements against reference computations written from their definitions,
on several rows of different scales at once: power iteration, Hutchinson, Lanczos and
stochastic Lanczos quadrature, the PAC-Bayes sigma', adaptive m-sharpness, loss curves and
surfaces, and the trajectory summaries."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rose.measure.hessian import (
    hutchinson_trace,
    lanczos_top,
    lanczos_tridiagonal,
    spectral_density,
    top_eigenvalue,
)
from rose.measure.landscape import (
    filter_normalized_direction,
    loss_curve,
    loss_surface,
    trajectory_pca,
)
from rose.measure.sharpness import _scale, adaptive_sharpness, sigma_prime
from rose.nn import StackedNet


def _blocks(eigs: list[list[float]], seed: int = 0):
    """Block-diagonal symmetric H (one block per row) with the given spectra; hvp counts."""
    S, P = len(eigs), len(eigs[0])
    Q = torch.linalg.qr(torch.randn(S, P, P, generator=torch.Generator().manual_seed(seed)))[0]
    A = Q @ torch.diag_embed(torch.tensor(eigs, dtype=torch.float32)) @ Q.transpose(1, 2)
    calls = []

    def hvp(v):
        calls.append(1)
        return torch.einsum("sij,sj->si", A, v) if v.dim() == 2 else A[0] @ v
    return A, hvp, calls


def test_power_iteration_per_row_stops_when_every_row_has_converged():
    _, hvp, calls = _blocks([[4.0, 1.0, 0.5, 0.1], [-9.0, 3.0, 1.0, 0.0]])
    lam, v = top_eigenvalue(hvp, (2, 4), iters=500, tol=1e-5)
    assert torch.allclose(lam, torch.tensor([4.0, -9.0]), rtol=1e-4)   # largest magnitude
    assert torch.allclose(v.norm(dim=1), torch.ones(2))
    assert 5 < len(calls) < 500                                         # stopped early
    calls.clear()
    top_eigenvalue(hvp, (2, 4), iters=7, tol=0.0)
    assert len(calls) == 7
    calls.clear()
    a = top_eigenvalue(hvp, (2, 4))
    assert len(calls) <= 100 and torch.equal(a[0], top_eigenvalue(hvp, (2, 4), seed=0)[0])
    assert not torch.equal(a[1], top_eigenvalue(hvp, (2, 4), seed=1)[1])
    _, one, _ = _blocks([[2.0, 0.5, 0.1]])
    lam1, v1 = top_eigenvalue(one, 3, iters=300, tol=1e-9)
    assert isinstance(lam1, float) and lam1 == pytest.approx(2.0, rel=1e-4)
    assert v1.shape == (3,)


def test_hutchinson_by_hand_and_its_standard_error():
    A, hvp, calls = _blocks([[3.0, 1.0, 2.0], [10.0, 0.0, -4.0]])
    tr, se = hutchinson_trace(hvp, (2, 3), probes=2, seed=5)
    g = torch.Generator().manual_seed(5)
    vs = [torch.randint(0, 2, (2, 3), generator=g).float() * 2 - 1 for _ in range(2)]
    vals = torch.stack([(v * torch.einsum("sij,sj->si", A, v)).sum(1) for v in vs])
    assert torch.allclose(tr, vals.mean(0), atol=1e-5)
    assert torch.allclose(se, vals.std(0) / 2 ** 0.5, atol=1e-5)
    _tr1, se1 = hutchinson_trace(hvp, (2, 3), probes=1)
    assert torch.equal(se1, torch.zeros(2))
    calls.clear()
    hutchinson_trace(hvp, (2, 3))
    assert len(calls) == 50                                             # the default probes
    assert torch.equal(hutchinson_trace(hvp, (2, 3))[0], hutchinson_trace(hvp, (2, 3),
                                                                          seed=0)[0])
    _, one, _ = _blocks([[1.0, 2.0, 3.0, 4.0]])
    t, s = hutchinson_trace(one, 4, probes=200)
    assert isinstance(t, float) and abs(t - 10.0) < 4 * s + 1e-6


def test_lanczos_top_is_the_largest_algebraic_eigenvalue():
    _, hvp, _ = _blocks([[-20.0, 3.0, 2.0, 1.0, 0.5, 0.1]])
    assert lanczos_top(hvp, 6) == pytest.approx([3.0], rel=1e-5)       # not the -20
    top2 = lanczos_top(hvp, 6, k=2)
    assert top2 == pytest.approx([3.0, 2.0], rel=1e-5)


def test_lanczos_tridiagonal_reproduces_the_spectrum():
    eig = [5.0, 2.0, -1.0, 0.5]
    A, _hvp, _ = _blocks([eig])
    a, b = lanczos_tridiagonal(lambda v: A[0] @ v, torch.ones(4), 4)
    T = np.diag(a) + np.diag(b, 1) + np.diag(b, -1)
    assert np.allclose(np.sort(np.linalg.eigvalsh(T)), np.sort(eig), atol=1e-4)
    assert a[0] == pytest.approx(float(torch.ones(4) @ A[0] @ torch.ones(4)) / 4, rel=1e-5)
    a2, b2 = lanczos_tridiagonal(lambda v: 3.0 * v, torch.ones(5), 5)   # Krylov space of 1
    assert a2.tolist() == pytest.approx([3.0]) and len(b2) == 0


def test_spectral_density_weights_and_nodes():
    eig = list(np.linspace(-1.0, 4.0, 40))
    A, _, _ = _blocks([eig])

    def hv(v):
        return A[0] @ v
    nodes, weights = spectral_density(hv, 40)
    assert len(nodes) == 30 and weights.sum() == pytest.approx(1.0, rel=1e-5)   # defaults
    n2, w2 = spectral_density(hv, 40, steps=10, probes=3, seed=1)
    assert len(n2) == 30 and w2.sum() == pytest.approx(1.0, rel=1e-5)
    mean = float((n2 * w2).sum())
    assert mean == pytest.approx(np.mean(eig), abs=0.6)                # first moment ~ tr/P
    assert np.array_equal(spectral_density(hv, 40, steps=8)[0],
                          spectral_density(hv, 40, steps=8, seed=0)[0])


def _net_data(S=2, n=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    net = StackedNet({"name": "mlp", "hidden": [6]}, (4,), 3)
    theta = net.init(range(S)) * torch.tensor([1.0, 2.5][:S])[:, None]
    X = torch.randn(n, 4, generator=g)
    y = torch.randint(0, 3, (S, n), generator=g)
    return net, theta, X, y


def _fitted(S=2, n=60):
    """Labels = the network's own predictions: base accuracy 1, so noise costs accuracy."""
    net, theta, X, _ = _net_data(S, n)
    return net, theta, X, net.logits(theta, X, shared=True).argmax(-1)


SIGMA_CASES = [dict(target_drop=0.05, steps=6, samples=3, upper=1.5, eps=1e-2, seed=2),
               dict(target_drop=0.0, steps=6, samples=2, upper=0.1, eps=1e-4, seed=1),
               dict(target_drop=0.2, steps=5, samples=2, upper=1.0, eps=0.05, seed=0)]


@pytest.mark.parametrize("kw", SIGMA_CASES)
def test_sigma_prime_is_the_bisection_written_out(kw):
    net, theta, X, y = _fitted()
    got = sigma_prime(net, theta, X, y, **kw)
    g = torch.Generator().manual_seed(kw["seed"])
    _, base = net.evaluate(theta, X, y)
    assert torch.equal(base, torch.ones(2))
    lo, hi = torch.zeros(2), torch.full((2,), kw["upper"])
    for _ in range(kw["steps"]):
        mid = (lo + hi) / 2
        std = torch.sqrt(mid[:, None] ** 2 * theta ** 2 + kw["eps"] ** 2)
        acc = torch.stack([net.evaluate(theta + std * torch.randn(theta.shape, generator=g),
                                        X, y)[1] for _ in range(kw["samples"])]).mean(0)
        ok = base - acc <= kw["target_drop"]
        lo, hi = torch.where(ok, mid, lo), torch.where(ok, hi, mid)
    assert torch.allclose(got, (lo + hi) / 2)
    assert ((lo > 0) & (hi < kw["upper"])).any()          # the bisection went both ways


def test_sigma_prime_defaults():
    net, theta, X, y = _fitted()
    defaults = sigma_prime(net, theta, X, y)
    assert torch.equal(defaults, sigma_prime(net, theta, X, y, target_drop=0.1, steps=15,
                                             samples=10, upper=2.0, eps=1e-3, seed=0))
    for changed in (dict(target_drop=0.2), dict(samples=11), dict(eps=0.3), dict(seed=1)):
        assert not torch.equal(defaults, sigma_prime(net, theta, X, y, **changed)), changed


def _ascent_by_hand(net, theta, T, x, yy, rho=0.3, steps=4):
    """The rise of one chunk: projected ascent of T-scaled steps of 2.5 rho / steps on the
    ball ||delta|| <= rho, keeping the largest loss seen."""
    base, g = net.grad(theta, x, yy, shared=True)
    delta, best = torch.zeros_like(theta), base.clone()
    for _ in range(steps):
        tg = T * g
        delta = delta + (2.5 * rho / steps) * tg / tg.norm(dim=1, keepdim=True)
        delta = delta * torch.clamp(rho / delta.norm(dim=1, keepdim=True), max=1.0)
        loss, g = net.grad(theta + T * delta, x, yy, shared=True)
        best = torch.maximum(best, loss)
    return best - base


def test_adaptive_sharpness_is_the_projected_ascent_written_out():
    net, theta, X, y = _net_data(n=50)
    got = adaptive_sharpness(net, theta, X, y, rho=0.3, m=20, steps=4, eta=0.05)
    T = torch.where(net.weight_mask(), theta.abs() + 0.05, torch.ones_like(theta))
    assert torch.equal(_scale(net, theta, 0.05), T)
    total = sum(_ascent_by_hand(net, theta, T, X[i:i + 20], y[:, i:i + 20])
                for i in (0, 20))                           # the last 10 rows form no chunk
    assert torch.allclose(got, total / 2, atol=1e-6)
    # one chunk (n = m) and 2m - 1 rows (the partial second chunk is dropped): the same value
    one = adaptive_sharpness(net, theta, X[:20], y[:, :20], rho=0.3, m=20, steps=4, eta=0.05)
    partial = adaptive_sharpness(net, theta, X[:39], y[:, :39], rho=0.3, m=20, steps=4,
                                 eta=0.05)
    want = _ascent_by_hand(net, theta, T, X[:20], y[:, :20])
    assert torch.allclose(one, want, atol=1e-6) and torch.equal(one, partial)


def test_adaptive_sharpness_defaults():
    net, theta, X, y = _net_data(n=256)
    defaults = adaptive_sharpness(net, theta, X, y)
    assert torch.equal(defaults, adaptive_sharpness(net, theta, X, y, rho=0.5, m=128, steps=10,
                                                    eta=0.01))
    for changed in (dict(rho=1.5), dict(m=129), dict(steps=11), dict(eta=0.02)):
        assert not torch.allclose(defaults, adaptive_sharpness(net, theta, X, y, **changed)), \
            changed


def test_loss_curve_and_surface_are_evaluations_along_the_directions():
    net, theta, X, y = _net_data()
    d1 = filter_normalized_direction(net, theta, torch.Generator().manual_seed(1))
    d2 = filter_normalized_direction(net, theta, torch.Generator().manual_seed(2))
    alphas = np.array([-0.5, 0.0, 1.0])
    loss, acc = loss_curve(net, theta, d1, X, y, alphas)
    assert loss.shape == (3, 2)
    for i, a in enumerate(alphas):
        lo, ac = net.evaluate(theta + float(a) * d1, X, y)
        assert np.allclose(loss[i], lo.numpy()) and np.allclose(acc[i], ac.numpy())
    grid = np.array([-1.0, 0.5])
    z = loss_surface(net, theta, d1, d2, X, y, grid)
    assert z.shape == (2, 2, 2)
    want = net.evaluate(theta + (-1.0) * d1 + 0.5 * d2, X, y)[0].numpy()
    assert np.allclose(z[0, 1], want)                      # a down the rows, b across
    a1 = filter_normalized_direction(net, theta, torch.Generator().manual_seed(1))
    assert torch.equal(a1, d1) and not torch.equal(d1, d2)


def test_trajectory_pca_of_a_right_angle():
    """A path of 3 then 4 at a right angle: length 7, displacement 5."""
    snaps = np.array([[0.0, 0.0, 0.0], [3.0, 0.0, 0.0], [3.0, 4.0, 0.0]])
    out = trajectory_pca(snaps)
    assert out["path_length"] == pytest.approx(7.0)
    assert out["displacement"] == pytest.approx(5.0)
    assert out["tortuosity"] == pytest.approx(7.0 / 5.0)
    assert np.allclose(out["coords"][-1], 0.0)                 # relative to the last point
    rel = snaps - snaps[-1]
    # the coordinates keep the distances between snapshots (two axes span the plane)
    d = np.linalg.norm(out["coords"][:, None] - out["coords"][None], axis=-1)
    assert np.allclose(d, np.linalg.norm(rel[:, None] - rel[None], axis=-1))
    assert out["explained"].sum() == pytest.approx(1.0)
    with np.errstate(invalid="ignore"):
        still = trajectory_pca(np.ones((3, 2)))          # no motion: 0 / max(0, 1e-12)
    assert still["path_length"] == 0.0 and still["tortuosity"] == 0.0


def test_power_iteration_default_tolerance_is_relative_1e_4():
    # row 0: ratio 0.8, converges in a few dozen steps; row 1: the same at a scale of 1e-3,
    # where an absolute tolerance would stop at once
    _, hvp, calls = _blocks([[1.0, 0.8, 0.5], [2e-3, 1.6e-3, 1e-3]])
    lam, _ = top_eigenvalue(hvp, (2, 3))
    assert torch.allclose(lam, torch.tensor([1.0, 2e-3]), rtol=2e-3)
    calls.clear()
    top_eigenvalue(hvp, (2, 3), tol=-1.0)                             # never converges
    assert len(calls) == 100                                          # the default iters


def test_one_power_step_is_the_rayleigh_quotient_of_the_unit_start():
    A, hvp, _ = _blocks([[4.0, 1.0, 0.5, 0.1], [-9.0, 3.0, 1.0, 0.0]])
    lam, v = top_eigenvalue(hvp, (2, 4), iters=1, seed=3)
    v0 = torch.randn(2, 4, generator=torch.Generator().manual_seed(3))
    v0 = v0 / v0.norm(dim=1, keepdim=True)
    Av = torch.einsum("sij,sj->si", A, v0)
    assert torch.allclose(lam, (v0 * Av).sum(1), atol=1e-6)
    assert torch.allclose(v, Av / Av.norm(dim=1, keepdim=True), atol=1e-6)


def test_spectral_density_of_one_probe_written_out():
    from scipy.linalg import eigh_tridiagonal
    A, _, _ = _blocks([list(np.linspace(-1.0, 3.0, 12))], seed=4)   # a rotated, full matrix

    def hv(v):
        return A[0] @ v
    nodes, weights = spectral_density(hv, 12, steps=12, probes=1, seed=7)
    v = torch.randint(0, 2, (12,), generator=torch.Generator().manual_seed(7)).float() * 2 - 1
    a, b = lanczos_tridiagonal(hv, v, 12)
    vals, vecs = eigh_tridiagonal(a, b)
    assert np.allclose(nodes, vals) and np.allclose(weights, vecs[0] ** 2)
    # a full-length run from this start: the nodes are the spectrum, the weights (q_i . v)^2/P
    evals, evecs = np.linalg.eigh(A[0].double().numpy())
    assert np.allclose(np.sort(nodes), evals, atol=1e-4)
    w_true = (evecs.T @ v.double().numpy()) ** 2 / 12
    assert np.allclose(weights[np.argsort(nodes)], w_true, atol=1e-4)


def test_trajectory_summaries_away_from_the_origin_and_below_unit_length():
    snaps = np.array([[5.0, 5.0], [5.3, 5.0], [5.3, 5.4]])          # path 0.7, displacement 0.5
    out = trajectory_pca(snaps)
    assert out["displacement"] == pytest.approx(0.5)
    assert out["tortuosity"] == pytest.approx(0.7 / 0.5)
    assert out["coords"].shape == (3, 2) and len(out["explained"]) == 2


def test_lanczos_default_tolerance_resolves_a_clustered_top_eigenvalue():
    # eigenvalues 1, 0.999, 0.998, ...: a loose tolerance stops at a Ritz value well below 1
    n = 400
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    ev = 1.0 - 1e-3 * np.arange(n)
    A = torch.tensor((q * ev) @ q.T, dtype=torch.float64)
    top = lanczos_top(lambda v: (A @ v.double()).float(), n)
    assert abs(top[0] - 1.0) < 1e-5


def test_trajectory_pca_is_the_exact_two_component_svd():
    # a flat spectrum in many dimensions: an approximate (randomized) solver would be off
    snaps = np.random.default_rng(0).normal(size=(40, 700))
    out = trajectory_pca(snaps)
    rel = snaps - snaps[-1]
    centred = rel - rel.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    assert out["coords"].shape == (40, 2) and out["explained"].shape == (2,)
    np.testing.assert_allclose(out["explained"], (s ** 2 / (s ** 2).sum())[:2], rtol=1e-10)
    want = rel @ vt[:2].T
    np.testing.assert_allclose(np.abs(out["coords"]), np.abs(want), rtol=1e-8, atol=1e-8)


def test_power_iteration_converges_on_a_row_without_curvature():
    # a zero-curvature row has lam = 0 = its next estimate: converged at once, so the batch
    # stops when the other row has converged (not at the iteration cap)
    _, hvp, calls = _blocks([[2.0, 1.9, 0.5], [0.0, 0.0, 0.0]])
    lam, _ = top_eigenvalue(hvp, (2, 3))
    assert len(calls) < 100 and lam[1] == 0.0


def test_lanczos_is_deterministic():
    A, _, _ = _blocks([[3.0, 2.0, 1.0, 0.5, 0.1]])
    one = lanczos_top(lambda v: A[0] @ v, 5, k=2)
    two = lanczos_top(lambda v: A[0] @ v, 5, k=2)
    assert np.array_equal(one, two)
