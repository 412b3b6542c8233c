"""Direction 3a: benchmarks with known groups, acquisition functions on hand-built pools, ALVIN's
anchors, the analogy rule, RHO-LOSS / GroupDRO / JTT closed forms, the batched learner and the
active-learning loop (equal starts, pool exhaustion), config checks."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml
from snakemake.utils import validate

from rose.active import alvin, analogy, rho_loss
from rose.active.acquisitions import (
    ACQUISITIONS,
    AcquisitionContext,
    acquire,
    badge_embedding,
    bald_scores,
    entropy_scores,
    margin_scores,
)
from rose.active.curriculum import curriculum
from rose.active.experiments import check_config, pool_size
from rose.active.group_robust import GroupDRO, jtt_weights
from rose.active.learner import (
    TrainSpec,
    group_metrics,
    initial_model,
    predict,
    stack,
    train_instances,
)
from rose.active.loop import active_learning
from rose.active.summary import per_run
from rose.data.group_benchmarks import (
    GroupData,
    make_group_splits,
    measured_alignment,
    sample_attr,
    split_sizes,
    without_shortcut,
)

from .conftest import ROOT

ALIGN = {"cmnist": ([0.8, 0.9], 0.1), "cmnist10": ([0.9, 0.9], 0.1),
         "dominoes": ([0.95, 0.95], 0.5)}
MODEL = {"hidden": [32], "dropout": 0.2, "lr": 1e-3, "weight_decay": 1e-4, "batch_size": 64}


@pytest.fixture(scope="module")
def mnist():
    from rose.data.bundled import load_mnist5k

    return load_mnist5k()


@pytest.fixture(scope="module")
def cmnist_splits(mnist):
    return [make_group_splits("cmnist", *mnist, seed, *ALIGN["cmnist"]) for seed in (0, 1)]


def active_block() -> dict:
    cfg = yaml.safe_load((ROOT / "config/quick.yaml").read_text())
    validate(cfg, str(ROOT / "workflow/schemas/config.schema.yaml"))
    return cfg["active"]


# ---------------------------------------------------------------- benchmarks with known groups

def _within_3se(measured: float, p: float, n: int) -> bool:
    return abs(measured - p) <= 3 * np.sqrt(p * (1 - p) / n) + 1e-9


@pytest.mark.parametrize("benchmark", list(ALIGN))
def test_measured_alignment_equals_configured(mnist, benchmark):
    train_align, test_align = ALIGN[benchmark]
    sp = make_group_splits(benchmark, *mnist, 3, train_align, test_align)
    pool = sp["pool"]
    for part, a in zip(np.array_split(np.arange(len(pool)), 2), train_align, strict=True):
        assert _within_3se(measured_alignment(pool.subset(part)), a, len(part))
    assert _within_3se(measured_alignment(sp["test"]), test_align, len(sp["test"]))
    bal = sp["holdout_interventional"]
    assert _within_3se(measured_alignment(bal), 1 / bal.n_attrs, len(bal))
    # the interventional holdout is the correlated one's images and labels with new attributes
    hc = sp["holdout_correlated"]
    np.testing.assert_array_equal(bal.content, hc.content)
    np.testing.assert_array_equal(bal.y, hc.y)
    # the resampled one: the correlated holdout's own points (same attributes), every group
    # present in it equally likely
    rs = sp["holdout_resampled"]
    assert len(rs) == len(hc)
    pairs_hc = {(c.tobytes(), a) for c, a in zip(hc.content, hc.attr, strict=True)}
    assert all((c.tobytes(), a) in pairs_hc for c, a in zip(rs.content, rs.attr, strict=True))
    present = np.unique(hc.group)
    share = np.array([(rs.group == g).mean() for g in present])
    assert set(np.unique(rs.group)) <= set(present)
    assert np.all(np.abs(share - 1 / len(present)) < 4 * np.sqrt(share.mean() / len(rs)))
    n = {"cmnist": 5000, "cmnist10": 5000, "dominoes": 4000}[benchmark]
    sizes = split_sizes(n, 0.2, 0.1, 0.1)
    assert len(pool) == sizes["pool"] and len(sp["test"]) == sizes["test"]


def test_cmnist_is_the_irm_construction(mnist):
    images, digits = mnist
    sp = make_group_splits("cmnist", images, digits, 0, [0.8, 0.9], 0.1)
    pool = sp["pool"]
    x = pool.x
    # the digit sits in exactly the attribute's channel, the other channel is zero
    on = x.reshape(len(x), 2, -1).sum(-1) > 0
    np.testing.assert_array_equal(on.argmax(1), pool.attr)
    assert not (on.all(1)).any()
    np.testing.assert_allclose(x.sum(1), pool.content)
    assert pool.x.shape[1:] == (2, 14, 14)


def test_cmnist_label_noise_is_a_quarter(mnist):
    images, digits = mnist
    rng = np.random.default_rng(0)
    from rose.data.group_benchmarks import _content_and_label

    _, y, _, _ = _content_and_label("cmnist", images, digits, rng)
    assert _within_3se(float((y == (digits < 5)).mean()), 0.75, len(y))


def test_sample_attr_for_two_attributes_is_the_xor_rule():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 20000)
    a = sample_attr(y, 2, 0.8, rng)
    assert set(np.unique(a)) == {0, 1}
    assert _within_3se(float((a == y).mean()), 0.8, len(y))
    a10 = sample_attr(np.full(20000, 3), 10, 0.0, rng)
    assert 3 not in a10 and len(np.unique(a10)) == 9     # uniform over the other nine


def test_without_shortcut_hides_the_attribute(mnist):
    for benchmark, (tr, te) in ALIGN.items():
        sp = make_group_splits(benchmark, *mnist, 0, tr, te)
        clean = without_shortcut(sp["test"])
        # two points with the same content but different attributes look identical
        other = GroupData(sp["test"].x, sp["test"].y, (sp["test"].attr + 1) % sp["test"].n_attrs,
                          sp["test"].content, sp["test"].n_classes, sp["test"].n_attrs)
        np.testing.assert_array_equal(clean.x, without_shortcut(other).x)


# ----------------------------------------------------------------- acquisitions, hand-built

def _ctx(probs, emb=None, labelled=(), group=None, n_groups=2, **kw) -> AcquisitionContext:
    n = len(probs)
    labelled = np.asarray(labelled, dtype=np.int64)
    return AcquisitionContext(
        probs=np.asarray(probs, dtype=float),
        emb=np.zeros((n, 2)) if emb is None else np.asarray(emb, dtype=float),
        labelled=labelled, candidates=np.setdiff1d(np.arange(n), labelled),
        y=np.zeros(n, dtype=np.int64), group=np.zeros(n, dtype=np.int64) if group is None
        else np.asarray(group), n_groups=n_groups, rng=np.random.default_rng(0), **kw)


def test_uncertainty_rules_pick_the_most_uncertain_unlabelled_point():
    p = [[0.99, 0.01], [0.6, 0.4], [0.5, 0.5], [0.8, 0.2]]
    ctx = _ctx(p, labelled=[2])        # the most uncertain point is already labelled
    for name in ("entropy", "margin", "least_confidence"):
        assert list(acquire(name, ctx, 1)) == [1]
        assert list(acquire(name, ctx, 2)) == [1, 3]
    assert entropy_scores(np.array([[0.5, 0.5]]))[0] == pytest.approx(np.log(2))
    assert margin_scores(np.array([[0.7, 0.1, 0.2]]))[0] == pytest.approx(0.5)


def test_bald_is_zero_when_samples_agree_and_matches_hand_computation():
    agree = np.tile(np.array([[[0.5, 0.5]]]), (4, 1, 1))
    assert bald_scores(agree)[0] == pytest.approx(0.0, abs=1e-9)
    disagree = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])      # confident, opposite samples
    assert bald_scores(disagree)[0] == pytest.approx(np.log(2), abs=1e-6)
    mc = np.stack([np.array([[0.5, 0.5], [0.9, 0.1]]), np.array([[0.5, 0.5], [0.1, 0.9]])])
    ctx = _ctx(mc.mean(0), mc_probs=mc)
    assert list(acquire("bald", ctx, 1)) == [1]   # equal mean entropy, only point 1 disagrees


def test_coreset_picks_the_farthest_point_then_covers():
    emb = np.array([[0, 0], [1, 0], [10, 0], [0, 5], [9, 0]], dtype=float)
    ctx = _ctx(np.full((5, 2), 0.5), emb=emb, labelled=[0])
    assert list(acquire("coreset", ctx, 1)) == [2]
    assert list(acquire("coreset", ctx, 2)) == [2, 3]


def test_badge_embedding_is_the_last_layer_gradient():
    torch.manual_seed(0)
    h = torch.randn(6, 4)
    W = torch.randn(3, 4, requires_grad=True)
    b = torch.zeros(3, requires_grad=True)
    logits = h @ W.T + b
    p = torch.softmax(logits, -1)
    yhat = p.argmax(-1)
    grads = []
    for i in range(6):
        (g,) = torch.autograd.grad(F.cross_entropy(logits[i:i + 1], yhat[i:i + 1]), W,
                                   retain_graph=True)
        grads.append(g.reshape(-1))
    np.testing.assert_allclose(badge_embedding(p.detach().numpy(), h.numpy()),
                               torch.stack(grads).numpy(), atol=1e-6)


def test_badge_returns_distinct_unlabelled_points():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(3), 40)
    ctx = _ctx(p, emb=rng.normal(size=(40, 5)), labelled=[0, 1, 2])
    chosen = acquire("badge", ctx, 10)
    assert len(set(chosen)) == 10 and not set(chosen) & {0, 1, 2}


def test_oracle_labels_the_rarest_group_first():
    group = np.array([0, 0, 0, 1, 2, 2, 3, 3, 3, 3, 1, 1])
    ctx = _ctx(np.full((12, 2), 0.5), labelled=[0, 1, 4, 6, 7], group=group, n_groups=4)
    # labelled counts: g0 2, g1 0, g2 1, g3 2 -> g1 first, then g1/g2 tie broken by index
    first = acquire("oracle", ctx, 1)
    assert group[first[0]] == 1
    got = acquire("oracle", _ctx(np.full((12, 2), 0.5), labelled=[0, 1, 4, 6, 7],
                                 group=group, n_groups=4), 3)
    assert sorted(group[got]) == [1, 1, 2]


@pytest.mark.parametrize("name", list(ACQUISITIONS))
def test_every_acquisition_returns_k_distinct_candidates(name):
    rng = np.random.default_rng(2)
    n = 60
    p = rng.dirichlet(np.ones(2), n)
    ctx = _ctx(p, emb=rng.normal(size=(n, 3)), labelled=np.arange(12),
               group=rng.integers(0, 4, n), n_groups=4,
               mc_probs=rng.dirichlet(np.ones(2), (5, n)),
               minority=np.arange(12) % 3 == 0, head=(rng.normal(size=(3, 2)), np.zeros(2)))
    ctx.y = rng.integers(0, 2, n)
    chosen = acquire(name, ctx, 7)
    assert len(set(chosen)) == 7 and set(chosen) <= set(range(12, n))
    assert len(acquire(name, _ctx(p, emb=ctx.emb, labelled=np.arange(n - 3),
                                  group=ctx.group, n_groups=4, mc_probs=ctx.mc_probs,
                                  head=ctx.head,
                                  minority=np.arange(n - 3) % 3 == 0), 7)) == 3


# ---------------------------------------------------------------------- ALVIN and analogy

def test_minority_split_from_training_dynamics():
    correct = np.array([[0, 1, 1, 1], [0, 0, 1, 1], [0, 0, 0, 1], [1, 0, 1, 1],
                        [0, 1, 1, 0], [0, 0, 0, 0]], dtype=bool)
    # learned early; learned at half-time; learned late; forgotten once; wrong at the end;
    # never learned
    np.testing.assert_array_equal(alvin.minority_split(correct, threshold=0.5),
                                  [False, False, True, True, True, True])
    np.testing.assert_array_equal(alvin.minority_split(correct, threshold=0.6),
                                  [False, True, True, True, True, True])


def test_alvin_anchors_lie_on_the_segments_between_their_two_examples():
    rng = np.random.default_rng(0)
    hm, hj = rng.normal(size=(4, 6)), rng.normal(size=(7, 6))
    a, lam, i, j = alvin.anchors(hm, hj, 5, 2.0, rng)
    assert a.shape == (20, 6) and ((lam >= 0) & (lam <= 1)).all()
    np.testing.assert_allclose(a, lam[:, None] * hm[i] + (1 - lam[:, None]) * hj[j])
    # on the segment: distances add up
    d = np.linalg.norm(a - hm[i], axis=1) + np.linalg.norm(a - hj[j], axis=1)
    np.testing.assert_allclose(d, np.linalg.norm(hm[i] - hj[j], axis=1))


def test_nearest_unique_takes_each_targets_nearest_point_once():
    emb = np.array([[0.0, 0], [1, 0], [5, 0], [5.2, 0], [100, 0]])
    cand = np.arange(5)
    got = alvin.nearest_unique(np.array([[5.1, 0.0], [0.2, 0.0]]), emb, cand, 3,
                               np.random.default_rng(0))
    assert set(got[:2]) == {0, 3} or set(got[:2]) == {0, 2}
    assert set(got) <= {0, 1, 2, 3} and len(set(got)) == 3


def _four_group_pool():
    """2D representation = (shape, colour); class c's majority colour is c. Labelled: class 0 in
    both colours (minority 0-with-colour-1 found), class 1 only in its majority colour. The
    unlabelled pool has all four groups; group (1, colour 0) has no labels at all."""
    rng = np.random.default_rng(0)
    centres = {(0, 0): (0, 0), (0, 1): (0, 1), (1, 1): (1, 1), (1, 0): (1, 0)}
    emb, y, attr = [], [], []
    for (c, a), mu in centres.items():
        emb.append(np.asarray(mu) * 10 + rng.normal(0, 0.3, (30, 2)))
        y += [c] * 30
        attr += [a] * 30
    emb, y, attr = np.concatenate(emb), np.array(y), np.array(attr)
    labelled = np.concatenate([np.arange(0, 10), np.arange(30, 35), np.arange(60, 70)])
    minority = np.isin(labelled, np.arange(30, 35))          # class 0 in colour 1
    return emb, y, attr, labelled, minority


def test_analogy_labels_the_group_nobody_labelled_yet():
    emb, y, attr, labelled, minority = _four_group_pool()
    ctx = AcquisitionContext(probs=np.full((len(y), 2), 0.5), emb=emb, labelled=labelled,
                             candidates=np.setdiff1d(np.arange(len(y)), labelled), y=y,
                             group=2 * y + attr, n_groups=4, rng=np.random.default_rng(0),
                             minority=minority)
    chosen = analogy.acquire(ctx, 10)
    # q = r0 (class 1, colour 1) + mean(class 0, colour 0) - (class 0, colour 1) = (1, 0)
    assert ((y[chosen] == 1) & (attr[chosen] == 0)).all()
    assert ctx.fallback == 0
    # ALVIN interpolates within class 0 (between its two colours): never the missing group
    ctx.rng = np.random.default_rng(0)
    got = alvin.acquire(ctx, 10)
    assert (y[got] == 0).all()


def test_rules_without_targets_fill_at_random_and_count_it():
    emb, y, attr, labelled, _ = _four_group_pool()
    ctx = AcquisitionContext(probs=np.full((len(y), 2), 0.5), emb=emb, labelled=labelled,
                             candidates=np.setdiff1d(np.arange(len(y)), labelled), y=y,
                             group=2 * y + attr, n_groups=4, rng=np.random.default_rng(0),
                             minority=np.zeros(len(labelled), dtype=bool))
    assert len(analogy.acquire(ctx, 6)) == 6 and ctx.fallback == 6


# ------------------------------------------------------------ RHO-LOSS, GroupDRO, JTT

def test_reducible_loss_selection_takes_the_largest_reducible_losses():
    loss = torch.tensor([[2.0, 1.0, 3.0, 0.5]])
    il = torch.tensor([[1.9, 0.1, 0.5, 0.4]])
    # reducible: 0.1, 0.9, 2.5, 0.1
    assert rho_loss.reducible_loss_selection(loss, il, 2)[0].tolist() == [2, 1]
    assert rho_loss.reducible_loss_selection(loss, torch.zeros_like(il), 2)[0].tolist() == [2, 0]


def test_groupdro_weights_follow_the_exponentiated_group_losses():
    groups = torch.tensor([[0, 0, 1, 2]])
    dro = GroupDRO(groups, torch.zeros(1, 1, dtype=torch.long), n_groups=3, eta=0.5)
    loss = torch.tensor([[1.0, 3.0, 4.0, 0.5]])
    out = dro(loss, torch.tensor([[0, 1, 2, 3]]))
    lg = torch.tensor([2.0, 4.0, 0.5])
    q = torch.exp(0.5 * lg) / torch.exp(0.5 * lg).sum()
    torch.testing.assert_close(dro.q[0], q)
    torch.testing.assert_close(out[0], (q * lg).sum())
    # an absent group keeps its weight before renormalising
    dro2 = GroupDRO(groups, torch.zeros(1, 1, dtype=torch.long), n_groups=3, eta=0.5)
    dro2(torch.tensor([[1.0, 1.0]]), torch.tensor([[0, 1]]))
    w = torch.tensor([np.exp(0.5), 1.0, 1.0])
    torch.testing.assert_close(dro2.q[0], (w / w.sum()).float())


def test_jtt_upsamples_the_error_set():
    w = jtt_weights(torch.tensor([[True, False, True]]), 20)
    assert w.tolist() == [[1.0, 20.0, 1.0]]


@pytest.mark.sanity
def test_erm_takes_the_colour_shortcut_and_a_model_without_it_does_not(cmnist_splits):
    cfg = {"steps": 300, "candidates": 10, "il_steps": 100, "groupdro": {"eta": 0.01},
           "jtt": {"first_steps": 50, "upsample": 20}}
    df, _ = curriculum(cmnist_splits, ["erm", "erm_no_shortcut"], [0, 1], cfg, MODEL)
    df = df[df.selection == "train_domain_val"]
    erm = df[df.method == "erm"]
    clean = df[df.method == "erm_no_shortcut"]
    assert (erm.train_acc > 0.8).all() and (erm.test_acc < 0.3).all()   # IRM paper: 17%
    assert (clean.test_acc > 0.6).all()                                   # IRM paper: 73%


def test_group_balanced_resampling_probabilities_by_hand():
    from rose.data.group_benchmarks import group_balanced_resample

    group = np.array([0, 0, 0, 1, 5, 5])          # group 1: one point; group 5: two
    draws = group_balanced_resample(group, 60000, np.random.default_rng(0))
    freq = np.bincount(draws, minlength=6) / 60000
    # every present group 1/3; within a group, its points equally: 1/9, 1/3, 1/6
    np.testing.assert_allclose(freq, [1 / 9, 1 / 9, 1 / 9, 1 / 3, 1 / 6, 1 / 6], atol=0.01)


def test_pool_environments_are_the_two_halves_and_irm_vrex_train(cmnist_splits):
    pool = cmnist_splits[0]["pool"]
    n0 = len(pool) // 2
    assert pool.env.tolist() == [0] * n0 + [1] * (len(pool) - n0)
    assert measured_alignment(pool.subset(np.arange(n0))) < measured_alignment(
        pool.subset(np.arange(n0, len(pool))))            # env 0 aligned 0.8, env 1 0.9
    cfg = {"steps": 5, "candidates": 2, "il_steps": 2, "irm": {"lam": 10.0},
           "vrex": {"beta": 10.0}}
    df, _ = curriculum(cmnist_splits, ["erm", "irm", "vrex"], [0, 1], cfg, MODEL)
    assert set(df.method) == {"erm", "irm", "vrex"} and (df.status == "ok").all()
    assert df.groupby("method").test_acc.mean().nunique() == 3   # the objectives differ


def test_rho_loss_counts_its_holdout_labels_in_the_budget(cmnist_splits):
    cfg = {"steps": 3, "candidates": 2, "il_steps": 2, "groupdro": {"eta": 0.01},
           "jtt": {"first_steps": 2, "upsample": 2}}
    df, _ = curriculum(cmnist_splits, ["erm", "rho_correlated", "rho_resampled",
                                       "rho_interventional"], [0, 1], cfg, MODEL)
    n_pool = len(cmnist_splits[0]["pool"])
    labels = df.groupby("method").labels.first()
    assert labels["erm"] == n_pool
    n_hold = len(cmnist_splits[0]["holdout_correlated"])
    assert labels["rho_correlated"] == labels["rho_interventional"] == n_pool + n_hold
    distinct = np.mean([len(np.unique(s["holdout_resampled"].content.reshape(n_hold, -1),
                                      axis=0)) for s in cmnist_splits])
    assert labels["rho_resampled"] == n_pool + int(distinct) < n_pool + n_hold


# --------------------------------------------------------------- learner and loop

def test_instances_of_a_seed_with_the_same_labels_train_identically(cmnist_splits):
    """Paired by seed: same initial weights, minibatches and dropout masks. Instances 0 and 2
    (seed 0, same labelled rows) end equal; instance 1 (seed 1) does not."""
    X, Y = stack(cmnist_splits, "pool")
    seed_of = np.array([0, 1, 0])
    spec = TrainSpec([16], 2, 40, 32, 1e-2, 0.0, 0.3)
    start = initial_model(X.shape[-1], spec, [10, 11, 10], "cpu")
    assert torch.equal(start.theta[0], start.theta[2])
    index = torch.arange(100).expand(3, -1)
    res = train_instances(X, Y, seed_of, index, spec, torch.Generator().manual_seed(0),
                          init=start)
    th = res.model.theta
    assert torch.allclose(th[0], th[2], atol=1e-6) and not torch.allclose(th[0], th[1])
    other = index.clone()
    other[2] = torch.arange(100, 200)
    res2 = train_instances(X, Y, seed_of, other, spec, torch.Generator().manual_seed(0),
                           init=start)
    assert torch.equal(res2.model.theta[0], th[0])        # instances never interact
    assert not torch.allclose(res2.model.theta[2], th[2])


def test_validation_selection_never_ends_below_the_last_model(cmnist_splits):
    X, Y = stack(cmnist_splits, "pool")
    Xv, Yv = stack(cmnist_splits, "val")
    seed_of = np.array([0, 1])
    index = torch.arange(200).expand(2, -1)
    accs = {}
    for rule in ("last", "train_domain_val"):
        spec = TrainSpec([16], 2, 150, 32, 1e-2, 0.0, 0.0, rule, 10)
        res = train_instances(X, Y, seed_of, index, spec, torch.Generator().manual_seed(0),
                              init=initial_model(X.shape[-1], spec, [0, 1], "cpu"),
                              val=(Xv, Yv))
        accs[rule] = (predict(res.model, Xv, seed_of).argmax(-1) == Yv).float().mean(1)
    assert (accs["train_domain_val"] >= accs["last"]).all()


def test_group_metrics_by_hand():
    data = GroupData(np.zeros((6, 1, 1, 1), np.float32), np.array([0, 0, 0, 1, 1, 1]),
                     np.array([0, 0, 1, 1, 1, 0]), np.zeros((6, 1, 1)), 2, 2)
    pred = np.array([0, 0, 1, 1, 0, 0])
    m = group_metrics(pred, data)
    # groups: (0,0) 2/2, (0,1) 0/1, (1,1) 1/2, (1,0) 0/1
    assert m["acc"] == pytest.approx(3 / 6)
    assert m["worst_group_acc"] == 0.0
    assert m["mean_group_acc"] == pytest.approx((1 + 0 + 0.5 + 0) / 4)
    assert m["conflicting_acc"] == 0.0 and m["aligned_acc"] == pytest.approx(3 / 4)
    assert group_metrics(pred, data, min_group_size=2)["worst_group_acc"] == 0.5


def _loop(**kw):
    loop = {"initial": 10, "round_size": 10, "rounds": 2, "steps": 30, "retrain": "scratch",
            "selection": "last", "eval_every": 10, "mc_samples": 3, "min_group_size": 1,
            "minority_threshold": 0.7}
    loop.update(kw)
    return loop


def test_loop_starts_every_acquisition_from_the_same_labels(cmnist_splits):
    rounds, comp = active_learning(cmnist_splits, ["random", "entropy", "alvin"], [0, 1],
                                   _loop(), MODEL, {})
    assert len(rounds) == 3 * 2 * 3
    first = comp[comp["round"] == 0].pivot_table(index=["seed", "group"],
                                                 columns="acquisition", values="count")
    assert (first.nunique(axis=1) == 1).all()
    assert rounds.groupby("round").n_labels.unique().map(len).eq(1).all()
    r0 = rounds[rounds["round"] == 0]          # same labels, weights, batches: same numbers
    assert (r0.groupby("seed")[["test_acc", "val_acc"]].nunique() == 1).all().all()
    assert set(rounds.selection) == {"last"} and not rounds.pool_exhausted.any()


def test_the_oracle_split_ablation_gets_the_true_minority(cmnist_splits):
    """analogy_oracle_split: the loop hands the analogy rule the true minority of the labelled
    points (from the groups: an upper bound), not the split from training dynamics."""
    rounds, comp = active_learning(cmnist_splits, ["analogy_oracle_split"], [0, 1], _loop(),
                                   MODEL, {})
    truth = comp[~comp.aligned.astype(bool)].groupby(["seed", "round"])["count"].sum()
    got = rounds[rounds.minority_found >= 0].set_index(["seed", "round"]).minority_found
    assert len(got) == 2 * 2                      # every round that acquires, both seeds
    assert (got == truth.reindex(got.index)).all()


def test_pool_exhausted_mid_run_ends_cleanly_with_results(cmnist_splits):
    small = [{**s, "pool": s["pool"].subset(np.arange(25))} for s in cmnist_splits]
    rounds, _ = active_learning(small, ["random", "coreset"], [0, 1],
                                _loop(rounds=5, round_size=10), MODEL, {})
    assert sorted(rounds.n_labels.unique()) == [10, 20, 25]
    last = rounds[rounds["round"] == rounds["round"].max()]
    assert last.pool_exhausted.all() and last.test_acc.notna().all()


def test_summary_pairs_each_acquisition_with_random_on_the_same_seed():
    rows = []
    for seed in range(4):
        for rnd in range(3):
            for acq, bonus in (("random", 0.0), ("oracle", 0.1)):
                rows.append({"benchmark": "b", "acquisition": acq, "seed": seed, "round": rnd,
                             "test_worst_group_acc": 0.1 * rnd + bonus + 0.01 * seed,
                             "test_conflicting_acc": 0.5, "test_acc": 0.5,
                             "labelled_conflicting_frac": 0.2})
    runs = per_run(pd.DataFrame(rows))
    assert runs.set_index(["acquisition", "seed"]).loc[("random", 0),
                                                       "auc_test_worst_group_acc"] == \
        pytest.approx(0.1)
    from rose.stats import paired_against

    paired = paired_against(runs, "acquisition", "random", ["test_worst_group_acc"])
    row = paired.iloc[0]
    assert row.acquisition == "oracle" and row.difference == pytest.approx(0.1)
    assert row.n == 4


# ---------------------------------------------------------------------- config checks

def test_quick_config_passes_the_cross_key_checks():
    check_config(active_block())


def test_budget_larger_than_the_pool_is_rejected_naming_the_key():
    block = active_block()
    bad = copy.deepcopy(block)
    bad["loop"]["rounds"] = 50      # 2,550 labels: fits cmnist's pool, not dominoes'
    with pytest.raises(ValueError, match=r"active\.loop.*exceeds the 2400-point pool of "
                                         r"benchmark dominoes"):
        check_config(bad)
    assert pool_size(block, "dominoes") == 2400


def test_bald_without_dropout_is_rejected():
    bad = copy.deepcopy(active_block())
    bad["model"]["dropout"] = 0.0
    with pytest.raises(ValueError, match=r"active\.model\.dropout"):
        check_config(bad)


def test_splits_leaving_no_pool_are_rejected():
    bad = copy.deepcopy(active_block())
    bad["split"] = {"test": 0.5, "val": 0.3, "holdout": 0.3}
    with pytest.raises(ValueError, match=r"active\.split"):
        check_config(bad)


def test_a_holdout_larger_than_the_pool_is_rejected_naming_the_key():
    bad = copy.deepcopy(active_block())
    bad["split"] = {"test": 0.2, "val": 0.1, "holdout": 0.4}      # pool 0.3
    with pytest.raises(ValueError, match=r"active\.split\.holdout.*larger than the pool"):
        check_config(bad)


def test_train_domain_val_keeps_the_checkpoint_with_the_best_validation_accuracy(
        cmnist_splits):
    """Validation labels are the training labels flipped: validation accuracy only falls as
    training fits, so the rule must hand back the initial weights, not the last ones."""
    X, Y = stack(cmnist_splits, "pool")
    seed_of = np.array([0, 1])
    index = torch.arange(300).expand(2, -1)
    spec = TrainSpec([16], 2, 200, 64, 1e-2, 0.0, 0.0, "train_domain_val", 20)
    start = initial_model(X.shape[-1], spec, [0, 1], "cpu")
    flipped = (X[:, :300], 1 - Y[:, :300])
    res = train_instances(X, Y, seed_of, index, spec, torch.Generator().manual_seed(0),
                          init=start, val=flipped)
    last = train_instances(X, Y, seed_of, index, TrainSpec([16], 2, 200, 64, 1e-2),
                           torch.Generator().manual_seed(0), init=start)
    acc0 = (predict(start, *flipped[:1], seed_of).argmax(-1) == flipped[1]).float().mean(1)
    acc_last = (predict(last.model, *flipped[:1], seed_of).argmax(-1) ==
                flipped[1]).float().mean(1)
    assert (acc_last < acc0).all()                        # the case is what it claims
    assert torch.equal(res.model.theta, start.theta)


def test_badge_takes_the_points_whose_gradient_embedding_is_not_zero():
    """A confident, correct prediction has a zero gradient embedding; D^2 sampling never picks
    a point at distance 0 from a chosen centre, so the two uncertain points are always taken."""
    rng = np.random.default_rng(0)
    n = 40
    probs = np.tile([[1.0, 0.0]], (n, 1))
    probs[[7, 23]] = [[0.5, 0.5], [0.6, 0.4]]
    emb = rng.normal(size=(n, 4))
    for seed in range(5):
        ctx = AcquisitionContext(probs=probs, emb=emb, labelled=np.array([0]),
                                 candidates=np.arange(1, n), y=np.zeros(n, int),
                                 group=np.zeros(n, int), n_groups=1,
                                 rng=np.random.default_rng(seed))
        picked = acquire("badge", ctx, 3)
        assert {7, 23} <= set(picked.tolist())


# ------------------------------------------- tuned group-robust baselines (issue: fair baselines)

def test_per_instance_weight_decay_is_adams_coupled_weight_decay(cmnist_splits):
    """A grid's weight decays stacked as instances train exactly as separate runs with Adam's
    own weight_decay."""
    X, Y = stack(cmnist_splits, "pool")
    index = torch.arange(200).expand(2, -1)
    base = TrainSpec([16], 2, 30, 32, 1e-2, 0.0, 0.0)
    start = initial_model(X.shape[-1], base, [0, 0], "cpu")
    both = train_instances(X, Y, np.array([0, 0]), index, base,
                           torch.Generator().manual_seed(0), init=start,
                           weight_decay=torch.tensor([1e-3, 0.5]))
    for i, wd in enumerate((1e-3, 0.5)):
        one = train_instances(X, Y, np.array([0]), index[:1], replace(base, weight_decay=wd),
                              torch.Generator().manual_seed(0), init=start.instance(i))
        torch.testing.assert_close(both.model.theta[i], one.model.theta[0], rtol=1e-5,
                                   atol=1e-6)
    assert not torch.allclose(both.model.theta[0], both.model.theta[1])


def test_group_balanced_weights_draw_every_group_equally():
    from rose.active.group_robust import balanced_weights

    groups = torch.tensor([[0, 0, 0, 1, 3, 3]])          # group 2 absent
    w = balanced_weights(groups, 4)
    torch.testing.assert_close(w, torch.tensor([[1 / 3, 1 / 3, 1 / 3, 1.0, 0.5, 0.5]]))
    per_group = torch.zeros(4).scatter_add(0, groups[0], w[0] / w.sum())
    torch.testing.assert_close(per_group, torch.tensor([1 / 3, 1 / 3, 0.0, 1 / 3]))


def test_selection_rules_keep_each_instances_best_checkpoint(cmnist_splits):
    """A rule scoring checkpoint k of instance 0 highest at k = 2 and of instance 1 at k = 1
    hands back those checkpoints: the weights of runs stopped at those steps."""
    X, Y = stack(cmnist_splits, "pool")
    Xv, Yv = stack(cmnist_splits, "val")
    index = torch.arange(200).expand(2, -1)
    spec = TrainSpec([16], 2, 30, 32, 1e-2, 0.0, 0.0, eval_every=10)
    start = initial_model(X.shape[-1], spec, [0, 1], "cpu")
    calls = []

    def rule(pred):
        calls.append(1)
        k = len(calls)                              # checkpoints at steps 10, 20, 30
        return torch.tensor([float(k == 2), float(k == 1)])
    res = train_instances(X, Y, np.array([0, 1]), index, spec, torch.Generator().manual_seed(0),
                          init=start, val=(Xv, Yv), rules={"r": rule})
    theta, score, at = res.selected["r"]
    assert len(calls) == 3 and at.tolist() == [20, 10] and score.tolist() == [1.0, 1.0]
    for i, steps in enumerate((20, 10)):
        short = train_instances(X, Y, np.array([0, 1]), index, replace(spec, steps=steps),
                                torch.Generator().manual_seed(0), init=start)
        torch.testing.assert_close(theta[i], short.model.theta[i])


def test_group_val_score_by_hand():
    from rose.active.curriculum import group_val_score

    y = torch.tensor([[0, 0, 0, 1, 1, 1]])
    groups = torch.tensor([[0, 0, 0, 2, 2, 3]])     # group 3: one point
    conflicting = torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.0, 1.0]])
    pred = torch.tensor([[0, 0, 1, 1, 0, 1]])        # group 0: 2/3, group 2: 1/2, group 3: 1/1
    got = group_val_score(pred, y, groups, conflicting, 4, min_group_size=2)
    assert got.item() == pytest.approx(0.5)          # worst big group; conflicting acc 1.0
    pred2 = torch.tensor([[0, 0, 0, 1, 1, 0]])       # big groups all right, conflicting wrong
    assert group_val_score(pred2, y, groups, conflicting, 4, 2).item() == 0.0


def test_curriculum_tunes_on_validation_and_never_reads_the_test_split(cmnist_splits):
    """Every method's grid is trained and one point selected per rule; flipping every test
    label changes test accuracy but no selected point, checkpoint or validation score."""
    cfg = {"steps": 20, "candidates": 2, "il_steps": 5, "eval_every": 10,
           "tuning": {"grids": {"erm": {"weight_decay": [1e-4, 0.5]},
                                "groupdro": {"weight_decay": [1e-4], "eta": [0.01, 1.0]},
                                "jtt": {"first_steps": [5], "upsample": [2, 8]}}}}
    df, tuned = curriculum(cmnist_splits, ["erm", "groupdro", "jtt"], [0, 1], cfg, MODEL)
    assert set(df.selection) == {"train_domain_val", "group_val"}
    assert len(df) == 3 * 2 * 2 and len(tuned) == 3 * 2 * 2        # points x rules
    assert (tuned.groupby(["method", "selection"]).selected.sum() == 1).all()
    flipped = [{k: (replace(v, y=1 - v.y) if k == "test" else v) for k, v in s.items()}
               for s in cmnist_splits]
    df2, tuned2 = curriculum(flipped, ["erm", "groupdro", "jtt"], [0, 1], cfg, MODEL)
    keep = ["method", "selection", "seed", "point", "selected_step", "val_score"]
    pd.testing.assert_frame_equal(df[keep], df2[keep])
    pd.testing.assert_frame_equal(tuned, tuned2)
    assert not np.allclose(df.test_acc, df2.test_acc)


def test_a_method_without_a_grid_and_unequal_grids_are_refused_naming_the_key():
    bad = copy.deepcopy(active_block())
    del bad["curriculum"]["tuning"]["grids"]["jtt"]
    with pytest.raises(ValueError, match=r"active\.curriculum\.tuning\.grids.*'jtt'"):
        check_config(bad)
    bad = copy.deepcopy(active_block())
    bad["curriculum"]["tuning"]["grids"]["erm"] = {"weight_decay": [0.1]}
    with pytest.raises(ValueError, match=r"active\.curriculum\.tuning\.grids.*equal sizes"):
        check_config(bad)
    bad = copy.deepcopy(active_block())
    bad["curriculum"]["tuning"]["grids"]["erm"] = {"eta": [0.1, 1, 2, 3]}
    with pytest.raises(ValueError, match=r"active\.curriculum\.tuning\.grids\.erm\.eta"):
        check_config(bad)


def test_the_alvin_sweep_expands_into_named_alvin_runs():
    from rose.active.acquisitions import method_of
    from rose.active.experiments import acquisitions, sweep_params

    block = copy.deepcopy(active_block())
    block["alvin_sweep"] = {"alpha": [0.5, 4.0], "anchors_per_minority": [1, 20]}
    names = acquisitions(block)
    assert names[:len(block["acquisitions"])] == block["acquisitions"]
    assert names[len(block["acquisitions"]):] == ["alvin_a0.5_k1", "alvin_a0.5_k20",
                                                  "alvin_a4_k1", "alvin_a4_k20"]
    assert sweep_params(block)["alvin_a4_k20"] == {"alpha": 4.0, "anchors_per_minority": 20}
    assert {method_of(n) for n in names[len(block["acquisitions"]):]} == {"alvin"}
    check_config(block)


def test_curriculum_defaults_fill_each_methods_hyperparameters():
    from rose.active.curriculum import defaults

    model = {"weight_decay": 0.25}
    assert defaults("erm", {}, model) == {"weight_decay": 0.25}
    assert defaults("groupdro", {}, model) == {"weight_decay": 0.25, "eta": 0.01}
    assert defaults("groupdro", {"groupdro": {"eta": 0.3}}, model)["eta"] == 0.3
    assert defaults("jtt", {}, model) == {"weight_decay": 0.25, "first_steps": 100,
                                          "upsample": 20}
    assert defaults("jtt", {"jtt": {"first_steps": 7, "upsample": 3}}, model) == {
        "weight_decay": 0.25, "first_steps": 7, "upsample": 3}
    assert defaults("irm", {}, model) == {"weight_decay": 0.25, "lam": 1.0, "anneal": 0}
    assert defaults("irm", {"irm": {"lam": 9.0, "anneal": 4}}, model) == {
        "weight_decay": 0.25, "lam": 9.0, "anneal": 4}
    assert defaults("vrex", {"vrex": {"beta": 5.0, "anneal": 2}}, model) == {
        "weight_decay": 0.25, "beta": 5.0, "anneal": 2}
    assert defaults("vrex", {}, model) == {"weight_decay": 0.25, "beta": 1.0, "anneal": 0}


def test_group_val_score_per_instance_rows_by_hand():
    from rose.active.curriculum import group_val_score

    y = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1]])
    groups = torch.tensor([[0, 0, 3, 3], [0, 0, 3, 3]])
    conflicting = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    pred = torch.tensor([[0, 0, 1, 0], [0, 1, 1, 1]])
    got = group_val_score(pred, y, groups, conflicting, 4, min_group_size=1)
    # row 0: groups 1.0 and 0.5, conflicting 1/2 -> 0.5; row 1: no conflicting point, so
    # the worst group (0.5) alone
    assert got.tolist() == [0.5, 0.5]
    pred = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1]])
    conflicting = torch.tensor([[0.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    assert group_val_score(pred, y, groups, conflicting, 4, 1).tolist() == [1.0, 1.0]


def test_curriculum_rows_costs_and_objectives_by_hand(cmnist_splits, monkeypatch):
    """Every method's rows on a tiny budget: costs, the selected point and checkpoint, the
    rule scores (training-domain validation accuracy is the reported val_acc), the objectives
    built with each instance's grid values and JTT's error set."""
    import json

    from rose.active import curriculum as cur_mod
    from rose.device import generator

    built = {}

    class Spy:
        def __init__(self, cls):
            self.cls = cls

        def __call__(self, envs, rows, n_envs, weight, anneal=0):
            built[self.cls.__name__] = (n_envs, weight.tolist(), anneal.tolist())
            return self.cls(envs, rows, n_envs, weight, anneal)
    monkeypatch.setattr(cur_mod, "IRMv1", Spy(cur_mod.IRMv1))
    monkeypatch.setattr(cur_mod, "VREx", Spy(cur_mod.VREx))
    steps, T, B = 6, 4, MODEL["batch_size"]
    cfg = {"steps": steps, "candidates": 2, "il_steps": 2, "eval_every": 3,
           "tuning": {"grids": {"irm": {"lam": [2.0, 30.0], "anneal": [0, 3]},
                                "vrex": {"beta": [5.0], "anneal": [1]},
                                "jtt": {"first_steps": [T], "upsample": [4]},
                                "erm_no_shortcut": {"weight_decay": [1e-4]}}}}
    methods = ["erm", "jtt", "rho_loss_only", "irm", "vrex", "erm_no_shortcut"]
    df, tuned = curriculum(cmnist_splits, methods, [0, 1], cfg, MODEL)
    n_pool = len(cmnist_splits[0]["pool"])
    assert list(df.index) == list(range(len(df))) and list(tuned.index) == \
        list(range(len(tuned)))
    assert built["IRMv1"] == (2, [2.0, 2.0, 2.0, 2.0, 30.0, 30.0, 30.0, 30.0],
                              [0.0, 0.0, 3.0, 3.0, 0.0, 0.0, 3.0, 3.0])
    assert built["VREx"] == (2, [5.0, 5.0], [1.0, 1.0])
    for (m, rule), g in df.groupby(["method", "selection"]):
        assert len(g) == 2 and set(g.seed) == {0, 1}
        t = tuned[(tuned.method == m) & (tuned.selection == rule)]
        assert t.selected.sum() == 1 and json.loads(g.point.iloc[0]) == json.loads(
            t[t.selected].point.iloc[0])
        assert g.point.iloc[0] == json.dumps(json.loads(g.point.iloc[0]), sort_keys=True)
        assert g.labels.eq(n_pool).all()
        assert (g.status == "ok").all() and g.selected_step.isin([3, 6]).all()
        if rule == "train_domain_val":      # the rule's score is validation accuracy
            np.testing.assert_allclose(g.val_score, g.val_acc, rtol=1e-6)
        assert g.gradient_steps.eq(steps + (T if m == "jtt" else 0)).all()
        per_step = B * (cfg["candidates"] + 1) if m == "rho_loss_only" else B
        assert g.forward_examples.eq(steps * per_step).all(), m
    # JTT's error set: the points an ERM run of T steps on the seed's stream misclassifies
    X, Y = stack(cmnist_splits, "pool")
    spec = TrainSpec.from_config(MODEL, 2, T, eval_every=3)
    first = train_instances(X, Y, np.arange(2), torch.arange(n_pool).expand(2, n_pool), spec,
                            generator(0, "cpu"),
                            init=initial_model(X.shape[-1], spec, [0, 1], "cpu"))
    wrong = (predict(first.model, X, np.arange(2)).argmax(-1) != Y).float().mean().item()
    jtt = df[df.method == "jtt"]
    np.testing.assert_allclose(jtt.error_set_frac, wrong, rtol=1e-6)
