"""The one statistics module every research direction uses (PROTOCOL.md, section 3).

* **Means over seeds** (:func:`summarize`, :func:`mean_interval`): descriptive intervals that
  never leave the quantity's range (PROTOCOL.md section 3, last bullet): the range of the seeds
  (min, max) below 10 seeds, a BCa bootstrap interval from 10 seeds on. Both lie inside
  [min, max] of the values by construction, so no caller has to pass the quantity's bounds.
* **Paired contrasts** (:func:`paired_contrast`): method A minus method B seed by seed, with a
  Student-t 95% interval of the mean difference and a one-sample t-test of the differences,
  whatever the number of seeds (the percentile bootstrap covers only about 84% at 5 seeds).
* **Multiplicity** (:func:`holm`): the p-values of a direction's pre-declared primary contrasts
  are Holm-adjusted; :func:`contrast_family` does this for one family.
* **Power** (:func:`detectable_effect`): the smallest true difference a paired t-test detects
  at the seed count, from the observed per-seed spread.
* **Words** (:func:`verdict`, :func:`verdict_sentence`): "above"/"below" only when the
  Holm-adjusted p < 0.05; otherwise "not detected at n seeds" with the detectable effect.
* **Exploratory comparisons** (:func:`paired_against`): intervals and p-values, no verdict.

Diverged runs carry no number (``None``/NaN); they are counted, never averaged in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import optimize
from scipy import stats as sps

CONFIDENCE = 0.95
ALPHA = 0.05
POWER = 0.8
N_RESAMPLES = 9999
BCA_MIN_N = 10  # from this many values on, a mean gets a BCa bootstrap interval

EMPTY_FAMILY = "a family of primary contrasts must hold at least one contrast"


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _as_float_array(values: Sequence[float | None]) -> np.ndarray:
    """1-D float array with ``None`` turned into NaN."""
    arr = np.asarray(values)
    if arr.dtype.kind in "biuf":
        return arr.astype(float).ravel()
    return np.array([np.nan if v is None else v for v in arr.ravel()], dtype=float)


def _is_constant(x: np.ndarray, scale: float | None = None) -> bool:
    """True when all values are equal up to floating-point rounding (relative 1e-12 of
    ``scale``, default the largest magnitude). ``a - b`` of accuracies such as 0.93 - 0.92 and
    0.95 - 0.94 differ in the last bits; treating them as different would give a spurious
    near-zero interval and scipy's catastrophic-cancellation warning."""
    if x.size == 0:
        return True
    s = float(np.max(np.abs(x))) if scale is None else scale
    return bool(np.ptp(x) <= 1e-12 * max(s, np.finfo(float).tiny))


def _t_interval(x: np.ndarray, confidence: float) -> tuple[float, float]:
    """Student-t interval of the mean of ``x`` (finite, n >= 2):
    mean +/- t_{(1+c)/2, n-1} * s / sqrt(n), s the sample sd (ddof=1)."""
    n = x.size
    half = sps.t.ppf((1 + confidence) / 2, n - 1) * x.std(ddof=1) / math.sqrt(n)
    m = float(x.mean())
    return m - float(half), m + float(half)


# --------------------------------------------------------------------------------------------
# means over seeds
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SeedSummary:
    mean: float
    ci_low: float
    ci_high: float
    n: int            # finite values (seeds that did not diverge)
    n_diverged: int   # NaN / None values left out
    method: str = "range"  # interval method: "range" (min, max of the seeds) or "bca"


def bootstrap_ci(values: Sequence[float], confidence: float = CONFIDENCE,
                 n_resamples: int = N_RESAMPLES, seed: int = 0,
                 method: str = "percentile") -> tuple[float, float]:
    """Bootstrap CI of the mean (scipy.stats.bootstrap; Efron & Tibshirani 1993, ch. 13-14).

    ``method`` is scipy's: "percentile" (the default, kept for compatibility; it under-covers at
    small n, about 84% at 5 seeds, so summaries no longer use it), "basic" or "BCa".
    NaN for fewer than 2 values; a point interval when all values are equal (the bootstrap
    distribution is degenerate)."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return float("nan"), float("nan")
    if _is_constant(x):
        return float(x.mean()), float(x.mean())
    res = sps.bootstrap((x,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                        method=method, rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def mean_interval(values: Sequence[float | None], confidence: float = CONFIDENCE,
                  seed: int = 0, *, n_resamples: int = N_RESAMPLES) -> tuple[float, float, str]:
    """Descriptive interval of a mean over seeds: ``(low, high, method)``. It never leaves the
    range of the quantity (an accuracy stays in [0, 1], a loss or a count stays >= 0) because
    both rules below return values inside [min(x), max(x)], by construction and without
    clipping (PROTOCOL.md section 3: "use a bootstrap at n >= 10, a transformed scale, or the
    range of the seeds"). Paired differences keep their Student-t interval
    (:func:`paired_contrast`).

    * n < 10: the range of the seeds, (min x, max x); method "range". For n values drawn
      independently from any continuous distribution, [x_(1), x_(n)] covers the median with
      probability 1 - 2^(1-n), whatever the distribution (the order-statistic interval of a
      quantile; Conover 1999, "Practical Nonparametric Statistics", 3rd ed., section 3.2):
      50% at 2 seeds, 93.75% at 5, 98.4% at 7; for a symmetric distribution the median is the
      mean. ``confidence`` does not change it. Chosen over a t interval on a logit or log
      scale because those are undefined at the values accuracies and counts do take (0 and 1,
      e.g. 0, 0, 0, 1, 0), and they bound the back-transformed location, not the mean.
    * n >= 10: BCa bootstrap (Efron 1987, "Better bootstrap confidence intervals", JASA 82;
      scipy.stats.bootstrap(method="BCa") with ``n_resamples`` resamples and
      ``rng=np.random.default_rng(seed)``); method "bca". Its limits are percentiles of the
      bootstrap means, each a mean of resampled values, so they lie in [min x, max x]. Should
      BCa come out NaN (scipy's degenerate-data case, e.g. almost all values tied), the range
      of the seeds is returned and the method says "range".

    Non-finite values (diverged runs) are left out; :func:`summarize` counts them. NaN interval
    for fewer than 2 values; a point interval when all values are equal."""
    x = _as_float_array(values)
    x = x[np.isfinite(x)]
    method = "bca" if x.size >= BCA_MIN_N else "range"
    if x.size < 2:
        return float("nan"), float("nan"), method
    if _is_constant(x):
        return float(x.mean()), float(x.mean()), method
    if method == "bca":
        lo, hi = bootstrap_ci(x, confidence=confidence, n_resamples=n_resamples, seed=seed,
                              method="BCa")
        if np.isfinite(lo) and np.isfinite(hi):
            return lo, hi, "bca"
    return float(x.min()), float(x.max()), "range"


def interval_words(n_seeds: int, confidence: float = CONFIDENCE) -> str:
    """What :func:`mean_interval`'s bracket is at ``n_seeds`` seeds, for captions: "95% CI"
    (BCa bootstrap) from BCA_MIN_N seeds on, "range of the seeds" below."""
    return f"{confidence * 100:.0f}% CI" if n_seeds >= BCA_MIN_N else "range of the seeds"


def summarize(values: Sequence[float | None], **kwargs) -> SeedSummary:
    """Mean and descriptive interval over seeds (:func:`mean_interval`: the seeds' range below
    10 seeds, BCa from 10; always inside the values' range),
    leaving out (and counting) diverged runs. ``kwargs`` go to :func:`mean_interval`
    (confidence, seed, n_resamples)."""
    x = _as_float_array(values)
    finite = x[np.isfinite(x)]
    lo, hi, method = mean_interval(finite, **kwargs)
    mean = float(finite.mean()) if finite.size else float("nan")
    return SeedSummary(mean, lo, hi, int(finite.size), int(x.size - finite.size), method)


def summarize_frame(df: pd.DataFrame, by: list[str], value: str, **kwargs) -> pd.DataFrame:
    """One row per group of ``by``: mean, ci_low, ci_high, n, n_diverged of column ``value``
    (:func:`summarize`), and ci_method ("range" or "bca", ``SeedSummary.method``). The column is not
    called ``method`` because callers group by a ``method`` column (rose.baseline)."""
    rows = []
    for key, group in df.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        s = summarize(group[value].tolist(), **kwargs)
        rows.append({**dict(zip(by, key, strict=True)), "mean": s.mean, "ci_low": s.ci_low,
                     "ci_high": s.ci_high, "n": s.n, "n_diverged": s.n_diverged,
                     "ci_method": s.method})
    return pd.DataFrame(rows, columns=[*by, "mean", "ci_low", "ci_high", "n", "n_diverged",
                                       "ci_method"])


# --------------------------------------------------------------------------------------------
# power
# --------------------------------------------------------------------------------------------

def _paired_t_power(nc: float, df: int, t_crit: float) -> float:
    """P(|T| > t_crit) for T ~ noncentral t(df, nc). The lower tail P(T < -t_crit) is written
    as P(T' > t_crit), T' ~ nct(df, -nc), because scipy's nct.cdf returns NaN far in the
    tail (e.g. nc = 16, df = 4); a tail that still underflows to NaN counts as 0."""
    upper = float(sps.nct.sf(t_crit, df, nc))
    lower = float(sps.nct.sf(t_crit, df, -nc))
    return upper + (lower if np.isfinite(lower) else 0.0)


@lru_cache(maxsize=1024)
def _detectable_noncentrality(n: int, alpha: float, power: float) -> float:
    """Noncentrality nc at which a two-sided one-sample t-test with n - 1 df at level alpha has
    the given power. The detectable effect is nc * sd / sqrt(n), linear in sd, so this is
    solved once per (n, alpha, power)."""
    df = n - 1
    t_crit = float(sps.t.ppf(1 - alpha / 2, df))
    hi = 1.0
    while _paired_t_power(hi, df, t_crit) < power:
        hi *= 2.0
        if hi > 1e6:  # pragma: no cover - only for absurd (alpha, power)
            return float("nan")
    return float(optimize.brentq(lambda nc: _paired_t_power(nc, df, t_crit) - power,
                                 0.0, hi, xtol=1e-10, rtol=1e-12))


def detectable_effect(sd: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """Smallest true mean difference |delta| that a two-sided paired t-test at level ``alpha``
    detects with probability ``power`` at ``n`` pairs whose differences have sd ``sd``.

    Under delta the test statistic is noncentral t with df = n - 1 and noncentrality
    nc = delta sqrt(n) / sd (e.g. Cohen 1988, "Statistical Power Analysis", ch. 2); power is
    P(|T| > t_{1-alpha/2, n-1}) from scipy.stats.nct, and nc is found with
    scipy.optimize.brentq. For large n this tends to (z_{1-alpha/2} + z_power) sd / sqrt(n).
    NaN for n < 2 or non-finite sd; 0.0 for sd == 0."""
    if n is None or n < 2 or sd is None or not np.isfinite(sd):
        return float("nan")
    if not (0 < alpha < 1 and alpha < power < 1):
        raise ValueError(f"need 0 < alpha < power < 1, got alpha={alpha}, power={power}")
    if sd == 0:
        return 0.0
    nc = _detectable_noncentrality(int(n), float(alpha), float(power))
    return float(nc * abs(sd) / math.sqrt(n))


# --------------------------------------------------------------------------------------------
# paired contrasts
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PairedContrast:
    mean_difference: float  # mean of a - b over seeds (pairs with a NaN dropped)
    ci_low: float           # Student-t interval of the mean difference
    ci_high: float
    p_value: float          # two-sided one-sample t-test of the differences against 0
    n: int                  # complete pairs
    sd: float               # sample sd of the differences (ddof=1)
    detectable: float       # smallest detectable |mean difference| (detectable_effect)


def paired_contrast(a: Sequence[float | None], b: Sequence[float | None],
                    confidence: float = CONFIDENCE, alpha: float = ALPHA,
                    power: float = POWER) -> PairedContrast:
    """Method A minus method B on the same seeds (``a[i]`` and ``b[i]`` share seed i).

    Differences d_i = a_i - b_i over complete pairs (pairs with a NaN/None are dropped).
    Interval: Student-t, mean(d) +/- t_{(1+c)/2, n-1} sd(d) / sqrt(n), whatever n (PROTOCOL.md
    section 3); p-value: two-sided one-sample t-test of d against 0
    (scipy.stats.ttest_1samp); detectable: :func:`detectable_effect` (sd(d), n, alpha, power).

    Degenerate cases: n < 2 gives a NaN interval, p and sd; all differences equal (up to
    rounding) and nonzero gives a point interval and p = NaN (a t-test of zero variance is not
    defined, and a gap that never varies, e.g. on discrete accuracies at few seeds, is no
    evidence a verdict word could rest on); all zero gives p = 1.0.
    ValueError if ``a`` and ``b`` have different shapes."""
    if np.shape(np.asarray(a, dtype=object)) != np.shape(np.asarray(b, dtype=object)):
        raise ValueError("a paired contrast needs one value per seed for both methods "
                         f"(got shapes {np.shape(a)} and {np.shape(b)})")
    a, b = _as_float_array(a), _as_float_array(b)
    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    n = int(d.size)
    nan = float("nan")
    mean = float(d.mean()) if n else nan
    if n < 2:
        return PairedContrast(mean, nan, nan, nan, n, nan, nan)
    scale = float(max(np.max(np.abs(a[keep])), np.max(np.abs(b[keep]))))
    if _is_constant(d, scale):
        p = 1.0 if abs(mean) <= 1e-12 * max(scale, np.finfo(float).tiny) else nan
        mean = 0.0 if p == 1.0 else mean
        return PairedContrast(mean, mean, mean, p, n, 0.0, 0.0)
    lo, hi = _t_interval(d, confidence)
    p = float(sps.ttest_1samp(d, 0.0).pvalue)
    sd = float(d.std(ddof=1))
    return PairedContrast(mean, lo, hi, p, n, sd, detectable_effect(sd, n, alpha, power))


# --------------------------------------------------------------------------------------------
# multiplicity and families of primary contrasts
# --------------------------------------------------------------------------------------------

def holm(p_values: Sequence[float | None]) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979, "A simple sequentially rejective multiple
    test procedure", Scand. J. Statist. 6:65-70).

    With the m finite p-values sorted ascending, p_(1) <= ... <= p_(m), the adjusted value is
    p~_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)); rejecting where p~ < alpha is Holm's
    procedure at family-wise level alpha. Returned in the input order; NaN inputs stay NaN and
    do not count in m."""
    # Written out by hand: scipy has no Holm adjustment, and statsmodels' multipletests would
    # be a heavy dependency for these few lines.
    p = _as_float_array(p_values)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = finite.size
    if m == 0:
        return out
    if np.any((p[finite] < 0) | (p[finite] > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    order = finite[np.argsort(p[finite], kind="stable")]
    factors = m - np.arange(m)  # m - j + 1 for j = 1..m
    adjusted = np.maximum.accumulate(np.minimum(1.0, factors * p[order]))
    out[order] = adjusted
    return out


def verdict(mean_difference: float, p_holm: float, n: int, detectable: float,
            alpha: float = ALPHA) -> str:
    """Verdict word of a primary contrast (PROTOCOL.md section 3): "above" if the
    Holm-adjusted p < alpha and the mean difference is positive, "below" if it is negative,
    otherwise "not detected". ``n`` and ``detectable`` do not change the word; they are taken
    so call sites pass the whole row, and :func:`verdict_sentence` writes them into the
    "not detected at n seeds" sentence."""
    del n, detectable
    if p_holm is not None and np.isfinite(p_holm) and p_holm < alpha:
        if mean_difference > 0:
            return "above"
        if mean_difference < 0:
            return "below"
    return "not detected"


CONTRAST_COLUMNS = ["n", "mean_difference", "ci_low", "ci_high", "sd", "p_value", "p_holm",
                    "detectable", "verdict"]


def contrast_family(rows: pd.DataFrame, confidence: float = CONFIDENCE, alpha: float = ALPHA,
                    power: float = POWER) -> pd.DataFrame:
    """Evaluate one direction's family of pre-declared primary contrasts.

    ``rows``: one row per contrast with columns ``contrast`` (name), ``a`` and ``b`` (sequences
    of per-seed values aligned by seed; a minus b is the contrast) and any label columns, which
    are carried through. Output: the label columns (``contrast`` first) and n,
    mean_difference, ci_low, ci_high, sd, p_value (:func:`paired_contrast`), p_holm
    (:func:`holm` over all rows of this family), detectable and verdict (:func:`verdict`).

    ``detectable`` is :func:`detectable_effect` at level alpha / m, m the number of declared
    contrasts: the level Holm applies to the smallest p-value, so it is the effect a
    contrast needs to be declared with this family's correction (a conservative, Bonferroni
    bound for the other contrasts). ValueError for a family of zero contrasts."""
    df = pd.DataFrame(rows)
    if len(df) == 0:
        raise ValueError(EMPTY_FAMILY)
    missing = {"contrast", "a", "b"} - set(df.columns)
    if missing:
        raise ValueError(f"contrast_family needs columns contrast, a, b; missing {sorted(missing)}")
    labels = ["contrast", *[c for c in df.columns if c not in ("contrast", "a", "b")]]
    results = [paired_contrast(r.a, r.b, confidence=confidence, alpha=alpha, power=power)
               for r in df.itertuples(index=False)]
    p = np.array([r.p_value for r in results], dtype=float)
    # every declared contrast counts in the family: one whose p is not estimable (n < 2, or a
    # gap that never varies) enters Holm's m as p = 1, so the family's correction never
    # weakens silently; its own adjusted p stays NaN
    p_holm = np.where(np.isfinite(p), holm(np.where(np.isfinite(p), p, 1.0)), np.nan)
    m = len(df)
    out = df[labels].reset_index(drop=True).copy()
    out["n"] = [r.n for r in results]
    out["mean_difference"] = [r.mean_difference for r in results]
    out["ci_low"] = [r.ci_low for r in results]
    out["ci_high"] = [r.ci_high for r in results]
    out["sd"] = [r.sd for r in results]
    out["p_value"] = p
    out["p_holm"] = p_holm
    out["detectable"] = [detectable_effect(r.sd, r.n, alpha / m, power) for r in results]
    out["verdict"] = [verdict(r.mean_difference, ph, r.n, dt, alpha)
                      for r, ph, dt in zip(results, p_holm, out["detectable"], strict=True)]
    return out[[*labels, *CONTRAST_COLUMNS]]


def _signed(x: float, digits: int) -> str:
    """``x`` with an explicit sign and ``digits`` decimals; a value that rounds to zero is +0."""
    if x is None or not np.isfinite(x):
        return "n/a"
    s = f"{x:+.{digits}f}"
    return f"{0.0:+.{digits}f}" if float(s) == 0 else s


def _p_text(p: float) -> str:
    if p is None or not np.isfinite(p):
        return "Holm-adjusted p not available"
    if p < 0.001:
        return "Holm-adjusted p < 0.001"
    return f"Holm-adjusted p = {float(f'{p:.2g}'):g}"


def verdict_sentence(row: Mapping | pd.Series, subject: str, reference: str, metric: str,
                     scale: float = 100.0, unit: str = "points", digits: int = 1) -> str:
    """Plain-text sentence for one row of :func:`contrast_family` (subject minus reference).

    Significant (Holm-adjusted p < 0.05): "contour_eq is above sgd on early-stopped accuracy by
    +2.1 points (95% CI +0.4 to +3.8, n = 5 seeds, Holm-adjusted p = 0.012)". Otherwise:
    "a difference between contour_eq and sgd on early-stopped accuracy was not detected at 5
    seeds (mean +0.3 points, 95% CI -1.2 to +1.8, Holm-adjusted p = 0.62; smallest detectable
    effect 2.4 points)". Differences are multiplied by ``scale`` (fractions print in points).
    The verdict word comes from ``row["verdict"]`` if present, else :func:`verdict`.
    No LaTeX: callers escape."""
    row = dict(row)
    mean = row["mean_difference"] * scale
    lo, hi = row["ci_low"] * scale, row["ci_high"] * scale
    n = int(row["n"])
    det = row.get("detectable", float("nan"))
    word = row.get("verdict") or verdict(row["mean_difference"], row["p_holm"], n, det)
    ci = f"{CONFIDENCE * 100:.0f}% CI {_signed(lo, digits)} to {_signed(hi, digits)}"
    seeds = f"{n} seed{'s' if n != 1 else ''}"
    p = _p_text(row["p_holm"])
    if word in ("above", "below"):
        return (f"{subject} is {word} {reference} on {metric} by {_signed(mean, digits)} {unit} "
                f"({ci}, n = {seeds}, {p})")
    if det is not None and np.isfinite(det):
        power_text = f"smallest detectable effect {abs(det) * scale:.{digits}f} {unit}"
    else:
        power_text = "smallest detectable effect not estimable"
    return (f"a difference between {subject} and {reference} on {metric} was not detected at "
            f"{seeds} (mean {_signed(mean, digits)} {unit}, {ci}, {p}; {power_text})")


# --------------------------------------------------------------------------------------------
# exploratory comparisons
# --------------------------------------------------------------------------------------------

def paired_against(runs: pd.DataFrame, by: str, reference: str, metrics: Sequence[str],
                   group: str = "benchmark") -> pd.DataFrame:
    """Exploratory: every value of column ``by`` minus ``reference``, per value of ``group``,
    seed by seed (rows matched on column ``seed``), with :func:`paired_contrast` (Student-t
    interval, paired t-test p-value, sd, detectable effect). No Holm adjustment and no verdict
    word: these are not pre-declared contrasts."""
    columns = [group, by, "reference", "metric", "difference", "ci_low", "ci_high", "p_value",
               "n", "sd", "detectable"]
    rows = []
    for g, sub in runs.groupby(group):
        ref = sub[sub[by] == reference].set_index("seed").sort_index()
        if ref.empty:
            continue
        for v, other in sub.groupby(by):
            if v == reference:
                continue
            other = other.set_index("seed").sort_index()
            common = ref.index.intersection(other.index)
            for m in metrics:
                c = paired_contrast(other.loc[common, m].to_numpy(), ref.loc[common, m].to_numpy())
                rows.append({group: g, by: v, "reference": reference, "metric": m,
                             "difference": c.mean_difference, "ci_low": c.ci_low,
                             "ci_high": c.ci_high, "p_value": c.p_value, "n": c.n,
                             "sd": c.sd, "detectable": c.detectable})
    return pd.DataFrame(rows, columns=columns)
