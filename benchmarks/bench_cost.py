"""rose.cost's measured constants, then the estimates they give.

1. On one thread (as the workflow's jobs run), side by side: the seconds per counted FLOP of
   each kind of model and phase through rose.train's own code (standard_step, evaluate; the CNN
   in channels_last as rose.train runs it), relative to the reference, an MLP 784-256-256-10
   training step at batch 128; a training job's start (a fresh interpreter importing what
   workflow/scripts/train.py imports) and the load of a prepared split, in reference FLOPs.
   Each is printed next to its value in rose.cost (TRAIN_COST, EVAL_COST, JOB_START,
   LOAD_PER_VALUE), which holds an earlier run's numbers: re-measure after a change to
   rose.train or the machine.
2. `rose plan --cost` of config/paper.yaml and config/full.yaml (the committed quick timings,
   and paper's own where recorded, times each rule's work over the measured config's), on 64
   cores and on this machine's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from benchmarks.timing import flops_of, interleaved
from rose import cost
from rose.cli import main as rose_main
from rose.models import build_model
from rose.train import evaluate, standard_step

MLP = {"name": "mlp", "hidden": [256, 256]}
CNN = {"name": "cnn", "width": 16}
SHAPE = (1, 28, 28)
EVAL_EXAMPLES = 4096          # one chunk of rose.train.evaluate
START = ("import snakemake.iocontainers, torch, rose.train, rose.logs, rose.data.splits")
LOAD_EXAMPLES = 20_000


def _model(cfg: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    net = build_model(cfg, SHAPE, 10)
    if cfg["name"] == "cnn":             # as rose.train runs conv models
        net = net.to(memory_format=torch.channels_last)
    return net


def train_step(cfg: dict, batch: int) -> Callable[[], object]:
    """One training step of rose.train (standard_step, momentum SGD) at ``batch``."""
    net = _model(cfg)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.rand(batch, *SHAPE), torch.randint(0, 10, (batch,))
    return lambda: standard_step(net, x, y, opt)


def eval_pass(cfg: dict) -> Callable[[], object]:
    """rose.train.evaluate over one chunk of examples."""
    net = _model(cfg)
    x, y = torch.rand(EVAL_EXAMPLES, *SHAPE), torch.randint(0, 10, (EVAL_EXAMPLES,))
    return lambda: evaluate(net, x, y)


def job_start() -> None:
    """A fresh interpreter importing what a training job imports (Snakemake's preamble
    unpickles its object from snakemake.iocontainers)."""
    subprocess.run([sys.executable, "-c", START], check=True)


def split_loader(tmp: Path) -> Callable[[], object]:
    """rose.data.load of a saved split of LOAD_EXAMPLES 28 x 28 images (sha256-checked)."""
    from rose.data import load, save
    from rose.data.splits import array_sha256

    rng = np.random.default_rng(0)
    n = LOAD_EXAMPLES // 3
    arrays = {}
    for s in ("train", "val", "test"):
        arrays[f"X_{s}"] = rng.random((n, *SHAPE), dtype=np.float32)
        arrays[f"y_{s}"] = rng.integers(0, 10, n)
    manifest = {"name": "bench", "n_classes": 10, "input_shape": list(SHAPE),
                "arrays": {k: {"sha256": array_sha256(v)} for k, v in arrays.items()}}
    save(arrays, manifest, tmp / "s.npz", tmp / "s.manifest.json")
    return lambda: load(tmp / "s.npz")


def _relative(ref: Callable[[], object], ref_flops: int, fn: Callable[[], object],
              fn_flops: int, repeats: int) -> tuple[float, float]:
    """(seconds per FLOP of fn over the reference's, reference seconds per FLOP), timed
    interleaved so drift in load or clock hits both alike."""
    t_ref, t_fn = interleaved(ref, fn, repeats)
    per_flop = t_ref / ref_flops
    return t_fn / fn_flops / per_flop, per_flop


def _blocked(step: Callable[[], object], n: int) -> Callable[[], object]:
    def block() -> None:
        for _ in range(n):
            step()
    return block


def measure_constants() -> dict[str, float]:
    """Every rose.cost constant, measured now (1 thread)."""
    torch.set_num_threads(1)
    ref = train_step(MLP, 128)
    ref_flops = flops_of(ref)
    out = {}
    for kind, cfg, batch in (("mlp", MLP, 64), ("cnn", CNN, 128)):
        fn = train_step(cfg, batch)
        out[f"TRAIN_COST {kind} batch {batch}"] = _relative(ref, ref_flops, fn, flops_of(fn),
                                                            15)[0]
    for kind, cfg in (("mlp", MLP), ("cnn", CNN)):
        fn = eval_pass(cfg)
        block = _blocked(ref, 10 if kind == "mlp" else 40)
        out[f"EVAL_COST {kind}"] = _relative(block, 10 * ref_flops if kind == "mlp"
                                             else 40 * ref_flops, fn, flops_of(fn), 3)[0]
    block = _blocked(ref, 100)
    t_block, t_start = interleaved(block, job_start, 2)
    per_flop = t_block / (100 * ref_flops)
    out["JOB_START"] = t_start / per_flop
    with tempfile.TemporaryDirectory() as tmp:
        load = split_loader(Path(tmp))
        t_block, t_load = interleaved(_blocked(ref, 20), load, 3)
    out["LOAD_PER_VALUE"] = t_load / (t_block / (20 * ref_flops)) / (
        3 * (LOAD_EXAMPLES // 3) * int(np.prod(SHAPE)))
    out["reference GFLOP/s"] = 1 / per_flop / 1e9
    return out


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
          "784-256-256-10 training step at batch 128; JOB_START, LOAD_PER_VALUE in its FLOPs):")
    for name, value in measure_constants().items():
        held = in_rose_cost(name)
        print(f"    {name:<28} {value:12.4g}" + (f"   (rose.cost: {held:.4g})" if held is not None
                                                   else ""))
    print(f"  ({time.perf_counter() - t:.0f} s)")
    for config in ("config/paper.yaml", "config/full.yaml"):
        for cores in (64, os.cpu_count() or 1):
            rose_main(["plan", "--cost", config, "--cores", str(cores)])


if __name__ == "__main__":
    main()
