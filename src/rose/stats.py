"""Seed aggregation every direction uses: mean with a 95% bootstrap CI, and paired comparisons.

Diverged runs carry no number (``None``/NaN); they are counted, never averaged in.
With few seeds a percentile bootstrap CI is too narrow (it cannot be wider than the data's
range); tables report the number of seeds next to every interval so readers can judge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

CONFIDENCE = 0.95
N_RESAMPLES = 9999


@dataclass(frozen=True)
class SeedSummary:
    mean: float
    ci_low: float
    ci_high: float
    n: int            # finite values (seeds that did not diverge)
    n_diverged: int   # NaN / None values left out


def bootstrap_ci(values: Sequence[float], confidence: float = CONFIDENCE,
                 n_resamples: int = N_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (scipy.stats.bootstrap). NaN for fewer than 2 values;
    a point interval when all values are equal (the bootstrap distribution is degenerate)."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return float("nan"), float("nan")
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    res = sps.bootstrap((x,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                        method="percentile", rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def summarize(values: Sequence[float | None], **kwargs) -> SeedSummary:
    """Mean and bootstrap CI over seeds, leaving out (and counting) diverged runs."""
    x = np.array([np.nan if v is None else v for v in values], dtype=float)
    finite = x[np.isfinite(x)]
    lo, hi = bootstrap_ci(finite, **kwargs)
    mean = float(finite.mean()) if finite.size else float("nan")
    return SeedSummary(mean, lo, hi, int(finite.size), int(x.size - finite.size))


def summarize_frame(df: pd.DataFrame, by: list[str], value: str, **kwargs) -> pd.DataFrame:
    """One row per group of ``by``: mean, ci_low, ci_high, n, n_diverged of column ``value``."""
    rows = []
    for key, group in df.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key, strict=True)),
                     **asdict(summarize(group[value].tolist(), **kwargs))})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class PairedComparison:
    mean_difference: float  # mean of a - b over seeds
    ci_low: float
    ci_high: float
    p_value: float          # two-sided Wilcoxon signed-rank (exact for small n)
    n: int


def paired_comparison(a: Sequence[float], b: Sequence[float], **kwargs) -> PairedComparison:
    """Compare two methods run on the same seeds: bootstrap CI of the mean paired difference
    and a Wilcoxon signed-rank test (scipy.stats.wilcoxon). Pairs with a NaN are dropped."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        raise ValueError("paired comparison needs one value per seed for both methods")
    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    lo, hi = bootstrap_ci(d, **kwargs)
    p = float(sps.wilcoxon(d).pvalue) if d.size >= 2 and np.any(d != 0) else float("nan")
    return PairedComparison(float(d.mean()) if d.size else float("nan"), lo, hi, p, int(d.size))
