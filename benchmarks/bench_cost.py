"""rose.cost's measured constants, then the estimates they give.

1. On one thread (as the workflow's jobs run), side by side: the seconds per counted FLOP of
   each kind of model and phase through rose.train's own code (standard_step, evaluate; the CNN
   in channels_last as rose.train runs it), relative to the reference, an MLP 784-256-256-10
   training step at batch 128; a training job's fixed cost (a job of next to no work in a
   fresh interpreter, as workflow/scripts/train.py runs it), the load of a prepared split and
   the preparation of Fashion-MNIST (where its files are here), in reference FLOPs.
   Each is printed next to its value in rose.cost (TRAIN_COST, EVAL_COST, JOB_START,
   LOAD_PER_VALUE, PREPARE_PER_VALUE), which holds an earlier run's numbers: re-measure after
   a change to rose.train or the machine.
2. A quick baseline job run now beside the committed quick timings' mean job: how far this
   machine's state is from the one the timings were recorded in.
3. `rose plan --cost` of config/paper.yaml and config/full.yaml (the committed quick timings,
   and paper's own where recorded, times each rule's work over the measured config's), on 64
   cores and on this machine's.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from benchmarks.timing import cpu_seconds, flops_of, interleaved, median_time
from rose import cost
from rose.cli import main as rose_main
from rose.models import build_model
from rose.train import evaluate, standard_step

MLP = {"name": "mlp", "hidden": [256, 256]}
CNN = {"name": "cnn", "width": 16}
SHAPE = (1, 28, 28)
TINY_JOB = """
import json, sys
import snakemake.iocontainers  # Snakemake's preamble unpickles its object from here
from rose.logs import redirect_to
from rose.train import train_from_file
with redirect_to(sys.argv[1] + "/log.txt"):
    train_from_file(json.loads(sys.argv[2]), f"{sys.argv[1]}/{sys.argv[3]}.npz",
                    f"{sys.argv[1]}/{sys.argv[3]}", threads=1)
"""
LOAD_EXAMPLES = 20_000


def _model(cfg: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    net = build_model(cfg, SHAPE, 10)
    if cfg["name"] == "cnn":             # as rose.train runs conv models
        net = net.to(memory_format=torch.channels_last)
    return net


def train_slice(cfg: dict, batch: int, steps: int) -> Callable[[], object]:
    """``steps`` steps of rose.train's loop (a minibatch gathered from a random set, momentum
    SGD through standard_step, the loss read) at ``batch``, back to back as in an epoch."""
    net = _model(cfg)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    gen = torch.Generator().manual_seed(0)
    X = torch.rand(steps * batch, *SHAPE, generator=gen)
    Y = torch.randint(0, 10, (len(X),), generator=gen)
    perm = torch.randperm(len(X), generator=gen)

    def run() -> None:
        for i in range(0, len(X), batch):
            idx = perm[i:i + batch]
            standard_step(net, X[idx], Y[idx], opt)[0].item()
    return run


def eval_slice(cfg: dict, n: int) -> Callable[[], object]:
    """rose.train.evaluate over ``n`` examples (its chunks of 4096)."""
    net = _model(cfg)
    x, y = torch.rand(n, *SHAPE), torch.randint(0, 10, (n,))
    return lambda: evaluate(net, x, y)


def baseline_job(tmp: Path, epochs: int, sizes: tuple[int, int, int]) -> Callable[[], object]:
    """A baseline training job of quick.yaml's MLP (784-256-256-10, batch 64, momentum SGD) in a
    fresh interpreter, as workflow/scripts/train.py runs one, on random images of ``sizes``
    (train, val, test)."""
    spec = {"direction": "bench", "dataset": "bench", "method": "sgd", "seed": 0,
            "device": "cpu", "model": MLP, "optimizer": {"name": "sgd", "lr": 0.05,
                                                         "momentum": 0.9},
            "schedule": {"name": "constant"}, "epochs": epochs, "batch_size": 64,
            "checkpoint_every": 200}
    name = f"job{epochs}"
    _save_split(tmp / f"{name}.npz", sizes)
    cmd = [sys.executable, "-c", TINY_JOB, str(tmp), json.dumps(spec), name]
    return lambda: subprocess.run(cmd, check=True)


def tiny_job(tmp: Path) -> Callable[[], object]:
    """A training job of next to no work (4 steps, 256 training images): its interpreter,
    imports, load, first call of every kernel and outputs are a job's fixed cost."""
    return baseline_job(tmp, 1, (256, 64, 64))


def quick_job(tmp: Path) -> Callable[[], object]:
    """One of quick.yaml's baseline jobs (15 epochs on MNIST-5k's 3500 / 500 / 1000 split)."""
    return baseline_job(tmp, 15, (3500, 500, 1000))


def _save_split(path: Path, sizes: tuple[int, int, int]) -> None:
    """A prepared split (rose.data.save) of random 28 x 28 images, ``sizes`` per part."""
    from rose.data import save
    from rose.data.splits import array_sha256

    rng = np.random.default_rng(0)
    arrays = {}
    for s, n in zip(("train", "val", "test"), sizes, strict=True):
        arrays[f"X_{s}"] = rng.random((n, *SHAPE), dtype=np.float32)
        arrays[f"y_{s}"] = rng.integers(0, 10, n)
    manifest = {"name": "bench", "n_classes": 10, "input_shape": list(SHAPE),
                "arrays": {k: {"sha256": array_sha256(v)} for k, v in arrays.items()}}
    save(arrays, manifest, path, path.with_suffix(".manifest.json"))


def split_loader(tmp: Path) -> Callable[[], object]:
    """rose.data.load of a saved split of LOAD_EXAMPLES 28 x 28 images (sha256-checked)."""
    from rose.data import load

    _save_split(tmp / "s.npz", (LOAD_EXAMPLES // 3,) * 3)
    return lambda: load(tmp / "s.npz")


def _relative(ref: Callable[[], object], fn: Callable[[], object], repeats: int,
              flops: int | None = None) -> tuple[float, float]:
    """(seconds per unit of fn over the reference's per FLOP, reference seconds per FLOP): CPU
    seconds (this process's and its children's, so other jobs on the machine do not count),
    interleaved so drift hits both alike. The unit: fn's counted FLOPs, or ``flops`` units."""
    t_ref, t_fn = interleaved(ref, fn, repeats, clock=cpu_seconds)
    per_flop = t_ref / flops_of(ref)
    return t_fn / (flops or flops_of(fn)) / per_flop, per_flop


def kind_costs(ref: Callable[[], object]) -> dict[str, float]:
    """TRAIN_COST and EVAL_COST of each kind, relative to ``ref``."""
    out = {}
    for kind, cfg, batch, steps in (("mlp", MLP, 64, 120), ("cnn", CNN, 128, 15)):
        out[f"TRAIN_COST {kind} batch {batch}"] = _relative(
            ref, train_slice(cfg, batch, steps), 3)[0]
    for kind, cfg, n in (("mlp", MLP, 16384), ("cnn", CNN, 8192)):
        out[f"EVAL_COST {kind}"] = _relative(ref, eval_slice(cfg, n), 3)[0]
    return out


def job_costs(ref: Callable[[], object]) -> dict[str, float]:
    """JOB_START, LOAD_PER_VALUE and PREPARE_PER_VALUE in ``ref``'s FLOPs."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        out["JOB_START"] = _relative(ref, tiny_job(Path(tmp)), 2, flops=1)[0]
        out["LOAD_PER_VALUE"] = _relative(ref, split_loader(Path(tmp)), 3,
                                          flops=LOAD_EXAMPLES // 3 * 3 * math.prod(SHAPE))[0]
        prepare = fashion_preparer(Path(tmp))
        if prepare is None:
            print("    PREPARE_PER_VALUE not measured: no Fashion-MNIST files (rose.data.idx)")
        else:
            out["PREPARE_PER_VALUE"] = _relative(ref, prepare, 2, flops=70_000 * 784)[0]
    return out


def measure_constants() -> dict[str, float]:
    """Every rose.cost constant, measured now (1 thread), and the reference's rate."""
    torch.set_num_threads(1)
    ref = train_slice(MLP, 128, 60)
    out = {**kind_costs(ref), **job_costs(ref)}
    out["reference GFLOP/s"] = 1 / _relative(ref, ref, 3)[1] / 1e9
    return out


def machine_state() -> None:
    """A quick baseline job now, wall seconds, beside the committed quick timings' mean job:
    timings recorded in another state of the machine scale by about their ratio."""
    m = cost.read_timings(cost.TIMINGS)["train_baseline[mlp]"]
    with tempfile.TemporaryDirectory() as tmp:
        now = median_time(quick_job(Path(tmp)), 2)
    recorded = m.core_seconds / m.jobs
    print(f"  a quick baseline job now: {now:.1f} s; in {cost.TIMINGS}: {recorded:.2f} s per job "
          f"({now / recorded:.1f}x: estimates scaled from those timings assume their machine)")


def fashion_preparer(tmp: Path) -> Callable[[], object] | None:
    """rose.data.prepare_to_files of Fashion-MNIST as paper.yaml splits it, or None when its
    files are not on this machine."""
    from rose.data.splits import prepare_to_files

    cfg = {"split": {"seed": 0, "val": 0.1, "test": "official"}, "allow_download": False}
    try:
        prepare_to_files("fashion_mnist", cfg, tmp / "f.npz", tmp / "f.json")
    except (FileNotFoundError, ValueError, RuntimeError):
        return None
    return lambda: prepare_to_files("fashion_mnist", cfg, tmp / "f.npz", tmp / "f.json")


def in_rose_cost(name: str) -> float | None:
    """The value rose.cost holds for a measured constant's name."""
    parts = name.split()
    if parts[0] == "TRAIN_COST":
        return cost.TRAIN_COST[parts[1]][int(parts[3])]
    if parts[0] == "EVAL_COST":
        return cost.EVAL_COST[parts[1]]
    return getattr(cost, parts[0], None)


def main() -> None:
    t = time.perf_counter()
    print("  measured for rose.cost (1 thread; seconds per FLOP relative to an MLP "
          "784-256-256-10 training step at batch 128; JOB_START and the PER_VALUE costs in its "
          "FLOPs):")
    for name, value in measure_constants().items():
        held = in_rose_cost(name)
        print(f"    {name:<28} {value:12.4g}" + (f"   (rose.cost: {held:.4g})" if held is not None
                                                   else ""))
    print(f"  ({time.perf_counter() - t:.0f} s)")
    machine_state()
    for config in ("config/paper.yaml", "config/full.yaml"):
        for cores in (64, os.cpu_count() or 1):
            rose_main(["plan", "--cost", config, "--cores", str(cores)])


if __name__ == "__main__":
    main()
