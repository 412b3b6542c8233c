"""config/cifar.yaml (issue 28): direction 1 on CIFAR-10 for a user with a network and a GPU. It
cannot download here, so it is tested offline on a small archive generated in the official
binary format (records of 1 label byte + 3,072 pixel bytes, red then green then blue planes,
row-major; data_batch_1..5.bin then test_batch.bin): the loader's shapes and pixel order, the
official split, the config's schema and checks, and a two-step run on the CPU."""

from __future__ import annotations

import copy
import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake.utils import validate

from rose.data import download, prepare, save, splits
from rose.explore import experiments

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = str(ROOT / "workflow/schemas/config.schema.yaml")
PER_FILE = 20                                    # 2 images of each class per batch file


def _archive(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A cifar-10-binary.tar.gz of 5 x 20 training and 20 test records; returns the records'
    labels and pixels in file order."""
    rng = np.random.default_rng(0)
    labels, pixels = [], []
    with tarfile.open(path, "w:gz") as tar:
        for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
            y = np.repeat(np.arange(10, dtype=np.uint8), PER_FILE // 10)
            x = rng.integers(0, 256, (PER_FILE, 3072), dtype=np.uint8)
            payload = np.concatenate([y[:, None], x], axis=1).tobytes()
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
            labels.append(y)
            pixels.append(x)
    return np.concatenate(labels), np.concatenate(pixels)


@pytest.fixture
def cifar(tmp_path, monkeypatch):
    """The generated archive where the loader caches the download, its MD5 as the expected
    one (the real archive's is c32a1d4a...)."""
    dest = tmp_path / "raw" / "cifar10" / "cifar-10-binary.tar.gz"
    dest.parent.mkdir(parents=True)
    y, x = _archive(dest)
    monkeypatch.setattr(download, "CIFAR10_MD5", hashlib.md5(dest.read_bytes()).hexdigest())
    # the official training part is the first 50,000 records of the real archive; here 100
    monkeypatch.setattr(splits, "N_CIFAR10_TRAIN", 5 * PER_FILE)
    return tmp_path, y, x


def _config() -> dict:
    cfg = yaml.safe_load((ROOT / "config/cifar.yaml").read_text())
    validate(cfg, SCHEMA, set_default=True)
    return cfg


def test_the_loader_reads_the_binary_records_in_their_layout(cifar):
    tmp, y, x = cifar
    X, labels = download.load_cifar10(tmp / "raw", allow_download=False)
    assert X.shape == (120, 3, 32, 32) and X.dtype == np.float32
    assert np.array_equal(labels, y)
    # pixel k of a record is channel k // 1024, row (k % 1024) // 32, column k % 32
    assert X[7, 2, 5, 9] == pytest.approx(x[7, 2 * 1024 + 5 * 32 + 9] / 255.0)
    assert X[0, 0, 0, 0] == pytest.approx(x[0, 0] / 255.0)


def test_the_official_split_keeps_the_test_batch_as_test(cifar):
    tmp, _, _ = cifar
    data = {**_config()["data"], "download_dir": str(tmp / "raw")}
    arrays, manifest = prepare("cifar10", data)
    assert manifest["split"]["test"] == "official"
    assert len(arrays["y_test"]) == PER_FILE                     # test_batch.bin, all of it
    assert len(arrays["y_train"]) + len(arrays["y_val"]) == 5 * PER_FILE
    assert len(arrays["y_val"]) == 10 and arrays["X_train"].shape[1:] == (3, 32, 32)
    assert sorted(np.bincount(arrays["y_val"], minlength=10)) == [1] * 10


def test_the_config_passes_its_schema_and_direction_ones_checks():
    cfg = _config()
    experiments.check_config(cfg["explore"])
    assert cfg["data"]["allow_download"] is True and cfg["device"] == "auto"
    assert {s["dataset"] for s in cfg["explore"]["settings"].values()} == {"cifar10"}
    assert [c["target"] for c in cfg["explore"]["primary"]] == [0.25] * 3


def test_a_two_step_run_of_the_config_on_the_cpu(cifar):
    """The config's standard setting, cut to one epoch of two steps, two seeds and a narrow
    CNN: every arm trains on the generated CIFAR images and writes its rows."""
    tmp, _, _ = cifar
    cfg = _config()
    data_cfg = {**cfg["data"], "download_dir": str(tmp / "raw")}
    processed = tmp / "processed"
    processed.mkdir()
    save(*prepare("cifar10", data_cfg), processed / "cifar10.npz",
         processed / "cifar10.manifest.json")
    block = copy.deepcopy(cfg["explore"])
    st = block["settings"]["cifar_standard"]
    st["model"] = {"name": "cnn", "width": 2}
    block.update(epochs=1, batch_size=40, tune_seeds=1, train_eval=20)
    block["measure"].update(probe=10, power_iters=2, hutchinson_probes=2, sigma_samples=1,
                            sigma_steps=1, sharpness_m=2, sharpness_steps=1, lanczos_steps=3,
                            curve_points=3, surface_points=3)
    block["arms"]["contour_eq"]["contour"].update(steps=2, probe=5, keep_every=1)
    for arm in block["arms"].values():
        arm["grid"] = {k: v[:1] for k, v in arm["grid"].items()}
    experiments.setting_run(block, "cifar_standard", [0, 1], processed, tmp / "out")
    runs = pd.read_csv(tmp / "out" / "runs.csv")
    assert set(runs.arm) >= set(st["arms"]) and (runs.steps[runs.arm == "sgd"] == 2).all()
    assert runs[runs.arm.isin(st["arms"])].final_test_acc.between(0, 1).all()
