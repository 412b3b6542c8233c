"""ALVIN: active learning via interpolation (Korakakis, Vlachos & Weller, EMNLP 2024,
arXiv 2410.08972), reimplemented from the paper's description; no public code was located, so
every unstated detail below is our choice (research notes, pitfall 5):

1. Minority split from training dynamics. Records of which labelled examples the model gets
   right are taken every ``eval_every`` steps of the round's training. An example is *minority*
   if it was hard to learn: right in less than ``threshold`` of the records (dataset
   cartography's "correctness", Swayamdipta et al. 2020; a small model memorises its labels, so
   being wrong at the end alone finds few), wrong at the last record, or forgotten at least once
   (right at one record, wrong at the next; Toneva et al. 2019). The rest of its class is
   *majority*.
2. Anchors a = lam f(x_i) + (1 - lam) f(x_j), x_i minority, x_j a random majority example of
   the same class, lam ~ Beta(alpha, alpha); ``anchors_per_minority`` anchors per x_i.
   f = the current model's last hidden layer.
3. Selection: anchors in random order take turns claiming their nearest unclaimed unlabelled
   point (Euclidean) until the batch is full, one point per anchor per turn (diversity).
   With no minority examples the batch is filled at random and counted as a fallback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from rose.active.acquisitions import AcquisitionContext


def minority_split(correct: np.ndarray, threshold: float = 0.7) -> np.ndarray:
    """correct [n, records] bool -> minority [n]: right in fewer than ``threshold`` of the
    records, wrong at the last record, or forgotten at least once (a correct -> wrong
    transition between consecutive records)."""
    forgotten = (correct[:, :-1] & ~correct[:, 1:]).any(1)
    return (correct.mean(1) < threshold) | ~correct[:, -1] | forgotten


def anchors(h_minority: np.ndarray, h_majority: np.ndarray, per_minority: int, alpha: float,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Interpolation anchors for one class: returns (anchors [M K, h], lam, i, j) so that
    anchors = lam h_minority[i] + (1 - lam) h_majority[j]."""
    i = np.repeat(np.arange(len(h_minority)), per_minority)
    j = rng.integers(0, len(h_majority), len(i))
    lam = rng.beta(alpha, alpha, len(i))[:, None]
    return lam * h_minority[i] + (1 - lam) * h_majority[j], lam[:, 0], i, j


def nearest_unique(targets: np.ndarray, emb: np.ndarray, candidates: np.ndarray, k: int,
                   rng: np.random.Generator) -> np.ndarray:
    """Targets in random order take turns claiming their nearest unclaimed candidate until k are
    chosen (or candidates run out). Returns pool indices."""
    k = min(k, len(candidates))
    if len(targets) == 0 or k == 0:
        return np.empty(0, dtype=np.int64)
    targets = targets[rng.permutation(len(targets))]
    cand = emb[candidates]
    d = ((targets ** 2).sum(1)[:, None] - 2 * targets @ cand.T + (cand ** 2).sum(1)[None])
    # no target needs more than its k nearest: partial sort (argpartition), then order those k
    part = np.argpartition(d, k - 1, axis=1)[:, :k] if k < d.shape[1] else \
        np.tile(np.arange(d.shape[1]), (len(d), 1))
    order = np.take_along_axis(part, np.argsort(np.take_along_axis(d, part, 1), 1), 1)
    taken = np.zeros(len(candidates), dtype=bool)
    ptr = np.zeros(len(targets), dtype=np.int64)
    chosen: list[int] = []
    while len(chosen) < k and (ptr < order.shape[1]).any():
        for t in range(len(targets)):
            while ptr[t] < order.shape[1] and taken[order[t, ptr[t]]]:
                ptr[t] += 1
            if ptr[t] < order.shape[1]:
                c = order[t, ptr[t]]
                taken[c] = True
                chosen.append(int(c))
                if len(chosen) == k:
                    break
    return candidates[np.asarray(chosen, dtype=np.int64)]


def fill_at_random(ctx: AcquisitionContext, chosen: np.ndarray, k: int) -> np.ndarray:
    """Top a short batch up with random candidates; the number is counted in ctx.fallback."""
    k = min(k, len(ctx.candidates))
    if len(chosen) >= k:
        return chosen[:k]
    rest = np.setdiff1d(ctx.candidates, chosen)
    extra = ctx.rng.choice(rest, k - len(chosen), replace=False)
    ctx.fallback += len(extra)
    return np.concatenate([chosen, extra]).astype(np.int64)


def class_split(ctx: AcquisitionContext) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """class -> (labelled minority pool indices, labelled majority pool indices)."""
    if ctx.minority is None:
        raise ValueError("ALVIN and analogy need training dynamics (a minority split)")
    y = ctx.y[ctx.labelled]
    return {int(c): (ctx.labelled[(y == c) & ctx.minority],
                     ctx.labelled[(y == c) & ~ctx.minority]) for c in np.unique(y)}


def acquire(ctx: AcquisitionContext, k: int) -> np.ndarray:
    alpha = ctx.params.get("alpha", 2.0)
    per = ctx.params.get("anchors_per_minority", 5)
    targets = [anchors(ctx.emb[mino], ctx.emb[majo], per, alpha, ctx.rng)[0]
               for mino, majo in class_split(ctx).values() if len(mino) and len(majo)]
    targets = np.concatenate(targets) if targets else np.empty((0, ctx.emb.shape[1]))
    return fill_at_random(ctx, nearest_unique(targets, ctx.emb, ctx.candidates, k, ctx.rng), k)
