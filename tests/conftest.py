"""Shared fixtures: small prepared datasets and a tiny training spec (real code, tiny settings)."""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path

import pytest
import torch

from rose import data

ROOT = Path(__file__).resolve().parents[1]
SPLIT = {"split": {"seed": 0, "val": 0.1, "test": 0.2}, "allow_download": False}

TINY_SPEC = {
    "direction": "test", "dataset": "digits", "method": "sgd", "seed": 0, "device": "cpu",
    "model": {"name": "mlp", "hidden": [32], "activation": "relu", "dropout": 0.0},
    "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0,
                  "nesterov": False},
    "schedule": {"name": "constant"},
    "epochs": 3, "batch_size": 64, "checkpoint_every": 7,
}


@pytest.fixture(scope="session")
def digits_npz(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("data")
    arrays, manifest = data.prepare("digits", SPLIT)
    data.save(arrays, manifest, d / "digits.npz", d / "digits.manifest.json")
    return d / "digits.npz"


@pytest.fixture(scope="session")
def digits(digits_npz) -> data.SplitData:
    return data.load(digits_npz)


@pytest.fixture
def spec() -> dict:
    return copy.deepcopy(TINY_SPEC)


@pytest.fixture(scope="session")
def tool_env() -> dict[str, str]:
    """Environment for subprocesses: this interpreter's bin dir (snakemake, dvc, rose) first."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["DVC_NO_ANALYTICS"] = "1"
    env.pop("SNAKEMAKE_PROFILE", None)
    return env


def kill_after_checkpoint(cmd: list[str], cwd, env: dict, ckpt: Path, min_step: int,
                          timeout: float = 180) -> None:
    """Start ``cmd`` in its own process group and SIGKILL the whole group once ``ckpt`` holds
    a checkpoint at step >= ``min_step`` (a kill -9 of a running job, children included)."""
    import signal
    import subprocess
    import time

    from rose.checkpoint import load_checkpoint

    proc = subprocess.Popen(cmd, cwd=cwd, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists() and load_checkpoint(ckpt)["step"] >= min_step:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def quadratic_closure(p: torch.Tensor, A: torch.Tensor):
    """A closure (zero grad, loss, backward) of f(p) = 1/2 sum_i p_i^T A p_i over the rows of p."""
    def f():
        p.grad = None
        loss = 0.5 * ((p @ A) * p).sum()
        loss.backward()
        return loss
    return f


@pytest.fixture(scope="session")
def mnist14():
    """MNIST-5k downsampled to 14x14 (the continual streams' input), loaded once."""
    from rose.data.bundled import load_mnist5k

    x, y = load_mnist5k()
    return x[:, :, ::2, ::2], y
