"""The full Fashion-MNIST (and MNIST) from IDX files: source resolution, verification, the
official test split. Small generated files in LeCun's IDX format stand in for the real ones, so
everything but the last test runs on machines without Debian's dataset-fashion-mnist."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from rose.data import download, idx, splits

from .test_data import _Response

PACKAGE_DIR = Path("/usr/share/datasets/fashion-mnist")
N_CLASSES = 3
OFFICIAL_CFG = {"split": {"seed": 0, "val": 0.1, "test": "official"}, "allow_download": False}


def _idx(arr: np.ndarray) -> bytes:
    """LeCun's IDX format: 0x00 0x00, type 0x08 (unsigned byte), ndim, big-endian u4 dims."""
    header = bytes([0, 0, 0x08, arr.ndim]) + np.array(arr.shape, ">u4").tobytes()
    return header + arr.astype(np.uint8).tobytes()


def make_idx_set(directory: Path, seed: int = 0, per_class: tuple[int, int] = (20, 10),
                 compress: bool = True) -> dict:
    """Write the four files (``per_class`` train / test images of each of N_CLASSES classes,
    5x5 random pixels, labels shuffled) and return the arrays and their MD5 tables."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    out = {"arrays": {}, "raw_md5": {}, "gz_md5": {}}
    for part, n in zip(("train", "test"), per_class, strict=True):
        labels = rng.permutation(np.repeat(np.arange(N_CLASSES), n)).astype(np.uint8)
        images = rng.integers(0, 256, (len(labels), 5, 5), dtype=np.uint8)
        for kind, arr in (("images", images), ("labels", labels)):
            stem = idx.STEMS[f"{part}_{kind}"]
            raw = _idx(arr)
            blob = gzip.compress(raw) if compress else raw
            (directory / (f"{stem}.gz" if compress else stem)).write_bytes(blob)
            out["arrays"][f"{part}_{kind}"] = arr
            out["raw_md5"][stem] = hashlib.md5(raw).hexdigest()
            out["gz_md5"][stem] = hashlib.md5(blob).hexdigest()
    return out


def _load(directory: Path, made: dict, name: str = "fashion_mnist", **kw) -> idx.IdxData:
    kw.setdefault("package_dirs", {})
    return idx.load_idx(name, directory, raw_md5={name: made["raw_md5"]}, **kw)


@pytest.mark.parametrize("compress", [True, False])
def test_generated_files_round_trip_and_verify(tmp_path, compress):
    made = make_idx_set(tmp_path / "idx", compress=compress)
    d = _load(tmp_path / "idx", made)
    for part, arr in made["arrays"].items():
        key = {"images": "X", "labels": "y"}[part.split("_")[1]] + "_" + part.split("_")[0]
        assert np.array_equal(getattr(d, key), arr)
    assert d.source.kind == "idx_dir" and "data.idx_dir" in d.source.label
    assert {f["md5_of"] for f in d.files.values()} == {"uncompressed"}
    assert {s: f["md5"] for s, f in d.files.items()} == made["raw_md5"]


def test_the_default_table_refuses_files_that_are_not_the_real_ones(tmp_path):
    make_idx_set(tmp_path / "idx")
    with pytest.raises(download.DatasetFileError, match=r"train-images-idx3-ubyte\.gz has MD5"):
        idx.load_idx("fashion_mnist", tmp_path / "idx", package_dirs={})


@pytest.mark.parametrize("compress", [True, False])
def test_a_truncated_file_is_named(tmp_path, compress):
    made = make_idx_set(tmp_path / "idx", compress=compress)
    path = tmp_path / "idx" / ("t10k-images-idx3-ubyte" + (".gz" if compress else ""))
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(download.DatasetFileError, match=r"truncated|not a complete IDX") as err:
        _load(tmp_path / "idx", made)
    assert str(path) in str(err.value) and "data.idx_dir" in str(err.value)


@pytest.mark.parametrize("compress", [True, False])
def test_a_flipped_byte_is_named(tmp_path, compress):
    made = make_idx_set(tmp_path / "idx", compress=compress)
    path = tmp_path / "idx" / ("train-labels-idx1-ubyte" + (".gz" if compress else ""))
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0x01          # gz: corrupts the deflate stream or its CRC
    path.write_bytes(bytes(blob))
    with pytest.raises(download.DatasetFileError) as err:
        _load(tmp_path / "idx", made)
    assert str(path) in str(err.value)


def test_altered_data_in_a_valid_gz_fails_its_uncompressed_md5(tmp_path):
    """A re-compressed file with one pixel changed: valid gzip, valid IDX, wrong data."""
    made = make_idx_set(tmp_path / "idx")
    path = tmp_path / "idx" / "t10k-images-idx3-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[-1] ^= 0xFF
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(download.DatasetFileError, match="uncompressed bytes") as err:
        _load(tmp_path / "idx", made)
    assert str(path) in str(err.value)


def test_a_missing_file_names_it_and_the_reinstall(tmp_path):
    made = make_idx_set(tmp_path / "pkg")
    (tmp_path / "pkg" / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(download.DatasetFileError, match="train-images-idx3-ubyte") as err:
        idx.load_idx("fashion_mnist", None, raw_md5={"fashion_mnist": made["raw_md5"]},
                     package_dirs={"fashion_mnist": tmp_path / "pkg"})
    msg = str(err.value)
    assert "apt-get install --reinstall dataset-fashion-mnist" in msg
    assert "data.idx_dir" in msg and "data.allow_download" in msg


def test_idx_dir_beats_the_package_which_beats_the_download(tmp_path):
    """Three sources with different contents: the one read is the first that applies."""
    made = {k: make_idx_set(tmp_path / k, seed=i)
            for i, k in enumerate(("mine", "pkg", "raw/fashion_mnist"))}
    md5 = {k: v["raw_md5"] for k, v in made.items()}
    gz = {"fashion_mnist": made["raw/fashion_mnist"]["gz_md5"]}

    def load(idx_dir, pkg, key):
        return idx.load_idx("fashion_mnist", idx_dir, tmp_path / "raw", False,
                            raw_md5={"fashion_mnist": md5[key]}, gz_md5=gz,
                            package_dirs={"fashion_mnist": pkg})

    d = load(tmp_path / "mine", tmp_path / "pkg", "mine")
    assert d.source.kind == "idx_dir"
    assert np.array_equal(d.y_train, made["mine"]["arrays"]["train_labels"])
    d = load(None, tmp_path / "pkg", "pkg")
    assert d.source.kind == "package" and "Debian package dataset-fashion-mnist" in d.source.label
    assert np.array_equal(d.y_train, made["pkg"]["arrays"]["train_labels"])
    d = load(None, tmp_path / "no-such-package", "raw/fashion_mnist")   # the download cache
    assert d.source.kind == "download" and d.source.label == download.FASHION_URL
    assert np.array_equal(d.y_train, made["raw/fashion_mnist"]["arrays"]["train_labels"])


def test_download_is_the_last_resort_and_fetches_every_file(tmp_path):
    made = make_idx_set(tmp_path / "served")
    asked = []

    def urlopen(url, timeout):
        asked.append(url)
        return _Response((tmp_path / "served" / url.rsplit("/", 1)[1]).read_bytes())

    d = idx.load_idx("fashion_mnist", None, tmp_path / "raw", True,
                     raw_md5={"fashion_mnist": made["raw_md5"]},
                     gz_md5={"fashion_mnist": made["gz_md5"]},
                     package_dirs={}, urlopen=urlopen)
    assert d.source.kind == "download" and len(asked) == 4
    assert all(u.startswith(download.FASHION_URL) for u in asked)
    assert np.array_equal(d.X_test, made["arrays"]["test_images"])


def test_offline_with_nothing_found_names_every_way_out(tmp_path):
    with pytest.raises(download.OfflineDatasetError) as err:
        idx.load_idx("fashion_mnist", None, tmp_path / "raw", False,
                     package_dirs={"fashion_mnist": tmp_path / "absent"})
    msg = str(err.value)
    assert "data.allow_download" in msg and "data.idx_dir" in msg and "dataset-fashion-mnist" in msg


def test_mnist_is_checked_by_its_gz_md5_and_uncompressed_files_are_refused(tmp_path):
    made = make_idx_set(tmp_path / "gz")
    d = idx.load_idx("mnist", tmp_path / "gz", gz_md5={"mnist": made["gz_md5"]},
                     package_dirs={})
    assert {f["md5_of"] for f in d.files.values()} == {"gz"}
    make_idx_set(tmp_path / "plain", compress=False)
    with pytest.raises(download.DatasetFileError, match="no verified MD5"):
        idx.load_idx("mnist", tmp_path / "plain", package_dirs={})


@pytest.fixture
def fashion_dir(tmp_path, monkeypatch) -> tuple[Path, dict]:
    """Generated files accepted as fashion_mnist (their MD5s in the table), no package dir."""
    made = make_idx_set(tmp_path / "idx", per_class=(40, 10))
    monkeypatch.setitem(idx.RAW_MD5, "fashion_mnist", made["raw_md5"])
    monkeypatch.setattr(idx, "PACKAGE_DIRS", {})
    return tmp_path / "idx", made


def _rows(X: np.ndarray, y: np.ndarray) -> list[bytes]:
    """Each (image, label) as bytes, sorted: a multiset to compare parts with."""
    return sorted(x.tobytes() + bytes([int(c)]) for x, c in zip(X, y, strict=True))


def test_official_split_tests_on_the_official_test_set(fashion_dir):
    folder, made = fashion_dir
    a = made["arrays"]
    cfg = dict(OFFICIAL_CFG, idx_dir=str(folder))
    arrays, manifest = splits.prepare("fashion_mnist", cfg)
    as_uint8 = {k: np.round(v * 255).astype(np.uint8)[:, 0] for k, v in arrays.items()
                if k.startswith("X_")}
    # test: exactly the official test images with their labels, in a shuffled order
    assert _rows(as_uint8["X_test"], arrays["y_test"]) == _rows(a["test_images"],
                                                               a["test_labels"])
    assert not np.array_equal(as_uint8["X_test"], a["test_images"])
    assert np.bincount(arrays["y_test"]).tolist() == [10] * N_CLASSES
    # val: a stratified 10% of the official training set; train: the rest of it
    assert np.bincount(arrays["y_val"]).tolist() == [4] * N_CLASSES
    assert np.bincount(arrays["y_train"]).tolist() == [36] * N_CLASSES
    both = (np.concatenate([as_uint8["X_train"], as_uint8["X_val"]]),
            np.concatenate([arrays["y_train"], arrays["y_val"]]))
    assert _rows(*both) == _rows(a["train_images"], a["train_labels"])
    assert len(np.unique(arrays["y_train"][:6])) > 1     # stored shuffled, not class-sorted
    assert manifest["split"]["test"] == "official"
    assert manifest["split"]["official"]["train"] == 120
    assert manifest["split"]["official"]["test"] == 30
    assert str(folder) in manifest["source"]
    assert {s: f["md5"] for s, f in manifest["files"].items()} == made["raw_md5"]
    again, _ = splits.prepare("fashion_mnist", cfg)
    other, _ = splits.prepare("fashion_mnist", dict(cfg, split=dict(cfg["split"], seed=1)))
    assert all(np.array_equal(arrays[k], again[k]) for k in arrays)
    assert not np.array_equal(arrays["y_val"], other["y_val"])


def test_official_split_keeps_class_proportions_of_unbalanced_data():
    y = np.r_[np.repeat([0, 1, 2], [300, 200, 100]), np.repeat([0, 1, 2], [50, 30, 20])]
    parts = splits.official_split(y, 600, 0.1, seed=3)
    assert sorted(parts["test"].tolist()) == list(range(600, 700))
    assert np.bincount(y[parts["val"]]).tolist() == [30, 20, 10]
    assert np.bincount(y[parts["train"]]).tolist() == [270, 180, 90]
    assert not np.array_equal(parts["test"], np.sort(parts["test"]))


def test_fraction_split_of_idx_data_splits_all_examples(fashion_dir):
    folder, made = fashion_dir
    cfg = dict(OFFICIAL_CFG, idx_dir=str(folder), split={"seed": 0, "val": 0.1, "test": 0.2})
    arrays, manifest = splits.prepare("fashion_mnist", cfg)
    y = np.concatenate([made["arrays"]["train_labels"], made["arrays"]["test_labels"]])
    parts = splits.stratified_split(y.astype(np.int64), 0.1, 0.2, 0)
    assert all(np.array_equal(arrays[f"y_{s}"], y[parts[s]]) for s in splits.SPLITS)
    assert "official" not in manifest["split"]


@pytest.mark.parametrize("name", ["digits", "synthetic", "mnist5k"])
def test_official_split_is_refused_for_bundled_datasets(name):
    with pytest.raises(ValueError, match=r"data\.split\.test"):
        splits.prepare(name, OFFICIAL_CFG)


def test_fraction_split_of_bundled_data_is_unchanged():
    """The digits split's arrays, pinned from before the official split existed."""
    _, manifest = splits.prepare(
        "digits", {"split": {"seed": 0, "val": 0.1, "test": 0.2}, "allow_download": False})
    pinned = {
        "X_train": "08c29ae8c23077596e372e4076fc07106746967271468daf2b883996828b829e",
        "y_train": "e15144c77de5eb230bdb2645082a8c6f40f8ad84cd31e6f22ac96609fd55eeaa",
        "X_val": "dbd9ee9da79ec7223578b0281de2ed599a2781992041c2436d066e3d74e9f49c",
        "y_val": "afb2f572390d0746aa84e36f1512b495e70ddfee4aa247ea53b019a5aaaf2bfe",
        "X_test": "8555090a699511c7d6ccf6fd6efd1d65683f221692e1bbf2f30433cf9fad9f50",
        "y_test": "03ccd03d3466b2b03154ed961585baac81d0df7f1857e240ed4642d7f19f0bd5",
    }
    assert {k: v["sha256"] for k, v in manifest["arrays"].items()} == pinned
    assert "files" not in manifest and "official" not in manifest["split"]


def test_a_bad_file_writes_nothing(fashion_dir, tmp_path):
    folder, _ = fashion_dir
    path = folder / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-3])
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(download.DatasetFileError, match=re.escape(str(path))):
        splits.prepare_to_files("fashion_mnist", dict(OFFICIAL_CFG, idx_dir=str(folder)),
                                out / "f.npz", out / "f.manifest.json")
    assert list(out.iterdir()) == []


def test_prepared_files_load_back(fashion_dir, tmp_path):
    folder, _ = fashion_dir
    splits.prepare_to_files("fashion_mnist", dict(OFFICIAL_CFG, idx_dir=str(folder)),
                            tmp_path / "f.npz", tmp_path / "f.manifest.json")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("f.", ".f"))) == [
        "f.manifest.json", "f.npz"]
    loaded = splits.load(tmp_path / "f.npz")
    assert loaded.n_classes == N_CLASSES and loaded.input_shape == (1, 5, 5)
    assert len(loaded.y["test"]) == 30
    assert json.loads((tmp_path / "f.manifest.json").read_text())["split"]["test"] == "official"


@pytest.mark.skipif(not PACKAGE_DIR.is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed (make install)")
def test_the_debian_package_is_the_full_fashion_mnist():
    d = idx.load_idx("fashion_mnist", None, package_dirs={"fashion_mnist": PACKAGE_DIR})
    assert d.source.kind == "package"
    assert d.X_train.shape == (60_000, 28, 28) and d.X_test.shape == (10_000, 28, 28)
    assert np.bincount(d.y_train).tolist() == [6_000] * 10
    assert np.bincount(d.y_test).tolist() == [1_000] * 10
    assert {s: f["md5"] for s, f in d.files.items()} == {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    }
    assert {f["md5_of"] for f in d.files.values()} == {"uncompressed"}
