"""ALFA-Mix (Parvaneh et al., CVPR 2022), the closed-form variant: the interpolation baseline
closest to ALVIN. Where ALVIN mixes a minority example with majority anchors of its class and
asks which unlabelled points lie near the mix, ALFA-Mix mixes each *unlabelled* point's
representation z with every class's labelled anchor and asks whether its prediction flips.

With f(z) = W^T z + b the classifier head, yhat = argmax f(z), g = d CE(f(z), yhat) / d z =
W (p - onehot(yhat)), and the anchor z*_c = the mean representation of the labelled points of
class c (all labelled points when c has none), the closed-form mixing coefficients (paper
eq. 5, the authors' ``calculate_optimum_alpha``) are

    alpha = (eps ||z*_c - z|| / ||g||) g / (z*_c - z + 1e-8)        (elementwise),
    z~    = (1 - alpha) z + alpha z*_c,                eps = cap / sqrt(D),

and z is a *candidate* if argmax f(z~) != yhat for some class c. The cap grows by ``cap`` per
pass (``cap``, 2 ``cap``, ... while it is below 1) until the candidates outnumber the batch.
The batch: k-means with k clusters on the L2-normalised representations of the candidates,
the candidate nearest each centre (scikit-learn's KMeans, seeded from the round's generator);
too few candidates, or empty clusters, are filled at random and counted (``ctx.fallback``).

Defaults as the authors' README for the closed form (``--alpha_closed_form_approx --alpha_cap
0.2``). The learned-alpha variant (``--alpha_opt``, a few Adam steps on alpha per class) is not
implemented: the closed form is its first-order approximation and needs no extra training.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-8


def anchors(emb: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """[C, D] the mean labelled representation per class (all labelled points if a class has
    none), as the authors' code."""
    out = np.empty((n_classes, emb.shape[1]), dtype=emb.dtype)
    for c in range(n_classes):
        rows = emb[labels == c]
        out[c] = (rows if len(rows) else emb).mean(0)
    return out


def head_gradient(z: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """d CE(W^T z + b, yhat) / d z at yhat = argmax: W (p - onehot(yhat)), [N, D]."""
    logits = z @ W + b
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(len(z)), logits.argmax(1)] -= 1.0
    return p @ W.T


def flips(z: np.ndarray, anchor: np.ndarray, grad: np.ndarray, cap: float, W: np.ndarray,
          b: np.ndarray) -> np.ndarray:
    """[N] bool: does the closed-form mix of each z with ``anchor`` change its prediction?"""
    eps = cap / np.sqrt(z.shape[1])
    diff = anchor[None, :] - z
    scale = eps * np.linalg.norm(diff, axis=1) / np.maximum(np.linalg.norm(grad, axis=1), 1e-30)
    alpha = scale[:, None] * grad / (diff + EPS)
    mixed = (1 - alpha) * z + alpha * anchor[None, :]
    return (mixed @ W + b).argmax(1) != (z @ W + b).argmax(1)


def candidate_set(z: np.ndarray, anchors_: np.ndarray, W: np.ndarray, b: np.ndarray, k: int,
                  cap: float = 0.2) -> np.ndarray:
    """[N] bool: the points whose prediction some anchor mix flips, the cap grown until they
    outnumber k (or it reaches 1)."""
    grad = head_gradient(z, W, b)
    cand = np.zeros(len(z), dtype=bool)
    level = 0.0
    while level < 1.0:
        level += cap
        for a in anchors_:
            cand |= flips(z, a, grad, level, W, b)
        if cand.sum() > k:
            break
    return cand


def nearest_to_centres(feats: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Indices of the points nearest to each of k k-means centres (at most k: an empty
    cluster gives none)."""
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(feats)
    d = ((feats - km.cluster_centers_[km.labels_]) ** 2).sum(1)
    return np.array([np.flatnonzero(km.labels_ == c)[np.argmin(d[km.labels_ == c])]
                     for c in range(k) if (km.labels_ == c).any()], dtype=np.int64)


def acquire(ctx, k: int) -> np.ndarray:
    """ALFA-Mix's batch of k candidates (``ctx.head`` = the head's (W [D, C], b [C]))."""
    if ctx.head is None:
        raise ValueError("alfa_mix needs the classifier head (AcquisitionContext.head)")
    W, b = ctx.head
    k = min(k, len(ctx.candidates))
    z = ctx.emb[ctx.candidates]
    a = anchors(ctx.emb[ctx.labelled], ctx.y[ctx.labelled], W.shape[1])
    cand = np.flatnonzero(candidate_set(z, a, W, b, k, ctx.params.get("alpha_cap", 0.2)))
    chosen = np.empty(0, dtype=np.int64)
    if len(cand):
        feats = z[cand] / np.maximum(np.linalg.norm(z[cand], axis=1, keepdims=True), 1e-12)
        chosen = cand[nearest_to_centres(feats, min(k, len(cand)),
                                         int(ctx.rng.integers(2 ** 31)))]
    if len(chosen) < k:
        rest = np.setdiff1d(np.arange(len(z)), chosen)
        ctx.fallback += k - len(chosen)
        chosen = np.concatenate([chosen, ctx.rng.choice(rest, k - len(chosen), replace=False)])
    return ctx.candidates[chosen]
