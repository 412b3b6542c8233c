import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from rose.stats import (
    EMPTY_FAMILY,
    bootstrap_ci,
    contrast_family,
    detectable_effect,
    holm,
    interval_words,
    mean_interval,
    paired_against,
    paired_contrast,
    summarize,
    summarize_frame,
    verdict,
    verdict_sentence,
)

# ---------------------------------------------------------------------------- means over seeds


def test_mean_interval_is_the_seeds_range_below_10_seeds():
    lo, hi, method = mean_interval([2.0, 1.0, 5.0, 3.0, 4.0])
    assert (lo, hi, method) == (1.0, 5.0, "range")
    assert mean_interval(list(range(9))) == (0.0, 8.0, "range")
    # confidence does not change the range
    assert mean_interval([2.0, 1.0, 5.0], confidence=0.5) == (1.0, 5.0, "range")


def test_mean_interval_is_bca_from_10_seeds_and_seeded():
    x = np.random.default_rng(3).exponential(size=12)
    lo, hi, method = mean_interval(x)
    assert method == "bca"
    assert (lo, hi, method) == mean_interval(x)       # seeded
    assert mean_interval(x, seed=1) != mean_interval(x)
    # BCa corrects for skew: for right-skewed data the interval sits further right of the
    # mean than the percentile interval does (same resamples, same seed)
    _, phi = bootstrap_ci(x)
    assert hi - x.mean() > x.mean() - lo
    assert hi > phi


def test_mean_interval_degenerate_cases():
    assert all(math.isnan(v) for v in mean_interval([0.5])[:2])
    assert all(math.isnan(v) for v in mean_interval([])[:2])
    assert mean_interval([0.5, 0.5, 0.5]) == (0.5, 0.5, "range")
    assert mean_interval([0.5] * 12) == (0.5, 0.5, "bca")
    # diverged runs are left out
    assert mean_interval([1.0, 2.0, 3.0, 4.0, 5.0, None, float("nan")]) == (1.0, 5.0, "range")


def test_bca_covers_a_normal_mean_from_10_seeds():
    # 300 samples of 20 normal values; few resamples keep this fast (the default is 9999)
    rng = np.random.default_rng(11)
    x = rng.normal(2.0, 3.0, size=(300, 20))
    hits, methods = 0, set()
    for i, row in enumerate(x):
        lo, hi, method = mean_interval(row, seed=i, n_resamples=999)
        hits += lo <= 2.0 <= hi
        methods.add(method)
    assert methods == {"bca"}
    assert hits / len(x) >= 0.90


def test_summarize_leaves_out_and_counts_diverged_runs():
    s = summarize([0.9, None, 0.8, float("nan"), 0.7])
    assert s.n == 3 and s.n_diverged == 2 and s.mean == pytest.approx(0.8)
    assert s.method == "range"
    assert (s.ci_low, s.ci_high) == (0.7, 0.9)
    empty = summarize([None, None])
    assert empty.n == 0 and empty.n_diverged == 2 and math.isnan(empty.mean)
    assert summarize(np.arange(10.0)).method == "bca"


def test_summarize_frame_groups():
    df = pd.DataFrame({"method": ["a", "a", "b", "b"], "acc": [1.0, 3.0, 10.0, None]})
    out = summarize_frame(df, ["method"], "acc").set_index("method")
    assert list(out.columns) == ["mean", "ci_low", "ci_high", "n", "n_diverged", "ci_method"]
    assert out.loc["a", "mean"] == 2.0 and out.loc["a", "n"] == 2
    assert out.loc["b", "mean"] == 10.0 and out.loc["b", "n_diverged"] == 1
    assert out.loc["a", "ci_method"] == "range"
    assert (out.loc["a", "ci_low"], out.loc["a", "ci_high"]) == (1.0, 3.0)


# the quantity's range: [0, 1] for a fraction, [0, inf) for a loss or a count
FRACTION, NONNEGATIVE = (0.0, 1.0), (0.0, math.inf)


@pytest.mark.parametrize(("values", "bounds"), [
    ([0.0, 0.0, 0.0, 1.0, 0.0], FRACTION),                  # a t interval: [-0.356, 0.756]
    ([0.0] * 11 + [1.0], FRACTION),                         # BCa at 12 seeds
    ([0.99, 1.0, 1.0, 0.98, 1.0, 1.0, 1.0, 0.97, 1.0, 1.0, 1.0], FRACTION),
    ([0.01, 0.012, 0.009, 0.011, 0.4], NONNEGATIVE),       # a loss with one large outlier
    ([0.01, 0.012, 0.009, 0.011, 0.01, 0.013, 0.008, 0.011, 0.012, 0.01, 0.4], NONNEGATIVE),
    ([0, 0, 1, 0, 0], NONNEGATIVE),                         # a count (features represented)
    ([0] * 12 + [3], NONNEGATIVE),
])
def test_descriptive_intervals_stay_in_the_quantitys_range(values, bounds):
    x = np.asarray(values, dtype=float)
    t_lo = x.mean() - sps.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    t_hi = 2 * x.mean() - t_lo
    assert t_lo < bounds[0] or t_hi > bounds[1]    # the case matters: Student-t leaves it
    lo, hi, _ = mean_interval(values)
    assert bounds[0] <= x.min() <= lo <= hi <= x.max() <= bounds[1]
    s = summarize(values)
    assert bounds[0] <= s.ci_low <= s.mean <= s.ci_high <= bounds[1]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=2, max_size=14))
def test_descriptive_intervals_never_leave_the_values_range(values):
    lo, hi, _ = mean_interval(values, n_resamples=199)
    assert min(values) <= lo <= hi <= max(values)


def test_captions_name_the_interval_the_seed_count_gets():
    assert interval_words(5) == "range of the seeds" == interval_words(9)
    assert interval_words(10) == "95% CI" == interval_words(20)
    assert mean_interval(np.arange(9.0))[2] == "range"
    assert mean_interval(np.arange(10.0))[2] == "bca"


def test_a_degenerate_bca_falls_back_to_the_seeds_range(monkeypatch):
    import rose.stats as stats_module

    monkeypatch.setattr(stats_module, "bootstrap_ci", lambda *a, **k: (math.nan, math.nan))
    assert mean_interval(np.arange(12.0)) == (0.0, 11.0, "range")


def test_bootstrap_ci_helper_is_seeded_and_degenerate_cases_are_explicit():
    x = [0.91, 0.93, 0.92, 0.95, 0.90]
    assert bootstrap_ci(x) == bootstrap_ci(x)
    lo, hi = bootstrap_ci(x)
    assert min(x) <= lo < np.mean(x) < hi <= max(x)
    assert bootstrap_ci([0.5, 0.5, 0.5]) == (0.5, 0.5)
    assert all(math.isnan(v) for v in bootstrap_ci([0.5]))


# ---------------------------------------------------------------------------- paired contrasts


def test_paired_t_interval_covers_at_5_seeds():
    # 4000 simulated experiments with 5 seeds each; a - b ~ N(0.3, 1). The Student-t interval
    # covers the true difference ~95% of the time (0.949 with this seed). For contrast, the
    # percentile bootstrap (2000 resamples) on the same draws covers only 0.842 -- the reason
    # PROTOCOL.md section 3 asks for t at small n.
    rng = np.random.default_rng(0)
    b = rng.normal(0.9, 0.5, size=(4000, 5))
    a = b + rng.normal(0.3, 1.0, size=(4000, 5))
    hits = 0
    for ra, rb in zip(a, b, strict=True):
        c = paired_contrast(ra, rb)
        hits += c.ci_low <= 0.3 <= c.ci_high
    coverage = hits / len(a)
    assert 0.93 <= coverage <= 0.97


def test_paired_contrast_matches_scipy_and_hand_numbers():
    a = [0.95, 0.93, 0.97, 0.92, 0.96]
    b = [0.94, 0.90, 0.95, 0.92, 0.93]
    c = paired_contrast(a, b)
    d = np.array(a) - np.array(b)  # 0.01 0.03 0.02 0.00 0.03: mean 0.018, sd 0.013038
    assert c.n == 5 and c.mean_difference == pytest.approx(0.018)
    assert c.sd == pytest.approx(0.0130384, abs=1e-6)
    half = 2.776445 * 0.0130384 / math.sqrt(5)
    assert (c.ci_low, c.ci_high) == pytest.approx((0.018 - half, 0.018 + half), abs=1e-6)
    assert c.p_value == pytest.approx(sps.ttest_1samp(d, 0.0).pvalue)
    assert c.p_value == pytest.approx(0.0367, abs=5e-4)  # t = 3.087, 4 df
    assert c.detectable == pytest.approx(detectable_effect(c.sd, 5))


def test_paired_contrast_drops_nan_pairs_and_degenerate_cases_are_explicit():
    c = paired_contrast([1.0, 2.0, None, 4.0], [0.0, float("nan"), 3.0, 2.0])
    assert c.n == 2 and c.mean_difference == pytest.approx(1.5)
    one = paired_contrast([1.0], [0.5])
    assert one.n == 1 and one.mean_difference == 0.5
    assert all(math.isnan(v) for v in (one.ci_low, one.ci_high, one.p_value, one.detectable))
    shift = paired_contrast([0.93, 0.95, 0.91], [0.92, 0.94, 0.90])  # d = 0.01 up to rounding
    assert shift.ci_low == shift.ci_high == shift.mean_difference
    assert shift.mean_difference == pytest.approx(0.01) and math.isnan(shift.p_value)
    # a constant gap carries no verdict, and still counts in its family's Holm m
    fam = contrast_family(pd.DataFrame({"contrast": ["const", "real"],
                                        "a": [[0.93, 0.95, 0.91], [0.5, 0.61, 0.72, 0.8]],
                                        "b": [[0.92, 0.94, 0.90], [0.4, 0.50, 0.60, 0.7]]}))
    assert fam.verdict[0] == "not detected" and math.isnan(fam.p_holm[0])
    assert fam.p_holm[1] == pytest.approx(min(1.0, 2 * fam.p_value[1]))
    same = paired_contrast([0.9, 0.8], [0.9, 0.8])
    assert same.p_value == 1.0 and same.ci_low == same.ci_high == 0.0
    with pytest.raises(ValueError):
        paired_contrast([1.0, 2.0], [1.0])


# ---------------------------------------------------------------------------- Holm


def test_holm_by_hand():
    # sorted 0.005 0.01 0.03 0.04 -> 4*0.005, 3*0.01, 2*0.03, max(0.06, 1*0.04)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    out = holm([0.01, None, 0.04, float("nan")])  # m = 2
    assert out[[0, 2]] == pytest.approx([0.02, 0.04]) and np.isnan(out[[1, 3]]).all()
    assert holm([0.4, 0.5]) == pytest.approx([0.8, 0.8])
    assert holm([0.9, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([]).size == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12))
def test_holm_properties(p):
    p = np.array(p)
    adj = holm(p)
    m = len(p)
    assert np.all(adj >= p - 1e-15) and np.all(adj <= 1.0)
    assert np.all(adj <= np.minimum(1.0, m * p) + 1e-15)  # never worse than Bonferroni
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(adj[order]) >= 0)  # monotone in sorted order
    assert adj[order[0]] == pytest.approx(min(1.0, m * p[order[0]]))


# ---------------------------------------------------------------------------- power


def _nct_power(delta, sd, n, alpha):
    t_crit = sps.t.ppf(1 - alpha / 2, n - 1)
    nc = delta * math.sqrt(n) / sd
    return sps.nct.sf(t_crit, n - 1, nc) + sps.nct.cdf(-t_crit, n - 1, nc)


def test_detectable_effect_at_5_seeds():
    delta = detectable_effect(1.0, 5)
    assert delta == pytest.approx(1.682, abs=1e-3)
    assert _nct_power(delta, 1.0, 5, 0.05) == pytest.approx(0.8, abs=1e-6)
    # independent Monte-Carlo: paired t-tests at n = 5 with true difference delta
    rng = np.random.default_rng(5)
    d = rng.normal(delta, 1.0, size=(40_000, 5))
    t = d.mean(1) / (d.std(1, ddof=1) / math.sqrt(5))
    assert np.mean(np.abs(t) > sps.t.ppf(0.975, 4)) == pytest.approx(0.8, abs=0.01)
    # linear in sd, larger at a stricter level
    assert detectable_effect(0.02, 5) == pytest.approx(0.02 * delta)
    assert detectable_effect(1.0, 5, alpha=0.025) > delta


def test_detectable_effect_approaches_normal_theory_for_large_n():
    z = sps.norm.ppf(0.975) + sps.norm.ppf(0.8)
    for n in (400, 2000):
        assert detectable_effect(2.0, n) == pytest.approx(z * 2.0 / math.sqrt(n), rel=5e-3)
    assert detectable_effect(2.0, 10) > 1.05 * z * 2.0 / math.sqrt(10)  # t is wider at small n


def test_detectable_effect_degenerate_cases():
    assert math.isnan(detectable_effect(1.0, 1))
    assert math.isnan(detectable_effect(float("nan"), 5))
    assert detectable_effect(0.0, 5) == 0.0


# ---------------------------------------------------------------------------- families


def _family():
    # two contrasts each with raw p ~ 0.033 (t = 3.09, 4 df): Holm over two gives ~0.067
    d = np.array([0.005, 0.010, 0.015, 0.002, 0.020])
    b = np.array([0.90, 0.91, 0.89, 0.92, 0.90])
    return pd.DataFrame({
        "contrast": ["contour_eq - sgd", "contour - sgd"],
        "benchmark": ["mnist_noisy", "mnist_noisy"],
        "a": [list(b + d), list(b + d[::-1])],
        "b": [list(b), list(b)],
    })


def test_contrast_family_refuses_an_empty_family():
    with pytest.raises(ValueError, match=EMPTY_FAMILY):
        contrast_family(pd.DataFrame(columns=["contrast", "a", "b"]))
    assert EMPTY_FAMILY == "a family of primary contrasts must hold at least one contrast"


def test_contrast_family_holm_and_not_detected_when_only_raw_p_is_small():
    out = contrast_family(_family())
    assert list(out.columns) == ["contrast", "benchmark", "n", "mean_difference", "ci_low",
                                 "ci_high", "sd", "p_value", "p_holm", "detectable", "verdict"]
    assert (out.p_value < 0.05).all() and (out.p_holm > 0.05).all()
    assert (out.p_holm >= out.p_value).all()
    assert out.p_holm.to_numpy() == pytest.approx(holm(out.p_value))
    assert (out.verdict == "not detected").all()
    # detectable at alpha / m = 0.025, larger than at 0.05
    assert out.detectable[0] == pytest.approx(detectable_effect(out.sd[0], 5, alpha=0.025))
    assert out.detectable[0] > detectable_effect(out.sd[0], 5)


def test_contrast_family_of_one_says_above_and_below():
    fam = _family().iloc[[0]]
    assert contrast_family(fam).verdict[0] == "above"  # alone, p = 0.033 < 0.05
    swapped = fam.rename(columns={"a": "b", "b": "a"})
    assert contrast_family(swapped).verdict[0] == "below"


def test_verdict_words():
    assert verdict(0.02, 0.01, 5, 0.01) == "above"
    assert verdict(-0.02, 0.01, 5, 0.01) == "below"
    assert verdict(0.02, 0.05, 5, 0.01) == "not detected"  # not strictly below alpha
    assert verdict(0.02, float("nan"), 1, float("nan")) == "not detected"
    assert verdict(0.0, 0.0, 5, 0.0) == "not detected"


def test_verdict_sentences():
    sig = {"mean_difference": 0.021, "ci_low": 0.004, "ci_high": 0.038, "n": 5,
           "p_holm": 0.0123, "detectable": 0.015, "verdict": "above"}
    assert verdict_sentence(sig, "contour_eq", "sgd", "early-stopped accuracy") == (
        "contour_eq is above sgd on early-stopped accuracy by +2.1 points "
        "(95% CI +0.4 to +3.8, n = 5 seeds, Holm-adjusted p = 0.012)")
    null = {"mean_difference": 0.003, "ci_low": -0.012, "ci_high": 0.018, "n": 5,
            "p_holm": 0.62, "detectable": 0.024, "verdict": "not detected"}
    assert verdict_sentence(null, "contour_eq", "sgd", "early-stopped accuracy") == (
        "a difference between contour_eq and sgd on early-stopped accuracy was not detected "
        "at 5 seeds (mean +0.3 points, 95% CI -1.2 to +1.8, Holm-adjusted p = 0.62; "
        "smallest detectable effect 2.4 points)")


def test_verdict_sentence_from_a_family_row():
    row = contrast_family(_family()).iloc[0]
    text = verdict_sentence(row, "contour_eq", "sgd", "early-stopped accuracy")
    assert "not detected at 5 seeds" in text
    assert f"smallest detectable effect {100 * row.detectable:.1f} points" in text
    assert "\\" not in text and "$" not in text


# ---------------------------------------------------------------------------- exploratory


def test_paired_against_matches_seeds_and_uses_t_contrasts():
    runs = pd.DataFrame({
        "benchmark": ["m"] * 6 + ["c"] * 2,
        "opt": ["sgd", "sgd", "sgd", "adam", "adam", "adam", "adam", "adam"],
        "seed": [0, 1, 2, 2, 0, 1, 0, 1],
        "acc": [0.90, 0.92, 0.91, 0.94, 0.93, 0.93, 0.5, 0.6],
    })
    out = paired_against(runs, "opt", "sgd", ["acc"])
    assert list(out.columns) == ["benchmark", "opt", "reference", "metric", "difference",
                                 "ci_low", "ci_high", "p_value", "n", "sd", "detectable"]
    assert len(out) == 1  # benchmark "c" has no reference
    r = out.iloc[0]
    c = paired_contrast([0.93, 0.93, 0.94], [0.90, 0.92, 0.91])  # matched by seed
    assert (r.difference, r.ci_low, r.p_value, r.n) == pytest.approx(
        (c.mean_difference, c.ci_low, c.p_value, 3))
    assert "verdict" not in out
