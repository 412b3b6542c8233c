"""Direction 3b on Colored MNIST: the test-environment validation split, the per-unit measures
(class selectivity, colour / shape information) on known and degenerate networks, the two
lambda-selection rules and the paired comparisons, and the shared initial weights of a seed's
variants. Synthetic images whose every pixel is (index + 1) / N, so a split's images name
their source index."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from rose.data.colored_mnist import Environment
from rose.sampling import check_balance, record_subsets
from rose.superposition.geometry import class_selectivity
from rose.superposition.shortcut import (
    evaluate_shortcut,
    make_splits,
    shortcut_net,
    train_shortcut,
    unit_measures,
)
from rose.superposition.summary import (
    at_selected,
    lambda_tuning,
    paired_against_reference,
    paired_against_unpenalised,
)

N = 2000


@pytest.fixture(scope="module")
def indexed():
    """[N, 28, 28] images, image i constant at (i + 1) / N, digit i mod 10."""
    images = np.repeat(((np.arange(N) + 1) / N).astype(np.float32), 28 * 28).reshape(N, 28, 28)
    return images, np.arange(N) % 10


def _ids(env: Environment) -> np.ndarray:
    return np.rint(env.x.max(1)[:, 0, 0] * N).astype(int) - 1


# --- the test-environment validation split -----------------------------------------------------

@pytest.mark.parametrize("benchmark", ["irm", "cooccurrence", "grayscale"])
def test_train_val_test_and_test_val_hold_disjoint_images(indexed, benchmark):
    images, digits = indexed
    with record_subsets() as rec:
        sp = make_splits(images, digits, benchmark, 5)
    ids = {k: _ids(sp[k]) for k in ("train", "val", "test", "test_val")}
    assert sum(len(v) for v in ids.values()) == N
    assert len(np.unique(np.concatenate(list(ids.values())))) == N     # no image twice
    assert len(ids["test"]) == len(ids["test_val"]) == 0.2 * N / 2
    assert np.array_equal(_ids(sp["swapped"]), ids["test"])            # derived from test only
    assert np.array_equal(_ids(sp["probe"]), ids["test"])
    assert np.array_equal(sp["swapped"].y, sp["test"].y)
    halves = [r for r in rec if r.name.startswith("superposition.shortcut.test_val.")]
    assert {r.name for r in halves} == {"superposition.shortcut.test_val.test",
                                        "superposition.shortcut.test_val.test_val"}
    assert all(check_balance(r)[0] for r in halves)                   # stratified by group
    again = make_splits(images, digits, benchmark, 5)
    assert np.array_equal(_ids(again["test_val"]), ids["test_val"])   # seeded
    assert not np.array_equal(_ids(make_splits(images, digits, benchmark, 6)["test_val"]),
                              ids["test_val"])


def test_test_val_is_the_test_environment(indexed):
    """Same colouring as test: colour disagrees with the label 90% of the time (flip 0.9)."""
    sp = make_splits(*indexed, "irm", 0)
    for k in ("test", "test_val"):
        assert (sp[k].colour != sp[k].y).mean() == pytest.approx(0.9, abs=0.07)


# --- class selectivity and the unit measures ------------------------------------------------------

def test_class_selectivity_by_hand():
    classes = np.array([0, 0, 1, 1])
    acts = np.array([[0, 1, 0, 1, 1, 0],
                     [0, 1, 0, 3, 1, 0],
                     [2, 1, 0, 2, 3, 0],
                     [2, 1, 0, 2, 3, -1]], dtype=float)
    sel = class_selectivity(acts, classes)
    # only on class 1; equal on both; dead (0/0 := 0); equal class means 2, 2;
    # means 1 and 3: (3 - 1) / (3 + 1); a negative activation: undefined
    np.testing.assert_allclose(sel[:5], [1.0, 0.0, 0.0, 0.0, 0.5])
    assert np.isnan(sel[5])
    # three classes, means 3, 1, 2: mu_-max = 1.5, (3 - 1.5) / (3 + 1.5) = 1/3
    three = class_selectivity(np.array([[3.0], [1.0], [2.0]]), np.array([5, 7, 9]))
    assert three == pytest.approx([1 / 3])


def _probe(y: np.ndarray, colour: np.ndarray) -> Environment:
    return Environment(np.zeros((len(y), 2, 14, 14), np.float32), y, y.copy(), colour)


def test_unit_measures_average_over_alive_units_only():
    y = np.tile([0, 1], 50)
    colour = np.tile([0, 0, 1, 1], 25)
    z = np.stack([np.where(y == 1, 2.0, -1.0),         # on for class 1 only, carries shape
                  np.full(100, -3.0),                   # dead
                  np.where(colour == 1, 1.0, -1.0)], 1)  # carries colour, same mean per class
    a = np.maximum(z, 0)
    m = unit_measures(z, a, _probe(y, colour), 0.5, 0.25)
    assert m["frac_alive"] == pytest.approx(2 / 3)
    assert m["class_selectivity"] == pytest.approx(0.5)     # (1 + 0) / 2, the dead unit left out
    assert m["nmi_shape"] == pytest.approx(0.5) and m["nmi_colour"] == pytest.approx(0.5)
    assert m["frac_only_colour"] == m["frac_only_shape"] == pytest.approx(0.5)
    assert m["frac_both"] == 0.0 and m["mid_fraction"] == 0.0
    signed = unit_measures(z, z, _probe(y, colour), 0.5, 0.25)   # activations below zero
    assert np.isnan(signed["class_selectivity"])
    assert signed["frac_alive"] == pytest.approx(2 / 3)


def test_a_dead_network_reports_nan_not_success(indexed):
    """Every hidden unit off (zero weights, negative bias) and a constant logit: no unit
    measure may look like success, and the constant predictor's worst group scores 0."""
    images, digits = indexed
    sp = make_splits(images, digits, "irm", 0)
    net = shortcut_net(2 * 14 * 14, [6, 4], "relu", 1)
    theta = net.init([0], scheme="xavier")
    w1, b1, _, b2, _, b3 = net.views(theta)
    w1.zero_(), b1.fill_(-1.0), b2.fill_(-1.0), b3.fill_(1.0)   # logit = 1 on every input
    row = evaluate_shortcut(net, theta, [sp], np.array([0]), 0.1, 0.25).iloc[0]
    for k in ("nmi_colour", "nmi_shape", "class_selectivity", "mid_fraction", "frac_both",
              "frac_only_colour", "frac_only_shape", "frac_neither"):
        assert np.isnan(row[k]), k
    assert row["frac_alive"] == 0.0
    assert row["test_worst_group_acc"] == row["test_val_worst_group_acc"] == 0.0
    assert row["test_val_acc"] == pytest.approx(sp["test_val"].y.mean())
    assert row["test_acc"] == pytest.approx(sp["test"].y.mean())


# --- lambda selection: training domain, and the labelled test-environment upper bound -----------

def _runs(rng: np.random.Generator | None = None) -> pd.DataFrame:
    """l1 over lambda 0, 0.1, 1 and erm / solu at lambda 0, three seeds. Validation favours
    l1 at 0.1; the test-environment validation half favours 1.0."""
    rows = []
    for seed in range(3):
        for v, lam, val, tv in (("l1", 0.0, 0.80, 0.10), ("l1", 0.1, 0.83, 0.20),
                                ("l1", 1.0, 0.70, 0.60), ("erm", 0.0, 0.80, 0.10),
                                ("solu", 0.0, 0.81, 0.15)):
            rows.append({"benchmark": "irm", "variant": v, "seed": seed, "lam": lam,
                         "val_acc": val + 0.01 * seed, "test_val_worst_group_acc": tv,
                         "test_val_acc": tv, "test_acc": tv, "test_worst_group_acc": tv,
                         "swapped_acc": 0.5, "frac_both": 0.2})
    df = pd.DataFrame(rows)
    if rng is not None:
        for c in ("test_val_worst_group_acc", "test_val_acc", "test_acc",
                  "test_worst_group_acc", "swapped_acc"):
            df[c] = rng.random(len(df))
    return df


def test_both_rules_are_selected_and_labelled():
    sel, table = lambda_tuning(_runs())
    got = {(r.rule, r.variant): r.lam for r in sel.itertuples(index=False)}
    assert got == {("training_domain", "l1"): 0.1, ("training_domain", "erm"): 0.0,
                   ("training_domain", "solu"): 0.0, ("test_env_oracle", "l1"): 1.0,
                   ("test_env_oracle", "erm"): 0.0, ("test_env_oracle", "solu"): 0.0}
    assert list(sel.columns) == ["rule", "benchmark", "variant", "lam"]
    l1 = table[table.variant == "l1"].set_index(["rule", "hp.lam"])
    assert l1.loc[("training_domain", 0.1), "selected"]
    assert l1.loc[("training_domain", 0.1), "score"] == "val_acc"
    assert l1.loc[("test_env_oracle", 1.0), "selected"]
    assert l1.loc[("test_env_oracle", 1.0), "score"] == "test_val_worst_group_acc"
    assert l1.loc[("test_env_oracle", 1.0), "val_mean"] == pytest.approx(0.6)


def test_test_environment_numbers_never_change_the_training_domain_selection():
    base = lambda_tuning(_runs())[0]
    primary = base[base.rule == "training_domain"].reset_index(drop=True)
    oracle_lams = set()
    for s in range(8):
        sel = lambda_tuning(_runs(np.random.default_rng(s)))[0]
        pd.testing.assert_frame_equal(sel[sel.rule == "training_domain"].reset_index(drop=True),
                                      primary)
        oracle_lams |= set(sel[(sel.rule == "test_env_oracle") & (sel.variant == "l1")].lam)
    assert len(oracle_lams) > 1        # the oracle does read them


def test_at_selected_uses_only_the_given_rule():
    runs = _runs()
    sel = lambda_tuning(runs)[0]
    td = at_selected(runs, sel)
    assert sorted(td[td.arm == "l1"].lam.unique()) == [0.1] and len(td) == 9
    oracle = at_selected(runs, sel, rule="test_env_oracle")
    assert sorted(oracle[oracle.arm == "l1"].lam.unique()) == [1.0]
    with pytest.raises(ValueError, match="unknown selection rule"):
        at_selected(runs, sel, rule="test")


def test_paired_comparisons_use_the_training_domain_lambda_seed_by_seed():
    runs = _runs()
    runs.loc[(runs.variant == "l1") & (runs.lam == 0.1), "frac_both"] = [0.1, 0.3, 0.5]
    runs.loc[runs.variant == "solu", "frac_both"] = [0.2, 0.4, 0.6]
    sel = lambda_tuning(runs)[0]
    un = paired_against_unpenalised(runs, sel, metrics=("frac_both",))
    assert un[["variant", "lam"]].values.tolist() == [["l1", 0.1]]     # erm, solu: lambda 0
    assert un.difference.iloc[0] == pytest.approx(0.1)                 # (-0.1 + 0.1 + 0.3) / 3
    ref = paired_against_reference(runs, sel, metrics=("frac_both", "test_worst_group_acc"))
    assert list(ref.columns) == ["benchmark", "variant", "reference", "lam", "metric",
                                 "difference", "ci_low", "ci_high", "p_value", "n",
                                 "detectable"]
    assert set(ref.variant) == {"l1", "solu"} and set(ref.reference) == {"erm"}
    d = ref.set_index(["variant", "metric"])
    assert d.loc[("solu", "frac_both"), "difference"] == pytest.approx(0.2)   # 0, .2, .4
    assert d.loc[("solu", "frac_both"), "n"] == 3
    assert d.loc[("l1", "frac_both"), "lam"] == 0.1
    assert d.loc[("l1", "test_worst_group_acc"), "difference"] == pytest.approx(0.1)
    # a seed the reference lacks is dropped from the pair, not misaligned
    short = paired_against_reference(runs[~((runs.variant == "erm") & (runs.seed == 0))], sel,
                                     metrics=("frac_both",)).set_index("variant")
    assert short.loc["solu", "n"] == 2
    assert short.loc["solu", "difference"] == pytest.approx(0.3)              # .2, .4


# --- pairing: a seed's variants start from the same weights ---------------------------------------

def test_variants_of_a_seed_start_from_the_same_weights(indexed):
    images, digits = indexed
    splits = [make_splits(images, digits, "irm", s) for s in (0, 1)]
    args = ([16, 8], 0, 32, 1e-3, 1e-3)            # 0 steps: theta is the initial weights

    def start(lams, penalty, activation, k=1):
        _, theta, seed_of, _, _ = train_shortcut(splits, lams, *args, penalty, activation,
                                                 k, 0.25, 1.0, seeds=[10, 11])
        return theta, seed_of

    erm, _ = start([0.0], "none", "relu")
    for theta, seed_of in (start([0.0], "none", "solu"), start([0.0], "none", "topk", 3),
                           start([0.0, 0.3], "l1", "relu")):
        assert theta.shape[1] == erm.shape[1]
        for i, s in enumerate(seed_of):
            assert torch.equal(theta[i], erm[s])
    assert not torch.equal(erm[0], erm[1])
