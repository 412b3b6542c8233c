"""Power planned before the run (PROTOCOL.md section 3): how many seeds a primary contrast needs.

Each primary contrast may declare ``target``, the effect worth finding, in the units the paper
prints (points = 100 x the stored difference; rose.contrasts.PRINT_SCALE). From a pilot's
per-seed paired differences (their sample sd, ddof = 1) the seeds needed are the smallest n
whose smallest detectable effect (SDE) is at or below the target:

    SDE(n) = nc(n) * sd / sqrt(n) <= target,

with nc(n) the noncentrality at which a two-sided paired t-test on n - 1 df has 80% power
(rose.stats.detectable_effect: noncentral t; Cohen 1988, ch. 2). The test's level is the Holm
level for planning, alpha / m with m the number of contrasts in the direction's family: the
level Holm's first step applies (the smallest p-value is compared with alpha / m), the most
conservative of its steps, so a plan that reaches the target there reaches it at every later
step too. This is the level rose.stats.contrast_family uses for the achieved ``detectable``.
For large n, SDE(n) -> (z_{1-a/2} + z_{0.8}) sd / sqrt(n), hence
n ~ (z_{1-a/2} + z_{0.8})^2 sd^2 / target^2.

Pure functions; ``rose plan --power CONFIG [--pilot DIR]`` (rose.cli) reads the files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rose.contrasts import PRINT_SCALE, PRINT_UNIT, evaluate, parse
from rose.stats import ALPHA, POWER, detectable_effect

N_MAX = 1000          # seeds beyond this are reported as unreachable, not searched
DIRECTIONS = ("explore", "continual", "active", "superposition")
FALLBACK_NOTE = "fallback: quick results are a different dataset"
# the per-seed table on disk that rose.contrasts.evaluate reads, where one exists (explore and
# continual write it as runs.csv); active and superposition build theirs in memory (per-run
# AUCs, the lambda selected on validation), so their pilot is the per-seed values the
# evaluation stored in primary.csv (arm_values, reference_values)
RUNS_TABLES = {"explore": "runs.csv", "continual": "runs.csv"}
PRIMARY_TABLE = "primary.csv"

PLAN_COLUMNS = ["direction", "index", "contrast", "target", "pilot_n", "pilot_sd",
                "pilot_source", "level", "seeds_needed", "seeds", "sde", "status"]


@dataclass(frozen=True)
class Pilot:
    n: int          # complete seed pairs in the pilot
    sd: float       # sample sd of the paired differences (ddof = 1), stored units
    source: str     # where they were read (a file, with a fallback note if any)


def holm_level(alpha: float, m: int) -> float:
    """The Holm level for planning: alpha / m (Holm's first, most conservative step)."""
    if m < 1:
        raise ValueError("a family of primary contrasts must hold at least one contrast")
    return alpha / m


def seeds_needed(sd: float, target: float, alpha: float = ALPHA, power: float = POWER,
                 n_max: int = N_MAX) -> int | None:
    """Smallest n in [2, n_max] with detectable_effect(sd, n, alpha, power) <= target; None if
    even n_max seeds do not reach it. ``sd`` and ``target`` in the same units; alpha is the
    test's level (pass :func:`holm_level` for a family). SDE(n) decreases with n, so the
    answer is found by bisection. ValueError for a non-finite or negative sd or a target that
    is not positive."""
    if not (np.isfinite(sd) and sd >= 0):
        raise ValueError(f"the pilot's sd must be a finite number >= 0, got {sd!r}")
    if not (np.isfinite(target) and target > 0):
        raise ValueError(f"the target must be a positive number, got {target!r}")

    def reaches(n: int) -> bool:
        return detectable_effect(sd, n, alpha, power) <= target

    if not reaches(n_max):
        return None
    lo, hi = 1, n_max          # invariant: reaches(hi), and lo < 2 or not reaches(lo)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if mid >= 2 and reaches(mid):
            hi = mid
        else:
            lo = mid
    return hi


def normal_approximation(sd: float, target: float, alpha: float = ALPHA,
                         power: float = POWER) -> float:
    """(z_{1-alpha/2} + z_power)^2 sd^2 / target^2: the seeds a z-test would need; the
    noncentral-t answer exceeds it by about one seed at large n."""
    from scipy.stats import norm

    return (norm.ppf(1 - alpha / 2) + norm.ppf(power)) ** 2 * sd ** 2 / target ** 2


def pilot_from_runs(runs: pd.DataFrame, contrast: Mapping, source: str) -> Pilot | None:
    """The pilot of ``contrast`` from a direction's per-seed table, matched exactly as
    rose.contrasts.evaluate matches it (seeds paired, diverged seeds left out); None when the
    table lacks its metric or grouping columns or fewer than 2 pairs remain."""
    c = parse([contrast])[0]
    needed = {"arm", "seed", c.metric, *c.where}
    if not needed <= set(runs.columns):
        return None
    row = evaluate(runs, [{k: v for k, v in contrast.items() if k != "target"}]).iloc[0]
    if row["n"] < 2 or not np.isfinite(row["sd"]):
        return None
    return Pilot(int(row["n"]), float(row["sd"]), source)


def pilot_from_primary(primary: pd.DataFrame, contrast: Mapping, source: str) -> Pilot | None:
    """The pilot of ``contrast`` from an evaluated family table (primary.csv): the row with the
    same arm, reference, metric and grouping values, its per-seed ``arm_values`` and
    ``reference_values`` (";"-separated, aligned by seed, NaN where a run diverged)."""
    c = parse([contrast])[0]
    cols = {"arm", "reference", "metric", "arm_values", "reference_values", *c.where}
    if not cols <= set(primary.columns):
        return None
    keep = ((primary.arm == c.arm) & (primary.reference == c.reference)
            & (primary.metric == c.metric))
    for g, v in c.where.items():
        keep &= primary[g].astype(str) == str(v)
    for row in primary[keep].itertuples(index=False):
        a, b = _values(row.arm_values), _values(row.reference_values)
        if a.size != b.size:
            continue
        d = (a - b)[np.isfinite(a) & np.isfinite(b)]
        if d.size >= 2:
            return Pilot(int(d.size), float(d.std(ddof=1)), source)
    return None


def find_pilot(contrast: Mapping, tables: Sequence[tuple[str, str, pd.DataFrame]],
               note: str = "") -> Pilot | None:
    """The first pilot of ``contrast`` found in ``tables``: (kind, source, table) with kind
    "runs" (:func:`pilot_from_runs`) or "primary" (:func:`pilot_from_primary`), tried in
    order; ``note`` is appended to the source (e.g. :data:`FALLBACK_NOTE`)."""
    for kind, source, table in tables:
        where = f"{source} ({note})" if note else source
        read = pilot_from_runs if kind == "runs" else pilot_from_primary
        pilot = read(table, contrast, where)
        if pilot is not None:
            return pilot
    return None


def config_seeds(cfg: Mapping, direction: str, contrast: Mapping) -> int:
    """The seeds the config runs for a contrast: the top-level ``seeds`` list, except the
    superposition toy contrasts (benchmark toy), which read the penalty study's
    ``superposition.penalty.seeds`` (rose.superposition.frontier.per_seed), and direction 1,
    which reads its own ``explore.seeds`` where the config declares them."""
    if direction == "superposition" and contrast.get("benchmark") == "toy":
        return int(cfg["superposition"]["penalty"]["seeds"])
    if direction == "explore" and "seeds" in cfg.get("explore", {}):
        return len(cfg["explore"]["seeds"])
    return len(cfg["seeds"])


def _values(cell) -> np.ndarray:
    if not isinstance(cell, str) or not cell:
        return np.array([], dtype=float)
    return np.array([float(v) for v in cell.split(";")], dtype=float)


def plan_family(direction: str, declared: Sequence[Mapping], seeds: Sequence[int],
                pilots: Sequence[Pilot | None], alpha: float = ALPHA, power: float = POWER,
                n_max: int = N_MAX) -> pd.DataFrame:
    """One row per declared contrast of one direction's family (columns PLAN_COLUMNS).

    ``seeds[i]``: the seeds the config runs for contrast i; ``pilots[i]``: its pilot or None.
    Target, pilot sd and SDE are in points (stored x PRINT_SCALE); ``level`` = alpha / m
    (:func:`holm_level`, m = len(declared)); ``seeds_needed`` (:func:`seeds_needed`, NaN when
    not reachable within n_max, or without a target or pilot); ``sde`` the SDE the config's
    seeds achieve at the pilot's sd. ``status``: "ok" (the config's seeds reach the target),
    "too few seeds", "unreachable" (not within n_max seeds), "no target", "no pilot" or "no
    spread" (the pilot's paired differences are all equal: nothing to plan from; listed, not
    checked)."""
    if not (len(declared) == len(seeds) == len(pilots)):
        raise ValueError("one seed count and one pilot (or None) per declared contrast")
    level = holm_level(alpha, len(declared))
    rows = []
    for i, (c, n, pilot) in enumerate(zip(parse(declared), seeds, pilots, strict=True)):
        target = math.nan if c.target is None else float(c.target)
        sd = math.nan if pilot is None else pilot.sd * PRINT_SCALE
        needed = None
        if pilot is None:
            status = "no pilot" if c.target is not None else "no target"
        elif not sd > 0:      # every paired difference equal: no spread to plan from, and the
            status = "no spread" if c.target is not None else "no target"   # t-test has no p
        else:
            if c.target is not None:
                needed = seeds_needed(sd, target, level, power, n_max)
            status = ("no target" if c.target is None else "unreachable" if needed is None
                      else "ok" if n >= needed else "too few seeds")
        rows.append({"direction": direction, "index": i, "contrast": c.name, "target": target,
                     "pilot_n": np.nan if pilot is None else pilot.n, "pilot_sd": sd,
                     "pilot_source": "" if pilot is None else pilot.source, "level": level,
                     "seeds_needed": np.nan if needed is None else needed, "seeds": int(n),
                     "sde": detectable_effect(sd, int(n), level, power), "status": status})
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)


def shortfalls(plan: pd.DataFrame) -> list[str]:
    """One line per contrast whose declared target the config's seeds cannot reach at the
    pilot's sd, naming it as direction.primary[index] (its name)."""
    out = []
    for r in plan[plan.status.isin(["too few seeds", "unreachable"])].itertuples(index=False):
        need = (f"needs {int(r.seeds_needed)} seeds" if r.status == "too few seeds"
                else f"needs more than {N_MAX} seeds")
        out.append(f"{r.direction}.primary[{r.index}] ({r.contrast}): {r.seeds} seeds give an "
                   f"SDE of {r.sde:.2f} {PRINT_UNIT} at the pilot's sd {r.pilot_sd:.2f} "
                   f"(n = {int(r.pilot_n)}); the target {r.target:g} {PRINT_UNIT} {need}")
    return out


def check_plan(plan: pd.DataFrame) -> None:
    """ValueError naming every contrast (direction, index, name) whose declared target the
    config's seeds cannot reach at the pilot's sd; contrasts without a target or a pilot pass."""
    lines = shortfalls(plan)
    if lines:
        raise ValueError("the config's seeds cannot reach a declared target:\n  "
                         + "\n  ".join(lines))


def format_plan(plan: pd.DataFrame) -> str:
    """The plan as a fixed-width text table, one line per contrast, its name last."""
    lines = [f"{'contrast':<17} {'target':>6} {'pilot n':>7} {'sd':>6} {'level':>7} "
             f"{'needed':>6} {'seeds':>5} {'SDE':>6}  {'status':<13}  name"]
    for r in plan.itertuples(index=False):
        lines.append(
            f"{f'{r.direction}[{r.index}]':<17} {_num(r.target, '.2f'):>6} "
            f"{_num(r.pilot_n, '.0f'):>7} {_num(r.pilot_sd, '.2f'):>6} {r.level:>7.4f} "
            f"{_num(r.seeds_needed, '.0f'):>6} {r.seeds:>5} {_num(r.sde, '.2f'):>6}  "
            f"{r.status:<13}  {r.contrast}")
    return "\n".join(lines)


def _num(x, fmt: str) -> str:
    return "-" if x is None or not np.isfinite(x) else format(x, fmt)
