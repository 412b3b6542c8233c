"""Mechanism tests of the active direction's building blocks, each against a hand computation or
a written-out reference: the acquisition rules' edge cases (empty labelled set, k = 0, all-zero
BADGE gradients, coinciding points), ALVIN's minority split, anchors and nearest-unique claims,
the analogy targets r0 + (r1 - r2), GroupDRO with several instances, and the RHO-LOSS selector.
Many were found by `make mutation` (tests/MUTATION.md)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rose.active import acquisitions, alvin, analogy, rho_loss
from rose.active.acquisitions import (
    AcquisitionContext,
    acquire,
    k_centre_greedy,
    margin_scores,
    random_acq,
    top_k,
)
from rose.active.group_robust import GroupDRO
from rose.active.learner import TrainSpec, initial_model, predict, train_instances
from rose.divergence import Divergence, chance_loss


def _ctx(n=40, labelled=(), seed=0, d=3, c=2, **kw) -> AcquisitionContext:
    rng = np.random.default_rng(seed)
    labelled = np.asarray(labelled, dtype=np.int64)
    base = dict(probs=rng.dirichlet(np.ones(c), n), emb=rng.normal(size=(n, d)),
                labelled=labelled, candidates=np.setdiff1d(np.arange(n), labelled),
                y=rng.integers(0, c, n), group=rng.integers(0, 2, n), n_groups=2,
                rng=np.random.default_rng(seed + 100))
    base.update(kw)
    return AcquisitionContext(**base)


# ------------------------------------------------------------------------- acquisitions

def test_margin_scores_work_on_any_leading_shape():
    p = np.random.default_rng(0).dirichlet(np.ones(4), (3, 5))       # [T, N, C]
    want = np.array([[np.diff(np.sort(row)[-2:])[0] for row in t] for t in p])
    np.testing.assert_allclose(margin_scores(p), want)


def test_top_k_breaks_ties_by_the_seeded_random_order():
    cand = np.arange(100, 200)
    got = top_k(np.zeros(300), cand, 10, np.random.default_rng(5))
    want = cand[np.random.default_rng(5).permutation(100)[:10]]
    np.testing.assert_array_equal(got, want)
    scores = np.zeros(300)
    scores[[150, 120]] = [2.0, 1.0]                  # strictly larger scores come first
    assert list(top_k(scores, cand, 2, np.random.default_rng(1))) == [150, 120]


def test_error_messages_name_the_problem():
    with pytest.raises(ValueError) as e:
        acquire("bald", _ctx(), 3)
    assert str(e.value) == "bald needs MC-dropout probabilities (model dropout > 0)"
    with pytest.raises(ValueError) as e:
        acquire("nope", _ctx(), 3)
    assert str(e.value) == ("unknown acquisition 'nope'; expected one of "
                            f"{list(acquisitions.ACQUISITIONS)}")
    with pytest.raises(ValueError) as e:
        alvin.class_split(_ctx(labelled=[0, 1]))
    assert str(e.value) == "ALVIN and analogy need training dynamics (a minority split)"


def test_acquire_rejects_a_batch_with_a_labelled_point(monkeypatch):
    ctx = _ctx(labelled=[0, 1, 2])
    monkeypatch.setitem(acquisitions.ACQUISITIONS, "bad",
                        lambda ctx, k: np.array([0, 5, 6]))         # distinct, right size
    with pytest.raises(RuntimeError) as e:
        acquire("bad", ctx, 3)
    assert str(e.value) == "acquisition bad returned an invalid batch"
    monkeypatch.setitem(acquisitions.ACQUISITIONS, "short", lambda ctx, k: np.array([5, 6]))
    with pytest.raises(RuntimeError):
        acquire("short", ctx, 3)


def _k_centre_by_hand(emb, labelled, candidates, k):
    chosen = []
    for _ in range(k):
        centres = list(labelled) + chosen
        best, best_d = None, -1.0
        for c in candidates:
            if c in chosen:
                continue
            d = min((np.sum((emb[c] - emb[s]) ** 2) for s in centres), default=np.inf)
            if d > best_d:
                best, best_d = c, d
        chosen.append(best)
    return chosen


@pytest.mark.parametrize("n_labelled", [0, 1, 7])
def test_k_centre_greedy_matches_the_written_out_rule(n_labelled):
    rng = np.random.default_rng(n_labelled)
    emb = rng.normal(size=(30, 3)) - 2.0              # negative coordinates: squares matter
    labelled = np.arange(n_labelled)
    cand = np.arange(n_labelled, 30)
    got = k_centre_greedy(emb, labelled, cand, 6)
    assert list(got) == _k_centre_by_hand(emb, labelled, cand, 6)
    empty = k_centre_greedy(emb, labelled, cand, 0)
    assert len(empty) == 0 and empty.dtype == np.int64
    # no labels: the first pick is the first candidate (every distance is infinite)
    if n_labelled == 0:
        assert got[0] == 0


def test_oracle_with_groups_that_have_no_labels_yet():
    group = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    ctx = _ctx(n=8, labelled=[0, 1], group=group, n_groups=3)     # groups 1, 2: no labels
    got = acquire("oracle", ctx, 4)
    assert sorted(group[got]) == [0, 1, 1, 2] or sorted(group[got]) == [1, 1, 2, 2]
    assert set(group[got[:2]]) == {1, 2}
    empty = acquisitions.oracle_acq(_ctx(n=8, labelled=[0], group=group, n_groups=3), 0)
    assert len(empty) == 0 and empty.dtype == np.int64


def _init_centers(g: np.ndarray, k: int, rng: np.random.Generator) -> list[int]:
    """BADGE's init_centers (Ash et al. 2020, the authors' code), written out: the largest
    norm first, then D^2 sampling against the nearest centre so far."""
    centres = [int(np.argmax(np.linalg.norm(g, axis=1)))]
    while len(centres) < k:
        d2 = np.min([((g - g[c]) ** 2).sum(1) for c in centres], axis=0)
        centres.append(int(rng.choice(len(g), p=d2 / d2.sum())))
    return centres


def test_badge_starts_at_the_largest_gradient_then_samples_by_squared_distance():
    ctx = _ctx(n=50, labelled=range(10), c=3, d=4)
    ref_rng = copy.deepcopy(ctx.rng)
    got = acquisitions.badge_acq(ctx, 8)
    g = acquisitions.badge_embedding(ctx.probs[ctx.candidates], ctx.emb[ctx.candidates])
    want = _init_centers(g, 8, ref_rng)
    assert want[0] == np.argmax(np.linalg.norm(g, axis=1))
    np.testing.assert_array_equal(got, ctx.candidates[np.unique(want)])
    again = acquisitions.badge_acq(_ctx(n=50, labelled=range(10), c=3, d=4), 8)
    np.testing.assert_array_equal(got, again)
    assert ctx.fallback == 0
    one = acquisitions.badge_seeding(g, 1, np.random.default_rng(0))
    assert one.tolist() == [int(np.argmax((g ** 2).sum(1)))]     # no draw: the first pick


def test_badge_with_every_gradient_zero_labels_at_random_and_counts_it():
    probs = np.eye(2)[np.arange(20) % 2]              # one-hot: p - onehot(argmax p) = 0
    ctx = _ctx(n=20, labelled=[0, 1], probs=probs, fallback=3)
    ref = copy.deepcopy(ctx)
    got = acquisitions.badge_acq(ctx, 5)
    np.testing.assert_array_equal(got, random_acq(ref, 5))
    assert ctx.fallback == 3 + 5


def test_badge_fills_up_when_seeds_coincide():
    # only three distinct gradient embeddings: k-means++ cannot find eight distinct seeds
    rows = np.random.default_rng(0).dirichlet(np.ones(3), 3)
    probs = rows[np.arange(30) % 3]
    emb = np.ones((30, 2))
    ctx = _ctx(n=30, labelled=[], probs=probs, emb=emb, c=3)
    got = acquire("badge", ctx, 8)
    assert len(set(got)) == 8
    # the three different gradients are all represented
    assert len({tuple(np.round(probs[i], 6)) for i in got}) == 3


# ------------------------------------------------------------------------------- ALVIN

def test_minority_split_default_threshold_and_each_criterion():
    r = 10
    rows = {
        "late learner, never forgotten": [0, 0, 0, 0, 1, 1, 1, 1, 1, 1],   # mean .6 < .7
        "learned early": [0, 0, 1, 1, 1, 1, 1, 1, 1, 1],                   # mean .8
        "forgotten mid-way": [0, 1, 0, 1, 1, 1, 1, 1, 1, 1],               # mean .8, forgotten
        "right only at the end": [0] * (r - 1) + [1],
    }
    correct = np.array(list(rows.values()), dtype=bool)
    np.testing.assert_array_equal(alvin.minority_split(correct), [True, False, True, True])
    np.testing.assert_array_equal(alvin.minority_split(correct, 0.7),
                                  alvin.minority_split(correct))
    # with the threshold below every mean, only forgetting and the last record decide
    np.testing.assert_array_equal(alvin.minority_split(correct, 0.05),
                                  [False, False, True, False])
    never = np.zeros((1, 4), dtype=bool)              # wrong at the last record
    assert alvin.minority_split(never, 0.0)[0]


def test_anchors_draw_one_majority_partner_per_anchor_from_all_of_them():
    rng = np.random.default_rng(0)
    hm, hj = rng.normal(size=(3, 2)), rng.normal(size=(4, 2))
    a, lam, i, j = alvin.anchors(hm, hj, 50, 2.0, rng)
    np.testing.assert_allclose(a, lam[:, None] * hm[i] + (1 - lam[:, None]) * hj[j])
    assert i.tolist() == np.repeat(np.arange(3), 50).tolist()
    assert j.shape == (150,) and set(j) == {0, 1, 2, 3}
    ref = np.random.default_rng(0)
    ref.normal(size=(3, 2)), ref.normal(size=(4, 2))
    np.testing.assert_array_equal(j, ref.integers(0, 4, 150))
    np.testing.assert_allclose(lam, ref.beta(2.0, 2.0, 150))


def test_nearest_unique_claims_in_turn_by_hand():
    # three identical targets at 0; candidates at distances 1, 2, 3, ... in shuffled positions
    pos = np.array([4.0, 1.0, 6.0, 3.0, 2.0, 5.0])
    emb = np.c_[pos, np.zeros(6)]
    cand = np.arange(6)
    t = np.zeros((3, 2))
    got = alvin.nearest_unique(t, emb, cand, 3, np.random.default_rng(0))
    assert got.tolist() == [1, 4, 3]                   # 1.0, 2.0, 3.0 in claim order
    one = alvin.nearest_unique(np.array([[3.2, 0.0]]), emb, cand, 4, np.random.default_rng(0))
    assert one.tolist() == [3, 0, 4, 5]                # one target: its 4 nearest, in order
    most = alvin.nearest_unique(np.array([[3.2, 0.0]]), emb, cand, 5, np.random.default_rng(0))
    assert most.tolist() == [3, 0, 4, 5, 1]            # k = len(candidates) - 1
    allc = alvin.nearest_unique(np.array([[3.2, 0.0]]), emb, cand, 9, np.random.default_rng(0))
    assert allc.tolist() == [3, 0, 4, 5, 1, 2]         # k beyond the candidates
    for k, targets in ((0, t), (3, np.empty((0, 2)))):
        none = alvin.nearest_unique(targets, emb, cand, k, np.random.default_rng(0))
        assert len(none) == 0 and none.dtype == np.int64


def test_nearest_unique_uses_the_euclidean_distance():
    # target (1, 0): (0, 0) is at distance 1, (2.5, 0) at 1.5
    emb = np.array([[2.5, 0.0], [0.0, 0.0]])
    got = alvin.nearest_unique(np.array([[1.0, 0.0]]), emb, np.arange(2), 1,
                               np.random.default_rng(0))
    assert got.tolist() == [1]
    # pool indices are returned, not positions among the candidates
    got = alvin.nearest_unique(np.array([[1.0, 0.0]]), np.r_[np.ones((3, 2)) * 9, emb],
                               np.array([3, 4]), 1, np.random.default_rng(0))
    assert got.tolist() == [4]


def test_fill_at_random_tops_up_with_distinct_new_points_and_adds_to_the_count():
    ctx = _ctx(n=12, labelled=[0, 1], fallback=2)
    got = alvin.fill_at_random(ctx, np.array([5, 7]), 6)
    assert len(got) == 6 and len(set(got)) == 6 and set(got[:2]) == {5, 7}
    assert set(got) <= set(ctx.candidates) and ctx.fallback == 2 + 4
    full = alvin.fill_at_random(ctx, np.array([5, 7, 8]), 2)
    assert full.tolist() == [5, 7] and ctx.fallback == 6


def _dynamics_ctx(seed=0, n_per=40, n_classes=3, params=None, minority_rate=0.3):
    rng = np.random.default_rng(seed)
    n = n_per * n_classes
    y = np.repeat(np.arange(n_classes), n_per)
    emb = rng.normal(size=(n, 4)) + 3 * np.eye(4)[y][:, :4]
    labelled = rng.permutation(n)[:n // 2]
    minority = rng.random(len(labelled)) < minority_rate
    return AcquisitionContext(probs=np.full((n, n_classes), 1 / n_classes), emb=emb,
                              labelled=labelled, candidates=np.setdiff1d(np.arange(n), labelled),
                              y=y, group=y, n_groups=n_classes, rng=np.random.default_rng(seed),
                              minority=minority, params=params or {})


def test_alvin_defaults_are_alpha_2_and_five_anchors_per_minority_example():
    got = alvin.acquire(_dynamics_ctx(), 15)
    want = alvin.acquire(_dynamics_ctx(params={"alpha": 2.0, "anchors_per_minority": 5}), 15)
    np.testing.assert_array_equal(got, want)
    other = alvin.acquire(_dynamics_ctx(params={"alpha": 3.0, "anchors_per_minority": 5}), 15)
    assert not np.array_equal(got, other)


def test_alvin_skips_a_class_without_majority_examples_and_fills_without_minority():
    ctx = _dynamics_ctx()
    y_lab = ctx.y[ctx.labelled]
    ctx.minority = ctx.minority | (y_lab == 2)          # class 2: every labelled one minority
    got = alvin.acquire(ctx, 10)
    assert len(set(got)) == 10 and ctx.fallback == 0
    ctx = _dynamics_ctx(minority_rate=0.0)
    ref = copy.deepcopy(ctx.rng)
    got = alvin.acquire(ctx, 10)
    assert ctx.fallback == 10
    np.testing.assert_array_equal(got, ref.choice(ctx.candidates, 10, replace=False))


# ----------------------------------------------------------------------------- analogy

def test_analogy_targets_by_hand():
    emb = np.array([[0.0, 0.0], [2.0, 0.0], [4.0, 1.0],       # class 0: majority 0, 1; min 2
                    [10.0, 10.0], [9.0, 7.0]], dtype=float)    # class 1: majority 3, minority 4
    split = {0: (np.array([2]), np.array([0, 1])), 1: (np.array([4]), np.array([3]))}
    q = analogy.analogy_targets(emb, split, 5, np.random.default_rng(0))
    # r0 from class 0 (rows 0, 1 in some order), shift from class 1: r1 = emb[3], r2 = emb[4]
    # r0 from class 1 (row 3), shift from class 0: r1 = mean(emb[0], emb[1]) = (1, 0), r2 = emb[2]
    want = sorted(map(tuple, [emb[0] + emb[3] - emb[4], emb[1] + emb[3] - emb[4],
                              emb[3] + np.array([1.0, 0.0]) - emb[2]]))
    assert sorted(map(tuple, q)) == want


def test_analogy_r2_is_the_minority_example_nearest_to_r0():
    emb = np.array([[-3.0, 0.0],                  # class 1 majority: r0
                    [5.0, 5.0], [-2.0, 0.0], [3.0, 0.0],   # class 0 minority; nearest r0: row 2
                    [0.0, 4.0]])                  # class 0 majority: r1
    split = {0: (np.array([1, 2, 3]), np.array([4])), 1: (np.array([], dtype=int), np.array([0]))}
    q = analogy.analogy_targets(emb, split, 5, np.random.default_rng(0))
    np.testing.assert_allclose(q, [emb[0] + emb[4] - emb[2]])


def test_analogy_visits_every_source_class_and_every_shift_class():
    ctx = _dynamics_ctx(n_classes=4)
    y_lab = ctx.y[ctx.labelled]
    ctx.minority = ctx.minority | (y_lab == 0)          # class 0 has no majority (no r0, no r1)
    split = alvin.class_split(ctx)
    q = analogy.analogy_targets(ctx.emb, split, 3, np.random.default_rng(0))
    # sources: classes 1, 2, 3 (3 r0 each); shifts: the 2 other classes with both kinds
    assert q.shape == (3 * 3 * 2, 4)


def test_analogy_within_class_takes_the_shift_from_r0s_own_class():
    """The ablation: same hand case as test_analogy_targets_by_hand, shift from r0's class."""
    emb = np.array([[0.0, 0.0], [2.0, 0.0], [4.0, 1.0], [10.0, 10.0], [9.0, 7.0]])
    split = {0: (np.array([2]), np.array([0, 1])), 1: (np.array([4]), np.array([3]))}
    q = analogy.analogy_targets(emb, split, 5, np.random.default_rng(0), within_class=True)
    # class 0: r1 = (1, 0), r2 = emb[2] for both r0; class 1: r1 = emb[3], r2 = emb[4]
    want = sorted(map(tuple, [emb[0] + np.array([1.0, 0.0]) - emb[2],
                              emb[1] + np.array([1.0, 0.0]) - emb[2],
                              emb[3] + emb[3] - emb[4]]))
    assert sorted(map(tuple, q)) == want


def test_analogy_shuffled_keeps_sources_and_shifts_but_not_their_pairing():
    ctx = _dynamics_ctx(n_classes=4)
    split = alvin.class_split(ctx)
    q = analogy.analogy_targets(ctx.emb, split, 3, np.random.default_rng(0))
    sh = analogy.analogy_targets(ctx.emb, split, 3, np.random.default_rng(0),
                                 shuffle_offsets=True)
    # the same sources come first from the same generator; recover them from the matched run
    sources, shifts = [], []
    rng = np.random.default_rng(0)
    for c_src, (_, maj) in split.items():
        r0 = ctx.emb[rng.permutation(maj)[:3]]
        for c, (mino, majo) in split.items():
            if c != c_src and len(mino) and len(majo):
                d = ((r0[:, None] - ctx.emb[mino][None]) ** 2).sum(-1)
                sources.append(r0)
                shifts.append(ctx.emb[majo].mean(0) - ctx.emb[mino][d.argmin(1)])
    sources, shifts = np.concatenate(sources), np.concatenate(shifts)
    np.testing.assert_allclose(q, sources + shifts)
    perm = rng.permutation(len(shifts))            # the generator's next draw
    np.testing.assert_allclose(sh, sources + shifts[perm])
    assert not np.allclose(sh, q)


def test_analogy_default_is_ten_sources_per_class():
    got = analogy.acquire(_dynamics_ctx(n_per=60), 20)
    want = analogy.acquire(_dynamics_ctx(n_per=60, params={"sources_per_class": 10}), 20)
    np.testing.assert_array_equal(got, want)
    other = analogy.acquire(_dynamics_ctx(n_per=60, params={"sources_per_class": 11}), 20)
    assert not np.array_equal(got, other)


# ------------------------------------------------------------ GroupDRO and RHO-LOSS

def test_groupdro_keeps_one_weight_vector_per_instance():
    groups = torch.tensor([[0, 1, 2, 2], [2, 1, 0, 0]])
    dro = GroupDRO(groups, torch.tensor([[0], [1]]), n_groups=3, eta=1.0)
    torch.testing.assert_close(dro.q, torch.full((2, 3), 1 / 3))
    loss = torch.tensor([[1.0, 2.0, 3.0, 5.0], [0.5, 0.5, 0.5, 0.5]])
    out = dro(loss, torch.tensor([[0, 1, 2, 3], [0, 1, 2, 3]]))
    lg = torch.tensor([[1.0, 2.0, 4.0], [0.5, 0.5, 0.5]])
    q = torch.softmax(lg, 1)                            # q = 1/3 exp(L) / sum: a softmax
    torch.testing.assert_close(dro.q, q)
    torch.testing.assert_close(out, (q * lg).sum(1))


class _Linear:
    """A model with .forward(x) -> (logits, features), logits = x W."""

    def __init__(self, W):
        self.W = W

    def forward(self, x):
        return x @ self.W, None


def test_rho_loss_selector_by_hand():
    torch.manual_seed(0)
    X = torch.randn(2, 12, 3)                           # two seeds
    Y = torch.randint(0, 2, (2, 12))
    W = torch.randn(3, 2)
    il = torch.rand(2, 12)
    cand = torch.stack([torch.arange(0, 12, 2), torch.arange(1, 12, 2)])
    got = rho_loss.selector(il, X, Y, torch.tensor([[0], [1]]), 2)(_Linear(W), cand)
    for i in range(2):
        ce = F.cross_entropy(X[i, cand[i]] @ W, Y[i, cand[i]], reduction="none")
        want = cand[i][torch.topk(ce - il[i, cand[i]], 2).indices]
        assert got[i].tolist() == want.tolist()


def test_irreducible_losses_are_each_instances_loss_on_its_seed():
    torch.manual_seed(1)
    X = torch.randn(2, 5, 3)
    Y = torch.randint(0, 2, (2, 5))
    W = torch.randn(3, 2)
    il = rho_loss.irreducible_losses(_Linear(W), X, Y, [1, 0])
    for i, s in enumerate([1, 0]):
        torch.testing.assert_close(il[i], F.cross_entropy(X[s] @ W, Y[s], reduction="none"))


# --------------------------------------------------------------------- the stacked trainer

def _learner_problem(steps=5, eval_every=2, lr=0.05, weight_decay=0.01, selection="last"):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(2, 30, 5, generator=g)                        # two seeds' data
    Y = torch.randint(0, 3, (2, 30), generator=g)
    seed_of = np.array([0, 0, 1])                                 # instances 0, 1 share seed 0
    index = torch.stack([torch.arange(0, 20), torch.arange(10, 30), torch.arange(5, 25)])
    spec = TrainSpec([8], 3, steps, 4, lr, weight_decay, 0.0, selection, eval_every)
    init = initial_model(5, spec, [0, 0, 1], "cpu")
    return X, Y, seed_of, index, spec, init


def _reference_training(X, Y, seed_of, index, spec, init, weights=None, objective=None):
    """The same training written out one instance at a time with torch.nn modules: the stacked
    trainer must equal it. Returns (final flat weights [I, P], correctness records, losses)."""
    net, n_inst = init.net, len(seed_of)
    mods = []
    for i in range(n_inst):
        m = net.template()
        with torch.no_grad():
            for name, p in m.named_parameters():
                p.copy_(net.module_params(init.theta[i])[name])
        mods.append(m)
    opts = [torch.optim.Adam(m.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
            for m in mods]
    g = torch.Generator().manual_seed(3)
    records, losses = [], []
    for step in range(spec.steps + 1):
        if (step % spec.eval_every == 0 or step == spec.steps) and step > 0:   # from step 1
            with torch.no_grad():
                records.append(torch.stack([
                    mods[i](X[seed_of[i], index[i]]).argmax(-1) == Y[seed_of[i], index[i]]
                    for i in range(n_inst)]))
        if step == spec.steps:
            break
        if weights is None:
            pos = torch.randint(0, index.shape[1], (int(seed_of.max()) + 1, spec.batch_size),
                                generator=g)[torch.as_tensor(seed_of)]
        else:
            pos = torch.multinomial(weights, spec.batch_size, replacement=True, generator=g)
        step_losses = []
        for i in range(n_inst):
            rows = index[i, pos[i]]
            ce = F.cross_entropy(mods[i](X[seed_of[i], rows]), Y[seed_of[i], rows],
                                 reduction="none")
            loss = ce.mean() if objective is None else objective(ce)
            opts[i].zero_grad()
            loss.backward()
            opts[i].step()
            step_losses.append(ce.mean().item())
        losses.append(step_losses)
    theta = torch.stack([net.flatten_module(m.parameters()) for m in mods])
    return theta, torch.stack(records, -1), np.array(losses)


def test_stacked_training_equals_one_adam_run_per_instance():
    X, Y, seed_of, index, spec, init = _learner_problem()
    res = train_instances(X, Y, seed_of, index, spec, torch.Generator().manual_seed(3),
                          init=init, record_dynamics=True)
    theta, records, _ = _reference_training(X, Y, seed_of, index, spec, init)
    torch.testing.assert_close(res.model.theta, theta, atol=1e-5, rtol=1e-5)
    assert res.dynamics.shape == (3, 20, 3)       # records at steps 2, 4, 5: never the init
    assert torch.equal(res.dynamics, records)
    assert res.forward_examples == 5 * 4
    assert res.diverged_at.tolist() == [-1, -1, -1]
    assert torch.equal(init.theta, initial_model(5, spec, [0, 0, 1], "cpu").theta)  # untouched
    assert train_instances(X, Y, seed_of, index, spec, torch.Generator().manual_seed(3),
                           init=init).dynamics is None


def test_sample_weights_and_objective_enter_the_training_as_written():
    X, Y, seed_of, index, spec, init = _learner_problem(steps=4)
    w = torch.rand(3, 20, generator=torch.Generator().manual_seed(1))
    res = train_instances(X, Y, seed_of, index, spec, torch.Generator().manual_seed(3),
                          init=init, sample_weights=w,
                          objective=lambda loss, idx: loss.max(1).values)
    theta, _, _ = _reference_training(X, Y, seed_of, index, spec, init, weights=w,
                                      objective=lambda ce: ce.max())
    torch.testing.assert_close(res.model.theta, theta, atol=1e-5, rtol=1e-5)


def test_batch_selector_trains_on_the_rows_it_returns_and_counts_the_candidates():
    X, Y, seed_of, index, spec, init = _learner_problem(steps=3)
    seen = []

    def first_two(model, cand):
        seen.append(cand.clone())
        return cand[:, :2]

    res = train_instances(X, Y, seed_of, index, spec, torch.Generator().manual_seed(3),
                          init=init, batch_selector=first_two)
    assert len(seen) == 3 and seen[0].shape == (3, 4)
    assert res.forward_examples == 3 * (4 + 2)
    # the same as training on those two rows without a selector: batch size 2, same draws
    ref = _reference_training(X, Y, seed_of, index, TrainSpec([8], 3, 3, 4, 0.05, 0.01, 0.0,
                                                               "last", 2), init,
                              objective=lambda ce: ce[:2].mean())[0]
    torch.testing.assert_close(res.model.theta, ref, atol=1e-5, rtol=1e-5)


def test_divergence_is_flagged_at_the_first_step_above_the_limit():
    X, Y, seed_of, index, spec, init = _learner_problem(steps=12, lr=50.0, weight_decay=0.0)
    res = train_instances(X, Y, seed_of, index, spec, torch.Generator().manual_seed(3),
                          init=init)
    _, _, losses = _reference_training(X, Y, seed_of, index, spec, init)
    limit = Divergence(3, chance_loss(3)).limit
    bad = ~np.isfinite(losses) | (losses > limit)
    want = [int(np.argmax(bad[:, i])) if bad[:, i].any() else -1 for i in range(3)]
    assert (np.array(want) >= 0).any()                            # the case is what it claims
    assert res.diverged_at.tolist() == want


def test_train_domain_val_takes_the_best_record_per_instance():
    X, Y, seed_of, index, spec, init = _learner_problem(steps=6, selection="train_domain_val")
    Xv, Yv = X[:, 20:], Y[:, 20:]
    res = train_instances(X, Y, seed_of, index, spec, torch.Generator().manual_seed(3),
                          init=init, val=(Xv, Yv))
    # the same run, stopped at each evaluation: the kept weights are the first best one
    accs, thetas = [], []
    for stop in (0, 2, 4, 6):
        s = TrainSpec([8], 3, stop, 4, 0.05, 0.01, 0.0, "last", 2)
        m = train_instances(X, Y, seed_of, index, s, torch.Generator().manual_seed(3),
                            init=init).model
        pred = predict(m, Xv, seed_of).argmax(-1)
        accs.append((pred == Yv[torch.as_tensor(seed_of)]).float().mean(1))
        thetas.append(m.theta)
    accs = torch.stack(accs)                                      # [records, I]
    best = [int(np.argmax(accs[:, i].numpy())) for i in range(3)]  # first maximum
    for i in range(3):
        torch.testing.assert_close(res.model.theta[i], thetas[best[i]][i], atol=1e-6, rtol=0)


# ------------------------------------------------------------- found by make mutation (2)

def test_top_k_with_many_ties_keeps_the_random_order_within_each_score():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 3, 1000).astype(float)            # three values, many ties
    cand = np.arange(1000)
    got = top_k(scores, cand, 400, np.random.default_rng(7))
    order = np.random.default_rng(7).permutation(1000)
    want = [c for v in (2.0, 1.0, 0.0) for c in order if scores[c] == v][:400]
    np.testing.assert_array_equal(got, want)


def test_badge_fill_draws_without_replacement():
    # three distinct gradients among ten points, nine wanted: six come from the fill
    rows = np.random.default_rng(0).dirichlet(np.ones(3), 3)
    ctx = _ctx(n=10, labelled=[], probs=rows[np.arange(10) % 3], emb=np.ones((10, 2)), c=3,
               fallback=2)
    got = acquisitions.badge_acq(ctx, 9)
    assert len(got) == 9 and len(set(got)) == 9
    assert ctx.fallback == 2 + 9 - 3                  # 3 distinct gradients; the fill is added


def test_nearest_unique_equals_the_written_out_claiming_rule():
    # each target in turn takes its nearest unclaimed candidate; candidates stored in a random
    # order so that a partial sort that keeps too few neighbours shows
    rng = np.random.default_rng(3)
    emb = rng.normal(size=(60, 2))
    cand = rng.permutation(60)[:40]
    targets = rng.normal(size=(6, 2)) * 0.3                       # crowded: they compete
    for k in (1, 5, 12, 39):
        got = alvin.nearest_unique(targets, emb, cand, k, np.random.default_rng(k))
        order = np.random.default_rng(k).permutation(len(targets))
        taken, want = set(), []
        while len(want) < k:
            for t in targets[order]:
                free = [c for c in cand if c not in taken]
                c = min(free, key=lambda c: np.sum((emb[c] - t) ** 2))
                taken.add(c)
                want.append(c)
                if len(want) == k:
                    break
        assert got.tolist() == want


def test_alvin_uses_the_configured_number_of_anchors(monkeypatch):
    seen = []
    real = alvin.anchors

    def spy(mino, majo, per, alpha, rng):
        seen.append((per, alpha))
        return real(mino, majo, per, alpha, rng)

    monkeypatch.setattr(alvin, "anchors", spy)
    alvin.acquire(_dynamics_ctx(params={"anchors_per_minority": 2, "alpha": 0.5}), 15)
    assert seen and set(seen) == {(2, 0.5)}
    seen.clear()
    alvin.acquire(_dynamics_ctx(), 15)
    assert set(seen) == {(5, 2.0)}


def test_train_spec_from_config_defaults_and_pass_through():
    model = {"hidden": [8, 4], "batch_size": 16, "lr": 0.01, "weight_decay": 0.001,
             "dropout": 0.2}
    spec = TrainSpec.from_config(model, 3, 100)
    assert spec == TrainSpec([8, 4], 3, 100, 16, 0.01, 0.001, 0.2, "last", 50)
    spec = TrainSpec.from_config(model, 3, 100, selection="train_domain_val", eval_every=7)
    assert (spec.selection, spec.eval_every) == ("train_domain_val", 7)


def test_model_forward_instance_and_xavier_init():
    spec = TrainSpec([8], 3, 1, 4)
    m = initial_model(5, spec, [0, 1, 2], "cpu")
    assert m.net.name == "mlp" and m.theta.shape[0] == 3
    torch.testing.assert_close(m.theta, m.net.init([0, 1, 2], "cpu", scheme="xavier"))
    assert not torch.equal(m.theta, m.net.init([0, 1, 2], "cpu"))    # not the default scheme
    x = torch.randn(3, 7, 5)
    torch.testing.assert_close(m.forward(x)[0], m.net.forward(m.theta, x)[0])
    shared = m.forward(x[0], shared=True)[0]                      # keyword arguments reach it
    torch.testing.assert_close(shared, m.net.forward(m.theta, x[0], shared=True)[0])
    one = m.instance(1)
    assert one.theta.shape == (1, m.theta.shape[1]) and torch.equal(one.theta[0], m.theta[1])


def test_stack_refuses_splits_of_different_sizes_by_name():
    from rose.active.learner import stack
    from rose.data.group_benchmarks import GroupData

    def split(n):
        return GroupData(np.zeros((n, 1, 2, 2), np.float32), np.zeros(n, np.int64),
                         np.zeros(n, np.int64), np.zeros((n, 2, 2)), 2, 2)

    X, Y = stack([{"train": split(3)}, {"train": split(3)}], "train")
    assert X.shape == (2, 3, 4) and Y.shape == (2, 3)
    with pytest.raises(ValueError, match="split 'train' differs in size across seeds"):
        stack([{"train": split(3)}, {"train": split(4)}], "train")


def test_last_selection_ignores_a_validation_set():
    X, Y, seed_of, index, spec, init = _learner_problem(steps=6)
    plain = train_instances(X, Y, seed_of, index, spec, torch.Generator().manual_seed(3),
                            init=init)
    with_val = train_instances(X, Y, seed_of, index, spec, torch.Generator().manual_seed(3),
                               init=init, val=(X[:, 20:], Y[:, 20:]))
    assert torch.equal(plain.model.theta, with_val.model.theta)


def test_selector_sees_the_current_model_and_the_objective_its_rows():
    X, Y, seed_of, index, spec, init = _learner_problem(steps=3)
    models, rows = [], []

    def selector(model, cand):
        assert model.net is init.net
        models.append(model.theta.clone())
        return cand

    def objective(loss, idx):
        rows.append(idx.clone())
        return loss.mean(1)

    res = train_instances(X, Y, seed_of, index, spec, torch.Generator().manual_seed(3),
                          init=init, batch_selector=selector, objective=objective)
    torch.testing.assert_close(models[0], init.theta)
    assert not torch.equal(models[1], models[0])                  # the model after step 1
    assert len(rows) == 3 and rows[0].shape == (3, 4)
    for i in range(3):                                            # rows of the instance's index
        assert set(rows[0][i].tolist()) <= set(index[i].tolist())
    # the default objective is this one: same weights
    ref = train_instances(X, Y, seed_of, index, spec, torch.Generator().manual_seed(3), init=init)
    torch.testing.assert_close(res.model.theta, ref.model.theta)


def test_training_dropout_is_applied():
    X, Y, seed_of, index, _, init = _learner_problem(steps=3)
    out = {}
    for p in (0.0, 0.5):
        spec = TrainSpec([8], 3, 3, 4, 0.05, 0.01, p, "last", 2)
        out[p] = train_instances(X, Y, seed_of, index, spec, torch.Generator().manual_seed(3),
                                 init=init).model.theta
    assert not torch.equal(out[0.0], out[0.5])


def test_divergence_is_flagged_per_instance():
    X, Y, seed_of, index, spec, init = _learner_problem(steps=3)
    theta = init.theta.clone()
    theta[1] = float("nan")                                        # only instance 1 is broken
    res = train_instances(X, Y, seed_of, index, spec, torch.Generator().manual_seed(3),
                          init=type(init)(init.net, theta))
    assert res.diverged_at.tolist() == [-1, 0, -1]


def test_predict_in_chunks_and_with_mc_dropout():
    X, _y, seed_of, index, _, _ = _learner_problem()
    spec = TrainSpec([8], 3, 1, 4, dropout=0.5)
    m = initial_model(5, spec, [0, 0, 1], "cpu")
    whole = predict(m, X, seed_of)
    torch.testing.assert_close(predict(m, X, seed_of, chunk=2), whole)
    torch.testing.assert_close(predict(m, X, seed_of, index, chunk=1),
                               torch.stack([whole[i, index[i]] for i in range(3)]))
    torch.manual_seed(0)
    assert not torch.allclose(predict(m, X, seed_of, dropout=0.5), whole)


def test_embed_probabilities_sum_to_one_over_classes():
    from rose.active.learner import embed
    spec = TrainSpec([6], 3, 1, 4)
    m = initial_model(5, spec, [0], "cpu")
    p, h = embed(m, torch.randn(7, 5))
    assert p.shape == (7, 3) and h.shape == (7, 6)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-6)


def test_group_metrics_without_large_groups_or_conflicting_points():
    from rose.active.learner import group_metrics
    from rose.data.group_benchmarks import GroupData
    y = np.array([0, 0, 1, 1])
    d = GroupData(np.zeros((4, 1, 2, 2), np.float32), y, y.copy(), np.zeros((4, 2, 2)), 2, 2)
    got = group_metrics(np.array([0, 1, 1, 1]), d, min_group_size=5)
    assert got["acc"] == 0.75 and got["aligned_acc"] == 0.75
    for key in ("worst_group_acc", "mean_group_acc", "conflicting_acc"):
        assert np.isnan(got[key])


def test_nearest_unique_reaches_a_targets_kth_nearest_when_the_nearer_are_taken():
    # both targets want candidate 0; the one that loses it must get its 2nd nearest (the last
    # stored candidate), not any other point the partial sort left in second place
    emb = np.array([[0.001, 0.0], [5.0, 5.0], [6.0, 6.0], [7.0, 7.0], [0.5, 0.0]])
    targets = np.array([[0.0, 0.0], [0.01, 0.0]])
    for seed in range(4):                                     # either target may go first
        got = alvin.nearest_unique(targets, emb, np.arange(5), 2, np.random.default_rng(seed))
        assert sorted(got.tolist()) == [0, 4]


def test_k_centre_greedy_reads_every_labelled_point_past_a_chunk_boundary():
    # 1100 labelled points (the distances are taken in chunks of 1024); labelled point 1024
    # sits on candidate 1100, far from the rest: that candidate is covered, never a centre
    rng = np.random.default_rng(0)
    emb = np.r_[rng.normal(size=(1100, 2)), rng.normal(size=(20, 2)) * 3]
    emb[1024] = emb[1100] = [40.0, 40.0]
    got = k_centre_greedy(emb, np.arange(1100), np.arange(1100, 1120), 3)
    assert 1100 not in got.tolist()
    assert got.tolist() == _k_centre_by_hand(emb, np.arange(1100), np.arange(1100, 1120), 3)


def test_nearest_unique_with_one_pick_is_the_nearest_candidate():
    emb = np.random.default_rng(0).random((500, 2))
    t = np.array([[0.5, 0.5]])
    got = alvin.nearest_unique(t, emb, np.arange(500), 1, np.random.default_rng(0))
    assert got.tolist() == [int(np.argmin(((emb - t) ** 2).sum(1)))]


def test_nearest_unique_with_k_zero_draws_nothing():
    rng = np.random.default_rng(3)
    before = rng.bit_generator.state
    got = alvin.nearest_unique(np.zeros((3, 2)), np.zeros((5, 2)), np.arange(5), 0, rng)
    assert len(got) == 0 and got.dtype == np.int64 and rng.bit_generator.state == before


@pytest.mark.parametrize("name", sorted(set(acquisitions.ACQUISITIONS) - {"oracle"}))
def test_no_acquisition_but_the_oracle_reads_groups_or_unlabelled_labels(name):
    """The same context with the true groups, and with the groups and the unlabelled points'
    labels scrambled: every acquisition except the oracle picks exactly the same points."""
    params = {"alvin": {"alpha": 2.0, "anchors_per_minority": 5},
              "analogy": {"sources_per_class": 10}}.get(name, {})

    def ctx(scramble: bool) -> AcquisitionContext:
        c = _ctx(n=60, labelled=range(0, 60, 3), c=2, d=4, params=params)
        rng = np.random.default_rng(9)
        c.minority = rng.random(len(c.labelled)) < 0.3
        c.mc_probs = rng.dirichlet(np.ones(2), (5, 60))
        c.head = (rng.normal(size=(4, 2)), np.zeros(2))
        if scramble:
            c.group = np.random.default_rng(1).integers(0, 2, 60)
            y = c.y.copy()
            y[c.candidates] = 1 - y[c.candidates]
            c.y = y
        return c

    np.testing.assert_array_equal(acquire(name, ctx(False), 6), acquire(name, ctx(True), 6))


def test_irmv1_penalty_equals_the_authors_autograd_on_a_dummy_scale():
    """IRM's colored_mnist/main.py: penalty = (d/dw mean CE(w z, y) at w = 1)^2 per
    environment; here for two instances, two environments, three classes."""
    from rose.active.group_robust import IRMv1

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 8, 3, generator=g)
    y = torch.randint(0, 3, (2, 8), generator=g)
    envs = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 0], [1, 1, 0, 0, 0, 1, 1, 1]])
    rows = torch.tensor([[0], [1]])
    idx = torch.arange(8).expand(2, 8)
    ce = F.cross_entropy(logits.transpose(1, 2), y, reduction="none")
    got = IRMv1(envs, rows, 2, 3.0)(ce, idx, logits, y)
    for i in range(2):
        risks, pen = [], 0.0
        for e in range(2):
            m = envs[i] == e
            scale = torch.tensor(1.0, requires_grad=True)
            r = F.cross_entropy(logits[i, m] * scale, y[i, m])
            grad = torch.autograd.grad(r, [scale])[0]
            risks.append(r.item())
            pen += grad.item() ** 2
        # the authors' rescaling: a weight above 1 divides the whole loss
        assert got[i].item() == pytest.approx((np.mean(risks) + 3.0 * pen) / 3.0, rel=1e-5)


def test_irm_and_vrex_anneal_their_weight_and_rescale_as_the_authors_code():
    """IRM colored_mnist/main.py: penalty weight 1 before ``anneal`` steps, then lambda, the
    loss divided by the weight when it exceeds 1; per instance (a grid stacked)."""
    from rose.active.group_robust import VREx

    ce = torch.tensor([[1.0, 3.0, 2.0, 6.0]]).expand(3, 4)
    envs = torch.tensor([[0, 0, 1, 1]])
    rows = torch.zeros(3, 1, dtype=torch.long)
    idx = torch.arange(4).expand(3, 4)
    obj = VREx(envs, rows, 2, torch.tensor([10.0, 10.0, 0.5]), torch.tensor([0, 2, 2]))
    risk, var = 3.0, 1.0                               # env means 2 and 4
    before = [(risk + 10 * var) / 10, risk + var, risk + var]       # steps 0, 1: weight 1
    after = [(risk + 10 * var) / 10, (risk + 10 * var) / 10, risk + 0.5 * var]  # 0.5: no /
    for want in (before, before, after, after):
        np.testing.assert_allclose(obj(ce, idx).numpy(), want, rtol=1e-6)


def test_vrex_is_mean_risk_plus_beta_times_the_variance_of_environment_risks():
    from rose.active.group_robust import VREx

    ce = torch.tensor([[1.0, 3.0, 2.0, 6.0]])
    envs = torch.tensor([[0, 0, 1, 1]])
    got = VREx(envs, torch.tensor([[0]]), 2, 0.5)(ce, torch.arange(4)[None])
    r0, r1 = 2.0, 4.0                                  # environment means
    assert got.item() == pytest.approx((r0 + r1) / 2 + 0.5 * ((r0 - r1) / 2) ** 2)
    zero = VREx(envs, torch.tensor([[0]]), 2, 0.0)(ce, torch.arange(4)[None])
    assert zero.item() == pytest.approx(3.0)           # beta = 0: the mean of the risks


# ------------------------------------------------------------------- ALFA-Mix (closed form)

def test_alfa_mix_head_gradient_is_autograd_at_the_predicted_label():
    from rose.active.alfa_mix import head_gradient

    rng = np.random.default_rng(0)
    z, W, b = rng.normal(size=(5, 4)), rng.normal(size=(4, 3)), rng.normal(size=3)
    zt = torch.tensor(z, requires_grad=True)
    logits = zt @ torch.tensor(W) + torch.tensor(b)
    F.cross_entropy(logits, logits.argmax(1), reduction="sum").backward()
    np.testing.assert_allclose(head_gradient(z, W, b), zt.grad.numpy(), rtol=1e-10)


def test_alfa_mix_closed_form_moves_z_along_its_gradient_by_eps_times_the_anchor_distance():
    """alpha = (eps ||a - z|| / ||g||) g / (a - z) elementwise, so the mix (1 - alpha) z +
    alpha a is z + eps ||a - z|| g / ||g|| (the authors' calculate_optimum_alpha), eps = cap /
    sqrt(D); a flip is read off the head at that point."""
    from rose.active import alfa_mix

    W = np.array([[1.0, -1.0], [0.0, 0.0]])           # class 0 iff z_0 > 0
    b = np.zeros(2)
    z = np.array([[0.05, 1.0], [2.0, 1.0]])            # near / far from the boundary
    a = np.array([-1.0, 3.0])
    g = alfa_mix.head_gradient(z, W, b)
    eps = 0.2 / np.sqrt(2)
    step = eps * np.linalg.norm(a - z, axis=1, keepdims=True) * g / np.linalg.norm(
        g, axis=1, keepdims=True)
    moved = z + step
    assert moved[0, 0] < 0 < moved[1, 0]                # only the near point crosses
    assert alfa_mix.flips(z, a, g, 0.2, W, b).tolist() == [True, False]
    # the far point flips once the cap has grown enough; candidate_set grows it until the
    # candidates outnumber k
    assert alfa_mix.candidate_set(z, a[None], W, b, k=0, cap=0.2).tolist() == [True, False]
    assert alfa_mix.candidate_set(z, a[None], W, b, k=1, cap=0.2).tolist() == [True, True]


def test_alfa_mix_batch_is_the_candidate_nearest_each_k_means_centre():
    from rose.active.acquisitions import AcquisitionContext, acquire

    rng = np.random.default_rng(0)
    # labelled: two class anchors; candidates: two tight clusters near the boundary (all
    # flip) and far points that never flip at cap 0.2
    emb = np.concatenate([[[-3.0, 0.0], [3.0, 0.0]],
                          rng.normal([0.05, 5.0], 0.01, (5, 2)),
                          rng.normal([-0.05, -5.0], 0.01, (5, 2)),
                          rng.normal([9.0, 0.0], 0.01, (4, 2))])
    W, b = np.array([[-1.0, 1.0], [0.0, 0.0]]), np.zeros(2)
    y = (emb[:, 0] > 0).astype(int)
    ctx = AcquisitionContext(probs=np.full((16, 2), 0.5), emb=emb, labelled=np.array([0, 1]),
                             candidates=np.arange(2, 16), y=y, group=np.zeros(16, int),
                             n_groups=1, rng=np.random.default_rng(1), head=(W, b))
    got = acquire("alfa_mix", ctx, 2)
    assert sorted((got - 2) // 5) == [0, 1]              # pool rows 2-6 and 7-11
    assert ctx.fallback == 0 and np.all(got < 12)       # one per cluster, none of the far


def test_alfa_mix_anchors_and_gradient_by_hand():
    from rose.active import alfa_mix

    emb = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0]])
    a = alfa_mix.anchors(emb, np.array([0, 0, 1]), 3)
    # class 0: mean of its two rows; class 1: its one row; class 2 has none: all rows
    np.testing.assert_allclose(a, [[1.0, 0.0], [0.0, 4.0], [2 / 3, 4 / 3]])
    # logits far apart in one row and close in another: the softmax is per row
    W = np.array([[1.0, 0.0], [0.0, 1.0]])
    z = np.array([[1000.0, 999.0], [0.0, 1.0]])
    g = alfa_mix.head_gradient(z, W, np.zeros(2))
    p0 = 1 / (1 + np.exp(-1.0))                     # softmax of the larger logit
    np.testing.assert_allclose(g, [[p0 - 1, 1 - p0], [1 - p0, p0 - 1]], rtol=1e-9)


def test_alfa_mix_flips_use_eps_over_sqrt_d_and_the_bias():
    """A point at distance 0.15 from the boundary, anchor at distance 1 along the gradient:
    the mix moves it by eps ||a - z|| = cap / sqrt(D) (here D = 4, so cap 0.2 moves 0.1 and
    cap 0.4 moves 0.2); the boundary sits at z_0 = 0.5 because of the bias."""
    from rose.active import alfa_mix

    W = np.array([[1.0, -1.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    b = np.array([-0.25, 0.25])                    # class 0 iff z_0 > 0.25
    z = np.array([[0.4, 0.0, 0.0, 0.0]])
    a = np.array([-0.6, 0.0, 0.0, 0.0])
    g = alfa_mix.head_gradient(z, W, b)
    assert not alfa_mix.flips(z, a, g, 0.2, W, b)[0]      # moves to 0.3
    assert alfa_mix.flips(z, a, g, 0.4, W, b)[0]          # moves to 0.2


def test_alfa_mix_candidates_any_anchor_and_the_cap_stops_at_one():
    """Class 0 iff z_0 > 0; the mix moves z by cap / sqrt(2) x ||a - z|| towards -z_0."""
    from rose.active import alfa_mix

    W = np.array([[1.0, -1.0], [0.0, 0.0]])
    b = np.zeros(2)
    z = np.array([[0.05, 0.0]])
    # the first anchor flips it at cap 0.2, the second (z itself) never: it stays a candidate
    anchors = np.array([[-1.0, 0.0], [0.05, 0.0]])
    assert alfa_mix.candidate_set(z, anchors, W, b, k=5, cap=0.2).tolist() == [True]
    # at z_0 = 1 with the anchor 1.2856 away the flip needs cap > sqrt(2) / 1.2856 = 1.1:
    # the cap grows 0.2, ..., 1.0 and stops, so the point is never a candidate
    far = np.array([[1.0, 0.0]])
    anchor = np.array([[1.0 - 1.2856, 0.0]])
    assert not alfa_mix.candidate_set(far, anchor, W, b, k=5, cap=0.2)[0]
    assert alfa_mix.flips(far, anchor[0], alfa_mix.head_gradient(far, W, b), 1.2, W, b)[0]


def test_alfa_mix_falls_back_counted_and_reads_its_cap():
    from rose.active.acquisitions import AcquisitionContext, acquire

    emb = np.array([[-3.0, 0.0], [3.0, 0.0], [9.0, 0.0], [9.5, 0.0], [10.0, 0.0]])
    W, b = np.array([[-1.0, 1.0], [0.0, 0.0]]), np.zeros(2)

    def ctx(cap):
        c = AcquisitionContext(probs=np.full((5, 2), 0.5), emb=emb, labelled=np.array([0, 1]),
                               candidates=np.arange(2, 5), y=np.array([0, 1, 1, 1, 1]),
                               group=np.zeros(5, int), n_groups=1,
                               rng=np.random.default_rng(0), head=(W, b),
                               params={"alpha_cap": cap})
        c.fallback = 3
        return c
    c = ctx(0.2)                    # far from the boundary: nothing flips, all at random
    assert len(acquire("alfa_mix", c, 2)) == 2 and c.fallback == 3 + 2


def test_alfa_mix_k_means_picks_the_point_nearest_each_centre_of_normalised_features():
    from rose.active import alfa_mix

    # two directions, each with a short and a long vector: normalised, they are two tight
    # clusters and one point of each direction is chosen
    feats = np.array([[1.0, 0.0], [10.0, 0.2], [0.0, 1.0], [0.2, 10.0]])
    unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    got = alfa_mix.nearest_to_centres(unit, 2, seed=0)
    assert sorted(got // 2) == [0, 1]
    # nearest, not farthest: three points, the middle one is the centre's nearest
    line = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])
    assert alfa_mix.nearest_to_centres(line, 1, seed=0).tolist() == [1]
