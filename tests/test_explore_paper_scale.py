"""Direction 1 at paper scale (issue 28): the cosine schedule every arm descends with, tuning on
a subset of the seeds, the training set evaluated on a stratified sample, the small- vs
large-batch gap and the fraction of seeds whose walk moved."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from rose.engine import NoJob
from rose.explore.contour import ContourSettings
from rose.explore.report import batch_gaps, walk_moved
from rose.explore.trainer import Arm, Base, Data, evaluate, schedule_factor, train_arm
from rose.explore.tuned import at_point, tune_arm
from rose.nn import StackedNet
from rose.nn.optim import PerInstanceLR
from rose.power import config_seeds


def _data(S=3, n=120, din=6, C=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, din, generator=g)
    y = (X @ torch.randn(din, C, generator=g)).argmax(1)
    Y = y.expand(S, n).clone()
    Y[1, :10] = (Y[1, :10] + 1) % C
    return Data(X[:80], Y[:, :80], y[:80], X[80:100], Y[:, 80:100], X[100:], y[100:],
                X[:40], Y[:, :40], torch.arange(40), {10: torch.arange(40, 50)}, C,
                {10: torch.arange(50, 60)})


NET = StackedNet({"name": "mlp", "hidden": [5]}, (6,), 3)
COSINE = Base(epochs=3, batch_size=20, lr=0.1, momentum=0.9, schedule="cosine")
WALK = ContourSettings(steps=4, probe=10, keep_every=2, perturb_samples=2)


def test_cosine_factor_known_values_and_warmup_product():
    """(1 + cos(pi t / T)) / 2: 1 at the start, 1/2 halfway, 0 at the end and after; times the
    linear warm-up min(1, (t + 1) / w); SWA and the constant schedule keep the rate."""
    assert schedule_factor("cosine", 0, 10) == 1.0
    assert schedule_factor("cosine", 5, 10) == pytest.approx(0.5)
    assert schedule_factor("cosine", 10, 10) == pytest.approx(0.0, abs=1e-12)
    assert schedule_factor("cosine", 12, 10) == pytest.approx(0.0, abs=1e-12)
    assert schedule_factor("cosine", 2, 8) == pytest.approx((1 + math.cos(math.pi / 4)) / 2)
    assert schedule_factor("constant", 7, 10) == 1.0
    assert schedule_factor("cosine", 7, 10, swa=True) == 1.0
    warm = torch.tensor([4.0, 1.0])
    got = schedule_factor("cosine", 1, 4, warm)
    assert torch.allclose(got, torch.tensor([0.5, 1.0]) * (1 + math.cos(math.pi / 4)) / 2)
    with pytest.raises(ValueError, match="unknown schedule"):
        schedule_factor("linear", 0, 10)


def _rates(monkeypatch, arm, base, seeds=2):
    seen = []
    orig = PerInstanceLR.step

    def step(self, closure=None):
        seen.append(self.lr.flatten().clone())
        return orig(self, closure)
    monkeypatch.setattr(PerInstanceLR, "step", step)
    res = train_arm(NET, NET.init(list(range(seeds))), _data(seeds), arm, base, 0)
    return torch.stack(seen), res


@pytest.mark.parametrize("arm", [Arm("sgd", "sgd", hp={"lr": 0.2}),
                                 Arm("sam", "sam", "grad_evals", hp={"lr": 0.2, "rho": 0.05})])
def test_every_step_of_a_cosine_run_takes_its_scheduled_rate(monkeypatch, arm):
    """The rate of step t of an arm's T descent steps is lr (1 + cos(pi t / T)) / 2 (SAM at
    equal gradient evaluations takes half the steps: its own T)."""
    rates, res = _rates(monkeypatch, arm, COSINE)
    T = res.steps
    assert T == (12 if arm.method == "sgd" else 6)
    want = torch.tensor([0.2 * (1 + math.cos(math.pi * t / T)) / 2 for t in range(T)])
    assert torch.allclose(rates[:, 0], want, atol=1e-6)
    assert torch.allclose(rates[:, 1], want, atol=1e-6)


def test_the_contour_arms_schedule_spans_its_descent_after_the_walk(monkeypatch):
    """After the walk the cosine runs over the SGD steps left in the budget (start to 0)."""
    arm = Arm("contour", "contour", "grad_evals", hp={"lr": 0.2}, contour=WALK)
    rates, res = _rates(monkeypatch, arm, COSINE)
    T = res.steps
    assert T < 12                                       # the walk is charged to the budget
    want = torch.tensor([0.2 * (1 + math.cos(math.pi * t / T)) / 2 for t in range(T)])
    assert torch.allclose(rates[:, 0], want, atol=1e-6)


def test_swa_keeps_its_own_rate_under_a_cosine_config(monkeypatch):
    arm = Arm("swa", "swa", hp={"lr": 0.2, "swa_start": 0.5})
    rates, _ = _rates(monkeypatch, arm, COSINE)
    assert torch.allclose(rates, torch.full_like(rates, 0.2))


def test_tuning_on_a_subset_of_seeds_then_the_selected_point_on_all():
    """tune_seeds = 2 of 3: the sweep holds seeds 0 and 1 only, and the reported result is the
    selected point trained on all three seeds (exactly a plain run at that point)."""
    data, theta0 = _data(), NET.init([0, 1, 2])
    base = replace(COSINE, schedule="constant")
    arm = Arm("sgd", "sgd", grid={"lr": [0.0, 0.3]})
    res, choice, sweep = tune_arm(NET, theta0, data, arm, base, [0, 1, 2], NoJob(),
                                  tune_seeds=2)
    assert sorted({r["seed"] for r in sweep}) == [0, 1]
    assert len(sweep) == 4 and choice.scores.shape == (2, 2)
    assert choice.selected_point == {"lr": 0.3}         # lr 0 never learns
    plain = train_arm(NET, theta0, data, at_point(arm, choice.selected_point), base, 0)
    assert res.theta.shape[0] == 3
    assert torch.equal(res.theta, plain.theta)
    # seed 0's snapshots, one weight vector per evaluation, as the tuning rows give them
    assert [s.shape for s in res.snapshots] == [(NET.dim,)] * len(plain.snapshots)
    assert all(torch.equal(a, b[0]) for a, b in zip(res.snapshots, plain.snapshots,
                                                     strict=True))
    # without tune_seeds (or with all of them) the rows are the tuning rows themselves
    full, _, sweep_all = tune_arm(NET, theta0, data, arm, base, [0, 1, 2], NoJob())
    assert len(sweep_all) == 6 and full.theta.shape[0] == 3
    with pytest.raises(ValueError, match="tune_seeds"):
        tune_arm(NET, theta0, data, arm, base, [0, 1, 2], NoJob(), tune_seeds=0)


def test_an_untuned_arm_ignores_tune_seeds():
    data, theta0 = _data(), NET.init([0, 1, 2])
    res, _, sweep = tune_arm(NET, theta0, data, Arm("sgd", "sgd", hp={"lr": 0.1}),
                             replace(COSINE, epochs=1), [0, 1, 2], NoJob(), tune_seeds=1)
    assert res.theta.shape[0] == 3 and len(sweep) == 3


def test_the_training_set_is_evaluated_on_its_sample_only():
    """train_eval_index: the training loss and accuracy are those of the sampled examples (the
    other splits unchanged)."""
    data, theta = _data(), NET.init([0, 1, 2])
    idx = torch.tensor([3, 7, 11, 40, 41, 79])
    sub = replace(data, X_train=data.X_train[idx], y_train=data.y_train[:, idx],
                  y_train_clean=data.y_train_clean[idx])
    got = evaluate(NET, theta, replace(data, train_eval_index=idx))
    want, whole = evaluate(NET, theta, sub), evaluate(NET, theta, data)
    for k in got:
        assert np.allclose(got[k], want[k]), k
        if not k.startswith("train"):
            assert np.allclose(got[k], whole[k]), k
    assert not np.allclose(got["train_loss"], whole["train_loss"])


def test_batch_gap_is_large_minus_small_paired_by_seed():
    rows = []
    for seed, (a, b) in enumerate([(0.90, 0.88), (0.91, 0.88), (0.89, 0.88)]):
        rows += [{"setting": "small", "arm": "sgd", "seed": seed, "final_test_acc": a,
                  "early_test_acc": a},
                 {"setting": "large", "arm": "sgd", "seed": seed, "final_test_acc": b,
                  "early_test_acc": b},
                 {"setting": "small", "arm": "sam", "seed": seed, "final_test_acc": a,
                  "early_test_acc": a}]
    gaps = batch_gaps(pd.DataFrame(rows), "small", "large")
    assert list(gaps.arm.unique()) == ["sgd"]            # sam runs on one setting only
    r = gaps[gaps.metric == "final_test_acc"].iloc[0]
    assert r.difference == pytest.approx(-0.02) and r.n == 3
    assert r.small_mean == pytest.approx(0.90) and r.large_mean == pytest.approx(0.88)
    d = np.array([-0.02, -0.03, -0.01])
    half = 4.302652729911275 * d.std(ddof=1) / math.sqrt(3)    # t_{0.975, 2}
    assert r.ci_low == pytest.approx(d.mean() - half) and r.ci_high == pytest.approx(
        d.mean() + half)


def test_walk_moved_counts_seeds_that_left_the_start_point():
    runs = pd.DataFrame({
        "setting": ["s"] * 5, "arm": ["c"] * 4 + ["pool"], "method": ["contour"] * 5,
        "walk_chosen_step": [0.0, 5.0, np.nan, 10.0, 5.0],
        "pool_member": [np.nan] * 4 + ["c"]})
    got = walk_moved(runs)
    assert got.to_dict("records") == [{"setting": "s", "arm": "c", "moved": 0.5, "seeds": 4}]
    assert walk_moved(runs.drop(columns="walk_chosen_step")).empty


def test_the_power_plan_reads_direction_ones_own_seeds():
    cfg = {"seeds": [0, 1], "explore": {"seeds": list(range(10))}}
    assert config_seeds(cfg, "explore", {}) == 10
    assert config_seeds(cfg, "continual", {}) == 2
    assert config_seeds({"seeds": [0, 1], "explore": {}}, "explore", {}) == 2


def test_the_text_says_the_walk_did_not_move_when_most_seeds_kept_their_start():
    from rose.explore.report import moved_sentence

    def runs(steps):
        return pd.DataFrame({"setting": "s", "arm": "c", "method": "contour",
                             "walk_chosen_step": steps})
    stayed = moved_sentence(runs([0.0, 0.0, 5.0]))
    assert "moved on 1 of 3 seeds" in stayed and "did not move" in stayed
    moved = moved_sentence(runs([5.0, 0.0, 5.0]))
    assert "moved on 2 of 3 seeds" in moved and "did not move" not in moved


def test_the_batch_gap_sentence_reads_final_accuracy_only():
    from rose.explore.report import batch_gap_sentence

    gaps = pd.DataFrame([{"arm": "sgd", "metric": m, "small": "a", "large": "b",
                          "small_mean": 0.9, "large_mean": 0.88, "difference": d,
                          "ci_low": d - 0.01, "ci_high": d + 0.01, "n": 10}
                         for m, d in (("final_test_acc", -0.02), ("early_test_acc", 0.5))])
    text = batch_gap_sentence(gaps)
    assert "-2.0 points [-3.0, -1.0]" in text and "+50.0" not in text and "10 seeds" in text
    assert batch_gap_sentence(gaps.iloc[:0]) == ""


def test_a_setting_runs_its_own_seeds_only_if_they_are_the_directions():
    from rose.explore.experiments import ABLATION, setting_seeds

    block = {"settings": {"a": {}, "b": {"seeds": [0, 2]}}}
    assert setting_seeds(block, "a", [0, 1, 2]) == [0, 1, 2]
    assert setting_seeds(block, "b", [0, 1, 2]) == [0, 2]
    assert setting_seeds(block, ABLATION, [0, 1, 2]) == [0, 1, 2]
    with pytest.raises(ValueError, match=r"explore.settings.b.seeds: \[2\]"):
        setting_seeds(block, "b", [0, 1])


@pytest.mark.parametrize("arm,method,pooled", [("sam", "sam", True), ("walk", "contour", False),
                                               ("gam", "gam", True)])
def test_a_primary_arm_that_costs_more_per_step_must_be_compared_at_equal_evaluations(
        arm, method, pooled):
    from rose.explore.experiments import check_equal_evaluations

    spec = {"method": method, **({"contour": {}} if method == "contour" else {})}
    block = {"arms": {"sgd": {"method": "sgd"}, "swa": {"method": "swa"}, arm: spec},
             "settings": {"s": {"dataset": "digits", "model": {}, "label_noise": 0.0}},
             "pools": {"flat": ["swa", arm]} if pooled else {},
             "primary": [{"setting": "s", "arm": "flat" if pooled else arm,
                          "reference": "sgd"}]}
    with pytest.raises(ValueError, match=rf"explore.arms.{arm}.budget"):
        check_equal_evaluations(block)
    block["arms"][arm]["budget"] = "grad_evals"
    check_equal_evaluations(block)
    block["arms"]["swa"]["budget"] = "steps"            # one evaluation per step: either budget
    check_equal_evaluations(block)


def test_the_text_lists_arms_not_pools():
    """A pool (its rows carry ``pool_member``) is a choice among arms, not an arm; the ablation's
    variants are not main arms."""
    from rose.explore.report import arm_names

    runs = pd.DataFrame({"setting": ["s", "s", "s", "s", "ablation"],
                         "arm": ["sgd", "sam", "swa", "sam_or_swa", "isotropic"],
                         "pool_member": [np.nan, np.nan, np.nan, "sam", np.nan]})
    assert arm_names(runs) == ["sgd", "sam", "swa"]
    assert arm_names(runs.drop(columns="pool_member")) == ["sgd", "sam", "swa", "sam_or_swa"]


@pytest.mark.parametrize("where", ["arm", "variant", "grid"])
def test_sgd_before_the_walk_is_refused_under_a_cosine_schedule(where):
    import copy

    import yaml

    from rose.explore.experiments import check_config

    block = yaml.safe_load(open("config/paper.yaml"))["explore"]
    check_config(copy.deepcopy(block))
    if where == "arm":
        block["arms"]["contour_eq"]["start_epochs"] = 1
        key = "explore.arms.contour_eq.start_epochs"
    elif where == "variant":
        block["ablation"]["variants"]["after_plateau"] = {"start_epochs": 1}
        key = "explore.ablation.variants.after_plateau.start_epochs"
    else:
        block["arms"]["contour_eq"]["grid"] = {"lr": [0.05, 0.1], "start_epochs": [0, 1]}
        key = "explore.arms.contour_eq.start_epochs"
    with pytest.raises(ValueError, match=key):
        check_config(block)
    block["schedule"] = "constant"
    if where != "grid":
        check_config(block)


def test_a_cosine_contour_run_resumed_after_its_walk_equals_one_run(tmp_path):
    """Killed part-way through the descent after the walk and resumed from its checkpoint, the
    run takes the same scheduled rates (T recomputed from the restored phase) and ends on the
    same weights as one uninterrupted run."""
    from rose.engine import Job

    arm = Arm("contour", "contour", "grad_evals", hp={"lr": 0.2}, contour=WALK)
    data, theta0 = _data(2), NET.init([0, 1])
    whole = train_arm(NET, theta0, data, arm, COSINE, 0)

    class Stop(Exception):
        pass

    job = Job(tmp_path, {"k": 1}, every_seconds=0)
    real, ticks = job.tick, []

    def tick(state, force=False):
        real(state, force=force)
        ticks.append(1)
        if len(ticks) == 5:                      # the walk's tick, then 4 descent steps
            raise Stop
    job.tick = tick
    def unit(j):
        res = train_arm(NET, theta0, data, arm, COSINE, 0, j)
        return {"theta": res.theta, "steps": res.steps}
    with pytest.raises(Stop):
        job.unit("arm", lambda: unit(job))
    again = Job(tmp_path, {"k": 1}, every_seconds=0)
    assert again.resumed and again.loop_state["phase"] == 2 and again.loop_state["k"] == 4
    resumed = again.unit("arm", lambda: unit(again))
    assert torch.allclose(resumed["theta"], whole.theta, atol=1e-6)
    assert resumed["steps"] == whole.steps


def test_one_tuning_seed_is_enough_to_select():
    data, theta0 = _data(), NET.init([0, 1, 2])
    arm = Arm("sgd", "sgd", grid={"lr": [0.0, 0.3]})
    res, choice, sweep = tune_arm(NET, theta0, data, arm, replace(COSINE, epochs=1),
                                  [0, 1, 2], NoJob(), tune_seeds=1)
    assert choice.scores.shape == (2, 1) and {r["seed"] for r in sweep} == {0}
    assert choice.selected_point == {"lr": 0.3} and res.theta.shape[0] == 3


def test_an_untuned_arms_choice_is_named_after_it():
    _, choice, _ = tune_arm(NET, NET.init([0, 1]), _data(2), Arm("plain", "sgd",
                            hp={"lr": 0.1}), replace(COSINE, epochs=1), [0, 1], NoJob())
    assert choice.arm == "plain" and choice.selected_point == {}


def test_inside_a_job_every_round_and_the_selected_run_are_their_own_units(tmp_path,
                                                                           monkeypatch):
    """In a real job (units stored by name): the extension round trains its new point (a
    unit named apart from round 0's), and the selected point's run on every seed is one more
    unit, trained inside the job (resumable)."""
    import rose.explore.tuned as tuned
    from rose.engine import Job
    from rose.tuning import Extension

    data, seeds = _data(), [0, 1, 2]
    job = Job(tmp_path, {"spec": "rounds"}, every_seconds=3600)
    seen = []
    real = tuned.train_arm

    def spy(*args):
        seen.append(args[6])
        return real(*args)
    monkeypatch.setattr(tuned, "train_arm", spy)
    arm = Arm("s", "sgd", grid={"lr": [0.01, 0.03]})            # the top edge is selected
    res, _choice, sweep = tune_arm(NET, NET.init(seeds), data, arm, replace(COSINE, epochs=2),
                                  seeds, job, extensions={"lr": Extension("geometric", 2,
                                                                          upper=1.0)},
                                  tune_seeds=2)
    assert sorted({r["hp.lr"] for r in sweep}) == pytest.approx([0.01, 0.03, 0.09, 0.27])
    assert sorted(job.units) == ["s/grid0", "s/round1/grid0", "s/round2/grid0", "s/selected"]
    assert seen == [job] * 4 and res.theta.shape[0] == 3
