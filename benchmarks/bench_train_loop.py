"""Throughput of the shared training loop (rose.train.train) vs a bare hand-written PyTorch loop
on the same MLP, batch size and data, doing the same work (minibatch SGD plus a train/val/test
evaluation each epoch). The shared loop also checkpoints, writes its outputs and drives a tqdm
bar, with the quick config's model, batch, epochs and checkpoint interval.
Target: shared / bare throughput >= 0.95.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from rose import data
from rose.models import build_model
from rose.train import evaluate, train

SPEC = {
    "direction": "bench", "dataset": "mnist5k", "method": "sgd", "seed": 0, "device": "cpu",
    "model": {"name": "mlp", "hidden": [256, 256]},
    "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
    "schedule": {"name": "constant"}, "epochs": 15, "batch_size": 64, "checkpoint_every": 200,
}


def bare_loop(split: data.SplitData) -> None:
    torch.manual_seed(SPEC["seed"])
    model = build_model(SPEC["model"], split.input_shape, split.n_classes)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    gen = torch.Generator().manual_seed(SPEC["seed"])
    X, Y = split.X["train"], split.y["train"]
    bs = SPEC["batch_size"]
    for _ in range(SPEC["epochs"]):
        perm = torch.randperm(len(Y), generator=gen)
        for i in range(0, len(Y), bs):
            idx = perm[i:i + bs]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(X[idx]), Y[idx]).backward()
            opt.step()
        for s in ("train", "val", "test"):
            evaluate(model, split.X[s], split.y[s])


def main(repeats: int = 5) -> float:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        arrays, manifest = data.prepare("mnist5k", {"split": {"seed": 0, "val": 0.1,
                                                              "test": 0.2}})
        data.save(arrays, manifest, Path(tmp) / "m.npz", Path(tmp) / "m.manifest.json")
        split = data.load(Path(tmp) / "m.npz")
        bare_loop(split)  # warm-up (allocator, kernels)
        train(SPEC, split, Path(tmp) / "warm", threads=1, progress=False)
        t_bare, t_shared = [], []
        for r in range(repeats):  # interleaved, so drift affects both alike
            t = time.perf_counter()
            bare_loop(split)
            t_bare.append(time.perf_counter() - t)
            t = time.perf_counter()
            with contextlib.redirect_stderr(io.StringIO()):
                train(SPEC, split, Path(tmp) / f"run{r}", threads=1, progress=True)
            t_shared.append(time.perf_counter() - t)
    steps = SPEC["epochs"] * -(-len(split.y["train"]) // SPEC["batch_size"])
    bare, shared = statistics.median(t_bare), statistics.median(t_shared)
    ratio = bare / shared
    print(f"MLP 784-256-256-10, mnist5k train ({len(split.y['train'])}), batch 64, "
          f"{SPEC['epochs']} epochs = {steps} steps, 1 thread, median of {repeats}")
    print(f"  bare loop:   {bare:.3f} s  ({steps / bare:.0f} steps/s)")
    print(f"  shared loop: {shared:.3f} s  ({steps / shared:.0f} steps/s)")
    print(f"  throughput ratio shared/bare = {ratio:.3f}  (target >= 0.95: "
          f"{'met' if ratio >= 0.95 else 'NOT met'})")
    return ratio


if __name__ == "__main__":
    main()
