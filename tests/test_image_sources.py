"""The shared image loader (rose.data.images) and the three directions that build their streams
and benchmarks from it: bundled MNIST 5k unchanged, a prepared Fashion-MNIST-shaped split as
train + val pool with its test part apart, corrupt files refused, configured sizes on a 60,000-
style pool, and the config keys checked before any job."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from snakemake.utils import validate

from rose.data import images, splits
from rose.data.images import MNIST_SHAPE, load_images

from .conftest import ROOT

SCHEMA = str(ROOT / "workflow/schemas/config.schema.yaml")
N_CLASSES, N_TRAIN, N_TEST = 10, 60, 10     # per class: "official" train and test images
OFFICIAL = {"split": {"seed": 0, "val": 0.1, "test": "official"}, "allow_download": False}


def _fashion_like() -> splits.RawData:
    """10 classes x (60 train + 10 test) 28x28 images in [0, 1], official train part first.
    Pixel (0, 0) holds the image's id, (i + 1) / 1024 (exact in float32), to trace images."""
    rng = np.random.default_rng(0)
    n_train, n = N_CLASSES * N_TRAIN, N_CLASSES * (N_TRAIN + N_TEST)
    y = np.concatenate([np.repeat(np.arange(N_CLASSES), N_TRAIN),
                        np.repeat(np.arange(N_CLASSES), N_TEST)]).astype(np.int64)
    X = rng.random((n, 1, 28, 28)).astype(np.float32) * 0.5
    X[:, 0, 4:24, 4:24] += (y[:, None, None] / N_CLASSES * 0.5).astype(np.float32)
    X[:, 0, 0, 0] = (np.arange(n) + 1) / 1024
    return splits.RawData(X, y, "a synthetic Fashion-MNIST-shaped set", n_train)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """A processed directory holding fashion_mnist.npz + manifest, written as the data rule
    writes them (rose.data.splits.prepare with data.split.test: official, then save)."""
    d = tmp_path_factory.mktemp("processed")
    mp = pytest.MonkeyPatch()
    mp.setattr(splits, "load_raw", lambda name, cfg: _fashion_like())
    try:
        arrays, manifest = splits.prepare("fashion_mnist", OFFICIAL)
    finally:
        mp.undo()
    splits.save(arrays, manifest, d / "fashion_mnist.npz", d / "fashion_mnist.manifest.json")
    return d


def _ids(X: np.ndarray) -> set[int]:
    return set(np.rint(X[:, 0, 0, 0] * 1024).astype(int) - 1)


def _tiny() -> dict:
    cfg = yaml.safe_load((ROOT / "config/tiny.yaml").read_text())
    validate(cfg, SCHEMA)     # fills the schema's defaults (dataset: mnist5k among them)
    return cfg


# ------------------------------------------------------------------ the loader

def test_mnist5k_and_digits_are_the_bundled_arrays_unchanged():
    from rose.data.bundled import load_digits, load_mnist5k

    for source, loader in (("mnist5k", load_mnist5k), ("digits", load_digits)):
        pool = load_images(source)
        X, y = loader()
        assert pool.train_X.dtype == X.dtype and pool.train_y.dtype == y.dtype
        assert np.array_equal(pool.train_X, X) and np.array_equal(pool.train_y, y)
        assert pool.test_X is None and pool.test_y is None and not pool.has_test


def test_a_prepared_source_pools_train_and_val_and_keeps_its_test_part_apart(prepared):
    pool = load_images("fashion_mnist", prepared)
    data = splits.load(prepared / "fashion_mnist.npz")
    assert pool.train_X.shape == (N_CLASSES * N_TRAIN, *MNIST_SHAPE)
    assert pool.test_X.shape == (N_CLASSES * N_TEST, *MNIST_SHAPE)
    assert pool.train_X.dtype == np.float32 and pool.train_y.dtype == np.int64
    np.testing.assert_array_equal(
        pool.train_X, np.concatenate([data.X["train"].numpy(), data.X["val"].numpy()]))
    np.testing.assert_array_equal(
        pool.train_y, np.concatenate([data.y["train"].numpy(), data.y["val"].numpy()]))
    np.testing.assert_array_equal(pool.test_X, data.X["test"].numpy())
    # the official test images, and only they, are the test part: none in the pool
    n_train = N_CLASSES * N_TRAIN
    assert _ids(pool.train_X) == set(range(n_train))
    assert _ids(pool.test_X) == set(range(n_train, n_train + N_CLASSES * N_TEST))
    assert np.bincount(pool.train_y).tolist() == [N_TRAIN] * N_CLASSES
    assert pool.pool[0] is pool.train_X


def test_a_prepared_source_needs_its_processed_directory():
    with pytest.raises(ValueError, match=r"active\.dataset.*fashion_mnist.*data rule"):
        load_images("fashion_mnist", None, "active.dataset")
    with pytest.raises(ValueError, match="unknown image source"):
        load_images("cifar10")


def test_a_corrupt_prepared_npz_is_refused_naming_the_file(prepared, tmp_path):
    for f in ("fashion_mnist.npz", "fashion_mnist.manifest.json"):
        (tmp_path / f).write_bytes((prepared / f).read_bytes())
    npz = tmp_path / "fashion_mnist.npz"
    with np.load(npz) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["X_val"] = arrays["X_val"].copy()
    arrays["X_val"][0, 0, 5, 5] += 0.25                  # a hand edit the manifest catches
    with open(npz, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(ValueError, match=r"fashion_mnist\.npz.*X_val.*sha256"):
        load_images("fashion_mnist", tmp_path)
    npz.write_bytes((prepared / "fashion_mnist.npz").read_bytes()[:1000])   # truncated
    with pytest.raises(ValueError, match=r"fashion_mnist\.npz.*cannot read"):
        load_images("fashion_mnist", tmp_path, "continual.dataset")


def test_a_file_of_another_dataset_is_refused(prepared, tmp_path):
    for ext in ("npz", "manifest.json"):
        (tmp_path / f"mnist.{ext}").write_bytes((prepared / f"fashion_mnist.{ext}").read_bytes())
    with pytest.raises(ValueError, match=r"mnist\.npz.*holds dataset 'fashion_mnist'"):
        load_images("mnist", tmp_path)


def test_the_28x28_directions_refuse_8x8_digits():
    with pytest.raises(ValueError, match=r"active\.dataset.*\(1, 8, 8\)"):
        load_images("digits", None, "active.dataset", MNIST_SHAPE)


def test_what_the_rules_and_the_config_check_read():
    assert images.prepared_files("mnist5k", "data/processed/x") == []
    assert images.prepared_files("fashion_mnist", "data/processed/x") == [
        "data/processed/x/fashion_mnist.npz", "data/processed/x/fashion_mnist.manifest.json"]
    assert images.prepared_sources("mnist5k", "digits") == []
    assert images.prepared_sources("fashion_mnist", "mnist5k") == ["fashion_mnist"]
    assert images.processed_dir_of([]) is None
    assert images.processed_dir_of(["data/processed/x/fashion_mnist.npz"]) == Path(
        "data/processed/x")
    assert images.resume_identity("mnist5k", None) == {}


def test_the_resume_identity_follows_the_prepared_arrays(prepared):
    got = images.resume_identity("fashion_mnist", prepared)["images"]
    assert set(got) == {f"{a}_{s}" for a in "Xy" for s in ("train", "val", "test")}


# ------------------------------------------------------------------ the directions

def test_continual_streams_for_mnist5k_are_as_before():
    from rose.continual.experiments import streams_for
    from rose.continual.streams import make_stream
    from rose.data.bundled import load_mnist5k

    block = _tiny()["continual"]
    X, y = load_mnist5k()
    got = streams_for(block, "split", [3])[0]
    want = make_stream("split", X[:, :, ::2, ::2], y, 3, 3, 60, 10)
    np.testing.assert_array_equal(got.x, want.x)
    np.testing.assert_array_equal(got.y, want.y)
    for a, b in zip(got.test_x, want.test_x, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", ["split", "permuted", "rotated"])
def test_continual_streams_from_a_prepared_fashion_mnist(prepared, kind):
    from rose.continual.experiments import streams_for

    block = copy.deepcopy(_tiny()["continual"])
    block["dataset"] = "fashion_mnist"
    block["streams"] = {kind: {"tasks": 3}}
    tasks, per_task, bs, d = 3, block["samples_per_task"], block["batch_size"], 14 * 14
    for role in ("test", "validation"):
        st = streams_for(block, kind, [0, 1], role, processed_dir=prepared)
        assert len(st) == 2
        for s in st:
            assert s.x.shape == (tasks * per_task // bs, bs, d)
            assert s.n_tasks == tasks and s.n_classes == N_CLASSES
            assert np.bincount(s.task_of_batch).tolist() == [per_task // bs] * tasks
            assert all(t.shape[1] == d for t in s.test_x)
    with pytest.raises(ValueError, match=r"continual\.dataset"):
        streams_for(block, kind, [0])


def _active_block() -> dict:
    block = copy.deepcopy(_tiny()["active"])
    block["dataset"] = "fashion_mnist"
    block["benchmarks"] = {"cmnist": {"train_align": [0.8, 0.9], "test_align": 0.1},
                           "cmnist10": {"train_align": [0.9, 0.9], "test_align": 0.1},
                           "dominoes": {"train_align": [0.95], "test_align": 0.5}}
    return block


@pytest.mark.parametrize("benchmark", ["cmnist", "cmnist10", "dominoes"])
def test_active_group_splits_from_a_prepared_fashion_mnist(prepared, benchmark):
    from rose.active.experiments import group_splits, pool_size
    from rose.data.group_benchmarks import n_images, split_sizes

    block = _active_block()
    sp = group_splits(block, benchmark, [0, 1], prepared)
    labels = load_images("fashion_mnist", prepared).train_y
    n = n_images(benchmark, labels)
    assert n == (8 * N_TRAIN if benchmark == "dominoes" else N_CLASSES * N_TRAIN)
    sizes = split_sizes(n, block["split"]["test"], block["split"]["val"],
                        block["split"]["holdout"])
    for s in sp:
        assert len(s["pool"]) == sizes["pool"] == pool_size(block, benchmark, labels)
        assert len(s["test"]) == sizes["test"] and len(s["val"]) == sizes["val"]
        assert len(s["holdout_correlated"]) == sizes["holdout"]
        side = (28, 14) if benchmark == "dominoes" else (14, 14)
        assert s["pool"].x.shape[2:] == side


def test_active_checks_the_label_budget_against_the_prepared_pool(prepared):
    from rose.active.experiments import check_config, group_splits

    block = _active_block()
    block["loop"]["rounds"] = 1000            # 20 + 1000 x 20 labels: more than 600 images
    with pytest.raises(ValueError, match=r"active\.loop.*exceeds the \d+-point pool"):
        group_splits(block, "cmnist", [0], prepared)
    check_config(block)                       # the 5k-sized check is not applied to it
    block["dataset"] = "mnist5k"
    with pytest.raises(ValueError, match=r"active\.loop"):
        check_config(block)


def test_shortcut_splits_from_a_prepared_fashion_mnist(prepared):
    from rose.superposition.experiments import shortcut_images
    from rose.superposition.shortcut import SPLITS, make_splits

    params = copy.deepcopy(_tiny()["superposition"]["shortcut"])
    params["dataset"] = "fashion_mnist"
    X, y = shortcut_images(params, prepared)
    assert len(X) == N_CLASSES * N_TRAIN
    sp = make_splits(X, y, "irm", 0)
    assert set(sp) == set(SPLITS)
    n = N_CLASSES * N_TRAIN
    assert sum(len(sp[k]) for k in ("train", "val", "test", "test_val")) == n
    assert len(sp["test"]) + len(sp["test_val"]) == int(0.2 * n)
    assert all(sp[k].x.shape[1:] == (2, 14, 14) for k in SPLITS)
    assert len(sp["swapped"]) == len(sp["probe"]) == len(sp["test"])
    params["dataset"] = "mnist5k"
    X5, y5 = shortcut_images(params)
    assert X5.shape == (5000, *MNIST_SHAPE) and np.bincount(y5).tolist() == [500] * 10


# ------------------------------------------------------------------ the workflow

def _dry_run(tmp_path: Path, edit, *targets: str) -> subprocess.CompletedProcess:
    cfg = yaml.safe_load((ROOT / "config/tiny.yaml").read_text())
    cfg["name"] = "tiny_image_sources"
    edit(cfg)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    bindir = Path(sys.executable).parent
    # the targets before --configfile, which takes every following word
    return subprocess.run([str(bindir / "snakemake"), *targets, "-n", "--configfile", str(path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_a_dataset_key_naming_an_unprepared_dataset_is_refused(tmp_path):
    def edit(cfg: dict) -> None:
        cfg["active"]["dataset"] = "fashion_mnist"
    out = _dry_run(tmp_path, edit)
    assert out.returncode != 0
    assert "config key active.dataset" in out.stdout + out.stderr
    assert "fashion_mnist" in out.stdout + out.stderr


def test_the_direction_jobs_take_the_prepared_split_as_input(tmp_path):
    def edit(cfg: dict) -> None:
        cfg["data"]["datasets"].append("fashion_mnist")
        cfg["continual"]["dataset"] = "fashion_mnist"
        cfg["active"]["dataset"] = "fashion_mnist"
        cfg["superposition"]["shortcut"]["dataset"] = "fashion_mnist"
    res = "results/tiny_image_sources"
    out = _dry_run(tmp_path, edit, f"{res}/continual/split/runs.csv",
                   f"{res}/active/al/cmnist.csv", f"{res}/active/curriculum/cmnist.csv",
                   f"{res}/superposition/shortcut/irm.csv")
    assert out.returncode == 0, out.stderr[-3000:]
    npz = "data/processed/tiny_image_sources/fashion_mnist.npz"
    inputs = [ln for ln in out.stdout.splitlines() if ln.strip().startswith("input:")]
    for rule in ("continual_stream", "active_learning", "active_curriculum",
                 "superposition_shortcut"):
        assert f"rule {rule}:" in out.stdout
    assert sum(npz in ln and "fashion_mnist.manifest.json" in ln and "data/images.py" in ln
               for ln in inputs) == 4
    assert "rule prepare_data:" in out.stdout
