"""Equal tuning on validation data only (PROTOCOL.md section 2).

Every arm declares a grid in the config (hyperparameter -> candidate values, checked by
:func:`check_grids` before any job): arms that are compared get grids of the same size.
:func:`tune` hands the grid's points to the direction's training function, which trains all
points x seeds at once as stacked instances under the same budget and returns their scores on
the validation split; the point with the best mean validation score is selected (a point with a
diverged seed only if every point has one; ties go to the first point in declared order).
Grid, scores, selection and the selected point's validation score are written with the results
(:func:`tuning_table`). Test data never enter a choice.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
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
    arm: str
    points: list[dict[str, Any]]
    scores: np.ndarray            # [points, seeds] validation scores (NaN: diverged)
    selected: int                 # index into points

    @property
    def selected_point(self) -> dict[str, Any]:
        return self.points[self.selected]

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


def tuning_table(results: Sequence[TuningResult]) -> pd.DataFrame:
    """One row per (arm, point): the point, its mean / sd validation score over seeds, the
    seeds that diverged, and whether it was selected."""
    rows = []
    for r in results:
        for i, p in enumerate(r.points):
            s = r.scores[i]
            ok = s[np.isfinite(s)]
            rows.append({"arm": r.arm, "point": json.dumps(p, sort_keys=True),
                         **{f"hp.{k}": v for k, v in p.items()},
                         "val_mean": float(ok.mean()) if ok.size else float("nan"),
                         "val_sd": float(ok.std(ddof=1)) if ok.size > 1 else float("nan"),
                         "n_seeds": int(s.size), "n_diverged": int(s.size - ok.size),
                         "grid_size": len(r.points), "selected": i == r.selected})
    return pd.DataFrame(rows)
