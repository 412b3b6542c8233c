"""Equal tuning of an arm (PROTOCOL.md section 2, rose.tuning): every point of the arm's declared
grid trains for every seed under the same budget, and the point with the best mean validation
accuracy of the early-stopped model (the highest validation accuracy over the run's evaluations,
on the noisy validation labels a practitioner has) is selected. Test data never enter the choice;
the selected point's rows are the arm's reported runs (no retraining), and every point's
validation and test numbers are kept for the learning-rate sweep figure.

Grid points x seeds train as the rows of one stacked run wherever the points differ only in
``rose.explore.trainer.STACKABLE`` hyperparameters (row = point * S + seed); points that differ
in anything else (walk length, SWA start, ...) form separate stacked runs. Rows of one seed share
initial weights, labels and minibatches, so the grid is paired across points as the arms are.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import pandas as pd

from rose.engine import Job
from rose.explore.contour import WalkRecord
from rose.explore.trainer import STACKABLE, Arm, Base, Data, Result, Rows, train_arm
from rose.nn import StackedNet
from rose.tuning import Extension, Grid, TuningResult, select, tune_extending

# what each method may tune (config key explore.arms.<arm>.grid); contour keys in CONTOUR_KEYS
# go to the walk's settings
TUNABLE = {
    "sgd": {"lr", "weight_decay"}, "warmup": {"lr", "warmup_steps", "weight_decay"},
    "adam": {"lr"}, "radam": {"lr"}, "sam": {"lr", "rho"}, "asam": {"lr", "rho"},
    "gsam": {"lr", "rho", "alpha"}, "gam": {"lr", "grad_rho", "grad_norm_rho"},
    "swa": {"lr", "swa_start"}, "entropy_sgd": {"gamma0", "inner_lr", "outer_lr"},
    "contour": {"lr", "step_size", "steps", "start_epochs", "rho"},
}
CONTOUR_KEYS = ("step_size", "steps")


def grid_points(arm: Arm) -> list[dict[str, Any]]:
    """The arm's grid points ([{}]: an untuned arm is a grid of one point)."""
    return Grid(arm.name, arm.grid).points if arm.grid else [{}]


def stackable(arm: Arm, key: str) -> bool:
    # the contour arm's rho is the walk's SAM radius, not an optimiser's: not stackable
    return key in STACKABLE and not (arm.method == "contour" and key == "rho")


def at_point(arm: Arm, point: dict[str, Any]) -> Arm:
    """The arm with ``point``'s values in place of its own (contour keys into the walk's
    settings, ``start_epochs`` into the arm)."""
    contour_over = {k: v for k, v in point.items()
                    if arm.method == "contour" and k in (*CONTOUR_KEYS, "rho")}
    hp = {k: v for k, v in point.items() if k not in contour_over and k != "start_epochs"}
    return replace(arm, hp={**arm.hp, **hp}, grid={},
                   contour=replace(arm.contour, **contour_over) if contour_over else arm.contour,
                   start_epochs=float(point.get("start_epochs", arm.start_epochs)))


def _groups(arm: Arm, points: list[dict], stack: bool = True) -> list[tuple[dict, list[int]]]:
    """Points grouped by their non-stackable values: [(those values, point indices)]; every
    point alone when ``stack`` is off."""
    out: dict[Any, tuple[dict, list[int]]] = {}
    for i, p in enumerate(points):
        fixed = {k: v for k, v in p.items() if not stackable(arm, k)}
        key = tuple(sorted(fixed.items())) if stack else i
        out.setdefault(key, (fixed, []))[1].append(i)
    return list(out.values())


def _plain(res: Result) -> dict:
    return asdict(res)


def _result(d: dict) -> Result:
    walk = d.pop("walk")
    return Result(**d, walk=None if walk is None else WalkRecord(**walk))


def sweep_row(res: Result, row: int) -> dict[str, Any]:
    """Row ``row``'s numbers for the sweep: whether it diverged, the validation accuracy of its
    early-stopped model (the evaluation with the best validation accuracy; the selection score)
    with that model's test accuracy, and the final validation and test accuracy and training
    loss; all NaN for a diverged row. The initial weights are not a candidate for early
    stopping."""
    dead = bool(res.diverged[row])
    h = [x for x in res.history if x["seed_row"] == row and x["phase"] != "init"]
    out = {"diverged": dead, "early_val_acc": np.nan, "early_test_acc": np.nan,
           "final_val_acc": np.nan, "final_test_acc": np.nan, "final_train_loss": np.nan}
    if dead or not h:
        return out
    best = max(h, key=lambda x: x["val_acc"])
    return {**out, "early_val_acc": float(best["val_acc"]),
            "early_test_acc": float(best["test_acc"]), "final_val_acc": float(h[-1]["val_acc"]),
            "final_test_acc": float(h[-1]["test_acc"]),
            "final_train_loss": float(h[-1]["train_loss"])}


def tune_arm(net: StackedNet, theta0: Any, data: Data, arm: Arm, base: Base, seeds: list[int],
             job: Job, stack: bool = True, extensions: Mapping[str, Extension] | None = None,
             tune_seeds: int | None = None) -> tuple[Result, TuningResult, list[dict]]:
    """Train every grid point x seed, select on validation; returns (the selected point's
    result with one row per seed, the tuning result, one sweep row per point and seed).
    ``stack`` trains the points of a group as rows of one run; off, one run per point (the
    seeds stacked): the same numbers, and on a CPU the faster (``make bench``). Each group is
    a unit of ``job`` that keeps only its sweep rows and its best point's result (the selected
    point is the best of its group), so a checkpoint holds one point's weights per group.
    ``extensions`` (rose.tuning.Extension per hyperparameter, the config's
    ``explore.extensions``): while the selection sits at the edge of a ruled axis the grid
    grows beyond it and only the new points train, as further units (rose.tuning.tune_extending);
    every round's rows share the seeds' initial weights and data, so all points stay paired.
    ``tune_seeds`` (the config's ``explore.tune_seeds``): the grid trains on the first
    ``tune_seeds`` seeds only (every arm alike) and the selected point then trains on every
    seed, as one more unit: same initial weights and labels per seed; the sampler draws every
    row's permutation from one generator, so the tuning seeds keep their first epoch's order
    and get fresh orders after it (their reported runs are not the tuning runs' rows); the
    sweep holds the tuning seeds."""
    S = len(seeds) if not arm.grid or tune_seeds is None else min(tune_seeds, len(seeds))
    if S < 1:
        raise ValueError(f"tune_seeds must be at least 1, got {tune_seeds}")
    best: dict[str, Result] = {}                       # a group's best point -> its result
    sweep: list[dict] = []
    rounds = itertools.count()

    def train(points: list[dict[str, Any]], _budget: Any) -> np.ndarray:
        r = next(rounds)                 # round 0 keeps the unit names of a plain grid
        scores = np.full((len(points), S), np.nan)
        for gi, (fixed, members) in enumerate(_groups(arm, points, stack)):
            rows = Rows(np.tile(np.arange(S), len(members)),
                        {k: np.repeat([points[i][k] for i in members], S)
                         for k in points[members[0]] if stackable(arm, k)})
            arm_g = at_point(arm, fixed)
            name = f"{arm.name}/grid{gi}" if r == 0 else f"{arm.name}/round{r}/grid{gi}"
            unit = job.unit(name, lambda arm_g=arm_g, rows=rows, members=members:
                            _group_unit(net, theta0, data, arm, arm_g, base, seeds[:S], job,
                                        rows, members, points))
            sweep.extend(unit["sweep"])
            scores[members] = unit["scores"]
            best[_key(points[members[unit["best"]]])] = _result(unit["result"])
        return scores

    if arm.grid:
        choice = tune_extending(Grid(arm.name, arm.grid), None, train, extensions or {})
    else:
        choice = select(arm.name, [{}], train([{}], None))
    for row in sweep:
        row["selected"] = row["point"] == _key(choice.selected_point)
    if S == len(seeds):
        return best[_key(choice.selected_point)], choice, sweep
    final = at_point(arm, choice.selected_point)
    # .rows keeps seed 0's snapshots as [P] (the tuning results' form)
    res = job.unit(f"{arm.name}/selected", lambda: _plain(train_arm(
        net, theta0, data, final, base, seeds[0], job, Rows.seeds(len(seeds))).rows(
            np.arange(len(seeds)), snap=0)))
    return _result(res), choice, sweep


def _key(point: dict[str, Any]) -> str:
    return json.dumps(point, sort_keys=True)


def _group_unit(net: StackedNet, theta0: Any, data: Data, arm: Arm, arm_g: Arm, base: Base,
                seeds: list[int], job: Job, rows: Rows, members: list[int],
                points: list[dict]) -> dict:
    """Train one group's points x seeds; return its sweep rows, scores [members, S], the
    position of its best point (rose.tuning.select on the group) and that point's result."""
    S = len(seeds)
    res = train_arm(net, theta0, data, arm_g, base, seeds[0], job, rows)
    sweep, scores = [], np.full((len(members), S), np.nan)
    for q, i in enumerate(members):
        for s in range(S):
            row = sweep_row(res, q * S + s)
            scores[q, s] = row["early_val_acc"]
            sweep.append({"arm": arm.name, "method": arm.method,
                          "point": json.dumps(points[i], sort_keys=True),
                          **{f"hp.{k}": v for k, v in points[i].items()},
                          "seed": seeds[s], **row})
    q = select(arm.name, [points[i] for i in members], scores).selected
    return {"sweep": sweep, "scores": scores, "best": q,
            "result": _plain(res.rows(q * S + np.arange(S), snap=q))}


def selected_point(tuning: pd.DataFrame, arm: str) -> dict[str, Any]:
    """The point selected for ``arm`` in a written tuning table (rose.tuning.tuning_table)."""
    sel = tuning[(tuning.arm == arm) & tuning.selected]
    if len(sel) != 1:
        raise ValueError(f"the tuning table has {len(sel)} selected points for arm {arm!r}")
    return json.loads(sel.point.iloc[0])
