"""Issue 16: metrics that cannot be fooled, a penalty that rewards switching, SoLU with a gain,
batched segments, the Pareto area. Each metric is tested on a known case and on the degenerate
ones where the old metric reported success: all units dead, weights scaled by 100, a constant
predictor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rose.superposition import geometry, penalties
from rose.superposition import monosemanticity as mono
from rose.superposition.toy_model import (
    Segment,
    ToyModel,
    importance,
    sample_features,
    train_toy,
)


def _model(W: torch.Tensor, privileged: bool = False, c: float = 0.0, b: float = 0.0,
           **kw) -> ToyModel:
    I, n, m = W.shape
    return ToyModel(W.clone(), torch.full((I, n), b), torch.full((I, m), c) if privileged
                    else None, privileged=privileged, **kw)


@pytest.fixture(scope="module")
def data():
    density = torch.full((1, 3), 0.5)
    imp = torch.tensor([[1.0, 0.7, 0.49]])
    x = sample_features(density, 4096, torch.Generator().manual_seed(0))
    return x, imp, density


# ------------------------------------------------------------- reconstruction gain


def test_gain_of_a_dedicated_feature_is_its_hand_computed_recovered_loss(data):
    x, imp, density = data
    W = torch.zeros(1, 3, 3)
    W[0, 0, 0] = W[0, 1, 1] = 1.0               # features 0 and 1 dedicated, 2 not learned
    gain = mono.reconstruction_gain(_model(W), x, imp, density)
    # full model: x'_i = x_i, no loss; W_i zeroed: x'_i = ReLU(b_i) = 0, loss I_i x_i^2 when
    # present (x_i = u) and 0 when absent: G_i = p_i I_i mean(u^2) / (I_i p_i / 3)
    u = torch.rand(x.shape[:2], generator=torch.Generator().manual_seed(0))
    expected = 3 * (u ** 2).mean()
    torch.testing.assert_close(gain[0, :2], expected.expand(2))
    assert gain[0, 2].item() == 0.0
    assert mono.represented(gain).tolist() == [[True, True, False]]


def test_both_features_of_an_antipodal_pair_are_represented():
    W = torch.tensor([[[1.0], [-1.0]]])               # 2 features in 1 dimension, a pair
    density = torch.full((1, 2), 0.05)
    x = sample_features(density, 4096, torch.Generator().manual_seed(0))
    gain = mono.reconstruction_gain(_model(W), x, torch.ones(1, 2), density)
    assert mono.represented(gain).all() and (gain < 1).all()   # interference costs a little


def test_norms_say_represented_where_the_gain_does_not(data):
    x, imp, density = data
    W = torch.eye(3)[None]
    dead = _model(W, privileged=True, c=-100.0)        # every hidden unit always off
    scaled = _model(100 * W)                           # the norm grows, the model breaks
    constant = _model(torch.zeros(1, 3, 3), b=0.5)     # x' = 0.5 whatever x is
    for model in (dead, scaled, constant):
        gain = mono.reconstruction_gain(model, x, imp, density)
        assert not mono.represented(gain).any()
    assert (geometry.feature_norms(dead.W) > 0.5).all()     # the old rule: all represented
    assert (geometry.feature_norms(scaled.W) > 0.5).all()
    assert (mono.reconstruction_gain(scaled, x, imp, density) < 0).all()   # keeping hurts


def test_gain_leaves_the_model_unchanged(data):
    x, imp, density = data
    model = _model(torch.randn(1, 3, 2, generator=torch.Generator().manual_seed(1)))
    W = model.W.clone()
    mono.reconstruction_gain(model, x, imp, density)
    assert torch.equal(model.W, W)


# ------------------------------------------------------------- scale-free measures


def test_dimensionality_over_represented_features_is_scale_free_and_nan_without_any():
    W = torch.tensor([[[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]])   # pair, dedicated
    rep = torch.tensor([[True, True, True, False]])
    d = mono.mean_dimensionality(W, rep)
    assert d.item() == pytest.approx((0.5 + 0.5 + 1.0) / 3)   # the zero of feature 3 left out
    assert mono.mean_dimensionality(100 * W, rep).item() == pytest.approx(d.item())
    assert geometry.dimensionality(W).mean().item() == pytest.approx(2 / 4)   # the old mean
    assert torch.isnan(mono.mean_dimensionality(W, torch.zeros_like(rep))).all()
    assert mono.features_per_dimension(rep, 2).item() == 1.5   # counts, no ||W|| in it


def test_polysemanticity_over_alive_units_only_and_nan_when_all_are_dead():
    W = torch.tensor([[[1.0, 0.5], [0.0, 0.5]]])      # unit 0 reads feature 0; unit 1 both
    h = torch.tensor([[[1.0, 0.0], [0.0, 0.0], [2.0, 0.0]]])   # unit 1 never fires
    alive = mono.alive_units(h)
    assert alive.tolist() == [[True, False]]
    assert mono.polysemanticity_alive(W, alive).item() == 0.0
    assert geometry.neuron_polysemanticity(W).mean().item() == pytest.approx(0.25)
    assert mono.polysemanticity_alive(100 * W, alive).item() == 0.0
    none = mono.alive_units(torch.zeros(1, 3, 2))
    assert torch.isnan(mono.polysemanticity_alive(W, none)).all()
    const = mono.alive_units(torch.full((1, 3, 2), 4.0))      # always on, constant: dead too
    assert not const.any()


def test_bimodality_of_two_level_spread_and_constant_units():
    g = torch.Generator().manual_seed(0)
    two = (torch.rand(1000, generator=g) < 0.1).float() * 3.0      # sparse, two levels
    spread = torch.linspace(0, 1, 1000)               # uniform: modes 1/4, 3/4, half near
    const = torch.full((1000,), 2.0)
    h = torch.stack([two, spread, const], -1)[None]
    alive = mono.alive_units(h)
    assert alive.tolist() == [[True, True, False]]
    near, both = mono.bimodality(h, alive)
    assert near.item() == pytest.approx((1.0 + 0.5) / 2, abs=0.01)
    assert both.item() == pytest.approx(2 / 3)
    near0, both0 = mono.bimodality(const[None, :, None], torch.tensor([[False]]))
    assert torch.isnan(near0).all() and both0.item() == 0.0


def test_frontier_area_by_hand():
    assert mono.frontier_area(np.array([0.2]), np.array([0.3])) == pytest.approx(0.8 * 0.7)
    # two points: (0.2, 0.5) and (0.5, 0.1): 0.3 * 0.5 + 0.5 * 0.9
    assert mono.frontier_area(np.array([0.5, 0.2]), np.array([0.1, 0.5])) == \
        pytest.approx(0.3 * 0.5 + 0.5 * 0.9)
    # a dominated point adds nothing; a dead model (NaN polysemanticity) dominates nothing
    assert mono.frontier_area(np.array([0.2, 0.4]), np.array([0.3, 0.6])) == \
        pytest.approx(0.56)
    assert mono.frontier_area(np.array([0.0]), np.array([np.nan])) == 0.0
    assert mono.frontier_area(np.array([1.5]), np.array([0.0])) == 0.0     # loss clipped


# ------------------------------------------------------------- the switching penalty


@pytest.mark.parametrize("kind", ["bimodal_split", "bimodal_standardised"])
def test_a_constant_unit_scores_the_maximum_and_is_a_stationary_maximum(kind):
    z = torch.full((1, 64, 2), -3.0, requires_grad=True)      # always strongly off
    pen = penalties.activation_penalty(kind, z, torch.relu(z), tau=0.25)
    assert pen.item() == pytest.approx(0.25)
    pen.sum().backward()
    assert torch.count_nonzero(z.grad) == 0                    # s(1 - s) is flat at its top
    assert penalties.bimodal_sigmoid(z.detach(), 0.25).item() == pytest.approx(
        (torch.sigmoid(torch.tensor(-4.0)) * torch.sigmoid(torch.tensor(4.0))).item())  # 0.018


@pytest.mark.parametrize("q", [0.05, 0.5])
def test_bimodal_split_scores_a_two_level_unit_the_same_at_any_on_share(q):
    """Its levels are the 2-means cluster means, so a rarely firing unit is not penalised."""
    n = 200
    z = torch.where(torch.arange(n) < int(q * n), 2.0, -1.0)[None, :, None]
    s = torch.sigmoid(torch.tensor(4.0))              # |u| = 1, tau = 0.25
    assert penalties.bimodal_split(z, 0.25).item() == pytest.approx((s * (1 - s)).item(),
                                                                    rel=1e-5)
    spread = torch.linspace(-1, 2, n)[None, :, None]
    assert penalties.bimodal_split(spread, 0.25).item() > 3 * penalties.bimodal_split(
        z, 0.25).item()
    lo, hi, on = penalties.two_level_split(z)
    assert (lo.item(), hi.item()) == (-1.0, 2.0) and on.sum().item() == int(q * n)


def test_bimodal_standardised_prefers_half_on_and_is_scale_free():
    n = 200
    half = torch.where(torch.arange(n) < n // 2, 1.0, -1.0)[None, :, None]
    sparse = torch.where(torch.arange(n) < n // 20, 1.0, -1.0)[None, :, None]
    assert penalties.bimodal_standardised(half, 0.25) < penalties.bimodal_standardised(
        sparse, 0.25)
    torch.testing.assert_close(penalties.bimodal_standardised(10 * half + 3, 0.25),
                               penalties.bimodal_standardised(half, 0.25))


@pytest.mark.parametrize("kind", ["bimodal_split", "bimodal_standardised"])
def test_minimising_the_switching_penalty_alone_makes_units_bimodal(kind):
    """From a near-constant start, gradient descent on the penalty spreads every unit onto its
    two modes (the constant is a maximum, not a minimum): both modes taken, activations near
    them."""
    g = torch.Generator().manual_seed(0)
    z = (-1.0 + 0.05 * torch.randn(1, 256, 4, generator=g)).requires_grad_()
    opt = torch.optim.SGD([z], lr=0.5)
    start = penalties.activation_penalty(kind, z, z, tau=0.25).item()
    for _ in range(300):
        opt.zero_grad()
        penalties.activation_penalty(kind, z, z, tau=0.25).sum().backward()
        opt.step()
    zd = z.detach()
    near, both = mono.bimodality(zd, mono.alive_units(zd))
    assert penalties.activation_penalty(kind, zd, zd, tau=0.25).item() < start / 3
    assert both.item() == 1.0 and near.item() > 0.9


def test_on_a_tiny_model_the_switching_penalty_makes_pre_activations_bimodal():
    """A privileged toy model (n = 6, m = 3) trained with and without bimodal_split from the
    same start (the penalty is the only difference): its hidden activations move onto their
    two modes while every unit keeps switching (both modes taken). The pre-activations move
    less: z = W x + c with x_i ~ U[0, 1] cannot be two-valued, only pushed apart."""
    n, m, steps = 6, 3, 600
    imp = importance(n, 0.8).expand(2, n).contiguous()
    density = torch.full((2, n), 0.2)
    model = ToyModel.init([0, 0], n, m, privileged=True)
    train_toy(model, imp, density, steps, 256, 3e-3, torch.Generator().manual_seed(0),
              penalty="bimodal_split", lam=torch.tensor([0.0, 3.0]), tau=0.25,
              rows=torch.tensor([0, 0]))
    x = sample_features(density, 4096, torch.Generator().manual_seed(1))
    z, h = model.hidden(x)
    near, both = mono.bimodality(h, mono.alive_units(h))
    assert near[1] > near[0] + 0.2
    assert both[1].item() == 1.0
    near_z, _ = mono.bimodality(z, mono.alive_units(z))
    assert near_z[1] > near_z[0] + 0.03


# ------------------------------------------------------------- SoLU gain, segments, bias


def test_solu_with_its_gain_can_reach_zero_and_the_gain_trains():
    model = ToyModel.init([0], 5, 3, privileged=True, activation="solu")
    x = torch.rand(1, 8, 5)
    _, h = model.hidden(x)
    assert h.pow(2).sum(-1).allclose(torch.full((1, 8), 3.0), atol=1e-2)   # LN: ||h||^2 = m
    model.g.data.zero_()
    _, h0 = model.hidden(x)
    assert torch.count_nonzero(h0) == 0 and not mono.alive_units(h0).any()
    model.g.data.fill_(1.0)
    model.forward(x)[0].sum().backward()
    assert model.g.grad is not None and model.g.grad.abs().sum() > 0
    assert ToyModel.init([0], 5, 3, privileged=True).g is None       # ReLU has no gain


def test_segments_train_exactly_as_separate_models():
    n, m, steps = 5, 3, 40
    segs = (Segment(0, 2, "relu"), Segment(2, 4, "solu"),
            Segment(4, 6, "topk", 2, "bimodal_split", 0.25))
    lam = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.3, 1.0])
    imp = importance(n, 0.8).expand(6, n).contiguous()
    density = torch.full((6, n), 0.3)
    seeds, rows = [0, 1] * 3, torch.tensor([0, 1] * 3)
    together = ToyModel.init(seeds, n, m, privileged=True, segments=segs)
    train_toy(together, imp, density, steps, 64, 1e-2, torch.Generator().manual_seed(0),
              lam=lam, rows=rows)
    for s in segs:
        alone = ToyModel.init([0, 1], n, m, privileged=True, activation=s.activation,
                              topk=s.topk)
        train_toy(alone, imp[s.rows], density[s.rows], steps, 64, 1e-2,
                  torch.Generator().manual_seed(0), penalty=s.penalty, tau=s.tau,
                  lam=lam[s.rows], rows=torch.tensor([0, 1]))
        torch.testing.assert_close(alone.W, together.W[s.rows], atol=1e-5, rtol=1e-4)


def test_negative_bias_initialisation_sets_the_hidden_bias():
    model = ToyModel.init([0, 1], 4, 2, privileged=True,
                          hidden_bias=torch.tensor([0.0, -0.2]))
    assert model.c[0].tolist() == [0.0, 0.0]
    assert model.c[1].tolist() == pytest.approx([-0.2, -0.2])
    assert torch.equal(model.W[0], ToyModel.init([0], 4, 2).W[0])    # same start otherwise


def test_segments_must_tile_the_instances():
    W = torch.zeros(3, 4, 2)
    with pytest.raises(ValueError, match="tile"):
        ToyModel(W, torch.zeros(3, 4), torch.zeros(3, 2), privileged=True,
                 segments=(Segment(0, 1), Segment(2, 3)))


def test_frontier_areas_per_seed_by_hand_and_the_grid_of_each_variant():
    import pandas as pd

    from rose.superposition import experiments, frontier

    toy = pd.DataFrame({
        "variant": ["none", "none", "pen", "pen", "pen", "pen"],
        "sparsity": [0.9] * 6, "seed": [0, 1, 0, 0, 1, 1], "lam": [0, 0, 0.1, 1, 0.1, 1],
        "relative_loss": [0.2, 0.2, 0.5, 0.2, 0.5, 0.9],
        "polysemanticity": [0.5, 0.5, 0.1, 0.5, np.nan, 0.2]})
    a = frontier.per_seed(toy).set_index(["arm", "seed"]).frontier_area
    assert a["none", 0] == pytest.approx(0.8 * 0.5)
    assert a["pen", 0] == pytest.approx(0.3 * 0.5 + 0.5 * 0.9)
    assert a["pen", 1] == pytest.approx(0.1 * 0.8)          # the dead (NaN) point adds nothing
    # polysemanticity at matched loss: pen's lambda with mean loss closest to 1.1 x none's
    # (0.22): lambda 0.1 (mean 0.5) before lambda 1 (mean 0.55), whatever their polysemanticity
    m = frontier.matched(toy).set_index("variant")
    assert m.loc["pen", "lam"] == 0.1 and m.loc["pen", "target_loss"] == pytest.approx(0.22)
    b = frontier.per_seed(toy).set_index(["arm", "seed"]).poly_at_matched_loss
    assert b["pen", 0] == 0.1 and b["none", 0] == 0.5
    assert b["pen", 1] == 1.0                          # the dead seed counts as 1, the worst
    params = {"variants": {"none": {"penalty": "none"}, "pen": {"penalty": "l1"}},
              "lams": [0.1, 1.0], "sparsities": [0.9], "seeds": 2}
    grid = experiments.penalty_grid(params)
    assert sorted(grid[grid.variant == "pen"].lam.unique()) == [0.1, 1.0]
    assert grid[grid.variant == "none"].lam.tolist() == [0.0, 0.0]


def test_a_subset_of_instances_computes_what_the_whole_model_computes_for_them():
    segs = (Segment(0, 2, "relu"), Segment(2, 5, "solu"))
    model = ToyModel.init([0, 1, 2, 3, 4], 6, 3, privileged=True, segments=segs)
    x = torch.rand(5, 7, 6, generator=torch.Generator().manual_seed(0))
    part = model.subset(1, 4)
    assert [(s.start, s.stop, s.activation) for s in part.segments] == [(0, 1, "relu"),
                                                                         (1, 3, "solu")]
    with torch.no_grad():
        torch.testing.assert_close(part.forward(x[1:4])[0], model.forward(x)[0][1:4])


def test_an_erm_only_benchmark_cannot_carry_a_primary_contrast():
    import copy

    import yaml
    from snakemake.utils import validate

    from rose.superposition.experiments import check_config

    from .conftest import ROOT

    cfg = yaml.safe_load((ROOT / "config/quick.yaml").read_text())
    validate(cfg, str(ROOT / "workflow/schemas/config.schema.yaml"))
    block = cfg["superposition"]
    check_config(block)
    bad = copy.deepcopy(block)
    bad["primary"][2]["benchmark"] = "grayscale"
    with pytest.raises(ValueError, match=r"superposition\.primary\[2\]\.benchmark.*erm only"):
        check_config(bad)
    bad = copy.deepcopy(block)
    bad["shortcut"]["erm_only"] = ["waterbirds"]
    with pytest.raises(ValueError, match=r"superposition\.shortcut\.erm_only"):
        check_config(bad)


@pytest.mark.parametrize("kind", ["bimodal_split", "bimodal_standardised"])
def test_a_dead_unit_with_two_negative_pre_activation_levels_scores_the_maximum(kind):
    z = torch.where(torch.arange(64) < 20, -3.0, -1.0)[None, :, None]   # always off after ReLU
    assert penalties.activation_penalty(kind, z, torch.relu(z), tau=0.25).item() == \
        pytest.approx(0.25)
    assert not mono.alive_units(torch.relu(z)).any()


def test_a_unit_firing_on_one_input_in_thousands_is_not_alive():
    h = torch.zeros(1, 4096, 2)
    h[0, 0, 0] = 1.0                      # unit 0: once
    h[0, :100, 1] = 1.0                   # unit 1: 2.4% of the inputs
    assert mono.alive_units(h).tolist() == [[False, True]]


def test_every_metric_is_per_instance_when_instances_differ():
    """Two instances measured together equal each measured alone (found by `make mutation`:
    a reduction over all instances passed the one-instance tests)."""
    g = torch.Generator().manual_seed(3)
    W = torch.randn(2, 5, 3, generator=g)
    rep = torch.tensor([[True, False, True, True, False], [True, False, False, False, False]])
    h = torch.relu(torch.randn(2, 400, 3, generator=g))
    h[0, :, 2] = 0.0                                     # instance 0: unit 2 dead
    h[1, :, :2] = 7.0                                    # instance 1: units 0, 1 constant
    alive = mono.alive_units(h)
    assert alive.tolist() == [[True, True, False], [False, False, True]]
    together = (mono.mean_dimensionality(W, rep), mono.features_per_dimension(rep, 3),
                mono.polysemanticity_alive(W, alive), *mono.bimodality(h, alive))
    for i in range(2):
        alone = (mono.mean_dimensionality(W[i:i + 1], rep[i:i + 1]),
                 mono.features_per_dimension(rep[i:i + 1], 3),
                 mono.polysemanticity_alive(W[i:i + 1], alive[i:i + 1]),
                 *mono.bimodality(h[i:i + 1], alive[i:i + 1]))
        for t, a in zip(together, alone, strict=True):
            torch.testing.assert_close(t[i:i + 1], a)
    # one represented feature / one alive unit: the mean is that one value, not NaN or half
    assert mono.mean_dimensionality(W[1:], rep[1:]).item() == pytest.approx(
        geometry.dimensionality(W[1:])[0, 0].item())
    assert mono.polysemanticity_alive(W[1:], alive[1:]).item() == pytest.approx(
        geometry.neuron_polysemanticity(W[1:])[0, 2].item())


def test_thresholds_at_their_boundaries():
    assert mono.represented(torch.tensor([[0.25, 0.2500001]])).tolist() == [[False, True]]
    h = torch.zeros(1, 1000, 1)
    h[0, :1, 0] = 1.0                                    # leaves its minimum on exactly 0.1%
    assert mono.alive_units(h).item()
    # two levels with exactly 0.5% of the inputs on: both modes taken, at the boundary
    h = torch.zeros(1, 1000, 1)
    h[0, :5, 0] = 1.0
    assert mono.bimodality(h, mono.alive_units(h))[1].item() == 1.0
    h = torch.ones(1, 1000, 1)
    h[0, :5, 0] = 0.0                                    # ... and exactly 0.5% off
    assert mono.bimodality(h, mono.alive_units(h))[1].item() == 1.0
    # near a mode: a value exactly a quarter of the gap from its mode counts
    h = torch.tensor([0.0] * 50 + [1.0] * 49 + [0.75])[None, :, None]
    lo, hi, on = penalties.two_level_split(h)
    near, _ = mono.bimodality(h, mono.alive_units(h))
    centre = torch.where(on, hi, lo)
    want = ((h - centre).abs() <= 0.25 * (hi - lo)).float().mean()
    assert near.item() == pytest.approx(want.item())


def test_frontier_area_clips_and_counts_undefined_points_as_the_worst():
    # negative loss and polysemanticity above 1 are clipped to the unit square
    assert mono.frontier_area(np.array([-0.5]), np.array([0.5])) == pytest.approx(0.5)
    assert mono.frontier_area(np.array([0.5]), np.array([-1.0])) == pytest.approx(0.5)
    assert mono.frontier_area(np.array([0.5, 0.2]), np.array([0.3, 2.0])) == pytest.approx(
        0.5 * 0.7)
    assert mono.frontier_area(np.array([np.nan, 0.5]), np.array([0.0, 0.4])) == \
        pytest.approx(0.5 * 0.6)                         # a NaN loss is a loss of 1: no area
    assert mono.frontier_area([0.2, 0.2], [0.6, 0.3]) == pytest.approx(0.8 * 0.7)   # ties
