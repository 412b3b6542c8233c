"""Equal tuning on validation data only (PROTOCOL.md section 2).

Every arm declares a grid in the config (hyperparameter -> candidate values, checked by
:func:`check_grids` before any job): arms that are compared get grids of the same size.
:func:`tune` hands the grid's points to the direction's training function, which trains all
points x seeds at once as stacked instances under the same budget and returns their scores on
the validation split; the point with the best mean validation score is selected (a point with a
diverged seed only if every point has one; ties go to the first point in declared order).
Grid, scores, selection and the selected point's validation score are written with the results
(:func:`tuning_table`). Test data never enter a choice.

Grids that contain their optimum (PROTOCOL.md section 2): a selection at the edge of a numeric
axis means the optimum may lie outside the grid. An axis may declare an :class:`Extension`
(``tuning.extensions`` in the config, one rule per hyperparameter shared by every arm, read by
:func:`parse_extensions`). :func:`tune_extending` then trains the declared grid, selects, and
while the selected point sits at the low or high edge of a ruled axis adds one value beyond that
edge: the edge value times the ratio (geometric) or plus the step (arithmetic). The step, unless
declared, is inferred from the arm's declared grid: the ratio or difference of the two outermost
values at that edge. A value that would pass the rule's hard bound is replaced by the bound
itself (once; if the bound is already on the axis, the axis stops there). Each side of each axis
extends at most ``max_extensions`` times. Only the new points (the new value crossed with the
other axes' current values) are trained, and selection repeats over every point trained so far,
until the selection is interior or no rule allows another step. Every arm runs the same rules,
each driven by its own selection; the result records the values added (``extensions``), the
selections left at a hard bound or at an edge with no extension left (``at_bound``), and how many
points each arm trained (``n_trained``), all written to the tuning table.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Grid:
    """An arm's declared grid: hyperparameter -> candidate values (points = their product)."""
    arm: str
    values: Mapping[str, Sequence[Any]]

    @property
    def points(self) -> list[dict[str, Any]]:
        keys = list(self.values)
        return [dict(zip(keys, combo, strict=True))
                for combo in itertools.product(*(self.values[k] for k in keys))]

    @property
    def size(self) -> int:
        return len(self.points)


def check_grids(grids: Mapping[str, Mapping[str, Sequence[Any]]],
                allowed: Mapping[str, Collection[str]], key: str) -> None:
    """Refuse, naming the config key: an arm unknown to ``allowed`` (arm -> its tunable
    hyperparameters), a hyperparameter the arm does not have, an empty grid or an empty list of
    values, and grids of different sizes across arms."""
    for arm, grid in grids.items():
        if arm not in allowed:
            raise ValueError(f"config key {key}.{arm}: no arm {arm!r} to tune; known: "
                             f"{sorted(allowed)}")
        if not grid:
            raise ValueError(f"config key {key}.{arm}: the grid is empty; give at least one "
                             "hyperparameter with its candidate values")
        for hp, values in grid.items():
            if hp not in allowed[arm]:
                raise ValueError(f"config key {key}.{arm}.{hp}: {arm!r} has no hyperparameter "
                                 f"{hp!r}; tunable: {sorted(allowed[arm])}")
            if len(values) == 0:
                raise ValueError(f"config key {key}.{arm}.{hp}: no candidate values")
    sizes = {arm: Grid(arm, g).size for arm, g in grids.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"config key {key}: grids must have equal sizes (equal tuning), got "
                         + ", ".join(f"{a}: {n}" for a, n in sizes.items()))


@dataclass(frozen=True)
class TuningResult:
    """An arm's trained points, their validation scores and the selection. ``rounds`` gives each
    point's extension round (empty: every point declared, round 0); ``extensions`` lists the
    values added (axis, side, value, round) and ``at_bound`` the ruled axes the selection is left
    at the edge of (axis, side, value, reason: "bound" or "max_extensions")."""
    arm: str
    points: list[dict[str, Any]]
    scores: np.ndarray            # [points, seeds] validation scores (NaN: diverged)
    selected: int                 # index into points
    rounds: list[int] = field(default_factory=list)
    extensions: list[dict[str, Any]] = field(default_factory=list)
    at_bound: list[dict[str, Any]] = field(default_factory=list)

    @property
    def selected_point(self) -> dict[str, Any]:
        return self.points[self.selected]

    @property
    def point_rounds(self) -> list[int]:
        """Each point's round: 0 for the declared grid, k for points added in round k."""
        return list(self.rounds) if self.rounds else [0] * len(self.points)

    @property
    def n_trained(self) -> int:
        """How many points this arm trained (declared and added): its search size."""
        return len(self.points)

    @property
    def selected_score(self) -> float:
        return float(np.mean(self.scores[self.selected]))


def select(arm: str, points: Sequence[dict[str, Any]], scores: np.ndarray,
           higher_is_better: bool = True) -> TuningResult:
    """The point with the best mean validation score over seeds; points with a diverged
    (NaN) seed rank below every point without one; ties go to the first declared point."""
    s = np.asarray(scores, dtype=float)
    if s.ndim != 2 or s.shape[0] != len(points):
        raise ValueError(f"scores must be [points={len(points)}, seeds], got {s.shape}")
    if len(points) == 0:
        raise ValueError(f"arm {arm}: nothing to select from an empty grid")
    sign = 1.0 if higher_is_better else -1.0
    finite = np.isfinite(s)
    complete = finite.all(1)
    rank = np.full(len(points), -np.inf)
    if complete.any():
        rank[complete] = sign * s[complete].mean(1)
    else:                         # every point lost a seed: compare the seeds that finished
        some = finite.any(1)
        rank[some] = sign * np.array([row[np.isfinite(row)].mean() for row in s[some]])
    return TuningResult(arm, list(points), s, int(np.argmax(rank)))


def tune(grid: Grid, budget: Any, train: Callable[[list[dict[str, Any]], Any], np.ndarray],
         higher_is_better: bool = True) -> TuningResult:
    """Train every point of ``grid`` at ``budget`` (``train(points, budget)`` trains them as
    stacked instances and returns validation scores [points, seeds]) and select one."""
    return select(grid.arm, grid.points, train(grid.points, budget), higher_is_better)


SCALES = ("geometric", "arithmetic")
SIDES = ("low", "high")
_RULE_KEYS = {"scale", "step", "lower", "upper", "max_extensions"}


@dataclass(frozen=True)
class Extension:
    """How one grid axis extends when a selection sits at its edge (PROTOCOL.md section 2).

    ``scale``: "geometric" (values multiply by ``step``, a ratio > 1) or "arithmetic" (values
    move by ``step``, a difference > 0); ``step`` None infers it from the arm's declared grid,
    the ratio or difference of the two outermost values at the edge being extended.
    ``lower`` / ``upper``: hard bounds of the axis (None: none; a geometric axis stays > 0).
    ``max_extensions``: how many values each side of the axis may add."""
    scale: str
    max_extensions: int
    step: float | None = None
    lower: float | None = None
    upper: float | None = None

    def bound(self, side: str) -> float | None:
        return self.lower if side == "low" else self.upper


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(
        v, bool | np.bool_) and math.isfinite(float(v))


def _check_rule_fields(hp: str, rule: Mapping[str, Any], key: str) -> Extension:
    """One config rule as an :class:`Extension`, refused naming ``key.hp[.field]``."""
    k = f"{key}.{hp}"
    if not isinstance(rule, Mapping):
        raise ValueError(f"config key {k}: a rule is a mapping with scale and max_extensions "
                         f"(optional step, lower, upper), got {rule!r}")
    unknown = sorted(set(rule) - _RULE_KEYS)
    if unknown:
        raise ValueError(f"config key {k}.{unknown[0]}: unknown field; known: "
                         f"{sorted(_RULE_KEYS)}")
    for f in ("scale", "max_extensions"):
        if f not in rule:
            raise ValueError(f"config key {k}.{f}: missing (declare it)")
    scale, n = rule["scale"], rule["max_extensions"]
    if scale not in SCALES:
        raise ValueError(f"config key {k}.scale: {scale!r} is not one of {list(SCALES)}")
    if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 0:
        raise ValueError(f"config key {k}.max_extensions: a whole number >= 0, got {n!r}")
    for f in ("step", "lower", "upper"):
        v = rule.get(f)
        if v is not None and not _is_number(v):
            raise ValueError(f"config key {k}.{f}: a finite number or null, got {v!r}")
    step, lo, hi = rule.get("step"), rule.get("lower"), rule.get("upper")
    if step is not None and (step <= 1 if scale == "geometric" else step <= 0):
        need = "a ratio > 1" if scale == "geometric" else "a difference > 0"
        raise ValueError(f"config key {k}.step: {step!r} does not move the axis outward; "
                         f"give {need} (it applies toward both edges)")
    if scale == "geometric":
        for f, v in (("lower", lo), ("upper", hi)):
            if v is not None and v <= 0:
                raise ValueError(f"config key {k}.{f}: a geometric axis lives above 0, "
                                 f"got {v!r}")
    if lo is not None and hi is not None and lo >= hi:
        raise ValueError(f"config key {k}: lower {lo!r} is not below upper {hi!r}")
    return Extension(scale, int(n), None if step is None else float(step),
                     None if lo is None else float(lo), None if hi is None else float(hi))


def _check_axis(hp: str, rule: Extension, values: Sequence[Any], where: str) -> None:
    """Refuse a ruled axis whose declared values are not numbers, not > 0 on a geometric axis,
    or outside the rule's bounds (``where`` names the config key)."""
    bad = [v for v in values if not _is_number(v)]
    if bad:
        raise ValueError(f"config key {where}: axis {hp!r} has non-numeric values {bad!r}; "
                         "only a numeric axis can extend")
    if rule.scale == "geometric" and min(values) <= 0:
        raise ValueError(f"config key {where}: axis {hp!r} is geometric but has values <= 0")
    if (rule.lower is not None and min(values) < rule.lower) or (
            rule.upper is not None and max(values) > rule.upper):
        raise ValueError(f"config key {where}: axis {hp!r} has values outside its bounds "
                         f"[{rule.lower}, {rule.upper}]")


def parse_extensions(mapping: Mapping[str, Any] | None, key: str,
                     grids: Mapping[str, Mapping[str, Sequence[Any]]] | None = None
                     ) -> dict[str, Extension]:
    """The extension rules of a config mapping ``{hp: {scale, max_extensions, step?, lower?,
    upper?}}`` (None or {}: no axis extends), one rule per hyperparameter for every arm alike.
    Refuses, naming the config key: an unknown or missing field, an unknown scale, a step that
    does not move outward (geometric ratio <= 1, arithmetic difference <= 0), a geometric bound
    <= 0, lower >= upper, max_extensions < 0; and, given ``grids`` (arm -> declared grid, as for
    :func:`check_grids`), a hyperparameter in no arm's grid, or one whose values in some arm are
    non-numeric, <= 0 on a geometric axis, or outside the bounds."""
    if not mapping:
        return {}
    if not isinstance(mapping, Mapping):
        raise ValueError(f"config key {key}: a mapping hyperparameter -> rule, got {mapping!r}")
    rules = {hp: _check_rule_fields(hp, rule, key) for hp, rule in mapping.items()}
    if grids is not None:
        for hp, rule in rules.items():
            arms = [a for a, g in grids.items() if hp in g]
            if not arms:
                raise ValueError(f"config key {key}.{hp}: no arm's grid has {hp!r}; axes: "
                                 f"{sorted({h for g in grids.values() for h in g})}")
            for a in arms:
                _check_axis(hp, rule, list(grids[a][hp]), f"{key}.{hp} (arm {a})")
    return rules


def _numeric_axis(points: Sequence[Mapping[str, Any]], axis: str) -> list[float] | None:
    """The axis's distinct values, sorted, or None if some value is not a number."""
    values = [p[axis] for p in points if axis in p]
    if not values or not all(_is_number(v) for v in values):
        return None
    return sorted(set(values))


def edge_axes(points: Sequence[Mapping[str, Any]], selected_point: Mapping[str, Any]
              ) -> list[tuple[str, str]]:
    """The numeric axes at whose edge the selection sits: (axis, "low" | "high") where the
    selected value is the smallest or largest value of that axis among ``points``. An axis with
    one value, or with a non-numeric value, has no edge."""
    out = []
    for axis, v in selected_point.items():
        values = _numeric_axis(points, axis)
        if values is None or len(values) < 2:
            continue
        if v == values[0]:
            out.append((axis, "low"))
        elif v == values[-1]:
            out.append((axis, "high"))
    return out


def _inferred_step(rule: Extension, declared: Sequence[float], side: str) -> float | None:
    """The declared step, or the ratio / difference of the two outermost declared values at
    ``side`` (None if the axis has a single declared value)."""
    if rule.step is not None:
        return rule.step
    v = sorted(set(declared))
    if len(v) < 2:
        return None
    a, b = (v[1], v[0]) if side == "low" else (v[-1], v[-2])
    return a / b if rule.scale == "geometric" else abs(a - b)


def _next_value(rule: Extension, step: float, values: Sequence[float], side: str
                ) -> float | None:
    """The value one step beyond ``side`` of ``values`` (6 significant digits; whole numbers
    stay whole on an axis of whole numbers), or the bound if the step would pass it and the
    bound is not on the axis yet; None when the axis cannot move that way."""
    edge = min(values) if side == "low" else max(values)
    if rule.scale == "geometric":
        v = edge / step if side == "low" else edge * step
    else:
        v = edge - step if side == "low" else edge + step
    v = float(f"{v:.6g}")
    if all(isinstance(x, int | np.integer) for x in values):
        v = round(v)
    bound = rule.bound(side)
    if bound is not None and (v < bound if side == "low" else v > bound):
        v = bound
    if v in values or (side == "low" and v >= edge) or (side == "high" and v <= edge):
        return None
    return v


def _at_bound(rule: Extension, value: float, side: str, used: int) -> str | None:
    """Why a ruled axis stays at its edge: "bound" (the selection is the hard bound) or
    "max_extensions" (no extension left on that side); None if it could still move."""
    if value == rule.bound(side):
        return "bound"
    if used >= rule.max_extensions:
        return "max_extensions"
    return None


def _add_value(values: dict[str, list[Any]], axis: str, value: Any) -> list[dict[str, Any]]:
    """Add ``value`` to ``axis`` and return the new points: the value crossed with the other
    axes' current values, in declared key order."""
    others = [[value] if k == axis else v for k, v in values.items()]
    values[axis].append(value)
    return [dict(zip(values, combo, strict=True)) for combo in itertools.product(*others)]


def _train_scores(train: Callable[[list[dict[str, Any]], Any], np.ndarray],
                  points: list[dict[str, Any]], budget: Any, n_seeds: int | None) -> np.ndarray:
    s = np.asarray(train(points, budget), dtype=float)
    if s.ndim != 2 or s.shape[0] != len(points) or (n_seeds is not None and
                                                    s.shape[1] != n_seeds):
        raise ValueError(f"train must return scores [points={len(points)}, seeds"
                         f"{'' if n_seeds is None else '=' + str(n_seeds)}], got {s.shape}")
    return s


def tune_extending(grid: Grid, budget: Any,
                   train: Callable[[list[dict[str, Any]], Any], np.ndarray],
                   extensions: Mapping[str, Extension],
                   higher_is_better: bool = True) -> TuningResult:
    """:func:`tune`, then extend the grid while the selection sits at the edge of a ruled axis
    (module docstring): each round adds one value beyond every such edge that its rule still
    allows, trains only the new points (``train(new_points, budget)``), and selects again over
    every point trained. Rules for axes this grid lacks are ignored; with no rule, or
    ``max_extensions`` 0, the points, scores and selection are those of :func:`tune`."""
    rules = {hp: r for hp, r in extensions.items() if hp in grid.values}
    for hp, r in rules.items():
        _check_axis(hp, r, list(grid.values[hp]), f"tuning.extensions.{hp} (arm {grid.arm})")
    values = {k: list(v) for k, v in grid.values.items()}
    steps = {(hp, side): _inferred_step(r, values[hp], side)
             for hp, r in rules.items() for side in SIDES}
    used = dict.fromkeys(steps, 0)
    points = grid.points
    scores = _train_scores(train, points, budget, None)
    rounds, added = [0] * len(points), []
    while True:
        chosen = select(grid.arm, points, scores, higher_is_better).selected_point
        grow = []
        for hp, side in edge_axes(points, chosen):
            step = steps.get((hp, side))
            if step is None or used[hp, side] >= rules[hp].max_extensions:
                continue
            v = _next_value(rules[hp], step, values[hp], side)
            if v is not None:
                grow.append((hp, side, v))
        if not grow:
            break
        k = max(rounds) + 1
        new = []
        for hp, side, v in grow:
            new += _add_value(values, hp, v)
            used[hp, side] += 1
            added.append({"axis": hp, "side": side, "value": v, "round": k})
        scores = np.vstack([scores, _train_scores(train, new, budget, scores.shape[1])])
        points, rounds = points + new, rounds + [k] * len(new)
    result = select(grid.arm, points, scores, higher_is_better)
    stuck = [{"axis": hp, "side": side, "value": result.selected_point[hp], "reason": why}
             for hp, side in edge_axes(points, result.selected_point) if hp in rules
             for why in [_at_bound(rules[hp], result.selected_point[hp], side,
                                   used[hp, side])] if why is not None]
    return replace(result, rounds=rounds, extensions=added, at_bound=stuck)


def _edge_cell(items: Sequence[Sequence[Any]]) -> str:
    return ";".join(":".join(str(x) for x in it) for it in items)


def tuning_table(results: Sequence[TuningResult]) -> pd.DataFrame:
    """One row per (arm, point): the point, its mean / sd validation score over seeds, the
    seeds that diverged, the number of points the arm trained (``grid_size``), whether it was
    selected, its extension ``round`` (0: declared) and whether an extension ``extended`` the
    grid with it; on the selected row, ``at_edge`` lists the numeric axes whose edge it sits at
    ("axis:side;...", :func:`edge_axes`) and ``at_bound`` the ruled axes left there
    ("axis:side:reason;..."); both are "" on the other rows."""
    rows = []
    for r in results:
        rounds = r.point_rounds
        for i, p in enumerate(r.points):
            s = r.scores[i]
            ok = s[np.isfinite(s)]
            sel = i == r.selected
            rows.append({"arm": r.arm, "point": json.dumps(p, sort_keys=True),
                         **{f"hp.{k}": v for k, v in p.items()},
                         "val_mean": float(ok.mean()) if ok.size else float("nan"),
                         "val_sd": float(ok.std(ddof=1)) if ok.size > 1 else float("nan"),
                         "n_seeds": int(s.size), "n_diverged": int(s.size - ok.size),
                         "grid_size": len(r.points), "selected": sel,
                         "round": rounds[i], "extended": rounds[i] > 0,
                         "at_edge": _edge_cell(edge_axes(r.points, p)) if sel else "",
                         "at_bound": _edge_cell([(b["axis"], b["side"], b["reason"])
                                                 for b in r.at_bound]) if sel else ""})
    return pd.DataFrame(rows)
