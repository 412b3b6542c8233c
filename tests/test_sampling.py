import numpy as np
import pytest

from rose.sampling import (
    allocate,
    check_balance,
    record_subsets,
    stratified_partition,
    stratified_sample,
)

SORTED = np.repeat(np.arange(10), 50)          # a class-sorted population, as MNIST-5k


def test_allocate_is_largest_remainder_and_exact():
    assert allocate(np.array([50, 30, 20]), 10).tolist() == [5, 3, 2]
    # 7 of (5, 3, 2)/10: exact 3.5, 2.1, 1.4 -> floors 3, 2, 1 and the largest remainder (0.5)
    assert allocate(np.array([5, 3, 2]), 7).tolist() == [4, 2, 1]
    assert allocate(np.array([1, 1, 1]), 3).tolist() == [1, 1, 1]
    with pytest.raises(ValueError):
        allocate(np.array([2, 2]), 5)


def test_a_sample_of_a_sorted_population_holds_every_class_in_random_order():
    idx = stratified_sample(SORTED, 100, seed=3, name="probe")
    counts = np.bincount(SORTED[idx], minlength=10)
    assert counts.tolist() == [10] * 10
    assert len(set(idx.tolist())) == 100
    # not a sorted prefix: the first ten drawn span several classes
    assert len(set(SORTED[idx[:10]].tolist())) >= 4
    assert np.array_equal(idx, stratified_sample(SORTED, 100, seed=3, name="probe"))
    assert not np.array_equal(idx, stratified_sample(SORTED, 100, seed=4, name="probe"))


def test_within_draws_only_from_the_given_positions():
    within = np.flatnonzero(SORTED % 2 == 0)
    idx = stratified_sample(SORTED, 25, seed=0, name="x", within=within)
    assert set(idx.tolist()) <= set(within.tolist())
    assert np.bincount(SORTED[idx], minlength=10)[::2].tolist() == [5] * 5


def test_partition_parts_are_disjoint_stratified_and_cover_the_rest():
    parts = stratified_partition(SORTED, {"test": 0.2, "val": 0.1, "train": -1}, seed=1,
                                 name="split")
    allidx = np.concatenate(list(parts.values()))
    assert sorted(allidx.tolist()) == list(range(len(SORTED)))
    assert [len(parts[k]) for k in ("test", "val", "train")] == [100, 50, 350]
    for k, n in (("test", 10), ("val", 5), ("train", 35)):
        assert np.bincount(SORTED[parts[k]], minlength=10).tolist() == [n] * 10
    assert not np.array_equal(np.sort(parts["train"]), parts["train"])   # stored shuffled


def test_the_recorder_sees_draws_and_the_balance_check_rejects_a_sorted_prefix():
    with record_subsets() as rec:
        stratified_sample(SORTED, 100, seed=0, name="good")
    assert [r.name for r in rec] == ["good"]
    assert check_balance(rec[0])[0]
    from rose.sampling import SubsetRecord
    prefix = SubsetRecord("prefix", SORTED, np.arange(100))    # y[:100] = digits 0 and 1
    ok, ratio = check_balance(prefix)
    assert not ok and ratio > 3
    # a simple random sample passes (noise, not stratification, is what the bound allows)
    rng = np.random.default_rng(0)
    srs = SubsetRecord("srs", SORTED, rng.choice(500, 100, replace=False))
    assert check_balance(srs)[0]
