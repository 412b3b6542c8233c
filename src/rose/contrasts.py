"""Pre-declared primary contrasts (PROTOCOL.md section 3): each direction's config lists the few
comparisons that answer its question, for example

    primary:
      - {setting: mnist_noisy, arm: contour_eq, reference: sgd, metric: early_test_acc}

Each is ``arm - reference`` on ``metric``, seed by seed, restricted to the rows where the
direction's grouping columns (setting, stream, benchmark) take the given values. A contrast may
declare ``target``, the effect worth finding (PROTOCOL.md section 3, power), in the units the
paper prints primary contrasts in: points, the stored difference times ``PRINT_SCALE`` = 100
(:func:`sentences`); for the accuracies and forgetting the results tables store as fractions in
[0, 1] these are percentage points, so ``target: 1.0`` is a difference of 0.01 in the tables
(:func:`target_in_stored_units`). ``rose plan --power`` (rose.power) sizes the seeds for it, and
:func:`evaluate` carries it, in the stored units, beside the achieved detectable effect. The list is
checked against the config before any job (:func:`check_contrasts`: an unknown arm, metric or
group value is refused naming its key; an empty family is refused) and evaluated from the
per-seed results table as one Holm family (:func:`evaluate`, via rose.stats.contrast_family).
Only these carry verdict words in the paper.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rose.stats import EMPTY_FAMILY, contrast_family, verdict_sentence

CORE_KEYS = ("arm", "reference", "metric")
OPTIONAL_KEYS = ("target",)   # not grouping columns: never part of ``where``
PRINT_SCALE = 100.0           # the paper prints a primary contrast's difference times this ...
PRINT_UNIT = "points"         # ... in this unit (percentage points for fractions)


def target_in_stored_units(target: float | None) -> float:
    """A declared target (points, as the paper prints) in the results tables' units:
    target / PRINT_SCALE (1.0 point -> 0.01 for an accuracy stored as a fraction); NaN when
    the contrast declares none."""
    return float("nan") if target is None else float(target) / PRINT_SCALE


@dataclass(frozen=True)
class Contrast:
    arm: str
    reference: str
    metric: str
    where: Mapping[str, str] = field(default_factory=dict)
    target: float | None = None   # the effect worth finding, in points (PRINT_SCALE x stored)

    @property
    def name(self) -> str:
        at = ", ".join(f"{v}" for v in self.where.values())
        return f"{self.arm} - {self.reference}, {self.metric}" + (f" ({at})" if at else "")


def parse(declared: Sequence[Mapping[str, str]]) -> list[Contrast]:
    """Config entries as :class:`Contrast`: every key other than the core and optional ones
    (``target``) names a grouping column and its value."""
    keys = (*CORE_KEYS, *OPTIONAL_KEYS)
    return [Contrast(c["arm"], c["reference"], c["metric"],
                     {k: v for k, v in c.items() if k not in keys}, c.get("target"))
            for c in declared]


def check_contrasts(declared: Sequence[Mapping[str, str]], key: str, arms: Collection[str],
                    metrics: Collection[str], groups: Mapping[str, Collection[str]]) -> None:
    """Refuse a family that cannot be evaluated, naming the config key."""
    if len(declared) == 0:
        raise ValueError(f"config key {key}: {EMPTY_FAMILY}")
    for i, c in enumerate(declared):
        here = f"{key}[{i}]"
        for k in ("arm", "reference"):
            if c[k] not in arms:
                raise ValueError(f"config key {here}.{k}: {c[k]!r} is not an arm of this "
                                 f"direction; known: {sorted(arms)}")
        if c["metric"] not in metrics:
            raise ValueError(f"config key {here}.metric: unknown metric {c['metric']!r}; "
                             f"known: {sorted(metrics)}")
        for g, allowed in groups.items():
            if g not in c:
                raise ValueError(f"config key {here}.{g}: say which {g} the contrast is on")
            if c[g] not in allowed:
                raise ValueError(f"config key {here}.{g}: {c[g]!r} is not one of "
                                 f"{sorted(allowed)}")
        extra = sorted(set(c) - set(CORE_KEYS) - set(OPTIONAL_KEYS) - set(groups))
        if "target" in c:
            t = c["target"]
            if isinstance(t, bool) or not isinstance(t, int | float) or not np.isfinite(t) \
                    or t <= 0:
                raise ValueError(f"config key {here}.target: the effect worth finding must be "
                                 f"a positive number of {PRINT_UNIT}, got {t!r}")
        if extra:
            raise ValueError(f"config key {here}.{extra[0]}: unknown key")
        if c["arm"] == c["reference"]:
            raise ValueError(f"config key {here}.reference: an arm compared with itself")


def evaluate(runs: pd.DataFrame, declared: Sequence[Mapping[str, str]], arm_col: str = "arm",
             seed_col: str = "seed") -> pd.DataFrame:
    """The family's table (rose.stats.contrast_family): one row per contrast with its grouping
    values, n, mean difference, t-interval, p, Holm-adjusted p, detectable effect, the declared
    ``target`` in the same stored units as ``detectable`` (:func:`target_in_stored_units`; NaN
    when undeclared) so the paper can print target and achieved SDE side by side, and verdict.
    Seeds are matched; a seed missing on one side or diverged (NaN) on either is left out and
    the table's n says how many remain."""
    rows, matched = [], []
    for c in parse(declared):
        sub = runs
        for g, v in c.where.items():
            sub = sub[sub[g] == v]
        a = sub[sub[arm_col] == c.arm].set_index(seed_col)[c.metric]
        b = sub[sub[arm_col] == c.reference].set_index(seed_col)[c.metric]
        for side in (a, b):
            if not side.index.is_unique:
                raise ValueError(f"contrast {c.name}: more than one row per seed; give the "
                                 "grouping key that makes a seed's row unique")
        seeds = sorted(set(a.index) & set(b.index))
        complete = [s for s in seeds if np.isfinite(a[s]) and np.isfinite(b[s])]
        rows.append({"contrast": c.name, **c.where, "arm": c.arm, "reference": c.reference,
                     "metric": c.metric, "seeds": ",".join(str(s) for s in complete),
                     "a": a.loc[seeds].to_numpy(float), "b": b.loc[seeds].to_numpy(float)})
        matched.append(seeds)
    if not rows:
        raise ValueError(EMPTY_FAMILY)
    family = contrast_family(pd.DataFrame(rows))
    family.insert(family.columns.get_loc("detectable") + 1, "target",
                  [target_in_stored_units(c.target) for c in parse(declared)])
    # the per-seed values behind each contrast (seeds in the order of the ``seeds`` column's
    # source: every matched seed, NaN where one side diverged), for the paper's appendix
    family["arm_values"] = [";".join(f"{v:.6g}" for v in r["a"]) for r in rows]
    family["reference_values"] = [";".join(f"{v:.6g}" for v in r["b"]) for r in rows]
    family["matched_seeds"] = [";".join(str(s) for s in m) for m in matched]
    return family


def group_columns(family: pd.DataFrame) -> list[str]:
    """The family table's grouping columns (``stream``, ``benchmark``, ...): the label columns
    before ``n`` other than the contrast's own."""
    labels = ["contrast", "arm", "reference", "metric", "seeds"]
    return list(family.columns[:family.columns.get_loc("n")].drop(labels, errors="ignore"))


def sentences(family: pd.DataFrame, metric_labels: Mapping[str, str], escape=lambda s: s,
              scale: float = PRINT_SCALE, unit: str = PRINT_UNIT) -> list[str]:
    """One sentence per contrast (rose.stats.verdict_sentence), capitalised, each naming its
    group values; ``escape`` is applied to the whole sentence (e.g. paper.latex_escape)."""
    group_cols = group_columns(family)
    out = []
    for r in family.to_dict("records"):
        text = verdict_sentence(r, r["arm"], r["reference"],
                                metric_labels.get(r["metric"], r["metric"]), scale, unit)
        where = ", ".join(str(r[g]) for g in group_cols)
        text = f"On {where}, {text}" if where else text[:1].upper() + text[1:]
        out.append(escape(text + "."))
    return out
