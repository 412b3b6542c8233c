"""Direction 3b: toy-model geometry against closed forms, the published toy-model behaviour,
penalties, Colored MNIST construction and the shortcut sanity anchors."""

import copy
import math

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from sklearn.metrics import mutual_info_score

from rose.data.bundled import load_mnist5k
from rose.data.colored_mnist import colour_images, correlations
from rose.nn.activations import hidden_activation
from rose.superposition import geometry, penalties
from rose.superposition.experiments import check_config
from rose.superposition.monosemanticity import reconstruction_gain, represented
from rose.superposition.phase_diagram import (
    classify_phase,
    classify_phase_by_norm,
    phase_diagram,
)
from rose.superposition.shortcut import (
    evaluate_shortcut,
    make_splits,
    train_shortcut,
    worst_group_accuracy,
)
from rose.superposition.summary import lambda_tuning, paired_against_unpenalised
from rose.superposition.toy_model import ToyModel, importance, sample_features, train_toy

from .conftest import ROOT


def polygon(k: int, r: float = 1.0) -> torch.Tensor:
    a = torch.arange(k) * 2 * math.pi / k
    return r * torch.stack([a.cos(), a.sin()], 1)


# --- geometry: closed forms -------------------------------------------------------------------

def test_pentagon_dimensionality_is_two_fifths():
    W = polygon(5, 1.16)
    assert torch.allclose(geometry.dimensionality(W), torch.full((5,), 0.4), atol=1e-6)
    assert torch.allclose(geometry.features_per_dimension(W), torch.tensor(5 * 1.16 ** 2 / 2))
    # sum_{j != i} (W_i_hat . W_j)^2 = r^2 (2 cos^2 72 + 2 cos^2 144) = 1.5 r^2
    assert torch.allclose(geometry.superposition(W), torch.full((5,), 1.5 * 1.16 ** 2),
                          atol=1e-5)


def test_antipodal_pair_orthogonal_and_unlearned_features():
    W = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    assert torch.allclose(geometry.dimensionality(W), torch.tensor([0.5, 0.5, 1.0, 0.0]))
    assert torch.allclose(geometry.superposition(W), torch.tensor([1.0, 1.0, 0.0, 0.0]))
    assert torch.allclose(geometry.feature_norms(W), torch.tensor([1.0, 1.0, 1.0, 0.0]))


def test_dimensionality_invariants_on_random_weights():
    W = torch.randn(50, 12, 4, generator=torch.Generator().manual_seed(0))
    D = geometry.dimensionality(W)
    assert (D >= 0).all() and (D <= 1 + 1e-6).all()
    assert (D.sum(1) <= 4 + 1e-4).all()          # sum_i D_i <= m


def test_neuron_polysemanticity():
    assert torch.allclose(geometry.neuron_polysemanticity(torch.eye(3)), torch.zeros(3))
    W = torch.ones(4, 2)                         # every unit reads 4 features equally
    assert torch.allclose(geometry.neuron_polysemanticity(W), torch.full((2,), 0.75))


def test_unit_information_equals_sklearn_per_unit():
    rng = np.random.default_rng(0)
    c = rng.integers(0, 2, 800)
    acts = np.maximum(rng.normal(size=(800, 20)) + c[:, None] * rng.normal(size=20), 0)
    acts[:, 0] = 0.0                                 # a dead unit carries nothing
    acts[:, 1] = c * 2.0                             # a unit that is the concept
    ours = geometry.unit_concept_information(acts, c)
    _, counts = np.unique(c, return_counts=True)
    p = counts / counts.sum()
    h = -(p * np.log(p)).sum()
    for u in range(20):
        edges = np.unique(np.quantile(acts[:, u], np.linspace(0, 1, 9)[1:-1]))
        ref = mutual_info_score(c, np.searchsorted(edges, acts[:, u], side="right")) / h
        assert ours[u] == pytest.approx(ref, abs=1e-12)
    assert ours[0] == 0.0 and ours[1] == pytest.approx(1.0)


def test_concept_selectivity_fractions():
    a = np.array([0.5, 0.5, 0.0, 0.0, 0.9])
    b = np.array([0.5, 0.0, 0.5, 0.0, 0.9])
    alive = np.array([True, True, True, True, False])
    f = geometry.concept_selectivity(a, b, alive, 0.1, ("colour", "shape"))
    assert f == {"frac_only_colour": 0.25, "frac_only_shape": 0.25, "frac_both": 0.25,
                 "frac_neither": 0.25, "frac_alive": 0.8}


# --- the toy model: published behaviour --------------------------------------------------------

def test_sampled_features_have_the_configured_density_and_uniform_values():
    density = torch.tensor([[0.05, 0.5, 1.0]])
    x = sample_features(density, 200_000, torch.Generator().manual_seed(0))[0]
    assert torch.allclose((x > 0).float().mean(0), density[0], atol=0.005)
    present = x[:, 1][x[:, 1] > 0]
    assert present.mean().item() == pytest.approx(0.5, abs=0.005)       # U[0, 1]
    assert present.max().item() < 1.0


@pytest.fixture(scope="module")
def trained_intro():
    """n=5, m=2, I = 0.9^i at S = 0, 0.7, 0.99 (lr 1e-2 x 3k steps reaches the same optima as
    the notebook's 1e-3 x 20k; the quick config runs the latter)."""
    S = torch.tensor([0.0, 0.7, 0.99])
    g = torch.Generator().manual_seed(0)
    model = ToyModel.init([0, 1, 2], 5, 2)
    train_toy(model, importance(5, 0.9).expand(3, 5), (1 - S)[:, None].expand(3, 5), 3000,
              1024, 1e-2, g)
    return model.W


@pytest.mark.sanity
def test_dense_features_represent_the_top_m_only(trained_intro):
    norms = geometry.feature_norms(trained_intro[0])
    assert torch.allclose(norms[:2], torch.ones(2), atol=0.05)       # like PCA
    assert (norms[2:] < 0.1).all()


@pytest.mark.sanity
def test_intermediate_sparsity_gives_antipodal_pairs(trained_intro):
    D = geometry.dimensionality(trained_intro[1])
    represented = geometry.feature_norms(trained_intro[1]) > 0.5
    assert represented.sum() == 4
    assert torch.allclose(D[represented], torch.full((4,), 0.5), atol=0.05)


@pytest.mark.sanity
def test_high_sparsity_gives_a_pentagon(trained_intro):
    W = trained_intro[2]
    assert torch.allclose(geometry.dimensionality(W), torch.full((5,), 0.4), atol=0.03)
    angles = torch.atan2(W[:, 1], W[:, 0]).sort().values
    gaps = torch.diff(torch.cat([angles, angles[:1] + 2 * math.pi]))
    assert torch.allclose(gaps, torch.full((5,), 2 * math.pi / 5), atol=0.1)


def test_instances_do_not_interact():
    """Each instance's loss has zero gradient on every other instance's weights (so AdamW, being
    elementwise, trains them as separate models)."""
    g = torch.Generator().manual_seed(0)
    model = ToyModel.init([0, 1, 2], 6, 2, privileged=True)
    x = sample_features(torch.full((3, 6), 0.3), 64, g)
    out, z, _h = model.forward(x)
    loss0 = ((x - out) ** 2)[0].mean() + penalties.bimodal_sigmoid(z, 0.25)[0]
    gW, gb, gc = torch.autograd.grad(loss0, model.parameters())
    for grad in (gW, gb, gc):
        assert grad[0].abs().sum() > 0 and grad[1:].abs().sum() == 0


@pytest.mark.parametrize("kind", ["l1", "bimodal_sigmoid", "bimodal_nearest"])
def test_penalty_at_lambda_zero_changes_nothing_bit_for_bit(kind):
    def run(penalty):
        g = torch.Generator().manual_seed(3)
        model = ToyModel.init([0, 1, 2, 3], 8, 3, privileged=True)
        train_toy(model, importance(8, 0.8).expand(4, 8), torch.full((4, 8), 0.2), 200, 128,
                  1e-2, g, penalty=penalty, lam=torch.zeros(4), tau=0.25)
        return model
    a, b = run("none"), run(kind)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_a_penalty_with_positive_lambda_does_change_the_weights():
    def run(lam):
        g = torch.Generator().manual_seed(3)
        model = ToyModel.init([3], 8, 3, privileged=True)
        train_toy(model, importance(8, 0.8)[None], torch.full((1, 8), 0.2), 200, 128, 1e-2, g,
                  penalty="bimodal_sigmoid", lam=torch.tensor([lam]), tau=0.25)
        return model.W
    assert not torch.equal(run(0.0), run(1.0))


# --- penalties and activations ----------------------------------------------------------------

def test_bimodal_sigmoid_is_largest_in_between_and_scale_free():
    z = torch.tensor([[[0.0], [3.0], [-3.0]]]).expand(1, 3, 1)
    per_unit = torch.sigmoid(z / (0.25 * z.pow(2).mean(1, keepdim=True).sqrt()))
    zz = torch.randn(2, 50, 7, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(penalties.bimodal_sigmoid(zz, 0.5),
                          penalties.bimodal_sigmoid(10 * zz, 0.5))
    expected = (per_unit * (1 - per_unit)).mean()
    assert penalties.bimodal_sigmoid(z, 0.25).item() == pytest.approx(expected.item())


def test_bimodal_nearest_is_zero_at_both_levels():
    a = torch.tensor([[[0.0, 2.0, 1.0, 3.0]]])
    # distances to {0, 2}: 0, 0, 1, 1 -> mean of squares 0.5
    assert penalties.bimodal_nearest(a, 2.0).item() == pytest.approx(0.5)


def test_topk_keeps_k_units_and_solu_is_normalised():
    z = torch.randn(2, 16, 10, generator=torch.Generator().manual_seed(1)) + 3
    a = hidden_activation(z, "topk", 3)
    assert ((a > 0).sum(-1) == 3).all()
    s = hidden_activation(z, "solu")
    assert torch.allclose(s.mean(-1), torch.zeros(2, 16), atol=1e-5)
    assert torch.allclose(s.var(-1, unbiased=False), torch.ones(2, 16), atol=1e-3)


def test_penalty_weight_ramps_linearly():
    lam = torch.tensor([2.0])
    assert penalties.penalty_weight(lam, 25, 100, 0.5).item() == pytest.approx(1.0)
    assert penalties.penalty_weight(lam, 80, 100, 0.5).item() == pytest.approx(2.0)
    assert penalties.penalty_weight(lam, 0, 100, 0.0).item() == pytest.approx(2.0)


# --- phase diagram ----------------------------------------------------------------------------

def test_classify_phase():
    assert classify_phase((True, False), torch.tensor([1.0, 0.0])) == "not_represented"
    assert classify_phase((False, True), torch.tensor([0.0, -1.0])) == "dedicated"
    assert classify_phase((True, True), torch.tensor([1.0, -1.0])) == "superposition"
    assert classify_phase((True, True), torch.tensor([1.0, 1.0])) == "other"
    assert classify_phase_by_norm(torch.tensor([1.0, 0.0])) == "not_represented"
    assert classify_phase_by_norm(torch.tensor([0.0, -1.0])) == "dedicated"
    assert classify_phase_by_norm(torch.tensor([1.0, -1.0])) == "superposition"


def test_phase_is_read_from_gains_not_norms():
    """An antipodal pair at low density is superposition by both rules; with its weights scaled
    by 100 (outputs overshoot by 10^4) the norm rule still says superposition, the gain says
    feature 2 is not represented (its gain is negative); with the hidden unit dead (bias -100,
    privileged basis) the norm rule again says superposition, the gain not represented."""
    gen = torch.Generator().manual_seed(0)
    imp, p = torch.ones(2, 2), torch.full((2, 2), 0.05)
    x = sample_features(p, 2048, gen)
    model = ToyModel.init([0, 0], 2, 1)
    model.W = torch.tensor([[[1.0], [-1.0]], [[100.0], [-100.0]]])
    model.b = torch.zeros(2, 2)
    dead = ToyModel.init([0, 0], 2, 1, privileged=True, hidden_bias=-100.0)
    dead.W = model.W[:1].expand(2, -1, -1).clone()
    phases = []
    for m in (model, dead):
        rep = represented(reconstruction_gain(m, x, imp, p))
        phases += [classify_phase(tuple(r.tolist()), w) for r, w in zip(rep, m.W, strict=True)]
    assert phases[:2] == ["superposition", "not_represented"]
    assert phases[2:] == ["not_represented"] * 2
    assert [classify_phase_by_norm(w) for m in (model, dead) for w in m.W] == \
        ["superposition"] * 4


def test_phase_diagram_shows_the_three_regions():
    """Dense + unimportant feature 2: dropped; dense + important: takes the dimension;
    sparse + equal importance: antipodal superposition (Elhage et al. 2022, phase diagram)."""
    df = phase_diagram(np.array([0.2, 1.0, 5.0]), np.array([0.02, 1.0]), seeds=3, steps=3000,
                       batch_size=512, lr=1e-2, seed=0).set_index(["importance", "density"])
    assert df.loc[(0.2, 1.0), "phase"] == "not_represented"
    assert df.loc[(5.0, 1.0), "phase"] == "dedicated"
    assert df.loc[(1.0, 0.02), "phase"] == "superposition"
    assert (df.phase == df.phase_norm).all()      # an unpenalised model: the rules agree


def test_penalised_phase_diagram_is_paired_and_gated_by_lambda():
    """The privileged-basis diagram: one row per (cell, lambda); its lambda = 0 rows do not
    depend on which other lambdas train beside them (paired seeds and draws, the penalty off
    at lambda = 0), and a positive lambda changes the weights."""
    kw = dict(importances=np.array([0.5, 2.0]), densities=np.array([0.05, 1.0]), seeds=2,
              steps=200, batch_size=64, lr=1e-2, seed=3, penalty="bimodal_split", tau=0.25)
    both = phase_diagram(**kw, lams=(0.0, 0.5))
    alone = phase_diagram(**kw, lams=(0.0,))
    assert len(both) == 8 and len(alone) == 4
    assert sorted(both.lam.unique().tolist()) == [0.0, 0.5]
    assert list(both.columns) == ["importance", "density", "lam", "seed", "w1", "w2", "gain1",
                                  "gain2", "loss", "phase", "phase_norm"]
    assert both.importance.dtype == np.float32 and both.density.dtype == np.float32
    zero = both[both.lam == 0].reset_index(drop=True)
    pd.testing.assert_frame_equal(zero, alone, check_exact=False, rtol=1e-5)
    pen = both[both.lam == 0.5].reset_index(drop=True)
    assert not np.allclose(pen[["w1", "w2"]].to_numpy(), zero[["w1", "w2"]].to_numpy())
    cell = (both.importance == 2.0) & (both.density == 1.0)
    assert both.loc[cell & (both.lam == 0), "loss"].item() == pytest.approx(
        both.loc[cell & (both.lam == 0), "loss"].min())
    assert set(both.phase) <= {"not_represented", "dedicated", "superposition", "other"}


# --- Colored MNIST ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mnist():
    return load_mnist5k()


@pytest.mark.parametrize("flip", [0.1, 0.2, 0.9])
def test_colored_mnist_measured_correlations_equal_configured(mnist, flip):
    X, digits = mnist
    env = colour_images(X, digits, flip, np.random.default_rng(0))
    c = correlations(env)
    tol = 3 * math.sqrt(0.25 / len(env))            # 3 binomial standard errors
    assert c["colour_label"] == pytest.approx(1 - flip, abs=tol)
    assert c["shape_label"] == pytest.approx(0.75, abs=tol)
    assert env.x.shape == (5000, 2, 14, 14)
    lit = env.x.reshape(len(env), 2, -1).sum(-1) > 0
    assert np.array_equal(lit[:, 1], env.colour == 1) and not (lit[:, 0] & lit[:, 1]).any()
    assert np.array_equal(env.shape, (digits < 5).astype(int))


def test_splits_of_each_benchmark(mnist):
    X, digits = mnist
    co = make_splits(X, digits, "cooccurrence", 0)
    assert np.array_equal(co["train"].colour, co["train"].shape)    # pairs never crossed
    assert np.array_equal(co["swapped"].colour, 1 - co["swapped"].shape)
    assert abs(correlations(co["probe"])["colour_shape"] - 0.5) < 0.05
    gray = make_splits(X, digits, "grayscale", 0)
    assert np.array_equal(gray["test"].x[:, 0], gray["test"].x[:, 1])
    irm = make_splits(X, digits, "irm", 0)
    assert correlations(irm["test"])["colour_label"] == pytest.approx(0.1, abs=0.03)
    assert len(irm["train"]) + len(irm["val"]) + len(irm["test"]) + len(irm["test_val"]) == 5000
    with pytest.raises(ValueError, match="unknown benchmark"):
        make_splits(X, digits, "waterbirds", 0)


def test_worst_group_accuracy():
    correct = np.array([1, 1, 0, 1, 0, 0])
    group = np.array([0, 0, 0, 1, 2, 2])
    assert worst_group_accuracy(correct, group) == 0.0
    assert worst_group_accuracy(correct[:4], group[:4]) == pytest.approx(2 / 3)


def test_erm_takes_the_colour_shortcut_and_grayscale_does_not(mnist):
    """IRM paper at 60k images: ERM 87.4 train / 17.1 test; grayscale 73. Far below 50% vs not."""
    X, digits = mnist
    acc = {}
    for bench in ("irm", "grayscale"):
        splits = [make_splits(X, digits, bench, s) for s in (0, 1)]
        net, theta, seed_of, _, div = train_shortcut(
            splits, [0.0], [64, 64], 300, 256, 1e-3, 1e-3, "none", "relu", 1, 0.25, 1.0,
            seeds=[0, 1])
        assert not div.diverged.any()
        acc[bench] = evaluate_shortcut(net, theta, splits, seed_of, 0.1, 0.25)
    assert (acc["irm"]["train_acc"] > 0.8).all() and (acc["irm"]["test_acc"] < 0.3).all()
    assert (acc["grayscale"]["test_acc"] > 0.6).all()
    assert (acc["irm"]["nmi_colour"] > acc["irm"]["nmi_shape"]).all()


# --- summary and config checks ----------------------------------------------------------------

def test_lambda_selection_uses_validation_only_and_pairs_by_seed():
    runs = pd.DataFrame({
        "benchmark": "irm", "variant": "l1", "seed": [0, 1, 0, 1, 0, 1],
        "lam": [0.0, 0.0, 0.1, 0.1, 1.0, 1.0],
        "val_acc": [0.80, 0.80, 0.82, 0.84, 0.70, 0.70],
        "test_worst_group_acc": [0.1, 0.2, 0.3, 0.5, 0.9, 0.9],   # test favours 1.0: ignored
        "swapped_acc": 0.5, "frac_both": 0.2})
    sel, table = lambda_tuning(runs)
    assert table.selected.tolist() == [False, True, False] and set(table.grid_size) == {3}
    assert sel.lam.tolist() == [0.1]
    paired = paired_against_unpenalised(runs, sel).set_index("metric")
    assert paired.loc["test_worst_group_acc", "difference"] == pytest.approx(0.25)
    assert paired.loc["swapped_acc", "difference"] == 0.0


def test_cross_key_checks_name_the_key():
    cfg = yaml.safe_load((ROOT / "config/tiny.yaml").read_text())["superposition"]
    check_config(cfg)
    bad = copy.deepcopy(cfg)
    bad["toy"]["main"]["m"] = bad["toy"]["main"]["n"] + 1
    with pytest.raises(ValueError, match=r"superposition\.toy\.main\.m"):
        check_config(bad)
    bad = copy.deepcopy(cfg)
    bad["shortcut"]["variants"]["topk"] = {"penalty": "none", "activation": "topk", "k": 999}
    with pytest.raises(ValueError, match=r"superposition\.shortcut\.variants\.topk\.k"):
        check_config(bad)


def test_lambdas_and_variants_of_a_seed_are_paired(mnist):
    """Same seed -> same initial weights and minibatches: a penalised variant at lambda = 0 is
    ERM, whatever else trains beside it."""
    X, digits = mnist
    splits = [make_splits(X, digits, "irm", s) for s in (0, 1)]
    args = ([64], 40, 64, 1e-3, 1e-3)
    _, erm, _, _, _ = train_shortcut(splits, [0.0], *args, "none", "relu", 1, 0.25, 1.0,
                                     seeds=[0, 1])
    _, l1, seed_of, lam_of, _ = train_shortcut(splits, [0.0, 0.3], *args, "l1", "relu", 1,
                                               0.25, 1.0, seeds=[0, 1])
    assert np.allclose(lam_of, [0.0, 0.3, 0.0, 0.3]) and seed_of.tolist() == [0, 0, 1, 1]
    assert torch.allclose(l1[[0, 2]], erm, atol=1e-6)
    assert not torch.allclose(l1[1], erm[0], atol=1e-3)


def test_make_splits_are_stratified_by_digit(mnist):
    X, digits = mnist
    from rose.sampling import check_balance, record_subsets
    with record_subsets() as rec:
        make_splits(X, digits, "irm", 3)
    assert {r.name for r in rec} >= {"superposition.shortcut.split.test",
                                     "superposition.shortcut.val.val"}
    assert all(check_balance(r)[0] for r in rec)


@pytest.mark.parametrize("kind", ["l1", "bimodal_sigmoid", "bimodal_nearest"])
def test_a_penalty_is_minimised_not_maximised(kind):
    """From the same start and data, training with lambda > 0 ends with a lower penalty than
    training without it (the loss adds + lambda R)."""
    def run(lam):
        model = ToyModel.init([0, 1], 8, 3, privileged=True)
        res = train_toy(model, importance(8, 0.8).expand(2, 8), torch.full((2, 8), 0.2), 300,
                        128, 1e-2, torch.Generator().manual_seed(3), penalty=kind,
                        lam=torch.full((2,), lam), tau=0.25, level=1.0)
        return res.penalty
    assert (run(1.0) < 0.8 * run(0.0)).all()
