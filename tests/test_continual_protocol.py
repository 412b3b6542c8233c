"""Direction 2's experiment protocol: the validation stream (held-out tasks and images), equal
tuning that never reads the test stream, per-step projection, the bias-corrected Fisher, the
prequential ratio controller that learns every sample, controllers on every distance, CKA on
the batch plus a probe memory, MER, and the config checks that refuse bad grids and
overlapping validation streams naming the key."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from rose.continual import learner as learner_mod
from rose.continual.distances import (
    DISTANCES,
    corrected_fisher,
    empirical_fisher,
    linear_cka,
)
from rose.continual.experiments import (
    SELECTED,
    arms_from_config,
    at_point,
    check_config,
    stream_run,
)
from rose.continual.learner import Arm, Settings, run
from rose.continual.streams import _train_test, make_stream
from rose.nn import StackedNet

from .conftest import ROOT

SCHEMA = str(ROOT / "workflow/schemas/config.schema.yaml")
SETTINGS = Settings(hidden=[32], lr=0.05, eval_every=5, test_per_task=100)
RADIUS = {"euclidean": 0.2, "fisher": 0.02, "ldifs": 2e-4, "kl": 0.2, "cka": 0.01}


def tiny_block() -> dict:
    cfg = yaml.safe_load((ROOT / "config/tiny.yaml").read_text())
    validate(cfg, SCHEMA)
    return cfg["continual"]


def quick() -> dict:
    return yaml.safe_load((ROOT / "config/quick.yaml").read_text())


# ------------------------------------------------------------------ validation stream

@pytest.mark.parametrize("kind", ["split", "permuted", "rotated"])
def test_the_validation_stream_holds_no_test_image_and_no_test_task(mnist14, kind):
    x, y = mnist14
    seed = 3
    test = make_stream(kind, x, y, seed, 3, 50, 10, 150.0)
    val = make_stream(kind, x, y, seed, 3, 50, 10, 150.0, role="validation")
    _, test_idx = _train_test(y, seed)
    flat = x.reshape(len(x), -1)
    test_rows = {row.tobytes() for row in flat[test_idx]}
    if kind == "split":     # the untransformed images: none of the test split is used
        for part in (val.x.reshape(-1, val.x.shape[-1]), *val.test_x):
            assert not any(r.tobytes() in test_rows for r in part)
        pairs_test = [tuple(sorted(set(t.tolist()))) for t in test.test_y]
        pairs_val = [tuple(sorted(set(t.tolist()))) for t in val.test_y]
        assert pairs_val == [(1, 2), (3, 4), (5, 6)] and not set(pairs_val) & set(pairs_test)
    else:                   # the tasks differ: no validation input equals a test input
        test_inputs = {r.tobytes() for t in test.test_x for r in t}
        assert not any(r.tobytes() in test_inputs for t in val.test_x for r in t)
        assert not any(r.tobytes() in test_inputs for r in val.x.reshape(-1, val.x.shape[-1]))
    assert val.n_batches == test.n_batches                 # same protocol, same length


def test_rotated_validation_angles_sit_between_the_test_angles(mnist14):
    from rose.continual.streams import _rotate

    x, y = mnist14
    val = make_stream("rotated", x, y, 0, 4, 20, 10, 120.0, role="validation")
    test = make_stream("rotated", x, y, 0, 4, 20, 10, 120.0)
    # the first validation task is the image rotated by 15 degrees (half of 120 / 4)
    train, _ = _train_test(y, 0)
    img = x.reshape(len(x), x.shape[-2], x.shape[-1]).astype(np.float32)
    first = val.test_x[0][:1].reshape(1, x.shape[-2], x.shape[-1])
    cands = _rotate(img[train], 15.0)
    assert np.abs(cands - first).reshape(len(cands), -1).max(1).min() < 1e-6
    assert not np.allclose(val.test_x[0][:5], test.test_x[0][:5])


@pytest.mark.parametrize("stream,key,value", [("rotated", "angle_offset", 1.0),
                                              ("rotated", "angle_offset", 0.0),
                                              ("rotated", "angle_offset", 0.001),
                                              ("split", "class_shift", 2)])
def test_a_validation_stream_overlapping_the_test_stream_is_refused(stream, key, value):
    blk = copy.deepcopy(quick()["continual"])
    blk["validation"][key] = value
    with pytest.raises(ValueError, match=rf"continual\.validation\.{key}"):
        check_config(blk)


# ------------------------------------------------------------------------- config keys

def _schema_error(cfg: dict, path: str) -> None:
    with pytest.raises(WorkflowError) as e:
        validate(cfg, SCHEMA)
    assert path in str(e.value)


def test_a_negative_radius_or_weight_in_a_grid_is_refused_naming_the_key():
    cfg = quick()
    cfg["continual"]["tuning"]["grids"]["distance"]["radius_scale"][1] = -0.3
    _schema_error(cfg, "['continual']['tuning']['grids']['distance']['radius_scale'][1]")
    cfg = quick()
    cfg["continual"]["tuning"]["grids"]["ewc"]["lam"][0] = -1
    _schema_error(cfg, "['continual']['tuning']['grids']['ewc']['lam'][0]")


def test_an_unknown_distance_for_a_controller_is_refused_naming_the_key():
    cfg = quick()
    cfg["continual"]["controllers"]["distances"].append("wasserstein")
    last = len(cfg["continual"]["controllers"]["distances"]) - 1
    _schema_error(cfg, f"['continual']['controllers']['distances'][{last}]")
    blk = copy.deepcopy(quick()["continual"])
    blk["controllers"]["distances"] = ["kl"]
    del blk["ball"]["kl"]
    blk["per_step"] = ["euclidean"]
    with pytest.raises(ValueError, match=r"continual\.controllers\.distances\[0\]"):
        check_config(blk)


def test_unequal_grids_an_untuned_arm_and_a_foreign_hyperparameter_are_refused():
    blk = copy.deepcopy(quick()["continual"])
    blk["tuning"]["grids"]["finetune"]["lr"].append(1.0)
    with pytest.raises(ValueError, match="equal sizes"):
        check_config(blk)
    blk = copy.deepcopy(quick()["continual"])
    del blk["tuning"]["grids"]["ewc"]
    with pytest.raises(ValueError, match="'ewc' has no grid"):
        check_config(blk)
    blk = copy.deepcopy(quick()["continual"])
    blk["tuning"]["grids"]["finetune"] = {"lam": [1, 2, 3, 4]}
    with pytest.raises(ValueError, match=r"continual\.tuning\.grids\.finetune\.lam"):
        check_config(blk)


def test_controllers_run_on_every_listed_distance_and_the_grid_scales_the_radius():
    blk = quick()["continual"]
    arms = dict((a.name, a) for _, a in arms_from_config(blk))
    for dist in blk["controllers"]["distances"]:
        for name in blk["controllers"]["names"]:
            a = arms[f"{dist}_{name}"]
            assert (a.distance, a.controller, a.radius) == (dist, name, blk["ball"][dist])
    assert arms["ball_euclidean_step"].enforce == "step"
    assert at_point(arms["ball_fisher"], {"radius_scale": 3}).radius == pytest.approx(0.06)
    assert at_point(arms["finetune"], {"lr": 0.3}).lr == 0.3


# ------------------------------------------------------------------- the learner

def test_per_instance_learning_rates_equal_separate_runs(mnist14):
    x, y = mnist14
    streams = [make_stream("permuted", x, y, 0, 2, 30, 10)]
    both = run(streams, [Arm("a", "sgd", 2, lr=0.01), Arm("b", "sgd", 2, lr=0.2)], SETTINGS,
               [0])
    for i, lr in enumerate((0.01, 0.2)):
        one = run(streams, [Arm("x", "sgd", 2)], Settings(**{**SETTINGS.__dict__, "lr": lr}),
                  [0])
        np.testing.assert_allclose(both.anytime[i], one.anytime[0], atol=1e-6)


@pytest.mark.parametrize("distance", DISTANCES)
def test_per_step_projection_keeps_every_iterate_inside_the_ball(mnist14, distance,
                                                                 monkeypatch):
    """Spy on the learner's enforcement: with enforce="step" it runs after each of the K
    steps and every iterate it leaves is inside the ball; with "end" only once a batch."""
    x, y = mnist14
    streams = [make_stream("permuted", x, y, s, 2, 30, 10) for s in (0, 1)]
    calls = []
    real = learner_mod.enforce

    def spy(theta, ref, distance_fn, name, radius, iters=6):
        alpha = real(theta, ref, distance_fn, name, radius, iters)
        with torch.no_grad():
            calls.append(bool((distance_fn(theta) <= radius * (1 + 1e-4) + 1e-9).all()))
        return alpha
    monkeypatch.setattr(learner_mod, "enforce", spy)
    K = 3
    r = RADIUS[distance] / 10          # binds at this model size
    rec = run(streams, [Arm("b", "ball", K, distance, r, enforce="step")], SETTINGS, [0, 1])
    batches = streams[0].n_batches
    assert len(calls) == batches * (K + 1) and all(calls)
    assert (rec.alpha < 1).any()
    calls.clear()
    run(streams, [Arm("b", "ball", K, distance, r)], SETTINGS, [0, 1])
    assert len(calls) == batches


def test_per_step_and_end_of_k_differ_only_when_the_ball_binds(mnist14):
    x, y = mnist14
    streams = [make_stream("permuted", x, y, 0, 2, 30, 10)]
    free = [run(streams, [Arm("b", "ball", 3, "euclidean", 1e9, enforce=e)], SETTINGS, [0])
            for e in ("end", "step")]
    np.testing.assert_allclose(free[0].anytime, free[1].anytime)
    tight = [run(streams, [Arm("b", "ball", 3, "euclidean", 0.05, enforce=e)], SETTINGS, [0])
             for e in ("end", "step")]
    # both end on the boundary, through different paths: the per-step projection keeps a
    # different share of the steps than one projection of the K-step end point
    for rec in tight:
        assert (rec.alpha < 1).all() and np.allclose(rec.dist, 0.05, rtol=1e-3)
    assert not np.allclose(tight[0].alpha, tight[1].alpha)


def test_the_corrected_fisher_is_the_exact_fisher_after_a_few_batches():
    """Same theta, n batches: the bias-corrected EMA is the decay-weighted mean of the batch
    Fishers (with one repeated batch: that batch's exact empirical Fisher); the uncorrected
    EMA is (1 - decay^n) times it."""
    g = torch.Generator().manual_seed(0)
    net = StackedNet({"name": "mlp", "hidden": [8]}, (6,), 3)
    theta = net.init([0, 1], scheme="xavier")
    xs = [torch.randn(2, 5, 6, generator=g) for _ in range(3)]
    ys = [torch.randint(0, 3, (2, 5), generator=g) for _ in range(3)]
    decay = 0.9
    fs = [empirical_fisher(net, theta, x, y) for x, y in zip(xs, ys, strict=True)]
    ema = torch.zeros_like(theta)
    for f in fs:
        ema = decay * ema + (1 - decay) * f
    w = torch.tensor([decay ** 2, decay, 1.0])
    exact = sum(wi * f for wi, f in zip(w, fs, strict=True)) / w.sum()
    torch.testing.assert_close(corrected_fisher(ema, 3, decay), exact)
    one = torch.zeros_like(theta)
    for _ in range(4):
        one = decay * one + (1 - decay) * fs[0]
    torch.testing.assert_close(corrected_fisher(one, 4, decay), fs[0])
    assert torch.allclose(one, (1 - decay ** 4) * fs[0])       # what the bias would leave
    with pytest.raises(ValueError, match=r"^the running Fisher has seen no batch$"):
        corrected_fisher(ema, 0, decay)


def test_the_learners_fisher_ball_uses_the_corrected_fisher(mnist14, monkeypatch):
    """On the first batch the Fisher the ball measures with equals that batch's empirical
    Fisher at theta (not 1 - decay = 1% of it)."""
    x, y = mnist14
    streams = [make_stream("permuted", x, y, 0, 2, 20, 10)]
    seen = []
    real = learner_mod.Reference

    class Spy(real):
        def __init__(self, net, theta, x, fisher=None):
            super().__init__(net, theta, x, fisher)
            if not seen:
                seen.append((fisher.clone(), empirical_fisher(net, theta, x,
                                                              streams_y[:, 0])))
    streams_y = torch.as_tensor(streams[0].y)[None]
    monkeypatch.setattr(learner_mod, "Reference", Spy)
    run(streams, [Arm("f", "ball", 2, "fisher", 0.02)], SETTINGS, [0])
    used, exact = seen[0]
    torch.testing.assert_close(used, exact, rtol=1e-4, atol=1e-9)


def test_the_ratio_controller_learns_every_sample(mnist14):
    """An inactive ball with the ratio controller trains exactly as plain SGD on the whole
    batch (the old controller held half of every batch out of training)."""
    x, y = mnist14
    streams = [make_stream("permuted", x, y, 0, 2, 40, 10)]
    a = run(streams, [Arm("r", "ball", 2, "euclidean", 1e9, "ratio")], SETTINGS, [0])
    b = run(streams, [Arm("s", "sgd", 2)], SETTINGS, [0])
    np.testing.assert_allclose(a.anytime, b.anytime, atol=1e-6)


def test_the_ratio_test_reads_the_next_batch_before_training_on_it(mnist14, monkeypatch):
    """rho at batch t + 1 = (L_{t+1}(theta_t) - L_{t+1}(theta_{t+1})) /
    (L_t(theta_t) - L_t(theta_{t+1})), theta_t the model before batch t: recomputed from the
    weights the learner starts each batch with (a spy on its Reference)."""
    from rose.continual import radius as ctl

    x, y = mnist14
    streams = [make_stream("permuted", x, y, 0, 2, 30, 10)]
    starts, rhos = [], []
    real_ref, real_update = learner_mod.Reference, ctl.ratio_update

    class Spy(real_ref):
        def __init__(self, net, theta, x, fisher=None):
            starts.append(theta.detach().clone())
            super().__init__(net, theta, x, fisher)

    def spy_update(r, rho, *args):
        rhos.append(rho.clone())
        return real_update(r, rho, *args)
    monkeypatch.setattr(learner_mod, "Reference", Spy)
    monkeypatch.setattr(ctl, "ratio_update", spy_update)
    run(streams, [Arm("r", "ball", 2, "euclidean", 0.05, "ratio")], SETTINGS, [0])
    net = StackedNet({"name": "mlp", "hidden": [32]}, (196,), 10)
    X, Y = torch.as_tensor(streams[0].x), torch.as_tensor(streams[0].y)
    for t in (1, 2, 4):
        with torch.no_grad():
            def ce(theta, b):
                return learner_mod._ce(net, theta, X[b][None], Y[b][None])
            actual = ce(starts[t - 1], t) - ce(starts[t], t)
            predicted = ce(starts[t - 1], t - 1) - ce(starts[t], t - 1)
        assert len(rhos) == streams[0].n_batches - 1
        torch.testing.assert_close(rhos[t - 1], actual / predicted, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("controller", ["ratio", "prequential", "dual"])
@pytest.mark.parametrize("distance", ["fisher", "kl", "ldifs", "cka"])
def test_controllers_run_with_every_distance_hold_the_ball_and_adapt(mnist14, controller,
                                                                     distance):
    x, y = mnist14
    streams = [make_stream("permuted", x, y, 0, 2, 30, 10)]
    rec = run(streams, [Arm("c", "ball", 2, distance, RADIUS[distance] / 50, controller)],
              SETTINGS, [0])
    assert (rec.dist <= rec.radius * (1 + 1e-4) + 1e-9).all()
    assert np.isfinite(rec.matrix).all()
    if controller == "dual":         # the multiplier moved off zero; r is fixed
        assert rec.lam.max() > 0 and np.ptp(rec.radius) == 0
    else:                            # the radius moved
        assert np.ptp(rec.radius) > 0


def test_the_dual_multiplier_sees_the_distance_before_per_step_projection(mnist14):
    x, y = mnist14
    streams = [make_stream("permuted", x, y, 0, 2, 30, 10)]
    rec = run(streams, [Arm("d", "ball", 3, "euclidean", 0.01, "dual", enforce="step")],
              SETTINGS, [0])
    assert rec.lam.max() > 0


def test_per_arm_controller_constants_override_the_settings(mnist14):
    x, y = mnist14
    streams = [make_stream("permuted", x, y, 0, 2, 30, 10)]
    arms = [Arm("a", "ball", 2, "euclidean", 0.02, "ratio", shrink_below=-1e9,
                grow_above=1e9),
            Arm("b", "ball", 2, "euclidean", 0.02, "ratio")]
    rec = run(streams, arms, SETTINGS, [0])
    assert np.ptp(rec.radius[0]) == 0 and np.ptp(rec.radius[1]) > 0   # a never adapts


def test_cka_is_measured_on_the_batch_plus_the_probe_memory(mnist14, monkeypatch):
    x, y = mnist14
    streams = [make_stream("permuted", x, y, 0, 2, 100, 10)]
    sizes = []
    real = learner_mod.Reference

    class Spy(real):
        def __init__(self, net, theta, x, fisher=None):
            sizes.append(x.shape[1])
            super().__init__(net, theta, x, fisher)
    monkeypatch.setattr(learner_mod, "Reference", Spy)
    settings = Settings(**{**SETTINGS.__dict__, "cka_probe": 64})
    run(streams, [Arm("c", "ball", 2, "cka", 0.01)], settings, [0])
    # batch t has seen 10 t samples before it: 10 + min(64, 10 t) rows
    assert sizes == [10 + min(64, 10 * t) for t in range(len(sizes))]
    sizes.clear()
    run(streams, [Arm("k", "ball", 2, "kl", 0.2)], settings, [0])
    assert set(sizes) == {10}                  # only CKA reads the probe


def test_the_cka_probe_is_not_training_memory(mnist14):
    """An inactive CKA ball with a 20-sample replay memory trains exactly as replay with 20:
    the probe's 64 inputs live in their own reservoir, drawn with their own generator."""
    x, y = mnist14
    streams = [make_stream("permuted", x, y, 0, 2, 40, 10)]
    ball = run(streams, [Arm("c", "ball", 2, "cka", 1e9, memory=20)], SETTINGS, [0])
    rep = run(streams, [Arm("r", "replay", 2, memory=20)], SETTINGS, [0])
    np.testing.assert_allclose(ball.anytime, rep.anytime, atol=1e-6)


def test_linear_cka_of_independent_features_is_uninformative_on_ten_samples():
    """Why CKA gets a probe memory: for independent random 100-unit features, linear CKA is
    about 0.9 on 10 samples and falls towards 0 as samples grow (measured, 50 draws)."""
    g = torch.Generator().manual_seed(0)

    def mean_cka(n):
        X = torch.randn(50, n, 100, generator=g)
        Y = torch.randn(50, n, 100, generator=g)
        return float(linear_cka(X, Y).mean())
    small, probed = mean_cka(10), mean_cka(74)
    assert small > 0.8 and probed < 0.6 and mean_cka(1000) < 0.15


def test_mer_with_unit_fractions_is_replay_and_with_zero_gamma_never_moves(mnist14):
    x, y = mnist14
    streams = [make_stream("permuted", x, y, 0, 2, 30, 10)]
    mer = run(streams, [Arm("m", "mer", 3, memory=20)], SETTINGS, [0])
    rep = run(streams, [Arm("r", "replay", 3, memory=20)], SETTINGS, [0])
    np.testing.assert_allclose(mer.anytime, rep.anytime, atol=1e-6)
    frozen = run(streams, [Arm("m", "mer", 3, memory=20, gamma=0.0)], SETTINGS, [0])
    assert np.ptp(frozen.anytime, axis=1).max() < 1e-6     # theta stays at its init


def test_mer_gamma_scales_the_whole_batch_update_by_hand(mnist14, monkeypatch):
    """One batch, K = 1, empty memory: MER moves gamma beta times the SGD step."""
    x, y = mnist14
    streams = [make_stream("permuted", x, y, 0, 2, 10, 10)]
    thetas = {}
    real_acc = learner_mod._accuracy

    def grab(net, theta, xs, ys, rows, key=None):
        thetas.setdefault(grab.tag, theta.detach().clone())
        return real_acc(net, theta, xs, ys, rows)
    monkeypatch.setattr(learner_mod, "_accuracy", grab)
    s = Settings(**{**SETTINGS.__dict__, "eval_every": 1})
    grab.tag = "sgd"
    run(streams, [Arm("s", "sgd", 1)], s, [0])
    grab.tag = "mer"
    run(streams, [Arm("m", "mer", 1, memory=5, gamma=0.5, beta=0.4)], s, [0])
    net = StackedNet({"name": "mlp", "hidden": [32]}, (196,), 10)
    init = net.init([0], scheme="xavier")
    torch.testing.assert_close(thetas["mer"] - init, 0.2 * (thetas["sgd"] - init),
                               rtol=1e-4, atol=1e-7)


def test_mer_two_inner_steps_by_hand(mnist14, monkeypatch):
    """K = 2 on the first batch (empty memory): theta_a = theta_0 - beta lr g(theta_0),
    theta_b = theta_a - beta lr g(theta_a), theta_1 = theta_0 + gamma (theta_b - theta_0)."""
    import torch.nn.functional as F

    x, y = mnist14
    streams = [make_stream("permuted", x, y, 0, 2, 10, 10)]
    got = []
    real_acc = learner_mod._accuracy

    def grab(net, theta, xs, ys, rows):
        got.append(theta.detach().clone())
        return real_acc(net, theta, xs, ys, rows)
    monkeypatch.setattr(learner_mod, "_accuracy", grab)
    s = Settings(**{**SETTINGS.__dict__, "eval_every": 1})
    beta, gamma, lr = 0.5, 0.3, 0.1
    run(streams, [Arm("m", "mer", 2, memory=5, gamma=gamma, beta=beta, lr=lr)], s, [0])
    net = StackedNet({"name": "mlp", "hidden": [32]}, (196,), 10)
    th = net.init([0], scheme="xavier")
    X, Y = torch.as_tensor(streams[0].x[0])[None], torch.as_tensor(streams[0].y[0])[None]

    def grad(t):
        t = t.clone().requires_grad_()
        loss = F.cross_entropy(net.forward(t, X)[0].transpose(1, 2), Y)
        return torch.autograd.grad(loss, t)[0]
    a = th - beta * lr * grad(th)
    b = a - beta * lr * grad(a)
    torch.testing.assert_close(got[0], th + gamma * (b - th), rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- tuning, end to end

def test_tuning_never_reads_the_test_stream(tmp_path, monkeypatch):
    """The whole job twice, the second time with every test-stream label scrambled: the
    validation grid, its scores and every selection are identical."""
    from rose.continual import experiments

    blk = tiny_block()
    stream_run(blk, "split", [0, 1], tmp_path / "a")
    real = experiments.streams_for

    def scrambled(block, name, seeds, role="test"):
        streams = real(block, name, seeds, role)
        if role != "test":
            return streams
        from dataclasses import replace
        rng = np.random.default_rng(0)
        return [replace(s, y=rng.permutation(s.y.ravel()).reshape(s.y.shape),
                        test_y=[rng.permutation(t) for t in s.test_y]) for s in streams]
    monkeypatch.setattr(experiments, "streams_for", scrambled)
    stream_run(blk, "split", [0, 1], tmp_path / "b")
    a = pd.read_csv(tmp_path / "a/tuning.csv")
    b = pd.read_csv(tmp_path / "b/tuning.csv")
    pd.testing.assert_frame_equal(a, b)
    ra, rb = (pd.read_csv(tmp_path / p / "runs.csv") for p in ("a", "b"))
    assert (ra[ra.arm == SELECTED].selected_arm.iloc[0]
            == rb[rb.arm == SELECTED].selected_arm.iloc[0])
    assert not np.allclose(ra.final_acc, rb.final_acc)       # the test runs did change


def test_validation_runs_start_from_other_weights_than_the_test_runs(tmp_path, monkeypatch):
    from rose.continual import experiments

    seen = []
    real = experiments.run

    def spy(streams, arms, settings, seeds, *args, **kwargs):
        seen.append((kwargs.get("anytime", True), tuple(seeds)))
        return real(streams, arms, settings, seeds, *args, **kwargs)
    monkeypatch.setattr(experiments, "run", spy)
    stream_run(tiny_block(), "split", [0, 1], tmp_path)
    val = {s for anytime, s in seen if not anytime}
    test = {s for anytime, s in seen if anytime}
    assert test == {(0, 1)} and val and not val & test


def test_a_validation_pool_too_small_for_the_stream_is_refused_naming_the_key(tmp_path):
    blk = tiny_block()
    blk["streams"]["split"]["samples_per_task"] = 700     # a pair has 640 validation images
    with pytest.raises(ValueError, match=r"continual\.streams\.split\.samples_per_task"):
        stream_run(blk, "split", [0], tmp_path)


def test_every_tuned_arm_runs_its_selected_point_and_ball_best_is_the_best_ball(tmp_path):
    blk = tiny_block()
    stream_run(blk, "split", [0, 1], tmp_path)
    tuning = pd.read_csv(tmp_path / "tuning.csv")
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert tuning.groupby("arm").grid_size.first().nunique() == 1     # equal grids
    sel = tuning[tuning.selected]
    assert sel.arm.is_unique and set(sel.arm) == set(runs[~runs.group.isin(
        ["frontier", "selected"])].arm)
    for r in sel.itertuples():
        best = tuning[tuning.arm == r.arm].val_mean.max()
        assert r.val_mean == pytest.approx(best)
        row = runs[runs.arm == r.arm].iloc[0]
        assert row.val_score == pytest.approx(r.val_mean)
    balls = sel[sel.group.isin(["distance", "controller"])]
    picked = runs[runs.arm == SELECTED].selected_arm.iloc[0]
    assert picked == balls.loc[balls.val_mean.idxmax(), "arm"]
    a = runs[runs.arm == SELECTED].set_index("seed").final_acc
    b = runs[runs.arm == picked].set_index("seed").final_acc
    pd.testing.assert_series_equal(a, b, check_names=False)


# ------------------------------------------------------- streams: contract details (mutation)

def test_streams_are_deterministic_typed_and_default_to_half_turn_angles(mnist14):
    x, y = mnist14
    for role in ("test", "validation"):
        a = make_stream("rotated", x, y, 5, 2, 20, 10, role=role)
        b = make_stream("rotated", x, y, 5, 2, 20, 10, 180.0, role=role)
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.test_x[1], b.test_x[1])
        assert a.x.dtype == np.float32 and a.y.dtype == np.int64
        assert all(t.dtype == np.float32 for t in a.test_x)
        assert all(t.dtype == np.int64 for t in a.test_y)
    p1 = make_stream("permuted", x, y, 5, 2, 20, 10)
    p2 = make_stream("permuted", x, y, 5, 2, 20, 10)
    np.testing.assert_array_equal(p1.x, p2.x)


def test_stream_arguments_are_refused_with_their_reason(mnist14):
    from rose.continual.streams import overlaps

    x, y = mnist14
    with pytest.raises(ValueError, match=r"^unknown stream 'spiral'; expected one of"):
        make_stream("spiral", x, y, 0, 2, 20, 10)
    with pytest.raises(ValueError, match=r"^unknown stream role 'train'; expected one of"):
        make_stream("permuted", x, y, 0, 2, 20, 10, role="train")
    with pytest.raises(ValueError, match=r"^validation stream overlaps the test stream: "
                                         r"angle_offset: validation angles within a quarter"):
        make_stream("rotated", x, y, 0, 2, 20, 10, role="validation", angle_offset=0.1)
    for ok in (0.25, 0.5, 0.75, 1.5):
        assert overlaps("rotated", ok, 1) is None
    assert overlaps("split", 0.0, 1) is None and overlaps("permuted", 0.0, 2) is None
    assert overlaps("rotated", 0.0, 2).startswith("angle_offset: ")
    assert overlaps("split", 0.5, 2) == ("class_shift: an even shift gives the test "
                                        "stream's class pairs")


def test_stream_subsets_are_drawn_under_their_audit_names(mnist14):
    from rose.sampling import record_subsets

    x, y = mnist14
    with record_subsets() as rec:
        make_stream("split", x, y, 0, 2, 20, 10, role="validation")
        make_stream("permuted", x, y, 0, 2, 20, 10)
    names = {r.name for r in rec}
    assert {"continual.split.test", "continual.split.train", "continual.task_samples",
            "continual.validation_split.eval", "continual.validation_split.train"} <= names
