"""Direction 1's update rules against independent reference computations written from their
equations (the research notes), on several rows at once whose scales differ, so a norm taken
over the wrong axis or a default changed shows: the contour walk (every direction, selection
and the isotropic ablation), SAM / ASAM, GAM and Entropy-SGD."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rose.explore.contour import (
    ContourSettings,
    contour_walk,
    lowest_score,
    newton_correct,
    tangent_step,
)
from rose.explore.entropy_sgd import entropy_sgd_direction
from rose.explore.gam import gam_direction
from rose.explore.sam import SAM
from rose.measure.landscape import filter_normalized_direction
from rose.nn import StackedNet

from .conftest import quadratic_closure


def _problem(S=2, n=30, din=5, C=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    net = StackedNet({"name": "mlp", "hidden": [4]}, (din,), C)
    theta = net.init(range(S))
    theta = theta * torch.tensor([1.0, 3.0, 0.5][:S])[:, None]     # rows of different scale
    X = torch.randn(n, din, generator=g)
    y = torch.randint(0, C, (S, n), generator=g)
    return net, theta, X, y


def _unit(v):
    return v / v.norm(dim=1, keepdim=True)


def reference_walk(net, theta, X, y, s, seed, sel=None):
    """The contour warm-up written out from explore.md section 3, row by row where it can be;
    candidates scored on ``sel`` = (X_S, y_S) with the same noise draws for every candidate."""
    gen = torch.Generator().manual_seed(seed)
    Xs, ys = sel if sel is not None else (X, y)
    S = theta.shape[0]
    th0 = theta.clone()
    eta = s.step_size * th0.norm(dim=1, keepdim=True)
    loss, g = net.grad(theta, X, y, shared=True)
    grads, fwd = 1, 0
    c0 = loss.clone()
    heading = torch.zeros_like(theta)
    cands, steps, scores, since = [theta.clone()], [0], [], []
    losses, levels, dists, curvs = [loss], [c0], [torch.zeros(S)], []

    def score(th):
        nonlocal fwd
        if s.select == "perturbation":
            crn = torch.Generator().manual_seed(seed + 7919)     # restarted per candidate
            base = net.losses(th, Xs, ys, shared=True)
            rise = torch.zeros(S)
            for _ in range(s.perturb_samples):
                noise = s.perturb_sigma * th.abs() * torch.randn(th.shape, generator=crn)
                rise += net.losses(th + noise, Xs, ys, shared=True) - base
            fwd += 1 + s.perturb_samples
            return rise / s.perturb_samples
        if s.select == "curvature":
            return torch.stack(since).mean(0) if since else torch.full((S,), float("inf"))
        return torch.zeros(S)

    scores.append(score(theta))
    for k in range(1, s.steps + 1):
        c = c0 * (1 - s.level_decay * k / s.steps)
        r = filter_normalized_direction(net, theta, gen)
        if s.direction == "random":
            d = r
        elif s.direction == "momentum":
            heading = s.momentum * heading + (1 - s.momentum) * _unit(r)
            d = heading
        else:
            _, gs = net.grad(theta + s.rho * _unit(g), X, y, shared=True)
            grads += 1
            d = _unit(g - gs) + s.noise * _unit(r)
        if s.tangent:
            gh = _unit(g)
            t = d - (d * gh).sum(1, keepdim=True) * gh
            pred = theta + eta * _unit(t)
        else:
            pred = theta + eta * _unit(d)
        lp, gp = net.grad(pred, X, y, shared=True)
        grads += 1
        curv = 2 * (lp - loss) / eta[:, 0] ** 2
        curvs.append(curv)
        since.append(curv)
        if s.corrector:
            theta = pred - ((lp - c)[:, None] / (gp * gp).sum(1, keepdim=True)) * gp
            loss = net.losses(theta, X, y, shared=True)
            fwd += 1
        else:
            theta, loss = pred, lp
        g = gp
        losses.append(loss)
        levels.append(c)
        dists.append((theta - th0).norm(dim=1))
        if k % s.keep_every == 0 or k == s.steps:
            cands.append(theta.clone())
            steps.append(k)
            scores.append(score(theta))
            since = []
    sc = torch.stack(scores)
    if s.select == "none":
        pick = torch.full((S,), len(cands) - 1)
    elif s.select == "random":
        pick = torch.randint(len(cands), (S,), generator=gen)
    else:
        pick = torch.tensor([min((v, i) for i, v in enumerate(col.tolist()) if v == v)[1]
                             if (col == col).any() else 0 for col in sc.T])
    chosen = torch.stack(cands)[pick, torch.arange(S)]
    return chosen, {"loss": torch.stack(losses), "level": torch.stack(levels),
                    "distance": torch.stack(dists), "curvature": torch.stack(curvs),
                    "scores": sc, "chosen_step": np.asarray(steps)[pick.numpy()],
                    "grad_evals": grads, "forwards": fwd, "steps": steps}


WALKS = [
    dict(direction="flat", select="perturbation", steps=7, keep_every=3, level_decay=0.3,
         rho=0.1, noise=0.3, perturb_samples=3, perturb_sigma=0.1, step_size=0.02),
    dict(direction="momentum", select="curvature", steps=6, keep_every=2, momentum=0.6,
         step_size=0.03),
    dict(direction="random", select="none", steps=5, keep_every=2),
    dict(direction="random", select="perturbation", steps=4, keep_every=4, tangent=False,
         corrector=False),
    dict(direction="random", select="random", steps=6, keep_every=2, corrector=False),
    dict(direction="flat", select="random", steps=5, keep_every=1, tangent=False),
]


@pytest.mark.parametrize("kw", WALKS, ids=[f"{w['direction']}-{w['select']}-"
                                           f"{w.get('tangent', True)}{w.get('corrector', True)}"
                                           for w in WALKS])
def test_contour_walk_equals_the_reference_computation(kw):
    net, theta, X, y = _problem()
    s = ContourSettings(**kw)
    sel = (X + 0.5 * torch.randn(X.shape, generator=torch.Generator().manual_seed(9)), y)
    chosen, rec = contour_walk(net, theta, X, y, s, seed=4, select_on=sel)
    want, ref = reference_walk(net, theta, X, y, s, seed=4, sel=sel)
    for key in ("loss", "level", "distance", "curvature"):
        got = torch.as_tensor(np.asarray(getattr(rec, key))).float()
        assert torch.allclose(got, ref[key], rtol=1e-4, atol=1e-6), key
    assert torch.allclose(torch.as_tensor(rec.candidate_scores).float(), ref["scores"], rtol=1e-4,
                          atol=1e-6)
    assert rec.chosen_step.tolist() == ref["chosen_step"].tolist()
    assert rec.candidate_steps == ref["steps"]
    assert (rec.grad_evals, rec.forwards) == (ref["grad_evals"], ref["forwards"])
    assert torch.allclose(chosen, want, atol=1e-6)


def test_contour_walk_defaults_and_bad_settings():
    net, theta, X, y = _problem()
    s = ContourSettings(steps=3, keep_every=1)
    a, _ = contour_walk(net, theta, X, y, s)
    b, _ = contour_walk(net, theta, X, y, s, seed=0)
    assert torch.equal(a, b)                              # the default seed is 0
    for bad, msg in ((ContourSettings(steps=0), "contour steps must be >= 1 when the warm-up "
                                                "is on"),
                     (ContourSettings(direction="up"), "contour direction 'up'; known: "),
                     (ContourSettings(select="best"), "contour select 'best'; known: ")):
        with pytest.raises(ValueError, match="^" + msg.replace("(", r"\(")):
            contour_walk(net, theta, X, y, bad)
    _, rec = contour_walk(net, theta, X, y, ContourSettings(steps=1, keep_every=5))
    assert rec.candidate_steps == [0, 1]                  # the last step is always a candidate


def test_tangent_and_corrector_by_hand_on_two_rows():
    theta = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    g = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 5.0]])
    d = torch.tensor([[1.0, 1.0, 0.0], [0.0, 3.0, 4.0]])
    eta = torch.tensor([[0.5], [2.0]])
    # row 0: d minus its g-part = (0, 1, 0); row 1: (0, 3, 0) -> unit (0, 1, 0)
    want = torch.tensor([[1.0, 0.5, 0.0], [0.0, 4.0, 0.0]])
    assert torch.allclose(tangent_step(theta, g, d, eta), want)
    loss, level = torch.tensor([3.0, 1.0]), torch.tensor([1.0, 2.0])
    # theta - (L - c) / ||g||^2 g: row 0 (2/4) g, row 1 (-1/25) g
    want = torch.tensor([[0.0, 0.0, 0.0], [0.0, 2.0, 0.2]])
    assert torch.allclose(newton_correct(theta, loss, g, level), want)


def _quad(A):
    def grad(t):
        return 0.5 * ((t @ A) * t).sum(-1), t @ A
    return grad


def test_gam_defaults_and_rows_by_hand():
    A = torch.diag(torch.tensor([2.0, 0.5, 1.0]))
    th = torch.tensor([[1.0, -2.0, 0.5], [0.1, 0.3, -4.0]])
    _, d = gam_direction(th, _quad(A))                    # defaults 0.02, 0.2, 0.03
    for s in range(2):
        t, Am = th[s].double().numpy(), A.double().numpy()

        def u(v):
            return v / np.linalg.norm(v)
        g0 = Am @ t
        g1 = Am @ (t + 0.02 * u(g0))
        t2 = t + 0.2 * u(g1 - g0)
        g2 = Am @ t2
        g3 = Am @ (t2 + 0.02 * u(g2))
        hp, hm = g1 + g3, g0 + g2
        want = hp - 0.03 * (hm - (hm @ hp) / (hp @ hp) * hp)
        assert np.allclose(d[s].numpy(), want, atol=1e-5)


def test_entropy_sgd_equals_the_langevin_loop_written_out():
    A = torch.diag(torch.tensor([2.0, 0.5, 1.0, 3.0]))
    th = torch.tensor([[1.0, -1.0, 0.5, 0.2], [3.0, 0.1, -2.0, 1.0]])
    kw = dict(langevin_steps=3, inner_lr=0.05, gamma0=0.1, gamma1=0.5, noise=0.01, beta1=0.6,
              inner_momentum=0.8, weight_decay=0.01)
    loss, d = entropy_sgd_direction(th, _quad(A), t=2, generator=torch.Generator().manual_seed(1),
                                    **kw)
    gen = torch.Generator().manual_seed(1)
    gamma = 0.1 * 1.5 ** 2
    w, mu, buf, losses = th.clone(), th.clone(), torch.zeros_like(th), []
    for _ in range(3):
        lo, g = _quad(A)(w)
        losses.append(lo)
        g = g + 0.01 * w + gamma * (w - th) + 0.01 / (0.5 * 0.05) ** 0.5 * torch.randn(
            th.shape, generator=gen)
        buf = 0.8 * buf + g
        w = w - 0.05 * (g + 0.8 * buf)
        mu = 0.6 * mu + 0.4 * w
    assert torch.allclose(d, th - mu, atol=1e-6)
    assert torch.allclose(loss, torch.stack(losses).mean(0))


def test_entropy_sgd_defaults_are_the_reference_settings():
    A = torch.diag(torch.tensor([2.0, 0.5]))
    th = torch.tensor([[1.0, -1.0], [0.3, 2.0]])
    _, d = entropy_sgd_direction(th, _quad(A), t=3, noise=0.0)
    w, mu, buf = th.clone(), th.clone(), torch.zeros_like(th)
    gamma = 1e-4 * (1 + 1e-3) ** 3
    for _ in range(20):
        g = _quad(A)(w)[1] + gamma * (w - th)
        buf = 0.9 * buf + g
        w = w - 0.1 * (g + 0.9 * buf)
        mu = 0.75 * mu + 0.25 * w
    assert torch.allclose(d, th - mu, atol=1e-6)


def _sam_setup(adaptive, batched):
    w = torch.nn.Parameter(torch.tensor([[1.0, -2.0, 0.5], [0.2, 0.4, -3.0]]))
    b = torch.nn.Parameter(torch.tensor([[0.5], [-1.0]]))
    frozen = torch.nn.Parameter(torch.tensor([[7.0], [8.0]]))     # gets no gradient
    opt = SAM([w, b, frozen], torch.optim.SGD, rho=0.3, adaptive=adaptive, batched=batched,
              lr=0.1)
    return w, b, frozen, opt


def _loss(w, b):
    return ((w ** 2).sum(1) * torch.tensor([1.0, 2.0]) + (b ** 3).sum(1)).sum()


@pytest.mark.parametrize("adaptive", [False, True])
@pytest.mark.parametrize("batched", [False, True])
def test_sam_steps_by_hand(adaptive, batched):
    w, b, frozen, opt = _sam_setup(adaptive, batched)
    w0, b0 = w.detach().clone(), b.detach().clone()
    _loss(w, b).backward()
    gw, gb = w.grad.clone(), b.grad.clone()
    Tw, Tb = (w0.abs(), b0.abs()) if adaptive else (torch.ones_like(w0), torch.ones_like(b0))
    sq = ((Tw * gw) ** 2).sum(1) + ((Tb * gb) ** 2).sum(1)          # per row
    norm = sq.sqrt()[:, None] if batched else sq.sum().sqrt()
    opt.first_step()
    assert w.grad is None and b.grad is None                          # zero_grad by default
    assert torch.allclose(w.detach(), w0 + 0.3 * Tw ** 2 * gw / norm, atol=1e-6)
    assert torch.allclose(b.detach(), b0 + 0.3 * Tb ** 2 * gb / norm, atol=1e-6)
    assert torch.equal(frozen.detach(), torch.tensor([[7.0], [8.0]]))
    _loss(w, b).backward()
    gw2, gb2 = w.grad.clone(), b.grad.clone()
    opt.second_step()
    assert w.grad is None
    assert torch.allclose(w.detach(), w0 - 0.1 * gw2, atol=1e-6)      # at w, with g(w + eps)
    assert torch.allclose(b.detach(), b0 - 0.1 * gb2, atol=1e-6)
    assert torch.equal(frozen.detach(), torch.tensor([[7.0], [8.0]]))


def test_sam_step_with_a_closure_and_its_errors():
    w, b, _, opt = _sam_setup(False, True)
    w_ref, b_ref, _, opt_ref = _sam_setup(False, True)
    calls = []

    def closure():                      # no zero_grad inside: step must clear between passes
        loss = _loss(w, b)
        loss.backward()
        calls.append(float(loss))
        return loss.detach()
    first = opt.step(closure)
    assert len(calls) == 2 and float(first) == calls[0]
    _loss(w_ref, b_ref).backward()
    opt_ref.first_step()
    _loss(w_ref, b_ref).backward()
    opt_ref.second_step()
    assert torch.allclose(w.detach(), w_ref.detach()) and torch.allclose(b.detach(),
                                                                        b_ref.detach())
    with pytest.raises(ValueError, match=r"^SAM needs a closure that computes the loss and "
                                         r"calls backward$"):
        opt.step()
    with pytest.raises(ValueError, match=r"^SAM rho must be >= 0, got -0\.1$"):
        SAM([w], torch.optim.SGD, rho=-0.1, lr=0.1)
    keep = SAM([w], torch.optim.SGD, lr=0.1)
    assert keep.param_groups[0]["rho"] == 0.05 and keep.param_groups[0]["adaptive"] is False
    _loss(w, b).backward()
    keep.first_step(zero_grad=False)
    assert w.grad is not None                                         # kept when asked


def test_a_diverged_candidate_is_never_selected():
    nan = float("nan")
    scores = torch.tensor([[1.0, nan, nan], [nan, 2.0, nan], [0.5, 3.0, nan]])
    assert lowest_score(scores).tolist() == [2, 1, 0]     # all NaN: the first candidate
    assert lowest_score(torch.tensor([[3.0, -1.0], [2.0, float("inf")]])).tolist() == [1, 0]


def test_entropy_sgd_default_noise_is_1e_4():
    A = torch.diag(torch.tensor([2.0, 0.5]))
    th = torch.tensor([[1.0, -1.0], [0.3, 2.0]])
    _, d = entropy_sgd_direction(th, _quad(A), t=0, langevin_steps=2,
                                 generator=torch.Generator().manual_seed(5))
    gen = torch.Generator().manual_seed(5)
    w, mu, buf = th.clone(), th.clone(), torch.zeros_like(th)
    for _ in range(2):
        g = _quad(A)(w)[1] + 1e-4 * (w - th) + 1e-4 / (0.5 * 0.1) ** 0.5 * torch.randn(
            th.shape, generator=gen)
        buf = 0.9 * buf + g
        w = w - 0.1 * (g + 0.9 * buf)
        mu = 0.75 * mu + 0.25 * w
    assert torch.allclose(d, th - mu, atol=1e-7)


def test_sam_with_rho_zero_is_its_base_optimiser():
    w, b, _, _ = _sam_setup(False, True)
    opt = SAM([w, b], torch.optim.SGD, rho=0.0, lr=0.1)
    w0 = w.detach().clone()
    _loss(w, b).backward()
    g = w.grad.clone()
    opt.first_step()
    assert torch.equal(w.detach(), w0)
    _loss(w, b).backward()
    opt.second_step()
    assert torch.allclose(w.detach(), w0 - 0.1 * g)


def test_entropy_sgd_without_noise_draws_no_random_numbers():
    # the generator may be the caller's minibatch stream: noise = 0 must leave it untouched
    A = torch.diag(torch.tensor([2.0, 0.5]))
    g = torch.Generator().manual_seed(4)
    before = g.get_state()
    entropy_sgd_direction(torch.tensor([[1.0, -1.0]]), _quad(A), t=0, noise=0.0, generator=g)
    assert torch.equal(g.get_state(), before)


def test_newton_correction_steps_downhill_even_for_a_tiny_gradient():
    # loss above the level: theta moves along -g, whatever the gradient's size
    theta = torch.zeros(2, 4)
    g = torch.tensor([[1e-7] * 4, [0.5] * 4])
    out = newton_correct(theta, torch.tensor([1.0, 1.0]), g, torch.tensor([0.0, 0.0]))
    assert (out < 0).all()
    assert torch.equal(newton_correct(theta, torch.ones(2), torch.zeros(2, 4), torch.zeros(2)),
                       theta)                                  # no gradient, no move


# GSAM: g_final = g_p - alpha (g - (g . g_p / ||g_p||^2) g_p), g = grad f(w), g_p = grad f(w + eps)
_A5 = np.array([[4.0, 1.0, 0.0, 0.5, 0.0],
                [1.0, 3.0, 0.5, 0.0, 0.0],
                [0.0, 0.5, 2.0, 0.3, 0.0],
                [0.5, 0.0, 0.3, 1.5, 0.2],
                [0.0, 0.0, 0.0, 0.2, 0.5]])       # symmetric, strictly diagonally dominant: SPD


def _gsam_by_hand(w, rho, alpha, lr, adaptive=False, A=_A5):
    """One GSAM step with plain SGD on f(w) = w'Aw / 2 for one model w, from the equations
    (eps = rho T^2 g / ||T g||, T = diag(|w|) when adaptive, as ASAM)."""
    g = A @ w
    T = np.abs(w) if adaptive else np.ones_like(w)
    gp = A @ (w + rho * T ** 2 * g / np.linalg.norm(T * g))
    return w - lr * (gp - alpha * (g - (g @ gp) / (gp @ gp) * gp))


def _two_passes(opt, loss_fn, closure):
    if closure:
        def run():
            loss = loss_fn()
            loss.backward()
            return loss.detach()
        opt.step(run)
    else:
        loss_fn().backward()
        opt.first_step()
        loss_fn().backward()
        opt.second_step()


@pytest.mark.parametrize("alpha", [0.4, 1.0])
@pytest.mark.parametrize("closure", [False, True])
@pytest.mark.parametrize("adaptive", [False, True])
def test_gsam_steps_on_a_quadratic_by_hand(alpha, closure, adaptive):
    A = torch.tensor(_A5)
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5, 3.0, -1.0], dtype=torch.float64))
    opt = SAM([w], torch.optim.SGD, rho=0.5, alpha=alpha, adaptive=adaptive, lr=0.1)
    want = w.detach().numpy().copy()
    for _ in range(2):                                  # the second step reuses the buffers
        _two_passes(opt, lambda: 0.5 * w @ A @ w, closure)
        want = _gsam_by_hand(want, 0.5, alpha, 0.1, adaptive)
        assert np.allclose(w.detach().numpy(), want, rtol=0, atol=1e-9)
        assert w.grad is None


def test_gsam_batched_rows_each_match_their_own_hand_step():
    A = torch.tensor(_A5)
    rows = np.array([[1.0, -2.0, 0.5, 3.0, -1.0], [0.2, 0.1, -4.0, 0.0, 2.0],
                     [-3.0, 0.5, 0.5, 0.1, 0.0]])
    th = torch.nn.Parameter(torch.tensor(rows))
    opt = SAM([th], torch.optim.SGD, rho=0.5, alpha=0.6, batched=True, lr=0.1)
    want = rows.copy()
    for _ in range(2):
        _two_passes(opt, lambda: 0.5 * ((th @ A) * th).sum(), False)
        want = np.stack([_gsam_by_hand(r, 0.5, 0.6, 0.1) for r in want])
        assert np.allclose(th.detach().numpy(), want, rtol=0, atol=1e-9)


@pytest.mark.parametrize("batched", [False, True])
def test_gsam_removes_the_part_of_g_orthogonal_to_g_p_and_alpha_zero_is_sam(batched):
    # two rows of (a 2x2 weight matrix, a bias), f = sum over rows of v'Av / 2, v = (W, b)
    A = torch.tensor(_A5)
    W0 = torch.tensor([[[1.0, -2.0], [0.5, 3.0]], [[0.2, 0.1], [-4.0, 0.0]]], dtype=torch.float64)
    b0 = torch.tensor([[-1.0], [2.0]], dtype=torch.float64)

    def flat(W, b):                                     # [2, 5] per row, or [1, 10] for one model
        v = torch.cat([W.flatten(1), b], 1)
        return v if batched else v.reshape(1, -1)

    def loss(W, b):
        v = torch.cat([W.flatten(1), b], 1)
        return 0.5 * ((v @ A) * v).sum()

    for alpha in (0.0, 0.7):
        W, b = torch.nn.Parameter(W0.clone()), torch.nn.Parameter(b0.clone())
        opt = SAM([W, b], torch.optim.SGD, rho=0.5, alpha=alpha, batched=batched, lr=1.0)
        loss(W, b).backward()
        g = flat(W.grad, b.grad).clone()
        opt.first_step()
        loss(W, b).backward()
        gp = flat(W.grad, b.grad).clone()
        opt.second_step()
        final = flat(W0, b0) - flat(W.detach(), b.detach())     # lr = 1: w - w_new
        if alpha == 0:
            assert torch.allclose(final, gp, rtol=0, atol=1e-14)    # SAM's step
            assert "old_g" not in opt.state[W] and "old_g" not in opt.state[b]   # no extra work
            continue
        removed = (gp - final) / alpha
        for m in range(len(g)):                         # each model: a row, or all of it
            r, a, p = removed[m], g[m], gp[m]
            assert r.norm() > 0.01 * a.norm()                      # a real correction
            assert abs(r @ p) < 1e-10 * r.norm() * p.norm()         # orthogonal to g_p
            kept = a - r                                            # g's part along g_p
            assert torch.allclose(kept, (kept @ p) / (p @ p) * p, rtol=0, atol=1e-10)


@pytest.mark.parametrize("groups", [1, 2])
def test_gsam_dot_product_runs_over_all_tensors_and_groups_jointly(groups):
    A = torch.tensor(_A5)
    W = torch.nn.Parameter(torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64))
    b = torch.nn.Parameter(torch.tensor([-1.0], dtype=torch.float64))
    params = [W, b] if groups == 1 else [{"params": [W]}, {"params": [b]}]
    opt = SAM(params, torch.optim.SGD, rho=0.5, alpha=0.7, lr=0.1)
    v0 = torch.cat([W.detach().flatten(), b.detach()]).numpy()

    def loss():
        v = torch.cat([W.flatten(), b])
        return 0.5 * v @ A @ v
    _two_passes(opt, loss, False)
    want = _gsam_by_hand(v0, 0.5, 0.7, 0.1)             # on the concatenated vector
    assert np.allclose(W.detach().numpy(), want[:4].reshape(2, 2), rtol=0, atol=1e-9)
    assert np.allclose(b.detach().numpy(), want[4:], rtol=0, atol=1e-9)


def test_gsam_alpha_is_checked_defaults_to_sam_and_is_saved():
    w = torch.nn.Parameter(torch.ones(3))
    with pytest.raises(ValueError, match=r"^GSAM alpha must be >= 0, got -0\.1$"):
        SAM([w], torch.optim.SGD, alpha=-0.1, lr=0.1)
    assert SAM([w], torch.optim.SGD, lr=0.1).param_groups[0]["alpha"] == 0.0
    saved = SAM([w], torch.optim.SGD, alpha=0.3, lr=0.1).state_dict()
    assert saved["param_groups"][0]["alpha"] == 0.3
    back = SAM([w], torch.optim.SGD, lr=0.1)
    back.load_state_dict(saved)
    assert back.param_groups[0]["alpha"] == 0.3


def test_sam_with_a_radius_per_row_equals_one_sam_per_row():
    """batched SAM with rho [S] steps each row as a SAM optimiser with that row's rho."""
    A = torch.tensor([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 4.0]])
    rhos = torch.tensor([0.0, 0.05, 0.5])
    torch.manual_seed(1)
    theta = torch.nn.Parameter(torch.randn(3, 3))
    rows = [torch.nn.Parameter(theta.detach()[i].clone()) for i in range(3)]
    stacked = SAM([theta], torch.optim.SGD, rho=rhos, batched=True, lr=0.1)
    singles = [SAM([r], torch.optim.SGD, rho=float(rhos[i]), lr=0.1) for i, r in enumerate(rows)]

    def closure(p):
        return quadratic_closure(p, A)
    for _ in range(3):
        stacked.step(closure(theta))
        for o, r in zip(singles, rows, strict=True):
            o.step(closure(r))
    for i in range(3):
        assert torch.allclose(theta.detach()[i], rows[i].detach(), atol=1e-6)
    assert not torch.allclose(rows[0].detach(), rows[2].detach())
    with pytest.raises(ValueError, match="rho must be >= 0"):
        SAM([theta], torch.optim.SGD, rho=torch.tensor([0.1, -0.1, 0.1]), batched=True, lr=0.1)
    with pytest.raises(ValueError, match=r"^a per-row SAM rho needs batched=True$"):
        SAM([rows[0]], torch.optim.SGD, rho=torch.tensor([0.1, 0.1, 0.1]), lr=0.1)
    # a 0-d tensor radius is one radius: fine without batched
    one = SAM([rows[0]], torch.optim.SGD, rho=torch.tensor(0.05), lr=0.1)
    one.step(closure(rows[0]))
    assert torch.isfinite(rows[0]).all()


def test_gsam_applies_each_groups_own_alpha_after_a_group_without_it():
    """Group 0 at alpha 0 keeps g_p; group 1 at alpha 0.7 is decomposed with the dot product
    over both groups (a group without alpha does not stop the later ones)."""
    w = torch.nn.Parameter(torch.tensor([[1.0, -0.5], [0.3, 2.0]]))
    b = torch.nn.Parameter(torch.tensor([0.2, -1.0]))
    opt = SAM([{"params": [w], "alpha": 0.0}, {"params": [b], "alpha": 0.7}], torch.optim.SGD,
              rho=0.1, lr=1.0)
    x = torch.tensor([[1.0, 2.0], [-1.0, 0.5], [0.3, -0.2]])

    def f(w_, b_):
        return ((x @ w_ + b_) ** 2).sum() / 2 + (w_ ** 3).sum() / 3
    wv, bv = w.detach().clone(), b.detach().clone()
    gw, gb = torch.autograd.functional.jacobian(f, (wv, bv))
    g = torch.cat([gw.flatten(), gb])
    eps = 0.1 * g / g.norm()
    pw, pb = torch.autograd.functional.jacobian(f, (wv + eps[:4].view(2, 2), bv + eps[4:]))
    gp = torch.cat([pw.flatten(), pb])
    c = g @ gp / (gp @ gp)
    want_w = wv - pw
    want_b = bv - (pb - 0.7 * (gb - c * pb))

    def closure():
        opt.zero_grad()
        loss = f(w, b)
        loss.backward()
        return loss
    opt.step(closure)
    assert torch.allclose(w.detach(), want_w, atol=1e-5)
    assert torch.allclose(b.detach(), want_b, atol=1e-5)
