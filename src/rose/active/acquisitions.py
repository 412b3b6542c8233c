"""Acquisition functions: which unlabelled pool points to label next.

Each takes an :class:`AcquisitionContext` (the current model's view of the pool) and a batch
size k and returns k pool indices, all from ``ctx.candidates`` (the unlabelled points), distinct.
Standard forms (research notes section 3; p = predictive distribution, p_t = MC-dropout samples):

  random            uniform without replacement
  entropy           largest H[p] = -sum_c p_c log p_c                       (Shannon 1948)
  margin            smallest p_(1) - p_(2)                                  (Scheffer et al. 2001)
  least_confidence  smallest p_(1)                                          (Lewis & Gale 1994)
  bald              largest H[mean_t p_t] - mean_t H[p_t]                  (Houlsby et al. 2011;
                    MC dropout as in Gal et al. 2017)
  coreset           greedy k-centre in feature space: repeatedly add the candidate farthest from
                    labelled + chosen                                       (Sener & Savarese 2018)
  badge             gradient embedding g(x) = (p - onehot(argmax p)) (x) h(x) (the last
                    layer's CE gradient at the predicted label), batch by k-means++ seeding
                    started, as the authors' init_centers, at the largest ||g(x)||
                                                                            (Ash et al. 2020)
  oracle            group-balanced upper bound: repeatedly take a random candidate of the group
                    with the fewest labels so far (uses the true groups)
  alvin, analogy    :mod:`rose.active.alvin`, :mod:`rose.active.analogy`
  alvin_a<alpha>_k<K>
                    ALVIN at another alpha and K (the config's ``alvin_sweep``)
  alfa_mix          :mod:`rose.active.alfa_mix` (Parvaneh et al. 2022, closed form)
  analogy_within, analogy_shuffled
                    the analogy rule's ablations (shift from r0's own class; shifts permuted)
  analogy_oracle_split
                    the analogy rule on the true minority split (the loop gives it; an upper
                    bound that reads the groups)

The batch versions take the top k scores (ties broken by the seeded random order), as in BaaL's
heuristics; BatchBALD-style joint scoring is not implemented.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from rose.active import alfa_mix, alvin, analogy

EPS = 1e-12


@dataclass
class AcquisitionContext:
    probs: np.ndarray              # [N, C] pool predictive probabilities (eval mode)
    emb: np.ndarray                # [N, h] pool representations (last hidden layer)
    labelled: np.ndarray           # pool indices already labelled
    candidates: np.ndarray         # pool indices not yet labelled
    y: np.ndarray                  # [N] labels (read only at labelled indices, or by oracle)
    group: np.ndarray              # [N] true groups (read only by the oracle)
    n_groups: int
    rng: np.random.Generator
    minority: np.ndarray | None = None   # [len(labelled)] bool, from training dynamics
    mc_probs: np.ndarray | None = None   # [T, N, C] MC-dropout probabilities (BALD)
    params: dict = field(default_factory=dict)   # per-acquisition settings from the config
    fallback: int = 0              # points filled at random because a rule had too few targets
    head: tuple[np.ndarray, np.ndarray] | None = None   # classifier head (W [h, C], b [C])


def entropy_scores(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(p + EPS)).sum(-1)


def margin_scores(p: np.ndarray) -> np.ndarray:
    """p_(1) - p_(2): small = uncertain."""
    top2 = np.sort(p, axis=-1)[..., -2:]
    return top2[..., 1] - top2[..., 0]


def bald_scores(mc: np.ndarray) -> np.ndarray:
    """Mutual information between the label and the weights, mc = [T, N, C]."""
    return entropy_scores(mc.mean(0)) - entropy_scores(mc).mean(0)


def top_k(scores: np.ndarray, candidates: np.ndarray, k: int, rng: np.random.Generator
          ) -> np.ndarray:
    """The k candidates with the largest scores; ties broken by a random order."""
    order = rng.permutation(len(candidates))
    s = scores[candidates[order]]
    return candidates[order[np.argsort(-s, kind="stable")[:k]]]


def random_acq(ctx: AcquisitionContext, k: int) -> np.ndarray:
    return ctx.rng.choice(ctx.candidates, size=min(k, len(ctx.candidates)), replace=False)


def entropy_acq(ctx: AcquisitionContext, k: int) -> np.ndarray:
    return top_k(entropy_scores(ctx.probs), ctx.candidates, k, ctx.rng)


def margin_acq(ctx: AcquisitionContext, k: int) -> np.ndarray:
    return top_k(-margin_scores(ctx.probs), ctx.candidates, k, ctx.rng)


def least_confidence_acq(ctx: AcquisitionContext, k: int) -> np.ndarray:
    return top_k(-ctx.probs.max(-1), ctx.candidates, k, ctx.rng)


def bald_acq(ctx: AcquisitionContext, k: int) -> np.ndarray:
    if ctx.mc_probs is None:
        raise ValueError("bald needs MC-dropout probabilities (model dropout > 0)")
    return top_k(bald_scores(ctx.mc_probs), ctx.candidates, k, ctx.rng)


def k_centre_greedy(emb: np.ndarray, labelled: np.ndarray, candidates: np.ndarray, k: int
                    ) -> np.ndarray:
    """Sener & Savarese's greedy k-centre. Written here: scikit-learn and scipy have no k-centre;
    each step is one distance row, O(k N d)."""
    cand = emb[candidates]
    if len(labelled):
        d = np.full(len(candidates), np.inf)
        for s in range(0, len(labelled), 1024):   # min distance to the labelled set
            block = emb[labelled[s:s + 1024]]
            d = np.minimum(d, ((cand[:, None] - block[None]) ** 2).sum(-1).min(1))
    else:
        d = np.full(len(candidates), np.inf)
    chosen = []
    for _ in range(min(k, len(candidates))):
        j = int(np.argmax(d))
        chosen.append(j)
        d = np.minimum(d, ((cand - cand[j]) ** 2).sum(-1))
        d[j] = -np.inf
    return candidates[np.asarray(chosen, dtype=np.int64)]


def coreset_acq(ctx: AcquisitionContext, k: int) -> np.ndarray:
    return k_centre_greedy(ctx.emb, ctx.labelled, ctx.candidates, k)


def badge_embedding(p: np.ndarray, h: np.ndarray) -> np.ndarray:
    """d CE(W h + b, yhat) / d W at yhat = argmax p: (p - onehot(yhat)) outer h, flattened to
    [N, C * h] (Ash et al. 2020, eq. 1)."""
    g = p.copy()
    g[np.arange(len(p)), p.argmax(-1)] -= 1.0
    return (g[:, :, None] * h[:, None, :]).reshape(len(p), -1)


def badge_seeding(g: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """BADGE's batch (Ash et al. 2020; the authors' ``init_centers``): the first centre is the
    embedding of largest norm, each next one is drawn with probability proportional to its
    squared distance to the nearest centre so far (D^2 sampling). Written out because
    scikit-learn's kmeans_plusplus draws its first centre uniformly at random. Stops early
    when every remaining point coincides with a centre (returns fewer than k)."""
    chosen = [int(np.argmax((g ** 2).sum(1)))]
    d2 = ((g - g[chosen[0]]) ** 2).sum(1)
    while len(chosen) < k and d2.sum() > 0:
        j = int(rng.choice(len(g), p=d2 / d2.sum()))
        chosen.append(j)
        d2 = np.minimum(d2, ((g - g[j]) ** 2).sum(1))
    return np.asarray(chosen)


def badge_acq(ctx: AcquisitionContext, k: int) -> np.ndarray:
    """:func:`badge_seeding` on the candidates' gradient embeddings."""
    k = min(k, len(ctx.candidates))
    g = badge_embedding(ctx.probs[ctx.candidates], ctx.emb[ctx.candidates])
    if not np.any(g):   # every gradient zero: nothing to spread over
        ctx.fallback += k
        return random_acq(ctx, k)
    chosen = np.unique(badge_seeding(g, k, ctx.rng))
    if len(chosen) < k:   # duplicate seeds when points coincide: fill at random (counted)
        rest = np.setdiff1d(np.arange(len(ctx.candidates)), chosen)
        ctx.fallback += k - len(chosen)
        chosen = np.concatenate([chosen, ctx.rng.choice(rest, k - len(chosen), replace=False)])
    return ctx.candidates[chosen]


def oracle_acq(ctx: AcquisitionContext, k: int) -> np.ndarray:
    """Group-balanced sampling with the true groups: each pick goes to the group with the fewest
    labels among those that still have candidates (an upper bound, not a method)."""
    counts = np.bincount(ctx.group[ctx.labelled], minlength=ctx.n_groups).astype(float)
    by_group = {g: list(ctx.rng.permutation(ctx.candidates[ctx.group[ctx.candidates] == g]))
                for g in range(ctx.n_groups)}
    chosen = []
    for _ in range(min(k, len(ctx.candidates))):
        avail = np.array([g for g in range(ctx.n_groups) if by_group[g]])
        g = avail[np.argmin(counts[avail])]
        chosen.append(by_group[g].pop())
        counts[g] += 1
    return np.asarray(chosen, dtype=np.int64)


def alvin_acq(ctx: AcquisitionContext, k: int) -> np.ndarray:
    return alvin.acquire(ctx, k)


def analogy_acq(ctx: AcquisitionContext, k: int) -> np.ndarray:
    return analogy.acquire(ctx, k)


def analogy_within_acq(ctx: AcquisitionContext, k: int) -> np.ndarray:
    return analogy.acquire(ctx, k, within_class=True)


def analogy_shuffled_acq(ctx: AcquisitionContext, k: int) -> np.ndarray:
    return analogy.acquire(ctx, k, shuffle_offsets=True)


ACQUISITIONS: dict[str, Callable[[AcquisitionContext, int], np.ndarray]] = {
    "random": random_acq, "entropy": entropy_acq, "margin": margin_acq,
    "least_confidence": least_confidence_acq, "bald": bald_acq, "coreset": coreset_acq,
    "badge": badge_acq, "alvin": alvin_acq, "analogy": analogy_acq, "oracle": oracle_acq,
    "analogy_within": analogy_within_acq, "analogy_shuffled": analogy_shuffled_acq,
    "analogy_oracle_split": analogy_acq, "alfa_mix": alfa_mix.acquire,
}
NEEDS_DYNAMICS = ("alvin", "analogy", "analogy_within", "analogy_shuffled")
TRUE_SPLIT = ("analogy_oracle_split",)    # the loop hands them the true minority split
NEEDS_HEAD = ("alfa_mix",)


def sweep_name(alpha: float, anchors: int) -> str:
    """The acquisition name of ALVIN at one point of ``alvin_sweep``."""
    return f"alvin_a{alpha:g}_k{anchors}"


def method_of(name: str) -> str:
    """The acquisition function behind a name (a sweep point of ALVIN is ALVIN)."""
    return "alvin" if name.startswith("alvin_a") else name


def acquire(name: str, ctx: AcquisitionContext, k: int) -> np.ndarray:
    if method_of(name) not in ACQUISITIONS:
        raise ValueError(f"unknown acquisition {name!r}; expected one of {list(ACQUISITIONS)}")
    chosen = ACQUISITIONS[method_of(name)](ctx, k)
    if not (len(np.unique(chosen)) == len(chosen) == min(k, len(ctx.candidates))
            and np.isin(chosen, ctx.candidates).all()):
        raise RuntimeError(f"acquisition {name} returned an invalid batch")
    return chosen
