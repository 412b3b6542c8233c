import math

import numpy as np
import pandas as pd
import pytest

from rose.stats import bootstrap_ci, paired_comparison, summarize, summarize_frame


def test_bootstrap_ci_matches_normal_theory_for_a_large_sample():
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 2.0, size=400)
    lo, hi = bootstrap_ci(x)
    half = 1.96 * x.std(ddof=1) / math.sqrt(len(x))  # ~0.196
    assert lo < x.mean() < hi
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.1)


def test_bootstrap_ci_is_seeded_and_degenerate_cases_are_explicit():
    x = [0.91, 0.93, 0.92, 0.95, 0.90]
    assert bootstrap_ci(x) == bootstrap_ci(x)
    lo, hi = bootstrap_ci(x)
    assert min(x) <= lo < np.mean(x) < hi <= max(x)
    assert bootstrap_ci([0.5, 0.5, 0.5]) == (0.5, 0.5)
    assert all(math.isnan(v) for v in bootstrap_ci([0.5]))


def test_summarize_leaves_out_and_counts_diverged_runs():
    s = summarize([0.9, None, 0.8, float("nan"), 0.7])
    assert s.n == 3 and s.n_diverged == 2 and s.mean == pytest.approx(0.8)
    empty = summarize([None, None])
    assert empty.n == 0 and empty.n_diverged == 2 and math.isnan(empty.mean)


def test_summarize_frame_groups():
    df = pd.DataFrame({"method": ["a", "a", "b", "b"], "acc": [1.0, 3.0, 10.0, None]})
    out = summarize_frame(df, ["method"], "acc").set_index("method")
    assert out.loc["a", "mean"] == 2.0 and out.loc["a", "n"] == 2
    assert out.loc["b", "mean"] == 10.0 and out.loc["b", "n_diverged"] == 1


def test_paired_comparison_recovers_a_constant_shift():
    rng = np.random.default_rng(1)
    b = rng.normal(0.9, 0.02, size=12)
    a = b + 0.01 + rng.normal(0, 0.001, size=12)
    r = paired_comparison(a, b)
    assert r.mean_difference == pytest.approx(0.01, abs=0.001)
    assert r.ci_low > 0 and r.p_value < 0.001 and r.n == 12
    with pytest.raises(ValueError):
        paired_comparison([1.0, 2.0], [1.0])
