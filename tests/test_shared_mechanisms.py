"""The shared helpers under every direction, checked by hand on small cases: stratified
sampling and partitions (allocation, records, determinism, refusals), equal tuning (selection
rules, the tuning table), the statistics (degenerate contrasts at the rounding scale, passing
of confidence / alpha / power, Holm's range check, the exact sentences and tables the paper
prints) and divergence flags. Many were found by `make mutation` (tests/MUTATION.md)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from rose import stats
from rose.divergence import Divergence, chance_loss
from rose.sampling import (
    SubsetRecord,
    allocate,
    check_balance,
    record_subsets,
    stratified_partition,
    stratified_sample,
)
from rose.tuning import Grid, TuningResult, check_grids, select, tune, tuning_table


@pytest.fixture(autouse=True)
def _fresh_power_cache():
    """detectable_effect caches its noncentrality per (n, alpha, power): start each test cold so
    a test never passes on a value computed by an earlier one."""
    stats._detectable_noncentrality.cache_clear()


# ---------------------------------------------------------------------------- sampling

def test_allocate_by_largest_remainder():
    # exact shares 2.5, 1.5, 1.0: floors 2, 1, 1; the tie of remainders goes to the larger stratum
    assert allocate(np.array([5, 3, 2]), 5).tolist() == [3, 1, 1]
    # exact 2.33, 0.67: the larger remainder wins, not the larger share
    assert allocate(np.array([7, 2]), 3).tolist() == [2, 1]
    assert allocate(np.array([4, 4]), 1).tolist() == [1, 0]           # equal: the first
    assert allocate(np.array([3, 1]), 0).tolist() == [0, 0]
    assert allocate(np.array([3, 1]), 4).tolist() == [3, 1]
    with pytest.raises(ValueError) as e:
        allocate(np.array([3, 1]), 5)
    assert str(e.value) == "cannot draw 5 from a population of 4"
    with pytest.raises(ValueError):
        allocate(np.array([3, 1]), -1)


def test_stratified_sample_records_what_it_drew():
    strata = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 2])
    with record_subsets() as rec:
        idx = stratified_sample(strata, 5, 3, name="probe")
        within = np.array([9, 8, 7, 0, 1, 3])
        sub = stratified_sample(strata, 3, 3, name="inner", within=within)
        none = stratified_sample(strata, 0, 3, name="empty", within=within)
    assert [r.name for r in rec] == ["probe", "inner", "empty"]
    assert np.array_equal(rec[0].population, strata) and np.array_equal(rec[0].index, idx)
    assert np.array_equal(rec[1].population, strata[within])
    assert np.array_equal(within[rec[1].index], sub)                  # positions in the pool
    assert set(sub) <= set(within) and len(none) == 0
    assert rec[2].index.dtype == np.int64
    assert sorted(np.bincount(strata[idx], minlength=3).tolist()) == [1, 1, 3]


def test_sample_of_an_empty_pool_and_list_seeds():
    assert len(stratified_sample(np.array([], dtype=int), 0, 0, name="x")) == 0
    strata = np.repeat([0, 1], 20)
    a = stratified_sample(strata, 10, [3, 17], name="x")
    assert np.array_equal(a, stratified_sample(strata, 10, (3, 17), name="x"))
    assert not np.array_equal(a, stratified_sample(strata, 10, [3, 18], name="x"))


def test_partition_is_deterministic_and_every_later_part_stays_stratified():
    strata = np.array([0, 1, 1])
    parts = stratified_partition(strata, {"a": 1, "b": 1, "c": -1}, 0, name="p")
    # a takes the majority stratum; b then has one 0 and one 1 left to allocate over: the 0
    assert [strata[parts[k]].tolist() for k in "abc"] == [[1], [0], [1]]
    strata = np.repeat([0, 1, 2], [10, 6, 4])
    with record_subsets() as rec:
        p1 = stratified_partition(strata, {"train": 0.5, "val": 5, "test": -1}, 7, name="s")
    p2 = stratified_partition(strata, {"train": 0.5, "val": 5, "test": -1}, 7, name="s")
    p3 = stratified_partition(strata, {"train": 0.5, "val": 5, "test": -1}, 8, name="s")
    assert all(np.array_equal(p1[k], p2[k]) for k in p1)
    assert not all(np.array_equal(p1[k], p3[k]) for k in p1)
    assert [r.name for r in rec] == ["s.train", "s.val", "s.test"]
    assert all(np.array_equal(r.population, strata) for r in rec)
    assert all(np.array_equal(r.index, p1[k]) for r, k in zip(rec, p1, strict=True))
    counts = {k: np.bincount(strata[v], minlength=3).tolist() for k, v in p1.items()}
    assert counts == {"train": [5, 3, 2], "val": [3, 1, 1], "test": [2, 2, 1]}


def test_partition_refusals_and_exact_fits():
    strata = np.repeat([0, 1], 5)
    full = stratified_partition(strata, {"a": 4, "b": 6}, 0, name="f")     # fills exactly
    assert sorted(np.concatenate(list(full.values())).tolist()) == list(range(10))
    zero = stratified_partition(strata, {"a": 0, "b": -1}, 0, name="z")    # asked for none
    assert len(zero["a"]) == 0 and len(zero["b"]) == 10
    cases = [({"a": -1, "b": -1}, "f: at most one part may take the rest, got ['a', 'b']"),
             ({"a": 6, "b": 5}, "f: parts {'a': 6, 'b': 5} do not fit a population of 10"),
             ({"a": -2, "b": 3}, "f: parts {'a': -2, 'b': 3} do not fit a population of 10"),
             ({"a": 0.01, "b": -1}, "f: parts ['a'] of a population of 10 would be empty")]
    for sizes, message in cases:
        with pytest.raises(ValueError) as e:
            stratified_partition(strata, sizes, 0, name="f")
        assert str(e.value) == message


def test_check_balance_is_the_written_bound():
    population = np.repeat([0, 1], [30, 10])                          # p = 0.75, 0.25
    rec = SubsetRecord("r", population, np.arange(8))                # q = 1, 0
    p, q = rec.proportions()
    assert p.tolist() == [0.75, 0.25] and q.tolist() == [1.0, 0.0]
    n, N = 8, 40
    bound = 4.0 * np.sqrt(p * (1 - p) / n * (N - n) / (N - 1)) + 1 / n
    ok, ratio = check_balance(rec)
    assert ratio == pytest.approx(float((np.abs(q - p) / bound).max())) and ok
    ok, ratio = check_balance(rec, z=0.5)                              # ratio ~1.3: refused
    bound = 0.5 * np.sqrt(p * (1 - p) / n * (N - n) / (N - 1)) + 1 / n
    assert ratio == pytest.approx(float((np.abs(q - p) / bound).max()))
    assert 1.0 < ratio < 2.0 and not ok
    assert check_balance(SubsetRecord("e", population, np.array([], dtype=int))) == (True, 0.0)
    one = SubsetRecord("o", population, np.array([35]))
    assert one.proportions()[1].tolist() == [0.0, 1.0]
    assert check_balance(one)[1] == pytest.approx(
        0.75 / (4 * np.sqrt(0.1875 * 39 / 39) + 1.0))


# ------------------------------------------------------------------------------ tuning

def test_check_grids_refusals_name_the_key():
    allowed = {"sam": {"rho", "lr"}, "sgd": {"lr"}}
    check_grids({"sam": {"rho": [0.01, 0.05]}, "sgd": {"lr": [0.1, 0.2]}}, allowed, "k")  # ok
    with pytest.raises(ValueError) as e:
        check_grids({"sam": {}}, allowed, "k")
    assert str(e.value) == ("config key k.sam: the grid is empty; give at least one "
                            "hyperparameter with its candidate values")
    with pytest.raises(ValueError) as e:
        check_grids({"sam": {"rho": [1, 2]}, "sgd": {"lr": [1]}}, allowed, "k")
    assert str(e.value) == ("config key k: grids must have equal sizes (equal tuning), got "
                            "sam: 2, sgd: 1")


def test_select_rules_by_hand():
    pts = [{"lr": 0.1}, {"lr": 0.2}, {"lr": 0.3}]
    r = select("a", pts, [[0.5, 0.7], [0.9, np.nan], [0.65, 0.65]])
    assert r.arm == "a" and r.selected == 2                 # a diverged seed ranks below
    assert select("a", pts, [[0.5, 0.7], [0.9, 0.1], [0.6, 0.6]], False).selected == 1
    # every point lost a seed: the finished seeds decide; an all-NaN point never wins
    r = select("a", pts, [[np.nan, 0.4], [0.6, np.nan], [np.nan, np.nan]])
    assert r.selected == 1
    r = select("a", pts, [[np.nan, 0.4], [0.6, np.nan], [np.nan, np.nan]], False)
    assert r.selected == 0
    assert select("a", pts[:1], [[0.3, 0.2]]).selected == 0           # one point
    with pytest.raises(ValueError) as e:
        select("a", pts, [0.1, 0.2, 0.3])
    assert str(e.value) == "scores must be [points=3, seeds], got (3,)"
    with pytest.raises(ValueError):
        select("a", pts, [[0.1], [0.2]])
    with pytest.raises(ValueError) as e:
        select("a", [], np.zeros((0, 2)))
    assert str(e.value) == "arm a: nothing to select from an empty grid"


def test_tune_passes_the_arm_and_the_direction():
    grid = Grid("sam", {"rho": [0.01, 0.1]})
    seen = []

    def train(points, budget):
        seen.append((points, budget))
        return np.array([[1.0, 1.2], [0.5, 0.7]])
    r = tune(grid, 9, train, higher_is_better=False)
    assert r.arm == "sam" and r.selected == 1 and r.selected_point == {"rho": 0.1}
    assert seen == [([{"rho": 0.01}, {"rho": 0.1}], 9)]
    assert r.selected_score == pytest.approx(0.6)


def test_tuning_table_by_hand():
    r = TuningResult("sam", [{"rho": 0.1, "lr": 2}, {"rho": 0.2, "lr": 2}],
                     np.array([[0.5, 0.7, np.nan], [np.nan, np.nan, 0.4]]), 0)
    t = tuning_table([r])
    want = pd.DataFrame({"arm": ["sam", "sam"],
                         "point": ['{"lr": 2, "rho": 0.1}', '{"lr": 2, "rho": 0.2}'],
                         "hp.rho": [0.1, 0.2], "hp.lr": [2, 2],
                         "val_mean": [0.6, 0.4], "val_sd": [np.std([0.5, 0.7], ddof=1), np.nan],
                         "n_seeds": [3, 3], "n_diverged": [1, 2], "grid_size": [2, 2],
                         "selected": [True, False], "round": [0, 0],
                         "extended": [False, False], "at_edge": ["rho:low", ""],
                         "at_bound": ["", ""]})
    pd.testing.assert_frame_equal(t, want)
    empty = tuning_table([TuningResult("x", [{"a": 1}], np.array([[np.nan, np.nan]]), 0)])
    assert math.isnan(empty.val_mean[0]) and math.isnan(empty.val_sd[0])


# ------------------------------------------------------------------------------- stats

def test_intervals_pass_their_settings_on():
    x = np.random.default_rng(0).normal(size=12)
    lo, hi, method = stats.mean_interval(x, confidence=0.5, n_resamples=300)
    assert method == "bca"
    assert (lo, hi) == stats.bootstrap_ci(x, confidence=0.5, n_resamples=300, method="BCa")
    wide = stats.bootstrap_ci(x, method="BCa")
    assert hi - lo < wide[1] - wide[0]
    assert stats.bootstrap_ci(x) == stats.bootstrap_ci(x, seed=0, method="percentile",
                                                       n_resamples=9999, confidence=0.95)
    assert stats.bootstrap_ci(x, n_resamples=300) != stats.bootstrap_ci(x)
    two = stats.bootstrap_ci([1.0, 2.0])
    assert np.isfinite(two).all()
    lo2, hi2, _ = stats.mean_interval([1.0, 2.0])
    assert np.isfinite([lo2, hi2]).all()
    s = stats.summarize([1.0, None, 2.0, 4.0, float("nan")], confidence=0.5)
    assert (s.n, s.n_diverged) == (3, 2)
    assert (s.ci_low, s.ci_high) == stats.mean_interval([1.0, 2.0, 4.0], confidence=0.5)[:2]


def test_summarize_frame_sorted_groups_and_settings():
    df = pd.DataFrame({"m": ["b", "a", "b", "a", "b", "a"], "v": [1.0, 2, 2, 3, 4, 5]})
    out = stats.summarize_frame(df, ["m"], "v", confidence=0.5)
    assert out.columns.tolist() == ["m", "mean", "ci_low", "ci_high", "n", "n_diverged",
                                    "ci_method"]
    assert out.m.tolist() == ["a", "b"]
    s = stats.summarize([2.0, 3.0, 5.0], confidence=0.5)
    assert (out.ci_low[0], out.ci_high[0]) == (s.ci_low, s.ci_high)


def test_a_constant_gap_is_judged_at_the_scale_of_the_values():
    # differences of 1e-6 that vary only in the last bits of values near 1000-3000
    b = np.array([1000.0, 2000.0, 3000.0])
    c = stats.paired_contrast(b + 1e-6, b)
    assert math.isnan(c.p_value) and c.sd == 0.0 and c.detectable == 0.0 and c.n == 3
    assert c.ci_low == c.ci_high == c.mean_difference
    # one ulp apart: a zero gap at this scale
    z = stats.paired_contrast(np.nextafter(b, np.inf), b)
    assert (z.mean_difference, z.ci_low, z.ci_high, z.p_value, z.n, z.sd, z.detectable) == \
        (0.0, 0.0, 0.0, 1.0, 3, 0.0, 0.0)
    assert stats._is_constant(np.array([]))


def test_paired_contrast_edge_cases_and_power():
    one = stats.paired_contrast([1.0, None], [0.5, 0.2])
    assert one.n == 1 and one.mean_difference == 0.5
    assert all(math.isnan(v) for v in (one.ci_low, one.ci_high, one.p_value, one.sd,
                                       one.detectable))
    a, b = [0.3, 0.5, 0.2, 0.6], [0.1, 0.2, 0.25, 0.3]
    c = stats.paired_contrast(a, b, power=0.5)
    assert c.detectable == pytest.approx(stats.detectable_effect(c.sd, 4, 0.05, 0.5))
    with pytest.raises(ValueError) as e:
        stats.paired_contrast([1.0, 2.0], [1.0])
    assert str(e.value) == ("a paired contrast needs one value per seed for both methods "
                            "(got shapes (2,) and (1,))")


def test_detectable_effect_arguments():
    assert np.isfinite(stats.detectable_effect(1.0, 2))
    assert math.isnan(stats.detectable_effect(float("inf"), 5))
    assert math.isnan(stats.detectable_effect(1.0, 1))
    for alpha, power in ((0.0, 0.8), (1.0, 0.8), (-0.1, 0.8), (0.05, 1.0), (0.05, 0.05),
                         (0.5, 0.4)):
        with pytest.raises(ValueError) as e:
            stats.detectable_effect(1.0, 5, alpha, power)
        assert str(e.value) == f"need 0 < alpha < power < 1, got alpha={alpha}, power={power}"
    # power of the two-sided test at the detectable effect, from scipy's noncentral t directly
    from scipy import stats as sps
    for n in (3, 5, 20):
        nc = stats.detectable_effect(1.0, n) * math.sqrt(n)
        t = sps.t.ppf(0.975, n - 1)
        power = sps.nct.sf(t, n - 1, nc) + sps.nct.cdf(-t, n - 1, nc)
        assert power == pytest.approx(0.8, abs=1e-6)


def test_holm_refuses_p_outside_zero_one():
    for bad in ([0.2, 1.5], [-0.1, 0.2]):
        with pytest.raises(ValueError) as e:
            stats.holm(bad)
        assert str(e.value) == "p-values must lie in [0, 1]"


def _family_rows():
    rng = np.random.default_rng(1)
    return pd.DataFrame({"contrast": ["x", "y"],
                         "a": [list(rng.normal(1, 1, 5)), list(rng.normal(0, 1, 5))],
                         "b": [list(rng.normal(0, 1, 5)), list(rng.normal(0, 1, 5))]})


def test_contrast_family_passes_confidence_and_power():
    rows = _family_rows()
    out = stats.contrast_family(rows, confidence=0.5, power=0.6)
    for i, r in rows.iterrows():
        c = stats.paired_contrast(r.a, r.b, confidence=0.5)
        assert (out.ci_low[i], out.ci_high[i]) == (c.ci_low, c.ci_high)
        assert out.detectable[i] == pytest.approx(stats.detectable_effect(c.sd, 5, 0.025, 0.6))
    with pytest.raises(ValueError) as e:
        stats.contrast_family(rows.drop(columns="b"))
    assert str(e.value) == "contrast_family needs columns contrast, a, b; missing ['b']"


ROW = dict(mean_difference=0.021, ci_low=0.004, ci_high=0.038, n=5, p_holm=0.012,
           detectable=0.024)


def test_verdict_sentences_exactly():
    vs = stats.verdict_sentence
    assert vs({**ROW, "verdict": "above"}, "A", "B", "acc") == (
        "A is above B on acc by +2.1 points (95% CI +0.4 to +3.8, n = 5 seeds, "
        "Holm-adjusted p = 0.012)")
    # the word from verdict() when the row has none
    assert vs(ROW, "A", "B", "acc").startswith("A is above B on acc by +2.1 points")
    neg = {**ROW, "mean_difference": -0.021, "ci_low": -0.038, "ci_high": -0.004}
    assert vs(neg, "A", "B", "acc").startswith("A is below B on acc by -2.1 points (95% CI -3.8")
    assert vs({**neg, "verdict": "below"}, "A", "B", "acc").startswith("A is below B")
    nd = dict(mean_difference=0.003, ci_low=-0.012, ci_high=0.018, n=5, p_holm=0.62,
              detectable=0.024)
    assert vs(nd, "A", "B", "acc") == (
        "a difference between A and B on acc was not detected at 5 seeds (mean +0.3 points, "
        "95% CI -1.2 to +1.8, Holm-adjusted p = 0.62; smallest detectable effect 2.4 points)")
    assert vs({**nd, "p_holm": 0.0009, "verdict": "not detected"}, "A", "B", "acc").count(
        "Holm-adjusted p < 0.001") == 1
    assert "Holm-adjusted p = 0.001;" in vs({**nd, "p_holm": 0.001, "verdict": "not detected"},
                                            "A", "B", "acc")
    gone = {**nd, "n": 1, "ci_low": float("nan"), "ci_high": float("nan"),
            "p_holm": float("nan"), "detectable": float("nan"), "mean_difference": -0.0004}
    assert vs(gone, "A", "B", "acc") == (
        "a difference between A and B on acc was not detected at 1 seed (mean +0.0 points, "
        "95% CI n/a to n/a, Holm-adjusted p not available; smallest detectable effect not "
        "estimable)")
    no_det = {k: v for k, v in nd.items() if k != "detectable"}
    assert vs(no_det, "A", "B", "acc").endswith("smallest detectable effect not estimable)")
    assert vs(nd, "A", "B", "acc", scale=1.0, unit="", digits=3).endswith(
        "smallest detectable effect 0.024 )")


def test_paired_against_table_by_hand():
    runs = pd.DataFrame({"benchmark": ["c"] * 9, "method": ["base"] * 3 + ["m1"] * 3 + ["m2"] * 3,
                         "seed": [0, 1, 2] * 3,
                         "acc": [0.5, 0.6, 0.7, 0.6, 0.8, 0.7, 0.5, 0.5, 0.8]})
    out = stats.paired_against(runs, "method", "base", ["acc"])
    assert out.columns.tolist() == ["benchmark", "method", "reference", "metric", "difference",
                                    "ci_low", "ci_high", "p_value", "n", "sd", "detectable"]
    assert out.method.tolist() == ["m1", "m2"] and (out.reference == "base").all()
    assert (out.metric == "acc").all()
    c = stats.paired_contrast([0.6, 0.8, 0.7], [0.5, 0.6, 0.7])
    row = out.iloc[0]
    assert (row.difference, row.ci_low, row.ci_high, row.p_value, row.n, row.sd,
            row.detectable) == (c.mean_difference, c.ci_low, c.ci_high, c.p_value, c.n, c.sd,
                                c.detectable)


# -------------------------------------------------------------------------- divergence

def test_divergence_flags_by_hand():
    d = Divergence(3, [1.0, 2.0, 0.5], factor=10.0)
    assert d.limit.tolist() == [10.0, 20.0, 5.0]
    assert Divergence(2, chance_loss(4)).limit == pytest.approx(100 * math.log(4))
    d.update(torch.tensor([10.0, float("nan"), 5.0]), 0)       # at the limit: not diverged
    assert d.at_step.tolist() == [-1, 0, -1]
    d.update(torch.tensor([11.0, float("nan"), 6.0]), 1)       # the first step is kept
    assert d.at_step.tolist() == [1, 0, 1] and d.status() == ["diverged"] * 3
    e = Divergence(3, 1.0)
    e.load(d.state())
    assert e.at_step.tolist() == [1, 0, 1] and e.at_step.dtype == np.int64
    state = d.state()
    state[0] = 7
    assert d.at_step[0] == 1                                   # state() is a copy
    f = Divergence(2, 1.0)
    f.update(torch.tensor([1e9, 0.5]), 3)
    ints = np.array([[1, 2], [3, 4]])
    masked = f.mask_rows(ints)
    assert np.isnan(masked[0]).all() and masked[1].tolist() == [3.0, 4.0]
    floats = np.array([[1.0, 2.0], [3.0, 4.0]])
    f.mask_rows(floats)
    assert floats.tolist() == [[1.0, 2.0], [3.0, 4.0]]         # the caller's array untouched
    assert chance_loss(1) == math.log(2)


# ------------------------------------------------------------- found by make mutation (2)

def test_check_balance_finite_population_and_the_exact_bound():
    two = SubsetRecord("t", np.array([0, 1]), np.array([0]))          # N = 2, n = 1
    # p = (.5, .5), q = (1, 0): bound = 4 sqrt(.25 / 1 * (2 - 1) / (2 - 1)) + 1 = 3
    assert check_balance(two)[1] == pytest.approx(0.5 / 3)
    four = SubsetRecord("f", np.array([0, 0, 1, 1]), np.array([0, 1]))  # q = (1, 0), n = 2
    assert check_balance(four, z=0.0) == (True, 1.0)                  # exactly at the bound


def test_empty_tables_keep_their_columns():
    empty = pd.DataFrame({"m": [], "v": []})
    assert stats.summarize_frame(empty, ["m"], "v").columns.tolist() == [
        "m", "mean", "ci_low", "ci_high", "n", "n_diverged", "ci_method"]
    runs = pd.DataFrame({"benchmark": ["c"], "method": ["base"], "seed": [0], "acc": [0.5]})
    assert stats.paired_against(runs, "method", "base", ["acc"]).columns.tolist() == [
        "benchmark", "method", "reference", "metric", "difference", "ci_low", "ci_high",
        "p_value", "n", "sd", "detectable"]


def test_paired_t_power_at_zero_effect_is_alpha_and_far_out_is_one():
    t_crit = float(stats.sps.t.ppf(0.975, 4))
    assert stats._paired_t_power(0.0, 4, t_crit) == pytest.approx(0.05, abs=1e-12)
    assert stats._paired_t_power(16.0, 4, t_crit) == pytest.approx(1.0, abs=1e-6)


def test_contrast_family_uses_its_alpha_for_the_verdict_and_keeps_only_its_columns():
    rows = _family_rows()
    out = stats.contrast_family(rows, alpha=0.5)
    assert out.columns.tolist() == ["contrast", *stats.CONTRAST_COLUMNS]
    for i in range(len(out)):
        want = stats.verdict(out.mean_difference[i], out.p_holm[i], 5, 0.0, alpha=0.5)
        assert out.verdict[i] == want
    assert (out.p_holm < 0.5).any() and (out.p_holm >= 0.05).any()   # the case matters


def test_p_below_one_in_a_thousand_is_written_so():
    assert stats._p_text(0.0009) == "Holm-adjusted p < 0.001"
    nd = dict(mean_difference=0.003, ci_low=-0.012, ci_high=0.018, n=5, p_holm=0.0009,
              detectable=0.024, verdict="not detected")
    assert stats.verdict_sentence(nd, "A", "B", "acc") == (
        "a difference between A and B on acc was not detected at 5 seeds (mean +0.3 points, "
        "95% CI -1.2 to +1.8, Holm-adjusted p < 0.001; smallest detectable effect 2.4 points)")


def _runs(values_a, values_b, **cols):
    rows = [{"arm": "m", "seed": s, "acc": v, **cols} for s, v in values_a.items()]
    rows += [{"arm": "ref", "seed": s, "acc": v, **cols} for s, v in values_b.items()]
    return pd.DataFrame(rows)


def test_evaluate_pairs_common_finite_seeds_and_names_them():
    from rose.contrasts import evaluate
    runs = _runs({0: 0.5, 1: np.nan, 2: 0.7, 3: 0.9, 4: 0.6},
                 {0: 0.4, 1: 0.5, 2: 0.5, 4: np.nan, 5: 0.3})
    fam = evaluate(runs, [{"arm": "m", "reference": "ref", "metric": "acc"}])
    assert fam.n[0] == 2 and fam.seeds[0] == "0,2"
    c = stats.paired_contrast([0.5, 0.7], [0.4, 0.5])
    assert fam.mean_difference[0] == pytest.approx(c.mean_difference)


def test_contrast_error_messages_exactly():
    from rose.contrasts import check_contrasts, evaluate
    with pytest.raises(ValueError) as e:
        check_contrasts([{"arm": "m", "reference": "ref", "metric": "acc"}], "primary",
                        {"m", "ref"}, {"acc"}, {"setting": {"a"}})
    assert str(e.value) == "config key primary[0].setting: say which setting the contrast is on"
    runs = pd.concat([_runs({0: 0.5}, {0: 0.4}), _runs({0: 0.6}, {0: 0.4})])
    with pytest.raises(ValueError) as e:
        evaluate(runs, [{"arm": "m", "reference": "ref", "metric": "acc"}])
    assert str(e.value) == ("contrast m - ref, acc: more than one row per seed; give the "
                            "grouping key that makes a seed's row unique")
    with pytest.raises(ValueError) as e:
        evaluate(runs, [])
    assert str(e.value) == stats.EMPTY_FAMILY


def test_contrast_sentences_defaults_groups_and_labels():
    from rose.contrasts import evaluate, sentences
    vals = {s: 0.5 + 0.01 * s for s in range(5)}
    runs = pd.concat([_runs(vals, {s: 0.5 for s in range(5)}, setting="x", size="big")])
    fam = evaluate(runs, [{"arm": "m", "reference": "ref", "metric": "acc", "setting": "x",
                           "size": "big"}])
    (s,) = sentences(fam, {})
    want = stats.verdict_sentence(fam.iloc[0], "m", "ref", "acc")
    assert s == f"On x, big, {want}."
    assert "points" in s                                       # default unit and scale 100
    plain = evaluate(runs, [{"arm": "m", "reference": "ref", "metric": "acc"}])
    (t,) = sentences(plain, {"acc": "accuracy"})
    w = stats.verdict_sentence(plain.iloc[0], "m", "ref", "accuracy")
    assert t == w[:1].upper() + w[1:] + "."
    no_seeds = plain.drop(columns="seeds")
    assert sentences(no_seeds, {"acc": "accuracy"}) == [t]


def test_verdict_sentence_default_scale_is_points_of_a_fraction():
    row = dict(mean_difference=0.5, ci_low=0.25, ci_high=0.75, n=5, p_holm=0.01, detectable=0.1)
    assert stats.verdict_sentence(row, "A", "B", "acc").startswith(
        "A is above B on acc by +50.0 points (95% CI +25.0 to +75.0")


def test_contrast_sentences_pass_scale_and_unit_on():
    from rose.contrasts import evaluate, sentences
    runs = _runs({s: 0.5 + 0.5 + 0.01 * s for s in range(5)}, {s: 0.5 for s in range(5)})
    fam = evaluate(runs, [{"arm": "m", "reference": "ref", "metric": "acc"}])
    (default,) = sentences(fam, {})
    assert default.startswith("M is above ref on acc by +52.0 points")
    (pp,) = sentences(fam, {}, scale=10.0, unit="pp")
    assert pp.startswith("M is above ref on acc by +5.2 pp")


def test_statistics_accept_bools_and_missing_scores():
    assert stats.bootstrap_ci([True, False, True]) == stats.bootstrap_ci([1.0, 0.0, 1.0])
    # a failed run's score is None: it never wins
    pts = [{"lr": 1}, {"lr": 2}]
    assert select("a", pts, [[1.0, None], [0.5, 0.5]]).selected == 1


def test_contrast_family_accepts_a_low_power_below_the_default_alpha():
    out = stats.contrast_family(_family_rows(), alpha=0.01, power=0.03)
    assert len(out) == 2
    out = stats.contrast_family(_family_rows(), alpha=0.9, power=0.95)
    assert len(out) == 2
