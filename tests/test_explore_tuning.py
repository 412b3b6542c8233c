"""Direction 1's equal tuning, its ablations' moves, the walk's separate selection sample and the
bad inputs the config must refuse (issue: a tuned, powered test of the contour warm-up)."""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from rose.engine import NoJob
from rose.explore.contour import ContourSettings, _perturbation_score, contour_walk
from rose.explore.experiments import (
    ABLATION,
    arms_for,
    check_config,
    check_walk_budget,
    make_arm,
    pool_rows,
    walk_cost,
)
from rose.explore.trainer import Arm, Base, Data, Rows, train_arm
from rose.explore.tuned import at_point, grid_points, selected_point, tune_arm
from rose.nn import StackedNet
from rose.tuning import tuning_table


def _data(S=2, n=120, din=6, C=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, din, generator=g)
    y = (X @ torch.randn(din, C, generator=g)).argmax(1)
    Y = y.expand(S, n).clone()
    Y[1, :10] = (Y[1, :10] + 1) % C                       # seed 1 has some label noise
    return Data(X[:80], Y[:, :80], y[:80], X[80:100], Y[:, 80:100], X[100:], y[100:],
                X[:40], Y[:, :40], torch.arange(40), {10: torch.arange(40, 50)}, C,
                {10: torch.arange(50, 60)})


NET = StackedNet({"name": "mlp", "hidden": [5]}, (6,), 3)
BASE = Base(epochs=3, batch_size=20, lr=0.1, momentum=0.9)
WALK = ContourSettings(steps=4, probe=10, keep_every=2, perturb_samples=2)


@pytest.mark.parametrize("arm,stacked", [
    (Arm("sgd", "sgd"), {"lr": [0.05, 0.3]}),
    (Arm("warmup", "warmup", hp={"warmup_steps": 3}), {"lr": [0.05, 0.3],
                                                       "warmup_steps": [2, 7]}),
    (Arm("sam", "sam", hp={"rho": 0.05}), {"lr": [0.05, 0.3], "rho": [0.0, 0.2]}),
    (Arm("gsam", "gsam", hp={"rho": 0.1, "alpha": 0.5}), {"lr": [0.05, 0.3]}),
    (Arm("radam", "radam"), {"lr": [0.001, 0.01]}),
    (Arm("entropy_sgd", "entropy_sgd", hp={"langevin_steps": 2, "noise": 0.01}),
     {"gamma0": [0.0, 0.5]}),
    (Arm("contour", "contour", "grad_evals", contour=WALK), {"lr": [0.05, 0.3],
                                                            "step_size": [0.005, 0.03]}),
])
def test_grid_points_as_stacked_rows_equal_separate_runs(arm, stacked):
    """Rows = points x seeds of one stacked run train exactly as one run per point: per-row
    learning rates, warm-up lengths, SAM radii, Entropy-SGD couplings and walk step sizes."""
    data = _data()
    theta0 = NET.init([0, 1])
    P = len(next(iter(stacked.values())))
    rows = Rows(np.tile(np.arange(2), P), {k: np.repeat(v, 2) for k, v in stacked.items()})
    together = train_arm(NET, theta0, data, arm, BASE, 0, rows=rows)
    assert together.theta.shape[0] == 2 * P
    for p in range(P):
        point = {k: v[p] for k, v in stacked.items()}
        alone = train_arm(NET, theta0, data, at_point(arm, point), BASE, 0)
        assert torch.allclose(together.theta[2 * p:2 * p + 2], alone.theta, atol=2e-5), point
        got = together.rows(2 * p + np.arange(2), snap=p)
        assert [h["val_acc"] for h in got.history] == pytest.approx(
            [h["val_acc"] for h in alone.history])
        # snapshots keep every seed-0 row; the point's own is its seed 0
        assert torch.allclose(torch.stack(got.snapshots),
                              torch.stack([s[0] for s in alone.snapshots]), atol=2e-5)
    # the points differ: the stacked hyperparameters reached the rows
    assert not torch.allclose(together.theta[:2], together.theta[-2:], atol=1e-4)


def test_rows_of_one_seed_share_minibatches_and_start():
    data = _data()
    theta0 = NET.init([0, 1])
    rows = Rows(np.array([0, 1, 0, 1]), {"lr": np.zeros(4)})     # lr 0: nothing moves
    res = train_arm(NET, theta0, data, Arm("sgd", "sgd"), BASE, 0, rows=rows)
    assert torch.equal(res.theta[:2], theta0) and torch.equal(res.theta[2:], theta0)
    with pytest.raises(ValueError, match="cannot be stacked"):
        train_arm(NET, theta0, data, Arm("sgd", "sgd"), BASE, 0,
                  rows=Rows(np.array([0, 1]), {"momentum": np.ones(2)}))


def test_tuning_selects_on_validation_and_never_reads_test_labels():
    """The selection and its scores are the same whatever the test labels are; the selected
    point is the one with the best mean early-stopped validation accuracy."""
    data = _data()
    theta0 = NET.init([0, 1])
    arm = Arm("sgd", "sgd", grid={"lr": [0.0, 0.05, 0.5]})
    res, choice, sweep = tune_arm(NET, theta0, data, arm, BASE, [0, 1], NoJob())
    scrambled = replace(data, y_test=(data.y_test + 1) % 3)
    _res2, choice2, sweep2 = tune_arm(NET, theta0, scrambled, arm, BASE, [0, 1], NoJob())
    assert choice2.selected == choice.selected
    assert np.array_equal(choice2.scores, choice.scores)
    assert [r["final_test_acc"] for r in sweep2] != [r["final_test_acc"] for r in sweep]
    # the score is the best validation accuracy over the run's evaluations, per seed
    frame = pd.DataFrame(sweep)
    for i, p in enumerate(choice.points):
        got = frame[frame.point == json.dumps(p)].early_val_acc.to_numpy()
        assert np.allclose(got, choice.scores[i])
    assert choice.selected == int(np.argmax(choice.scores.mean(1)))
    assert frame[frame.selected].point.unique().tolist() == [json.dumps(choice.selected_point)]
    assert res.theta.shape[0] == 2                      # the selected point's seeds only
    table = tuning_table([choice])
    assert selected_point(table, "sgd") == choice.selected_point


def test_a_point_with_non_stackable_values_trains_apart():
    """Walk lengths cannot share a stacked run: one run per length, selection over all."""
    data = _data()
    arm = Arm("contour", "contour", contour=WALK, grid={"lr": [0.05, 0.2], "steps": [2, 4]})
    res, choice, sweep = tune_arm(NET, NET.init([0, 1]), data, arm, BASE, [0, 1], NoJob())
    assert len(grid_points(arm)) == 4 and len(sweep) == 8
    steps = choice.selected_point["steps"]
    assert res.walk is not None and len(res.walk.loss) == steps + 1


def test_the_walk_scores_candidates_on_its_selection_sample():
    """The trainer hands the walk the selection batch, disjoint from the walk batch and the
    measurement probe."""
    data = _data()
    seen = {}
    import rose.explore.trainer as trainer

    real = trainer.contour_walk

    def spy(net, theta, X, y, s, seed=0, select_on=None, **kw):
        seen["walk"], seen["select"] = X, select_on[0]
        return real(net, theta, X, y, s, seed, select_on, **kw)
    trainer.contour_walk = spy
    try:
        train_arm(NET, NET.init([0, 1]), data, Arm("c", "contour", contour=WALK), BASE, 0)
    finally:
        trainer.contour_walk = real
    assert torch.equal(seen["walk"], data.X_train[data.walk_index[10]])
    assert torch.equal(seen["select"], data.X_train[data.select_index[10]])
    walk, sel = set(data.walk_index[10].tolist()), set(data.select_index[10].tolist())
    assert not walk & sel and not sel & set(data.probe_index.tolist())


def test_selection_scores_use_common_random_numbers():
    """Every candidate is scored with the same noise draws: equal candidates score equal, and
    the score is a function of the candidate alone (not of how many were scored before)."""
    net = NET
    theta = net.init([0, 1])
    X, y = torch.randn(12, 6), torch.randint(0, 3, (2, 12))
    state = torch.Generator().manual_seed(5).get_state()
    a, _ = _perturbation_score(net, theta, X, y, WALK, state)
    b, _ = _perturbation_score(net, theta, X, y, WALK, state)
    assert torch.equal(a, b)
    other = torch.Generator().manual_seed(6).get_state()
    c, _ = _perturbation_score(net, theta, X, y, WALK, other)
    assert not torch.equal(a, c)


def _one_step(s, seed=3):
    net = StackedNet({"name": "mlp", "hidden": [4]}, (5,), 3)
    theta = net.init([0, 1])
    X, y = torch.randn(30, 5, generator=torch.Generator().manual_seed(1)), \
        torch.randint(0, 3, (2, 30), generator=torch.Generator().manual_seed(2))
    loss0, g = net.grad(theta, X, y, shared=True)
    end, rec = contour_walk(net, theta, X, y, replace(s, steps=1, keep_every=1, select="none"),
                            seed=seed)
    return net, theta, end, g, loss0, net.losses(end, X, y, shared=True), rec


def test_each_ablation_makes_its_move():
    """One step of each variant, checked geometrically: the isotropic walk moves eta along an
    unprojected random direction (a component along the gradient, loss changes at first
    order); the random tangent walk moves eta orthogonally to the gradient and is not pulled
    back; the contour walk's corrector returns to the level."""
    eta_frac = 0.05
    base = ContourSettings(step_size=eta_frac)
    iso = replace(base, direction="random", tangent=False, corrector=False)
    tang = replace(base, direction="random", corrector=False)
    contour = base
    for s in (iso, tang, contour):
        _net, th0, th1, g, loss0, loss1, rec = _one_step(s)
        step = th1 - th0
        eta = eta_frac * th0.norm(dim=1)
        cos = (step * g).sum(1) / (step.norm(dim=1) * g.norm(dim=1))
        if s is iso:
            assert torch.allclose(step.norm(dim=1), eta, rtol=1e-5)
            assert (cos.abs() > 1e-3).all()                 # not projected
            assert torch.allclose(torch.as_tensor(rec.loss[1]), loss1)
        elif s is tang:
            assert torch.allclose(step.norm(dim=1), eta, rtol=1e-5)
            assert (cos.abs() < 1e-5).all()                 # exactly tangent
            assert ((loss1 - loss0).abs() > 1e-6).all()     # drifted, not corrected
        else:
            # predictor tangent, then the Newton step along the new gradient back to c_0
            drift = torch.as_tensor(rec.curvature[0]) * (eta ** 2) / 2
            assert ((loss1 - loss0).abs() < 0.1 * drift.abs()).all()
    # the same seed draws the same random direction: the isotropic and tangent moves differ
    # exactly by the projection
    _, th0, a, g, *_ = _one_step(iso)
    _, _, b, *_ = _one_step(tang)
    gh = g / g.norm(dim=1, keepdim=True)
    da, db = a - th0, b - th0
    proj = da - (da * gh).sum(1, keepdim=True) * gh
    assert torch.allclose(proj / proj.norm(dim=1, keepdim=True),
                          db / db.norm(dim=1, keepdim=True), atol=1e-5)


def test_random_selection_picks_a_candidate_uniformly():
    net = StackedNet({"name": "mlp", "hidden": [4]}, (5,), 3)
    theta = net.init(range(40))
    X, y = torch.randn(20, 5), torch.randint(0, 3, (40, 20))
    _, rec = contour_walk(net, theta, X, y, ContourSettings(steps=6, keep_every=2,
                                                            select="random"), seed=1)
    assert set(rec.chosen_step.tolist()) == {0, 2, 4, 6}


def test_pool_takes_the_member_with_the_best_validation_score():
    runs = [{"arm": "sgd", "seed": s, "early_val_acc": 0.5, "early_test_acc": 0.9}
            for s in range(3)]
    runs += [{"arm": "warmup", "seed": s, "early_val_acc": 0.6, "early_test_acc": 0.1}
             for s in range(3)]
    out = pool_rows(runs, {"best": ["sgd", "warmup"]})
    assert {r["pool_member"] for r in out} == {"warmup"} and len(out) == 3
    assert all(r["arm"] == "best" for r in out)
    runs[3]["early_val_acc"] = float("nan")                 # warmup lost a seed: ranks last
    assert {r["pool_member"] for r in pool_rows(runs, {"best": ["sgd", "warmup"]})} == {"sgd"}
    assert pool_rows(runs, {"best": ["sgd", "adam"]}) == []  # a member did not run


def _quick():
    return yaml.safe_load(open("config/quick.yaml"))["explore"]


def _schema_defaults(block):
    from snakemake.utils import validate
    cfg = yaml.safe_load(open("config/quick.yaml"))
    cfg["explore"] = block
    validate(cfg, "workflow/schemas/config.schema.yaml")
    return cfg["explore"]


@pytest.mark.parametrize("edit,key", [
    (lambda b: b["settings"]["mnist_noisy"]["grids"]["sgd"].update(lr=[0.1, 0.0, 0.2, 0.3,
                                                                      0.4, 0.5]),
     "explore.settings.mnist_noisy.grids.sgd.lr: every value must be > 0"),
    (lambda b: b["arms"]["sgd"].update(grid={"lr": [-0.1]}),
     "explore.arms.sgd.grid.lr: every value must be > 0"),
    (lambda b: b["settings"]["mnist_noisy"]["grids"]["sgd"].update(lr=[0.1, 0.2]),
     "grids must have equal sizes"),
    (lambda b: b["settings"]["mnist_noisy"]["grids"]["sgd"].update(rho=[0.1]),
     "explore.settings.mnist_noisy.grids.sgd.rho: sgd has no tunable 'rho'"),
    (lambda b: b["primary"].append({"setting": "mnist_noisy", "arm": "gsam",
                                    "reference": "sgd", "metric": "early_test_acc"}),
     "explore.primary"),
    (lambda b: b["arms"].update(gsam={"method": "gsam", "rho": 0.05}),
     "explore.arms.gsam.alpha: GSAM needs alpha"),
    (lambda b: b["settings"]["mnist_noisy"]["grids"].pop("warmup"),
     "explore.primary[0].reference: ['warmup'] have no grid"),
])
def test_bad_tuning_input_is_refused_naming_the_key(edit, key):
    block = _schema_defaults(copy.deepcopy(_quick()))
    check_config(block)
    edit(block)
    with pytest.raises(ValueError, match=key.replace("[", r"\[").replace("(", r"\(")):
        check_config(block)


def test_a_walk_longer_than_the_budget_is_refused_naming_the_key():
    block = _schema_defaults(copy.deepcopy(_quick()))
    check_walk_budget(block, "mnist_large_batch", 3500)
    block["arms"]["contour_eq"]["contour"]["steps"] = 400
    key = r"explore\.arms\.contour_eq\.contour\.steps: a walk of 400"
    with pytest.raises(ValueError, match=key):
        check_walk_budget(block, "mnist_large_batch", 3500)
    # the cost counts what the walk does: 1 + T (2 gradients + a forward) + scoring forwards
    c = ContourSettings(steps=10, keep_every=5, perturb_samples=4)
    assert walk_cost(c, 100, 100) == pytest.approx(1 + 10 * (2 + 1 / 3) + 3 * 5 / 3)
    n = replace(c, direction="random", corrector=False, select="none")
    assert walk_cost(n, 100, 50) == pytest.approx(2 * (1 + 10))


def test_an_over_budget_walk_is_refused_from_the_prepared_split_before_any_job(tmp_path):
    from rose.explore.experiments import check_walk_budgets

    block = _schema_defaults(copy.deepcopy(_quick()))
    manifest = {"arrays": {"y_train": {"shape": [3500]}}}
    (tmp_path / "mnist5k.manifest.json").write_text(json.dumps(manifest))
    check_walk_budgets(block, tmp_path)
    check_walk_budgets(block, tmp_path / "absent")          # no split yet: the job checks
    block["arms"]["contour_eq"]["contour"]["steps"] = 400
    with pytest.raises(ValueError, match=r"contour_eq\.contour\.steps"):
        check_walk_budgets(block, tmp_path)


def test_ablation_variants_run_at_the_selected_point_and_say_what_they_are():
    block = _schema_defaults(copy.deepcopy(_quick()))
    arms = {a.name: a for a in arms_for(block, ABLATION)}
    assert all(not a.grid for a in arms.values())
    iso = arms["isotropic"].contour
    assert (iso.direction, iso.tangent, iso.corrector) == ("random", False, False)
    tan = arms["random_tangent"].contour
    assert (tan.direction, tan.tangent, tan.corrector) == ("random", True, False)
    assert arms["random_selection"].contour.select == "random"
    moved = at_point(arms["isotropic"], {"lr": 0.3, "step_size": 0.02})
    assert moved.hp["lr"] == 0.3 and moved.contour.step_size == 0.02
    assert moved.contour.direction == "random"              # the variant's own settings stay
    assert make_arm("x", {"method": "sgd", "grid": {"lr": [1.0]}}).grid == {"lr": [1.0]}


def test_random_rows_share_one_draw_per_seed():
    from rose.measure.landscape import random_rows

    rows = torch.tensor([0, 1, 0, 1, 2])
    got = random_rows((5, 3), torch.Generator().manual_seed(4), torch.device("cpu"), rows)
    want = torch.randn((3, 3), generator=torch.Generator().manual_seed(4))
    assert torch.equal(got, want[rows])
    plain = random_rows((5, 3), torch.Generator().manual_seed(4), torch.device("cpu"))
    assert torch.equal(plain, torch.randn((5, 3), generator=torch.Generator().manual_seed(4)))


def _result(history, diverged):
    from rose.explore.trainer import Result

    n = len(diverged)
    return Result(torch.zeros(n, 2), history, np.asarray(diverged), 0.0, 0, np.zeros(n), [])


def test_sweep_row_reads_the_early_stopped_and_final_numbers_of_its_row_only():
    """The initial weights are no early-stopping candidate; the early-stopped model is the
    evaluation with the best validation accuracy; a diverged row has no numbers."""
    from rose.explore.tuned import sweep_row

    def h(row, phase, val, test, loss):
        return {"seed_row": row, "phase": phase, "val_acc": val, "test_acc": test,
                "train_loss": loss}
    hist = [h(0, "init", 0.9, 0.91, 2.3), h(1, "init", 0.1, 0.1, 2.3),
            h(0, "train", 0.5, 0.55, 1.0), h(1, "train", 0.95, 0.2, 0.5),
            h(0, "train", 0.7, 0.65, 0.8), h(1, "train", 0.3, 0.3, 0.4),
            h(0, "train", 0.6, 0.62, 0.7), h(1, "train", 0.2, 0.25, 0.3)]
    got = sweep_row(_result(hist, [False, False]), 0)
    assert got == {"diverged": False, "early_val_acc": 0.7, "early_test_acc": 0.65,
                   "final_val_acc": 0.6, "final_test_acc": 0.62, "final_train_loss": 0.7}
    assert sweep_row(_result(hist, [False, False]), 1)["early_test_acc"] == 0.2
    dead = sweep_row(_result(hist, [False, True]), 1)
    assert dead["diverged"] is True
    assert all(np.isnan(dead[k]) for k in dead if k != "diverged")
    only_init = sweep_row(_result(hist[:2], [False, False]), 0)
    assert only_init["diverged"] is False and np.isnan(only_init["early_val_acc"])


def test_stacked_and_per_point_tuning_agree_and_equal_the_separate_runs():
    """stack=True (rows of one run) and stack=False (one run per point) give the same scores,
    selection and sweep; both equal train_arm at each point with the first seed as the run's
    seed; the sweep names each point as the tuning table does."""
    data = _data()
    seeds = [3, 5]
    theta0 = NET.init(seeds)
    arm = Arm("c", "contour", "grad_evals", contour=replace(WALK, select="random"),
              grid={"step_size": [0.03, 0.005], "lr": [0.05, 0.3]})
    a = tune_arm(NET, theta0, data, arm, BASE, seeds, NoJob())
    b = tune_arm(NET, theta0, data, arm, BASE, seeds, NoJob(), stack=False)
    assert np.array_equal(a[1].scores, b[1].scores, equal_nan=True)
    assert a[1].selected == b[1].selected
    assert pd.DataFrame(a[2]).equals(pd.DataFrame(b[2]))
    assert torch.allclose(a[0].theta, b[0].theta, atol=2e-5)
    table = tuning_table([a[1]])
    assert set(pd.DataFrame(a[2]).point) == set(table.point)
    frame = pd.DataFrame(a[2])
    assert frame.selected.sum() == 2                        # the selected point, each seed
    assert set(frame.columns) >= {"arm", "method", "point", "hp.lr", "hp.step_size", "seed",
                                  "diverged", "early_val_acc", "selected"}
    assert set(frame.arm) == {"c"} and set(frame.method) == {"contour"}
    assert frame.seed.tolist() == seeds * 4
    assert all(s.shape == (NET.dim,) for s in a[0].snapshots)
    for i, p in enumerate(a[1].points):
        alone = train_arm(NET, theta0, data, at_point(arm, p), BASE, seeds[0])
        val = [max(h["val_acc"] for h in alone.history if h["seed_row"] == s
                   and h["phase"] != "init") for s in range(2)]
        assert np.allclose(a[1].scores[i], val), p
    sel = a[1].selected_point
    alone = train_arm(NET, theta0, data, at_point(arm, sel), BASE, seeds[0])
    assert torch.allclose(a[0].theta, alone.theta, atol=2e-5)
    assert np.array_equal(a[0].walk.chosen_step, alone.walk.chosen_step)


def test_each_group_is_its_own_resumable_unit(tmp_path, monkeypatch):
    """Points that cannot share a run (walk lengths) are separate units of the job: a second
    tuning in the same job trains nothing and returns the same numbers."""
    import rose.explore.tuned as tuned
    from rose.engine import Job

    data = _data()
    arm = Arm("c", "contour", contour=replace(WALK, select="none"), grid={"steps": [2, 4]})
    job = Job(tmp_path, {"spec": 1})
    seen = []
    real = tuned.train_arm

    def spy(*args):
        seen.append(args[6])
        return real(*args)
    monkeypatch.setattr(tuned, "train_arm", spy)
    first = tune_arm(NET, NET.init([0, 1]), data, arm, BASE, [0, 1], job)
    assert seen == [job, job]                 # each group's training resumes inside the job
    loss = pd.DataFrame(first[2]).groupby("point").final_train_loss.mean()
    assert len(loss) == 2 and abs(loss.iloc[0] - loss.iloc[1]) > 1e-6   # 2 vs 4 walk steps

    def fail(*a, **k):
        raise AssertionError("trained again")
    monkeypatch.setattr(tuned, "train_arm", fail)
    again = tune_arm(NET, NET.init([0, 1]), data, arm, BASE, [0, 1], job)
    assert np.array_equal(again[1].scores, first[1].scores)
    assert again[1].selected == first[1].selected
    walks = {len(r.walk.loss) for r in (first[0], again[0])}
    assert walks == {first[1].selected_point["steps"] + 1}


def test_points_reach_their_arm_as_the_method_reads_them():
    """A grid point's values land where the method reads them: the contour arm's step size,
    length and rho in the walk's settings (its rho is the walk's SAM radius, not stackable),
    start_epochs in the arm, the rest in the hyperparameters; the grid is emptied."""
    from rose.explore.tuned import stackable

    arm = Arm("c", "contour", contour=WALK, grid={"lr": [0.1]}, hp={"lr": 0.5})
    got = at_point(arm, {"lr": 0.2, "step_size": 0.03, "steps": 7, "rho": 0.4,
                         "start_epochs": 2})
    assert got.hp == {"lr": 0.2} and got.grid == {} and got.start_epochs == 2.0
    assert (got.contour.step_size, got.contour.steps, got.contour.rho) == (0.03, 7, 0.4)
    assert at_point(arm, {}).start_epochs == 0.0 and at_point(arm, {}).contour == WALK
    sam = Arm("s", "sam", hp={"rho": 0.05})
    assert at_point(sam, {"rho": 0.2}).hp == {"rho": 0.2}
    assert stackable(sam, "rho") and not stackable(arm, "rho")
    assert stackable(arm, "step_size") and stackable(arm, "lr") and not stackable(arm, "steps")
    assert stackable(Arm("w", "warmup"), "warmup_steps")
    assert not stackable(Arm("x", "swa"), "swa_start")
    assert grid_points(Arm("u", "sgd")) == [{}]
    with pytest.raises(ValueError, match=r"^the tuning table has 0 selected points for arm 'x'$"):
        selected_point(pd.DataFrame({"arm": ["x"], "selected": [False], "point": ["{}"]}), "x")
    assert grid_points(Arm("g", "sgd", grid={"lr": [1.0, 2.0]})) == [{"lr": 1.0}, {"lr": 2.0}]


def test_rows_of_one_seed_pick_the_same_random_candidate_as_alone():
    net = StackedNet({"name": "mlp", "hidden": [4]}, (5,), 3)
    th = net.init([0, 1])
    X, y = torch.randn(20, 5), torch.randint(0, 3, (2, 20))
    s = ContourSettings(steps=6, keep_every=1, select="random", step_size=0.02)
    alone, rec = contour_walk(net, th, X, y, s, seed=2, row_seed=torch.tensor([0, 1]))
    both, rec2 = contour_walk(net, th.repeat(2, 1), X, y.repeat(2, 1),
                              replace(s), seed=2, row_seed=torch.tensor([0, 1, 0, 1]))
    assert torch.allclose(both, alone.repeat(2, 1), atol=1e-6)
    assert rec2.chosen_step.tolist() == rec.chosen_step.tolist() * 2
    plain, rec3 = contour_walk(net, th, X, y, s, seed=2)
    assert torch.equal(plain, alone) and rec3.chosen_step.tolist() == rec.chosen_step.tolist()


def test_random_rows_consume_one_draw_per_seed():
    from rose.measure.landscape import random_rows

    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    random_rows((4, 3), g1, torch.device("cpu"), torch.tensor([1, 0, 1, 0]))
    torch.randn((2, 3), generator=g2)
    assert torch.equal(torch.randn(5, generator=g1), torch.randn(5, generator=g2))


def test_a_walk_after_sgd_that_overruns_the_budget_is_refused_not_clamped():
    data = _data()
    arm = Arm("c", "contour", "grad_evals", contour=WALK, start_epochs=3.0)
    with pytest.raises(ValueError, match="more than the budget of 12"):
        train_arm(NET, NET.init([0, 1]), data, arm, BASE, 0)
    block = _schema_defaults(copy.deepcopy(_quick()))
    block["arms"]["contour_eq"]["start_epochs"] = 7.9
    with pytest.raises(ValueError, match=r"after 55 SGD steps \(start_epochs\)"):
        check_walk_budget(block, "mnist_large_batch", 3500)


@pytest.mark.parametrize("name", ["tiny", "quick", "full", "paper", "fashion_full", "cifar"])
def test_every_shipped_config_passes_its_checks_on_the_prepared_split_sizes(name, tmp_path):
    """The shipped configs' walks fit their budgets on the splits the data rule prepares
    (mnist5k: 3,500 training examples, digits: 1,258, Fashion-MNIST: 54,000)."""
    from snakemake.utils import validate

    from rose.explore.experiments import check_walk_budgets

    cfg = yaml.safe_load(open(f"config/{name}.yaml"))
    validate(cfg, "workflow/schemas/config.schema.yaml")
    check_config(cfg["explore"])
    for dataset, n in (("mnist5k", 3500), ("digits", 1258), ("fashion_mnist", 54000)):
        (tmp_path / f"{dataset}.manifest.json").write_text(
            json.dumps({"arrays": {"y_train": {"shape": [n]}}}))
    check_walk_budgets(cfg["explore"], tmp_path)


def test_scores_under_common_random_numbers_are_equal_for_equal_candidates():
    """A walk that cannot move (step size 0) keeps identical candidates: under common random
    numbers they score exactly alike, however many draws the walk made in between."""
    net = StackedNet({"name": "mlp", "hidden": [4]}, (5,), 3)
    th = net.init([0, 1])
    X, y = torch.randn(20, 5), torch.randint(0, 3, (2, 20))
    s = ContourSettings(steps=4, keep_every=1, step_size=0.0, direction="random",
                        select="perturbation")
    _, rec = contour_walk(net, th, X, y, s, seed=3, select_on=(X + 1.0, y))
    sc = np.asarray(rec.candidate_scores)
    assert sc.shape == (5, 2) and np.all(sc == sc[0])
    assert np.all(sc[0] != 0)


def test_an_edge_selection_extends_the_grid_and_trains_only_the_new_points(monkeypatch):
    """With an extension rule on lr, a selection at the grid's top edge adds lr beyond it
    (the grid's own ratio), trains only that point, and selects again over all three; the new
    point's rows are those of a separate run at that point (paired: same seeds, start, data).
    Without a rule the same grid is plain tuning."""
    import rose.explore.tuned as tuned
    from rose.tuning import Extension

    data = _data()
    seeds = [0, 1]
    theta0 = NET.init(seeds)
    arm = Arm("s", "sgd", grid={"lr": [0.01, 0.03]})    # both too small for 3 epochs
    plain = tune_arm(NET, theta0, data, arm, BASE, seeds, NoJob())
    assert plain[1].selected_point == {"lr": 0.03}       # the top edge
    trained = []
    real = tuned._group_unit

    def spy(*args):
        trained.append([args[-1][i] for i in args[-2]])   # the points of each unit
        return real(*args)
    monkeypatch.setattr(tuned, "_group_unit", spy)
    rule = {"lr": Extension("geometric", 1, upper=1.0)}
    res, choice, sweep = tune_arm(NET, theta0, data, arm, BASE, seeds, NoJob(),
                                  extensions=rule)
    assert trained == [[{"lr": 0.01}, {"lr": 0.03}], [{"lr": 0.09}]]
    assert [p["lr"] for p in choice.points] == [0.01, 0.03, 0.09]
    assert choice.extensions == [{"axis": "lr", "side": "high", "value": 0.09, "round": 1}]
    assert np.array_equal(choice.scores[:2], plain[1].scores, equal_nan=True)
    alone = train_arm(NET, theta0, data, at_point(arm, {"lr": 0.09}), BASE, seeds[0])
    val = [max(h["val_acc"] for h in alone.history if h["seed_row"] == s
               and h["phase"] != "init") for s in range(2)]
    assert np.allclose(choice.scores[2], val)
    frame = pd.DataFrame(sweep)
    assert len(frame) == 6 and frame.selected.sum() == 2
    assert set(frame[frame.selected].point) == {json.dumps(choice.selected_point)}
    assert torch.allclose(res.theta, train_arm(NET, theta0, data, at_point(
        arm, choice.selected_point), BASE, seeds[0]).theta, atol=2e-5)
