"""Direction 2: streams, distances against closed forms, the ball's enforcement (property tests
over random models and batches), controllers, metrics on a hand-made matrix, and the published
sanity behaviour (fine-tuning forgets split MNIST, replay beats EWC)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from snakemake.utils import validate

from rose.continual import metrics
from rose.continual import radius as ctl
from rose.continual.ball import enforce
from rose.continual.distances import (
    DISTANCES,
    Reference,
    cka,
    empirical_fisher,
    euclidean,
    fisher_distance,
    kl,
    ldifs,
    linear_cka,
)
from rose.continual.experiments import arms_from_config, check_config
from rose.continual.learner import Arm, Settings, run
from rose.continual.penalties import (
    consolidate_fisher,
    ewc_penalty,
    l2sp_penalty,
    ldifs_penalty,
    lwf_penalty,
    reservoir,
)
from rose.continual.streams import make_stream
from rose.nn import StackedNet

from .conftest import ROOT


def block() -> dict:
    cfg = yaml.safe_load((ROOT / "config/quick.yaml").read_text())
    validate(cfg, str(ROOT / "workflow/schemas/config.schema.yaml"))
    return cfg["continual"]


# ------------------------------------------------------------------------------ streams

def test_split_stream_is_class_incremental_and_each_sample_arrives_once(mnist14):
    x, y = mnist14
    st = make_stream("split", x, y, 0, 5, 200, 10)
    assert st.x.shape == (100, 10, 196) and st.n_tasks == 5
    for t in range(5):
        assert set(np.unique(st.y[st.task_of_batch == t])) == {2 * t, 2 * t + 1}
        assert set(np.unique(st.test_y[t])) == {2 * t, 2 * t + 1}
    flat = st.x.reshape(-1, 196)
    assert len(np.unique(flat, axis=0)) == len(flat)          # no sample twice


def test_permutations_are_fixed_per_task_and_differ_between_tasks(mnist14):
    x, y = mnist14
    a = make_stream("permuted", x, y, 3, 3, 100, 10)
    b = make_stream("permuted", x, y, 3, 3, 100, 10)
    np.testing.assert_array_equal(a.x, b.x)                     # drawn once from the seed
    # the same test image under two tasks: same pixel multiset, different order
    t0, t1 = a.test_x[0][0], a.test_x[1][0]
    np.testing.assert_allclose(np.sort(t0), np.sort(t1))
    assert not np.allclose(t0, t1)


def test_rotated_first_task_is_unrotated(mnist14):
    from rose.data.bundled import load_mnist5k

    x, y = load_mnist5k()
    st = make_stream("rotated", x, y, 0, 3, 50, 10, max_angle=90)
    img = st.test_x[0][0].reshape(28, 28)
    assert any(np.allclose(img, x[i, 0]) for i in range(len(x)) if y[i] == st.test_y[0][0])


@pytest.mark.sanity
def test_streams_from_digits(tmp_path):
    from rose.continual.experiments import stream_run

    blk = copy.deepcopy(block())
    blk.update(dataset="digits", samples_per_task=40, test_per_task=30, k=2,
               streams={"split": {"tasks": 5}, "rotated": {"tasks": 3, "max_angle": 90}},
               ball={"euclidean": 0.2}, controllers={**blk["controllers"], "names": []},
               frontier={"distance": "euclidean", "ks": [1], "radii": [0.2]},
               baselines={"finetune": {"kind": "sgd", "k": 1}}, per_step=[],
               primary=[{"stream": "split", "arm": "ball_best", "reference": "finetune",
                         "metric": "final_acc"}],
               tuning={"metric": "final_acc", "grids": {"distance": {"radius_scale": [1]},
                                                        "finetune": {"lr": [0.05]}}})
    for s in ("split", "rotated"):
        stream_run(blk, s, [0], tmp_path / s)
        runs = __import__("pandas").read_csv(tmp_path / s / "runs.csv")
        assert len(runs) == 5 and runs.final_acc.between(0, 1).all()


# ----------------------------------------------------------------------------- distances

def _model(instances=3, sizes=(6, 8, 8, 4), seed=0) -> tuple[StackedNet, torch.Tensor]:
    net = StackedNet({"name": "mlp", "hidden": list(sizes[1:-1])}, (sizes[0],), sizes[-1])
    return net, net.init(range(seed * 100, seed * 100 + instances), scheme="xavier")


def _perturbed(theta: torch.Tensor, scale, seed=1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    s = torch.as_tensor(scale, dtype=torch.float32)
    return theta + s[:, None] * torch.randn(theta.shape, generator=g)


def test_empirical_fisher_equals_per_example_autograd():
    torch.manual_seed(0)
    net, theta = _model(2)
    x, y = torch.randn(2, 7, 6), torch.randint(0, 4, (2, 7))
    fisher = empirical_fisher(net, theta, x, y)
    for i in range(2):
        sq = torch.zeros(net.dim)
        for n in range(7):
            th = theta[i:i + 1].clone().requires_grad_()
            loss = F.cross_entropy(net.forward(th, x[i:i + 1, n:n + 1])[0][0], y[i, n:n + 1])
            g, = torch.autograd.grad(loss, th)
            sq += g[0] ** 2
        torch.testing.assert_close(fisher[i], sq / 7, rtol=1e-4, atol=1e-7)


def test_linear_cka_is_invariant_to_rotation_and_scale():
    torch.manual_seed(0)
    X = torch.randn(1, 30, 5)
    Q, _ = torch.linalg.qr(torch.randn(5, 5))
    assert linear_cka(X, 3.0 * X @ Q)[0] == pytest.approx(1.0, abs=1e-5)
    assert linear_cka(X, torch.randn(1, 30, 5))[0] < 0.9
    assert cka([X], [X])[0] == pytest.approx(0.0, abs=1e-5)


def test_ldifs_is_zero_for_the_same_features_and_scale_free_per_example():
    torch.manual_seed(0)
    a = torch.rand(2, 5, 7)
    assert ldifs([a], [a]).abs().max() < 1e-12
    scale = torch.rand(2, 5, 1) + 0.5                    # per-example positive rescaling
    assert ldifs([a * scale], [a]).abs().max() < 1e-10
    # orthogonal unit vectors: (1/units) * ||e1 - e2||^2 = 2 / units
    e = torch.eye(4)[None]
    assert ldifs([e[:, :1]], [e[:, 1:2]])[0] == pytest.approx(2 / 4)


# ------------------------------------------------------------------------------ the ball

@pytest.mark.parametrize("name", DISTANCES)
def test_constraint_holds_after_enforcement_for_random_models(name):
    """Property test: random models, random perturbation sizes, random radii and batches."""
    for trial in range(5):
        net, ref_theta = _model(6, seed=trial)
        x, y = torch.randn(6, 12, 6), torch.randint(0, 4, (6, 12))
        fisher = empirical_fisher(net, ref_theta, x, y)
        ref = Reference(net, ref_theta, x, fisher)
        d = ref.distance(name)
        scale = torch.logspace(-3, 0, 6)
        moved = _perturbed(ref_theta, scale, seed=10 + trial)
        before = d(moved)
        r = before * torch.tensor([0.1, 0.5, 0.9, 1.1, 2.0, 0.3])
        alpha = enforce(moved, ref.theta, d, name, r)
        after = d(moved)
        assert (after <= r * (1 + 1e-5) + 1e-12).all(), (name, after, r)
        inactive = before <= r
        assert (alpha[inactive] == 1).all()
        assert ((alpha >= 0) & (alpha <= 1)).all()


@pytest.mark.parametrize("name", DISTANCES)
def test_active_constraint_lands_on_the_boundary_and_inactive_leaves_theta(name):
    net, ref_theta = _model(4, seed=2)
    x, y = torch.randn(4, 16, 6), torch.randint(0, 4, (4, 16))
    ref = Reference(net, ref_theta, x, empirical_fisher(net, ref_theta, x, y))
    d = ref.distance(name)
    moved = _perturbed(ref_theta, torch.full((4,), 0.05), seed=3)
    before = d(moved)
    end = moved.clone()
    r = before * torch.tensor([0.5, 0.5, 2.0, 2.0])
    enforce(moved, ref.theta, d, name, r)
    after = d(moved)
    torch.testing.assert_close(after[:2], r[:2], rtol=2e-3, atol=1e-9)    # on the boundary
    torch.testing.assert_close(moved[2:], end[2:])                         # untouched


def test_euclidean_projection_is_the_closed_form():
    net, ref_theta = _model(1)
    ref = Reference(net, ref_theta, torch.randn(1, 4, 6))
    moved = _perturbed(ref_theta, [0.2])
    delta = moved - ref.theta
    norm = delta.norm()
    enforce(moved, ref.theta, ref.distance("euclidean"), "euclidean", torch.tensor([0.5]))
    torch.testing.assert_close(moved, ref.theta + delta * 0.5 / norm, rtol=2e-4, atol=1e-5)


def test_distances_take_theta_or_its_parameters_alike():
    net, ref_theta = _model(2)
    x = torch.randn(2, 5, 6)
    moved = _perturbed(ref_theta, [0.1, 0.3])
    ref = Reference(net, ref_theta, x, torch.rand(2, net.dim))
    for name in DISTANCES:
        d = ref.distance(name)
        torch.testing.assert_close(d(moved), d(net.parameters(moved.clone())))


# ------------------------------------------------------------------ controllers, reservoir

def test_controllers_by_hand():
    r = torch.tensor([1.0, 1.0, 1.0, 1.0])
    rho = torch.tensor([0.1, 0.5, 0.9, 0.9])
    active = torch.tensor([True, True, True, False])
    assert ctl.ratio_update(r, rho, active, 0.01, 100).tolist() == [0.5, 1.0, 2.0, 1.0]
    assert ctl.ratio_update(r, rho, active, 0.9, 1.5).tolist() == pytest.approx(
        [0.9, 1.0, 1.5, 1.0])
    helped = torch.tensor([True, False, True, False])
    assert ctl.prequential_update(r, helped, 1.5, 0.5, 0.1, 10).tolist() == [1.5, 0.5, 1.5,
                                                                              0.5]
    lam = ctl.dual_update(torch.tensor([0.0, 1.0]), torch.tensor([2.0, 0.5]),
                          torch.tensor([1.0, 1.0]), 0.5)
    assert lam.tolist() == [0.5, 0.75]
    assert ctl.dual_update(torch.tensor([0.2]), torch.tensor([0.0]), torch.tensor([1.0]),
                           1.0).tolist() == [0.0]


def test_reservoir_keeps_every_sample_with_equal_probability():
    cap = torch.tensor([20])
    counts = np.zeros(100)
    g = torch.Generator().manual_seed(0)
    for _ in range(400):
        mem_x, mem_y = torch.zeros(1, 20, 1), torch.zeros(1, 20, dtype=torch.long)
        n_seen = torch.zeros(1, dtype=torch.long)
        stream = torch.arange(100, dtype=torch.float32).view(10, 1, 10, 1)
        for b in range(10):
            reservoir(mem_x, mem_y, n_seen, cap, stream[b], torch.zeros(1, 10,
                                                                         dtype=torch.long), g)
        counts[mem_x[0, :, 0].long().numpy()] += 1
    p = counts / 400
    assert abs(p.mean() - 0.2) < 1e-9                      # exactly 20 of 100 kept
    assert abs(p[:50].mean() - p[50:].mean()) < 0.03        # early and late samples alike


# -------------------------------------------------------------------------------- metrics

def test_metrics_on_a_hand_made_accuracy_matrix():
    a = np.array([[0.9, 0.1, 0.0],
                  [0.6, 0.8, 0.1],
                  [0.5, 0.7, 0.95]])
    assert metrics.final_accuracy(a) == pytest.approx((0.5 + 0.7 + 0.95) / 3)
    assert metrics.learning_accuracy(a) == pytest.approx((0.9 + 0.8 + 0.95) / 3)
    assert metrics.backward_transfer(a) == pytest.approx(((0.5 - 0.9) + (0.7 - 0.8)) / 2)
    assert metrics.forgetting(a) == pytest.approx(((0.9 - 0.5) + (0.8 - 0.7)) / 2)
    anytime = np.array([[0.5, 0.0, 0.0], [0.9, 0.1, 0.0], [0.7, 0.6, 0.0], [0.6, 0.8, 0.1]])
    task = np.array([0, 0, 1, 1])
    assert metrics.average_anytime_accuracy(anytime, task) == pytest.approx(
        (0.5 + 0.9 + 0.65 + 0.7) / 4)
    assert metrics.learning_curve_auc(anytime, task) == pytest.approx((0.7 + 0.7) / 2)
    stt = metrics.samples_to_threshold(anytime, task, np.array([10, 20, 10, 20]), 0.8)
    np.testing.assert_array_equal(stt, [20, 20])


# ------------------------------------------------------------------------------ learner

SETTINGS = Settings(hidden=[64], lr=0.05, eval_every=10, test_per_task=200)


@pytest.mark.parametrize("distance", DISTANCES)
def test_the_ball_holds_after_every_batch_of_a_real_stream(mnist14, distance):
    x, y = mnist14
    streams = [make_stream("permuted", x, y, s, 2, 60, 10) for s in (0, 1)]
    r = {"euclidean": 0.2, "fisher": 0.02, "ldifs": 2e-4, "kl": 0.2, "cka": 0.01}[distance]
    arms = [Arm(f"b{c}", "ball", 5, distance, r * c) for c in (0.5, 1.0)]
    rec = run(streams, arms, SETTINGS, [0, 1])
    radius = rec.radius
    assert (rec.dist <= radius * (1 + 1e-4) + 1e-9).all()
    assert (rec.alpha < 1).any()                         # the constraint did bind


@pytest.mark.sanity
def test_finetuning_forgets_split_mnist_and_replay_beats_ewc(mnist14):
    x, y = mnist14
    streams = [make_stream("split", x, y, s, 5, 300, 10) for s in (0, 1)]
    ft = run(streams, [Arm("finetune", "sgd", 1)], SETTINGS, [0, 1])
    final = ft.matrix[:, -1]                              # [instances, tasks] after the last
    assert (final[:, :-1].mean(1) < 0.05).all() and (final[:, -1] > 0.85).all()
    assert (final.mean(1) < 0.25).all()                   # published: about 20%
    rep = run(streams, [Arm("replay", "replay", 1, memory=200)], SETTINGS, [0, 1])
    ewc = run(streams, [Arm("ewc", "ewc", 1, lam=100.0)], SETTINGS, [0, 1])
    assert rep.matrix[:, -1].mean() > ewc.matrix[:, -1].mean() + 0.2


def test_matched_arms_share_stream_and_initial_weights(mnist14):
    x, y = mnist14
    streams = [make_stream("split", x, y, 0, 2, 40, 10)]
    a = run(streams, [Arm("a", "ball", 3, "euclidean", 1e9)], SETTINGS, [0])
    b = run(streams, [Arm("b", "sgd", 3)], SETTINGS, [0])
    np.testing.assert_allclose(a.anytime, b.anytime)      # an inactive ball is plain SGD


# -------------------------------------------------------------------------- config

def test_quick_config_expands_and_passes_checks():
    blk = block()
    check_config(blk)
    arms = arms_from_config(blk)
    names = [a.name for _, a in arms]
    assert len(names) == len(set(names))
    assert {"finetune", "finetune_k", "ball_fisher", "euclidean_prequential"} <= set(names)


def test_controller_distance_without_a_radius_is_rejected():
    bad = copy.deepcopy(block())
    del bad["ball"]["euclidean"]
    with pytest.raises(ValueError, match=r"continual\.controllers\.distances\[0\]"):
        check_config(bad)


# ------------------------------------------------------------- penalties, by hand

def test_ewc_and_l2sp_penalties_by_hand():
    theta = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    anchor = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    fisher = torch.tensor([[5.0, 0.5, 2.0], [1.0, 0.0, 3.0]])
    lam = torch.tensor([2.0, 4.0])
    # row 0: 2/2 (0 + 0.5*4 + 2*4) = 10; row 1: 4/2 (1 + 0 + 3) = 8
    assert ewc_penalty(theta, anchor, fisher, lam).tolist() == [10.0, 8.0]
    # row 0: 2 (0 + 4 + 4) = 16; row 1: 4 * 3 = 12
    assert l2sp_penalty(theta, anchor, lam).tolist() == [16.0, 12.0]


def test_online_ewc_consolidation_decays_the_old_fisher_and_averages_the_task():
    f_star = torch.tensor([[2.0, 4.0], [1.0, 1.0]])
    task_sum = torch.tensor([[3.0, 3.0], [6.0, 0.0]])
    out = consolidate_fisher(f_star, task_sum, 3, torch.tensor([0.5, 1.0]))
    assert out.tolist() == [[2.0, 3.0], [3.0, 1.0]]
    assert consolidate_fisher(f_star, task_sum, 0, torch.tensor([0.0, 0.0])).tolist() == \
        task_sum.tolist()                                   # no batches: divide by one


def test_lwf_penalty_is_the_tempered_kl_by_hand():
    z = torch.tensor([[[1.0, 0.0, -1.0], [0.5, 0.5, 0.0]]])          # [I=1, B=2, C=3]
    z_old = torch.tensor([[[0.0, 2.0, 0.0], [1.0, -1.0, 0.0]]])
    T = 2.0
    p_old, p = torch.softmax(z_old / T, -1), torch.softmax(z / T, -1)
    kl = (p_old * (p_old.log() - p.log())).sum(-1).mean(-1)
    got = lwf_penalty(z, z_old, torch.tensor([3.0]), T)
    assert got.item() == pytest.approx((3.0 * T ** 2 * kl).item(), rel=1e-5)
    assert lwf_penalty(z, z, torch.tensor([3.0]), T).abs().item() < 1e-6


def test_ldifs_penalty_scales_the_feature_distance():
    a, b = torch.rand(2, 4, 5), torch.rand(2, 4, 5)
    lam = torch.tensor([1.0, 10.0])
    assert torch.allclose(ldifs_penalty([a], [b], lam), lam * ldifs([a], [b]))


def test_penalties_in_the_learner_use_the_anchor_after_the_first_boundary(mnist14):
    """EWC / L2-SP / LwF / LDIFS at lambda = 0 are fine-tuning; at lambda > 0 they are not,
    and they leave the first task alone (nothing to preserve before a boundary)."""
    x, y = mnist14
    streams = [make_stream("split", x, y, 0, 2, 40, 10)]
    ft = run(streams, [Arm("f", "sgd", 1)], SETTINGS, [0])
    for kind, lam in (("ewc", 1e4), ("l2sp", 10.0), ("lwf", 10.0), ("ldifs_penalty", 1e3)):
        off = run(streams, [Arm("p", kind, 1, lam=0.0)], SETTINGS, [0])
        on = run(streams, [Arm("p", kind, 1, lam=lam)], SETTINGS, [0])
        np.testing.assert_allclose(off.anytime, ft.anytime, atol=1e-6)
        first = on.eval_batch <= 4                        # the first task's 4 batches
        np.testing.assert_allclose(on.anytime[:, first], ft.anytime[:, first], atol=1e-6)
        assert not np.allclose(on.anytime, ft.anytime), kind


def test_distances_closed_forms():
    a = torch.tensor([[3.0, 4.0, 0.0]])
    assert euclidean(a, torch.zeros(1, 3)).item() == pytest.approx(5.0)
    assert euclidean(a, a).item() == pytest.approx(1e-10, rel=1e-3)   # sqrt(EPS^2)
    f = torch.tensor([[1.0, 4.0, 9.0]])
    assert fisher_distance(torch.ones(1, 3), torch.zeros(1, 3), f).item() == \
        pytest.approx(14 ** 0.5)
    assert fisher_distance(a, a, f).item() == pytest.approx(1e-10, rel=1e-3)
    # KL of two batches of two points and three classes, by hand (B != C on purpose)
    z_ref = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    z = torch.tensor([[[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]])
    p, q = torch.softmax(z_ref, -1), torch.softmax(z, -1)
    want = (p * (p.log() - q.log())).sum(-1).mean()
    assert kl(z, z_ref).item() == pytest.approx(want.item(), rel=1e-5)
    assert linear_cka(torch.zeros(1, 4, 2), torch.zeros(1, 4, 2)).item() == 0.0   # no NaN
    with pytest.raises(ValueError, match="unknown distance 'wasserstein'"):
        Reference(*_model(1), torch.randn(1, 3, 6)).distance("wasserstein")
    with pytest.raises(ValueError, match=r"^the fisher distance needs a Fisher estimate$"):
        Reference(*_model(1), torch.randn(1, 3, 6)).distance("fisher")


def test_enforcement_edge_cases_by_hand():
    net, ref_theta = _model(3)
    x = torch.randn(3, 4, 6, generator=torch.Generator().manual_seed(2))
    ref = Reference(net, ref_theta, x)
    d = ref.distance("euclidean")
    moved = _perturbed(ref_theta, [0.1, 0.1, 0.1])
    end = moved.clone()
    r = d(moved).clone()
    r[1] = r[1] * 0.5
    r[2] = 0.0
    alpha = enforce(moved, ref.theta, d, "euclidean", r)
    assert alpha[0] == 1.0 and torch.equal(moved[0], end[0])      # on the boundary: inside
    assert alpha[1] == pytest.approx(0.5 * (1 - 1e-4), rel=1e-5)
    assert alpha[2] == 0.0 and torch.equal(moved[2], ref.theta[2])  # r = 0: back to theta_ref


def test_line_search_is_exact_in_one_step_where_sqrt_d_is_linear():
    """False position on sqrt(d) - sqrt(r): for d = c alpha^2 along the segment (the small-move
    shape of every feature distance) the first secant point is the root itself."""
    ref = torch.zeros(2, 3)
    theta = torch.tensor([[1.0, 2.0, 2.0], [0.0, 4.0, 0.0]])
    calls = []

    def squared(th):
        calls.append(1)
        return ((th - ref) ** 2).sum(-1)
    r = torch.tensor([4.0, 1.0])           # d_end = 9 and 16: roots alpha = 2/3 and 1/4
    alpha = enforce(theta, ref, squared, "sq", r, iters=1)
    torch.testing.assert_close(alpha, torch.tensor([2 / 3, 1 / 4]), rtol=1e-6, atol=0)
    assert len(calls) == 2                 # d at the end point, one line-search step


def test_line_search_falls_back_to_bisection_where_false_position_finds_nothing():
    """d = 1 - exp(-700 alpha): the six false-position points all land above the root
    (ln 2 / 700 ~ 1e-3), so the safeguard bisects from the bracket until a point is feasible:
    alpha in [root / 2, root]."""
    ref = torch.zeros(1, 1)
    theta = torch.ones(1, 1)
    root = math.log(2) / 700

    def saturating(th):
        return 1 - torch.exp(-700 * th[:, 0])
    alpha = enforce(theta, ref, saturating, "sat", torch.tensor([0.5]), iters=6)
    assert root / 2 <= alpha.item() <= root
    assert saturating(theta).item() <= 0.5


def test_illinois_steps_converge_fast_on_a_steep_convex_distance():
    """d = alpha^4 and alpha^8 (sqrt(d) still convex): plain false position creeps towards the
    root from one side; with the Illinois halving 6 steps get within 1e-5 and 2e-4."""
    ref = torch.zeros(1, 1)
    for p, tol in ((4, 1e-5), (8, 2e-4)):
        theta = torch.ones(1, 1)
        alpha = enforce(theta, ref, lambda th, p=p: th[:, 0] ** p, "pow", torch.tensor([0.3]),
                        iters=6)
        assert 0 <= 0.3 ** (1 / p) - alpha.item() < tol


def test_line_search_stays_feasible_and_moves_where_d_saturates():
    """A d that jumps to near its maximum at once (a large move that saturates the features)
    sends every secant point above the root; the safeguard bisects until a feasible alpha > 0."""
    ref = torch.zeros(1, 1)
    theta = torch.ones(1, 1)

    def saturating(th):
        return 1 - torch.exp(-200 * th[:, 0])
    r = torch.tensor([0.5])                # root alpha = ln 2 / 200 ~ 0.0035
    alpha = enforce(theta, ref, saturating, "sat", r, iters=6)
    assert 0 < alpha.item() <= math.log(2) / 200
    assert saturating(theta).item() <= 0.5


def test_feature_distances_of_the_reference_are_the_functions_by_hand():
    net, ref_theta = _model(2)
    x = torch.randn(2, 6, 6)
    ref = Reference(net, ref_theta, x)
    moved = _perturbed(ref_theta, [0.2, 0.4])
    logits, hidden = net.forward(moved, x)
    taps = [a for _, a in hidden]
    torch.testing.assert_close(ref.distance("ldifs")(moved), ldifs(taps, ref.taps))
    torch.testing.assert_close(ref.distance("kl")(moved), kl(logits, ref.logits))
    torch.testing.assert_close(ref.distance("cka")(moved), cka(taps, ref.taps))


def test_metric_edge_cases():
    one = np.array([[0.7]])
    assert metrics.backward_transfer(one) == 0.0 and metrics.forgetting(one) == 0.0
    two = np.array([[0.9, 0.1], [0.4, 0.8]])
    assert metrics.backward_transfer(two) == pytest.approx(-0.5)
    assert metrics.forgetting(two) == pytest.approx(0.5)
    three = np.array([[0.5, 0.0, 0.0], [0.9, 0.6, 0.0], [0.7, 0.2, 0.8]])
    # forgetting: best over the first T-1 rows minus the last: (0.9 - 0.7 + 0.6 - 0.2) / 2
    assert metrics.forgetting(three) == pytest.approx(0.3)
    stt = metrics.samples_to_threshold(np.array([[0.9], [0.9]]), np.array([0, 0]),
                                       np.array([10, 20]), 0.8)
    assert stt.dtype == float and stt.tolist() == [10.0]


def test_controller_boundaries_and_scales():
    r = torch.tensor([2.0, 2.0, 2.0])
    rho = torch.tensor([0.25, 0.75, 0.8])                 # at the thresholds: unchanged
    active = torch.tensor([True, True, True])
    assert ctl.ratio_update(r, rho, active, 0.1, 100).tolist() == [2.0, 2.0, 4.0]
    small = ctl.prequential_update(torch.tensor([1.0, 1.0]), torch.tensor([False, True]),
                                   3.0, 0.1, 0.5, 2.0)
    assert small.tolist() == [0.5, 2.0]                   # clipped at r_min and r_max
    lam = ctl.dual_update(torch.tensor([0.0]), torch.tensor([3.0]), torch.tensor([2.0]), 1.0)
    assert lam.tolist() == [0.5]                          # 0 + 1 (3 / 2 - 1)
    capped = ctl.dual_update(torch.tensor([0.0]), torch.tensor([30.0]), torch.tensor([2.0]),
                             1.0, lam_max=4.0)
    assert capped.tolist() == [4.0]


def test_mutation_found_gaps_in_metrics_penalties_and_memory():
    # forgetting looks at the best accuracy *before* the last task only
    a = np.array([[0.9, 0.0], [0.95, 0.8]])           # task 0 improved at the end
    assert metrics.forgetting(a) == pytest.approx(0.9 - 0.95)
    never = metrics.samples_to_threshold(np.array([[0.5], [0.6]]), np.array([0, 0]),
                                         np.array([10, 20]), 0.8)
    assert np.isnan(never).all() and never.shape == (1,)
    # LwF per instance, at a temperature where T^2 != 2T
    z = torch.tensor([[[1.0, 0.0]], [[0.0, 3.0]]])
    z_old = torch.tensor([[[0.0, 1.0]], [[0.0, 1.0]]])
    T = 3.0
    p_old, p = torch.softmax(z_old / T, -1), torch.softmax(z / T, -1)
    want = 2.0 * T ** 2 * (p_old * (p_old.log() - p.log())).sum(-1).mean(-1)
    assert torch.allclose(lwf_penalty(z, z_old, torch.tensor([2.0, 2.0]), T), want, rtol=1e-5)
    # the memory fills slot i with sample i, keeps one sample at capacity 1, none at 0
    mem_x, mem_y = torch.zeros(3, 4, 1), torch.zeros(3, 4, dtype=torch.long)
    seen = torch.zeros(3, dtype=torch.long)
    xb = torch.arange(1, 13, dtype=torch.float32).view(1, 12, 1).expand(3, 12, 1)
    reservoir(mem_x, mem_y, seen, torch.tensor([4, 1, 0]), xb[:, :4],
              torch.zeros(3, 4, dtype=torch.long), torch.Generator().manual_seed(0))
    assert mem_x[0, :, 0].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert mem_x[1, 0, 0].item() in (1.0, 2.0, 3.0, 4.0) and mem_x[2].abs().sum() == 0
    # the same generator state gives the same memory (the draws come from it alone)
    def fill(seed):
        mx, my = torch.zeros(1, 4, 1), torch.zeros(1, 4, dtype=torch.long)
        n = torch.zeros(1, dtype=torch.long)
        reservoir(mx, my, n, torch.tensor([4]), xb[:1], torch.zeros(1, 12, dtype=torch.long),
                  torch.Generator().manual_seed(seed))
        return mx
    torch.manual_seed(1)
    first = fill(5)
    torch.manual_seed(2)
    assert torch.equal(first, fill(5))


def test_bisection_keeps_a_point_exactly_on_the_boundary():
    # L1 distance in exact binary fractions: at alpha = 1/2 the point is exactly at the radius,
    # which is feasible (d <= r), so the bisection must return alpha = 1/2, not just below it
    ref = torch.zeros(1, 2)
    theta = torch.tensor([[2.0, 2.0]])
    alpha = enforce(theta, ref, lambda th: (th - ref).abs().sum(-1), "l1", torch.tensor([2.0]))
    assert alpha.item() == 0.5 and theta.tolist() == [[1.0, 1.0]]


def test_linear_cka_stays_in_zero_one_for_tiny_features():
    X = 1e-3 * torch.randn(1, 32, 16, generator=torch.Generator().manual_seed(0))
    c = linear_cka(X, X)
    assert (c <= 1.0).all() and (c > 0.99).all()
