"""Direction 2: streams, distances against closed forms, the ball's enforcement (property tests
over random models and batches), controllers, metrics on a hand-made matrix, and the published
sanity behaviour (fine-tuning forgets split MNIST, replay beats EWC)."""

from __future__ import annotations

import copy

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
    ldifs,
    linear_cka,
)
from rose.continual.experiments import arms_from_config, check_config
from rose.continual.learner import Arm, Settings, _reservoir, run
from rose.continual.streams import make_stream
from rose.nn import StackedNet

from .conftest import ROOT


@pytest.fixture(scope="module")
def mnist14():
    from rose.data.bundled import load_mnist5k

    x, y = load_mnist5k()
    return x[:, :, ::2, ::2], y


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


def test_streams_from_digits(tmp_path):
    from rose.continual.experiments import stream_run

    blk = copy.deepcopy(block())
    blk.update(dataset="digits", samples_per_task=40, test_per_task=30, k=2,
               streams={"split": {"tasks": 5}, "rotated": {"tasks": 3, "max_angle": 90}},
               ball={"euclidean": 0.2}, controllers={**blk["controllers"], "names": []},
               frontier={"distance": "euclidean", "ks": [1], "radii": [0.2]},
               baselines={"finetune": {"kind": "sgd", "k": 1}})
    for s in ("split", "rotated"):
        stream_run(blk, s, [0], tmp_path / s)
        runs = __import__("pandas").read_csv(tmp_path / s / "runs.csv")
        assert len(runs) == 4 and runs.final_acc.between(0, 1).all()


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
            _reservoir(mem_x, mem_y, n_seen, cap, stream[b], torch.zeros(1, 10,
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
    with pytest.raises(ValueError, match=r"continual\.controllers\.distance"):
        check_config(bad)
