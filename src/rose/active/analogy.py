"""The proposal's analogy acquisition (novel; no published version): label the unlabelled points
whose representation is nearest to r0 + (r1 - r2).

"r2 is to r1 as r0 is to ?": r1 - r2 is a within-class shift between groups of class c, r0 an
example of another class c'. Without group labels we build the shift from the same minority
split as ALVIN (training dynamics, :func:`rose.active.alvin.minority_split`):

  r0  a labelled majority example of class c'
  r2  the labelled minority example of class c nearest to r0 (so r2 shares r0's attribute, e.g.
      a class-c digit in r0's colour)
  r1  the mean of class c's labelled majority examples (class c in its majority attribute)
  q = r0 + (r1 - r2)  = class c' shown with class c's majority attribute: a minority point of c'

On binary Colored MNIST (c = 0 mostly red, c' = 1 mostly green): r0 green 1-shape, r2 a green
0-shape, r1 red 0-shapes, so q is a red 1-shape, the minority group of class 1. Unlike ALVIN,
whose anchors lie between examples already labelled, q can fall in a group with no labels yet.
ALVIN is the special case r0 = f(x_j) majority, r1 - r2 = lam (f(x_i) - f(x_j)), same class.

Up to ``sources_per_class`` r0 per class c' (random majority examples); one target per
(r0, c != c'). Targets claim nearest unlabelled points in turn (:func:`alvin.nearest_unique`);
with no usable shift the batch is filled at random and counted as a fallback.

Ablations, each an acquisition of its own (rose.active.acquisitions): ``analogy_within`` (the
shift from r0's own class), ``analogy_shuffled`` (shifts permuted among the targets) and
``analogy_oracle_split`` (the same rule on the true minority split instead of the one from
training dynamics: an upper bound, it reads the groups through the loop).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rose.active.alvin import class_split, fill_at_random, nearest_unique

if TYPE_CHECKING:
    from rose.active.acquisitions import AcquisitionContext


def analogy_targets(emb: np.ndarray, split: dict[int, tuple[np.ndarray, np.ndarray]],
                    sources_per_class: int, rng: np.random.Generator,
                    within_class: bool = False, shuffle_offsets: bool = False) -> np.ndarray:
    """q = r0 + (r1 - r2) for every r0 (majority of c') and every other class c with both a
    minority and a majority example. emb is indexed by pool index.

    Ablations (issue 15: is the analogy the mechanism?): ``within_class`` takes the shift from
    r0's own class (c = c'), so q moves a majority point towards its own class's majority, the
    ALVIN-like direction, instead of carrying class c's attribute shift to class c';
    ``shuffle_offsets`` pairs each r0 with another target's (r1 - r2) (a seeded permutation),
    keeping the same sources and the same set of shifts but breaking which shift goes where."""
    sources, offsets = [], []
    for c_src, (_, maj_src) in split.items():
        if not len(maj_src):
            continue
        r0 = emb[rng.permutation(maj_src)[:sources_per_class]]
        for c, (mino, majo) in split.items():
            if (c == c_src) != within_class or not len(mino) or not len(majo):
                continue
            r1 = emb[majo].mean(0)
            d = ((r0[:, None] - emb[mino][None]) ** 2).sum(-1)
            r2 = emb[mino][d.argmin(1)]
            sources.append(r0)
            offsets.append(r1 - r2)
    if not sources:
        return np.empty((0, emb.shape[1]))
    r0, shift = np.concatenate(sources), np.concatenate(offsets)
    if shuffle_offsets:
        shift = shift[rng.permutation(len(shift))]
    return r0 + shift


def acquire(ctx: AcquisitionContext, k: int, within_class: bool = False,
            shuffle_offsets: bool = False) -> np.ndarray:
    q = analogy_targets(ctx.emb, class_split(ctx), ctx.params.get("sources_per_class", 10),
                        ctx.rng, within_class, shuffle_offsets)
    return fill_at_random(ctx, nearest_unique(q, ctx.emb, ctx.candidates, k, ctx.rng), k)
