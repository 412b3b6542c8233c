"""Every subset a method or a measurement draws, drawn one way: seeded, stratified, shuffled.

A probe batch, a held-out check set, an evaluation slice, a holdout, an initial labelled set:
each is ``stratified_sample(strata, n, seed, name=...)``, which gives every stratum (class, or
group) its share of ``n`` by largest remainder and returns the chosen indices in a seeded
random order, so no prefix of a split is one or two classes (PROTOCOL.md section 1). Disjoint
parts of one population (train / val / test, pool / holdout / test) come from
``stratified_partition``, whose parts are each stratified and shuffled.

Both accept a ``name`` and report every draw to the active :func:`record_subsets` recorders, so
a test can walk every subset a configuration draws and check its class proportions against its
population's (tests/test_sampling_audit.py).

scikit-learn's ``train_test_split(stratify=...)`` does the same for two parts, but it cannot
give more than two parts in one call, an exact size per part for tiny samples, or a record of
the draw; this module is that plus the record.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

SeedLike = int | list[int] | tuple[int, ...]


@dataclass(frozen=True)
class SubsetRecord:
    """One draw: its name, the strata of the population it was drawn from, and its indices."""
    name: str
    population: np.ndarray   # strata of the whole population
    index: np.ndarray        # the drawn positions into the population

    @property
    def n(self) -> int:
        return len(self.index)

    def proportions(self) -> tuple[np.ndarray, np.ndarray]:
        """(population share, subset share) of every stratum present in the population."""
        values, counts = np.unique(self.population, return_counts=True)
        sub = np.array([(self.population[self.index] == v).sum() for v in values])
        return counts / counts.sum(), sub / max(self.n, 1)


_RECORDERS: list[list[SubsetRecord]] = []


@contextlib.contextmanager
def record_subsets() -> Iterator[list[SubsetRecord]]:
    """Collect every draw made inside the ``with`` block (nested recorders all see it)."""
    records: list[SubsetRecord] = []
    _RECORDERS.append(records)
    try:
        yield records
    finally:
        _RECORDERS.remove(records)


def _report(name: str, strata: np.ndarray, index: np.ndarray) -> None:
    for records in _RECORDERS:
        records.append(SubsetRecord(name, strata.copy(), index.copy()))


def allocate(counts: np.ndarray, n: int) -> np.ndarray:
    """Proportional allocation of n draws over strata of sizes ``counts`` by largest remainder
    (Hamilton's method): floor(n p_c), then one more to the largest fractional parts (ties to
    the larger stratum, then the first), never more than a stratum holds."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if not 0 <= n <= total:
        raise ValueError(f"cannot draw {n} from a population of {total}")
    exact = n * counts / total
    take = np.floor(exact).astype(np.int64)
    order = np.lexsort((np.arange(len(counts)), -counts, -(exact - take)))
    for c in order[: n - int(take.sum())]:
        take[c] += 1
    return np.minimum(take, counts)


def _rng(seed: SeedLike) -> np.random.Generator:
    return np.random.default_rng(list(seed) if isinstance(seed, tuple | list) else seed)


def stratified_sample(strata: np.ndarray, n: int, seed: SeedLike, *, name: str,
                      within: np.ndarray | None = None) -> np.ndarray:
    """``n`` positions into ``strata`` (or into its positions ``within``), every stratum in
    proportion, in a seeded random order. ``seed`` may be a list (numpy SeedSequence entropy),
    e.g. ``[seed, 17]`` for the 17th kind of draw of a seed."""
    strata = np.asarray(strata)
    pool = np.arange(len(strata)) if within is None else np.asarray(within)
    rng = _rng(seed)
    values, inverse = np.unique(strata[pool], return_inverse=True)
    take = allocate(np.bincount(inverse, minlength=len(values)), n)
    chosen = [rng.permutation(pool[inverse == c])[:k] for c, k in enumerate(take)]
    index = rng.permutation(np.concatenate(chosen)) if chosen else pool[:0]
    if within is None:
        _report(name, strata, index)
    else:
        _report(name, strata[pool], _positions(pool, index))
    return index


def _positions(pool: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Where each of ``index`` sits in ``pool`` (for the record: positions in the population)."""
    where = {int(v): i for i, v in enumerate(pool)}
    return np.array([where[int(v)] for v in index], dtype=np.int64)


def stratified_partition(strata: np.ndarray, sizes: Mapping[str, int | float], seed: SeedLike,
                         *, name: str) -> dict[str, np.ndarray]:
    """Disjoint parts of the population, each stratified and in a seeded random order.

    ``sizes`` maps part -> count (int) or fraction (float) of the population; at most one part
    may be ``-1``, meaning the rest. Parts are filled in the given order, each stratum split by
    largest remainder so every part holds its share of every stratum."""
    strata = np.asarray(strata)
    n = len(strata)
    want = {k: (round(v * n) if isinstance(v, float) else int(v)) for k, v in sizes.items()}
    rest = [k for k, v in want.items() if v == -1]
    if len(rest) > 1:
        raise ValueError(f"{name}: at most one part may take the rest, got {rest}")
    fixed = sum(v for v in want.values() if v != -1)
    if fixed > n or any(v < -1 for v in want.values()):
        raise ValueError(f"{name}: parts {want} do not fit a population of {n}")
    if rest:
        want[rest[0]] = n - fixed
    empty = [k for k, v in want.items() if v == 0 and sizes[k] != 0]
    if empty:
        raise ValueError(f"{name}: parts {empty} of a population of {n} would be empty")
    rng = _rng(seed)
    values, inverse = np.unique(strata, return_inverse=True)
    members = [rng.permutation(np.flatnonzero(inverse == c)) for c in range(len(values))]
    left = np.array([len(m) for m in members])
    used = np.zeros(len(values), dtype=np.int64)
    out: dict[str, np.ndarray] = {}
    for part, k in want.items():
        # allocate over what is left, so later parts stay stratified too
        take = allocate(left, k)
        idx = np.concatenate([members[c][used[c]:used[c] + t] for c, t in enumerate(take)])
        used += take
        left -= take
        out[part] = rng.permutation(idx)
        _report(f"{name}.{part}", strata, out[part])
    return out


def check_balance(record: SubsetRecord, z: float = 4.0) -> tuple[bool, float]:
    """Is the subset's share of every stratum within sampling noise of the population's?
    Allowed: z standard errors of a simple random sample of the same size (finite-population
    corrected) plus one draw of rounding, |p_sub - p| <= z sqrt(p (1-p) / n (N-n)/(N-1)) + 1/n.
    Returns (ok, the largest deviation in units of that bound)."""
    p, q = record.proportions()
    n, N = record.n, len(record.population)
    if n == 0:
        return True, 0.0
    fpc = (N - n) / max(N - 1, 1)
    bound = z * np.sqrt(p * (1 - p) / n * fpc) + 1.0 / n
    ratio = float((np.abs(q - p) / bound).max())
    return ratio <= 1.0, ratio
