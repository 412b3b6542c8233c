"""Direction 1: stacked models, the contour walk, GAM, Entropy-SGD, SWA, batched SAM, the
sharpness and landscape measures, the trainer's budgets and divergence handling, the config's
cross-key checks. Closed forms and reference computations; small data, seconds each."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import yaml
from torch.func import functional_call, hessian

from rose.explore.contour import ContourSettings, contour_walk, newton_correct, tangent_step
from rose.explore.entropy_sgd import entropy_sgd_direction
from rose.explore.experiments import arms_for, check_config, symmetric_noise
from rose.explore.gam import gam_direction
from rose.explore.sam import SAM
from rose.explore.trainer import Arm, Base, Data, train_arm
from rose.measure.hessian import hutchinson_trace, top_eigenvalue
from rose.measure.landscape import filter_normalized_direction, trajectory_pca
from rose.measure.sharpness import adaptive_sharpness, sigma_prime
from rose.models import MLP
from rose.nn import StackedNet

torch.set_num_threads(1)


def _net(din=6, hidden=(5,), C=3):
    def build():
        return MLP(din, list(hidden), C)
    return StackedNet({"name": "mlp", "hidden": list(hidden)}, (din,), C), build


def _load(net: StackedNet, module: torch.nn.Module, row: torch.Tensor) -> torch.nn.Module:
    """A single model holding one row of theta."""
    with torch.no_grad():
        for name, t in net.module_params(row).items():
            module.get_parameter(name).copy_(t)
    return module


def _data(S=3, n=60, din=6, C=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, din, generator=g)
    w = torch.randn(din, C, generator=g)
    y = (X @ w).argmax(1)
    return X, y, y.expand(S, n).clone()


def test_stacked_rows_are_the_single_models():
    net, build = _net()
    theta = net.init([3, 7])
    X, _y, _ = _data(S=2)
    out = net.logits(theta, X, shared=True)
    for s, seed in enumerate([3, 7]):
        torch.manual_seed(seed)
        m = build()
        assert torch.allclose(out[s], m(X), atol=1e-6)
        assert torch.equal(net.flatten_module(m.parameters()), theta[s])


def test_stacked_grad_and_hvp_are_per_row():
    """Each row's gradient and H v equal those of its own model (torch.func.hessian)."""
    net, build = _net()
    theta = net.init([0, 1])
    X, _, Y = _data(S=2)
    _, g = net.grad(theta, X, Y, shared=True)
    v = torch.randn(theta.shape, generator=torch.Generator().manual_seed(5))
    hv = net.hvp(theta, X, Y, shared=True)(v)
    template = build()
    for s in range(2):
        def loss(t, s=s):
            return torch.nn.functional.cross_entropy(
                functional_call(template, net.module_params(t), (X,)), Y[s])
        gt = torch.func.grad(loss)(theta[s])
        H = hessian(loss)(theta[s])
        assert torch.allclose(g[s], gt, atol=1e-6)
        assert torch.allclose(hv[s], H @ v[s], atol=1e-5)


def test_batched_power_iteration_and_hutchinson_on_block_diagonal_quadratics():
    eig = torch.tensor([[5.0, 1.0, 0.5, 0.1], [2.0, 1.9, -0.3, 0.0]])
    Q = torch.linalg.qr(torch.randn(2, 4, 4, generator=torch.Generator().manual_seed(0)))[0]
    A = Q @ torch.diag_embed(eig) @ Q.transpose(1, 2)

    def hvp(v):
        return torch.einsum("sij,sj->si", A, v)
    lam, _vec = top_eigenvalue(hvp, (2, 4), iters=500, tol=1e-10)
    assert torch.allclose(lam, eig[:, 0], rtol=1e-3)
    tr, se = hutchinson_trace(hvp, (2, 4), probes=4000)
    assert torch.all((tr - eig.sum(1)).abs() < 4 * se + 1e-6)


def test_contour_step_changes_the_loss_far_less_than_a_plain_step_on_a_quadratic():
    """L = 1/2 th^T A th: a tangent predictor + Newton corrector keeps L to O(eta^3 ...), a
    plain step of the same length along -g changes it by ~eta ||g||."""
    g0 = torch.Generator().manual_seed(1)
    A = torch.diag(torch.tensor([3.0, 1.0, 0.5, 0.2]))
    theta = torch.randn(1, 4, generator=g0)

    def L(t):
        return 0.5 * ((t @ A) * t).sum(-1)

    def G(t):
        return t @ A
    eta = torch.tensor([[0.01]])
    d = torch.randn(1, 4, generator=g0)
    pred = tangent_step(theta, G(theta), d, eta)
    corr = newton_correct(pred, L(pred), G(pred), L(theta))
    plain = theta - eta * G(theta) / G(theta).norm()
    contour_change = (L(corr) - L(theta)).abs().item()
    plain_change = (L(plain) - L(theta)).abs().item()
    assert torch.isclose((pred - theta).norm(), eta[0, 0])
    assert contour_change < 1e-3 * plain_change


def test_contour_walk_on_a_tiny_net_stays_on_the_level_set():
    net, _build = _net()
    theta = net.init([0, 1])
    X, _, Y = _data(S=2)
    s = ContourSettings(steps=20, step_size=0.01, direction="flat", select="perturbation",
                        keep_every=5)
    _chosen, rec = contour_walk(net, theta, X, Y, s)
    loss, level = np.asarray(rec.loss), np.asarray(rec.level)
    assert np.abs(loss - level).max() < 1e-4
    # one plain gradient step of the same length moves the loss far more
    _, g = net.grad(theta, X, Y, shared=True)
    eta = 0.01 * theta.norm(dim=-1, keepdim=True)
    plain = net.losses(theta - eta * g / g.norm(dim=-1, keepdim=True), X, Y, shared=True)
    assert np.all(np.abs(loss[1] - level[1]) < 0.01 * np.abs(plain.numpy() - level[0]))
    # the chosen point is one of the candidates, per row
    assert set(rec.chosen_step) <= set(rec.candidate_steps)
    assert np.asarray(rec.distance)[-1].min() > 0
    # cost: 1 + 2 per step (flat direction), one forward per corrector + the scores
    assert rec.grad_evals == 1 + 2 * 20
    # the isotropic ablation drifts off the level set
    _iso, rec_iso = contour_walk(net, theta, X, Y, ContourSettings(
        steps=20, step_size=0.01, direction="random", tangent=False, corrector=False,
        select="none"))
    assert np.abs(np.asarray(rec_iso.loss) - np.asarray(rec_iso.level)).max() > \
        10 * np.abs(loss - level).max()
    assert rec_iso.chosen_step.tolist() == [20, 20]    # select none: the end point


def test_contour_rejects_bad_settings():
    net, _build = _net()
    theta = net.init([0])
    X, _, Y = _data(S=1)
    with pytest.raises(ValueError, match="steps"):
        contour_walk(net, theta, X, Y, ContourSettings(steps=0))
    with pytest.raises(ValueError, match="direction"):
        contour_walk(net, theta, X, Y, ContourSettings(direction="sideways"))


def _quadratic_grad(A):
    def grad(t):
        return 0.5 * ((t @ A) * t).sum(-1), t @ A
    return grad


def test_gam_matches_the_algorithm_by_hand_on_a_quadratic():
    A = torch.diag(torch.tensor([2.0, 0.5, 1.0]))
    th = torch.tensor([[1.0, -2.0, 0.5]])
    _, d = gam_direction(th, _quadratic_grad(A), grad_rho=0.1, grad_norm_rho=0.3, gamma=0.2)
    t, Am = th[0].numpy().astype(float), A.numpy().astype(float)

    def u(v):
        return v / np.linalg.norm(v)
    g0 = Am @ t
    g1 = Am @ (t + 0.1 * u(g0))
    t2 = t + 0.3 * u(g1 - g0)
    g2 = Am @ t2
    g3 = Am @ (t2 + 0.1 * u(g2))
    hp, hm = g1 + g3, g0 + g2
    want = hp - 0.2 * (hm - (hm @ hp) / (hp @ hp) * hp)
    assert np.allclose(d[0].numpy(), want, atol=1e-5)


def test_entropy_sgd_one_langevin_step_by_hand():
    """L = 1 step, no noise, no coupling, beta1 = 0: mu = w' = w - eta' (1 + m) g (Nesterov),
    so the outer direction is eta' (1 + m) g."""
    A = torch.diag(torch.tensor([2.0, 0.5]))
    th = torch.tensor([[1.0, -1.0]])
    _, d = entropy_sgd_direction(th, _quadratic_grad(A), t=0, langevin_steps=1, inner_lr=0.1,
                                 gamma0=0.0, noise=0.0, beta1=0.0, inner_momentum=0.9)
    assert torch.allclose(d, 0.1 * 1.9 * (th @ A))


def test_batched_sam_equals_sam_per_row():
    net, build = _net()
    theta = net.init([0, 1])
    X, _, Y = _data(S=2)
    p = torch.nn.Parameter(theta.clone())
    opt = SAM([p], torch.optim.SGD, rho=0.1, batched=True, lr=0.1, momentum=0.9)

    def closure():
        opt.zero_grad()
        loss = net.losses(p, X, Y, shared=True)
        loss.sum().backward()
        return loss
    opt.step(closure)
    for s in range(2):
        m = _load(net, build(), theta[s])
        single = SAM(m.parameters(), torch.optim.SGD, rho=0.1, lr=0.1, momentum=0.9)

        def c1(m=m, single=single, s=s):
            single.zero_grad()
            loss = torch.nn.functional.cross_entropy(m(X), Y[s])
            loss.backward()
            return loss
        single.step(c1)
        assert torch.allclose(p.detach()[s], net.flatten_module(m.parameters()), atol=1e-6)


def _tiny_data(S=2, seed=0):
    X, y, Y = _data(S=S, n=120, seed=seed)
    return Data(X[:80], Y[:, :80], y[:80], X[80:100], Y[:, 80:100], X[100:], y[100:],
                X[:40], Y[:, :40], torch.arange(40), {10: torch.arange(40, 50)}, 3,
                {10: torch.arange(50, 60)})


def test_swa_averages_what_averaged_model_averages():
    """With swa_lr = lr (SWALR then keeps the rate), the SWA arm's iterates are SGD's, and
    its final weights are the plain mean of SGD's weights at the averaging points."""
    net, _build = _net()
    theta0 = net.init([0, 1])
    data = _tiny_data()
    base = Base(epochs=6, batch_size=20, lr=0.05)
    sgd = train_arm(net, theta0, data, Arm("sgd", "sgd"), base, seed=0)
    swa = train_arm(net, theta0, data, Arm("swa", "swa", hp={"swa_start": 0.5,
                                                              "swa_lr": 0.05}), base, seed=0)
    steps = sorted({h["step"] for h in sgd.history})
    start = int(0.5 * swa.steps)
    averaged = [sgd.snapshots[i] for i, st in enumerate(steps) if st >= start]
    assert len(averaged) >= 2
    assert torch.allclose(swa.theta[0], torch.stack(averaged).mean(0), atol=1e-6)


def test_budgets_and_divergence():
    net, _build = _net()
    theta0 = net.init([0, 1])
    data = _tiny_data()
    base = Base(epochs=4, batch_size=20, lr=0.05)
    sam_steps = train_arm(net, theta0, data, Arm("sam", "sam", hp={"rho": 0.05}), base, 0)
    sam_eq = train_arm(net, theta0, data, Arm("sam_eq", "sam", "grad_evals", {"rho": 0.05}),
                       base, 0)
    assert sam_steps.steps == 16 and sam_steps.grad_evals == 32
    assert sam_eq.steps == 8 and sam_eq.grad_evals == 16
    # walk: 1 + 2 x 5 gradients and 5 + 6 x 5 forwards on 10 examples = 11.3 minibatch
    # equivalents of 20 examples, so the descent keeps 16 - 12 = 4 steps
    c = ContourSettings(steps=5, probe=10, keep_every=1)
    walk = train_arm(net, theta0, data, Arm("c", "contour", "grad_evals", contour=c), base, 0)
    assert walk.steps == 4
    assert walk.grad_evals == pytest.approx(4 + (11 + 35 / 3) * 10 / 20)
    boom = train_arm(net, theta0, data, Arm("boom", "sgd", hp={"lr": 1e6}), base, 0)
    assert boom.diverged.all()
    assert not sam_steps.diverged.any()


def test_filter_normalised_direction_matches_filter_norms():
    net, _build = _net(din=4, hidden=(3,))
    theta = net.init([0, 1])
    d = filter_normalized_direction(net, theta, torch.Generator().manual_seed(0))
    for s in range(2):   # per output neuron (a row of nn.Linear's weight): equal norms
        for name, w in net.module_params(theta[s]).items():
            dd = net.module_params(d[s])[name]
            if w.dim() == 1:
                assert torch.all(dd == 0)
            else:
                assert torch.allclose(dd.norm(dim=1), w.norm(dim=1), atol=1e-5)


def test_trajectory_pca_of_a_straight_line():
    line = np.outer(np.linspace(0, 1, 9), np.arange(1.0, 6.0))
    out = trajectory_pca(line)
    assert out["tortuosity"] == pytest.approx(1.0)
    assert out["explained"][0] == pytest.approx(1.0)


def _rescaled(net, theta, alpha):
    """ReLU rescaling: layer 1 (weights, bias) x alpha, layer 2 weights / alpha; same
    function (Dinh et al. 2017)."""
    t = theta.clone()
    w1, b1, w2, _ = net.views(t)
    w1 *= alpha
    b1 *= alpha
    w2 /= alpha
    return t


def test_sigma_prime_survives_relu_rescaling_while_lambda_max_does_not():
    net, _build = _net(din=6, hidden=(16,))
    X, _, Y = _data(S=1, n=200)
    theta = net.init([0])
    p = torch.nn.Parameter(theta.clone())
    opt = torch.optim.SGD([p], lr=0.5)
    for _ in range(200):
        opt.zero_grad()
        net.losses(p, X, Y, shared=True).sum().backward()
        opt.step()
    th = p.detach()
    th2 = _rescaled(net, th, 4.0)
    assert torch.allclose(net.logits(th, X, True), net.logits(th2, X, True), atol=1e-4)
    s1 = sigma_prime(net, th, X, Y, samples=20, steps=12, eps=0.0, seed=3)
    s2 = sigma_prime(net, th2, X, Y, samples=20, steps=12, eps=0.0, seed=3)
    assert torch.allclose(s1, s2, rtol=0.05)
    lam1, _ = top_eigenvalue(net.hvp(th, X, Y, True), tuple(th.shape), iters=200)
    lam2, _ = top_eigenvalue(net.hvp(th2, X, Y, True), tuple(th.shape), iters=200)
    assert not torch.allclose(lam1, lam2, rtol=0.5)
    a_small = adaptive_sharpness(net, th, X, Y, rho=0.01, m=50, steps=5)
    a_big = adaptive_sharpness(net, th, X, Y, rho=0.5, m=50, steps=5)
    assert torch.all(a_small >= 0) and torch.all(a_big > a_small)


def test_symmetric_noise_flips_to_another_class_at_rate_p():
    y = np.repeat(np.arange(10), 1000)
    noisy = symmetric_noise(y, 0.4, 10, np.random.default_rng(0))
    flipped = noisy != y
    se = np.sqrt(0.4 * 0.6 / len(y))
    assert abs(flipped.mean() - 0.4) < 3 * se
    assert noisy.min() == 0 and noisy.max() == 9


def _block():
    from pathlib import Path
    cfg = yaml.safe_load((Path(__file__).parents[1] / "config/tiny.yaml").read_text())
    return cfg["explore"]


def test_config_cross_key_checks_name_the_key():
    blk = _block()
    check_config(blk)
    assert [a.name for a in arms_for(blk, "ablation")] == ["contour", "isotropic"]
    assert arms_for(blk, "ablation")[1].contour.tangent is False
    for mutate, key in [
        (lambda b: b["ablation"].update(setting="nowhere"), "explore.ablation.setting"),
        (lambda b: b["ablation"].update(base="sgd"), "explore.ablation.base"),
        (lambda b: b["arms"]["sam"].pop("rho"), "explore.arms.sam.rho"),
        (lambda b: b["arms"]["contour"].pop("contour"), "explore.arms.contour.contour"),
        (lambda b: b["settings"]["digits_noisy"].update(arms=["sgd", "lookahead"]),
         "explore.settings.digits_noisy.arms"),
        (lambda b: b.update(surface_arm="sgd"), "explore.surface_arm"),
        (lambda b: b.update(trajectory_arms=["sgd", "nadam"]), "explore.trajectory_arms"),
    ]:
        bad = copy.deepcopy(blk)
        mutate(bad)
        with pytest.raises(ValueError, match=key.replace(".", r"\.")):
            check_config(bad)


def test_accuracy_with_per_seed_labels_over_several_chunks():
    net, _build = _net()
    theta = net.init([0, 1])
    X, _y, Y = _data(S=2, n=50)
    Y[1] = (Y[1] + 1) % 3
    loss, acc = net.evaluate(theta, X, Y, chunk=7)
    out = net.logits(theta, X, shared=True)
    for s in range(2):
        assert acc[s] == pytest.approx((out[s].argmax(1) == Y[s]).float().mean().item())
        assert loss[s] == pytest.approx(
            torch.nn.functional.cross_entropy(out[s], Y[s]).item(), rel=1e-5)


def test_radam_rectifier_matches_the_published_values():
    """r_t for beta2 = 0.999 (research notes, computed from the RAdam formula): 0.026 at
    t = 6, 0.22 at 100, 0.65 at 1000, 0.83 at 2000, 0.98 at 5000; un-adapted before t = 6."""
    from rose.explore.report import radam_rectifier

    for t, r in [(6, 0.026), (100, 0.22), (1000, 0.65), (2000, 0.83), (5000, 0.98)]:
        assert radam_rectifier(t) == pytest.approx(r, abs=0.006)
    assert radam_rectifier(5) == 0.0


def test_contour_walk_returns_the_selected_candidate_not_its_start():
    """The chosen point is the candidate with the lowest score, at its recorded distance from
    theta_0 (a walk that handed back its start point would sit at distance 0)."""
    net, _ = _net()
    theta = net.init([0, 1])
    X, _, Y = _data(S=2)
    for select in ("none", "perturbation", "curvature"):
        s = ContourSettings(steps=12, step_size=0.02, direction="flat", select=select,
                            keep_every=3)
        chosen, rec = contour_walk(net, theta, X, Y, s, seed=1)
        steps = np.asarray(rec.candidate_steps)
        if select == "none":
            assert rec.chosen_step.tolist() == [12, 12]
        else:
            scores = np.nan_to_num(rec.candidate_scores, nan=np.inf)
            assert rec.chosen_step.tolist() == steps[scores.argmin(0)].tolist()
        dist = np.asarray(rec.distance)[rec.chosen_step, [0, 1]]
        got = (chosen - theta).norm(dim=-1).numpy()
        np.testing.assert_allclose(got, dist, rtol=1e-4, atol=1e-6)
        assert (got[rec.chosen_step > 0] > 0).all()


def test_adaptive_sharpness_is_the_dual_norm_of_the_scaled_gradient_for_a_small_radius():
    """For small rho, max_{||T^-1 eps|| <= rho} L(w + eps) - L(w) ~ rho ||T g|| per chunk (the
    first-order term; T = |w| + eta on weights, 1 on biases, ASAM)."""
    from rose.measure.sharpness import _scale

    net, _ = _net(din=6, hidden=(8,))
    theta = net.init([0, 3])
    X, _, Y = _data(S=2, n=40)
    T = _scale(net, theta, 0.01)
    mask = net.weight_mask()
    assert torch.equal(T[:, ~mask], torch.ones_like(T[:, ~mask]))
    assert torch.allclose(T[:, mask], theta[:, mask].abs() + 0.01)
    rho, m = 1e-3, 20
    want = torch.stack([rho * (T * net.grad(theta, X[i:i + m], Y[:, i:i + m],
                                            shared=True)[1]).norm(dim=-1)
                        for i in (0, 20)]).mean(0)
    got = adaptive_sharpness(net, theta, X, Y, rho=rho, m=m, steps=10)
    assert torch.allclose(got, want, rtol=0.02)
