"""Throughput of the shared training loop (rose.train.train) vs a bare hand-written PyTorch loop
on the same MLP, batch size and data, doing the same work (minibatch SGD plus a train/val/test
evaluation each epoch). The shared loop also checkpoints, writes its outputs and drives a tqdm
bar, with the quick config's model, batch, epochs and checkpoint interval.
Target: shared / bare throughput >= 0.95.

Then the paper baseline's CNN (config/paper.yaml: width 16, batch 128) on a slice of an epoch,
20 batches of Fashion-MNIST-shaped random images through rose.train's step (build_optimizer,
standard_step), with the model contiguous and in channels_last (what rose.train uses for conv
models) side by side, and rose.train.evaluate's forward pass over 4096 images at its chunk of
4096 and at 256 (channels_last).
"""

from __future__ import annotations

import contextlib
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.timing import cpu_seconds, interleaved, median_time
from rose import data
from rose.models import build_model
from rose.train import build_optimizer, evaluate, standard_step, train

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


def main() -> None:
    """The shared loop against the bare one, then the CNN's memory formats."""
    mlp_main()
    cnn_main()


def mlp_main(repeats: int = 5) -> float:
    """Shared over bare loop throughput on the quick MLP, 1 thread."""
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


CNN = {"name": "cnn", "width": 16}
CNN_BATCH, CNN_BATCHES = 128, 20


def cnn_model(channels_last: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(CNN, (1, 28, 28), 10)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def cnn_slice(channels_last: bool) -> Callable[[], None]:
    """CNN_BATCHES steps of rose.train's loop on one fixed random slice of images."""
    model = cnn_model(channels_last)
    opt = build_optimizer({"name": "sgd", "lr": 0.05, "momentum": 0.9}, model.parameters())
    gen = torch.Generator().manual_seed(0)
    X = torch.rand(CNN_BATCHES * CNN_BATCH, 1, 28, 28, generator=gen)
    Y = torch.randint(0, 10, (len(X),), generator=gen)

    def run() -> None:
        for i in range(0, len(X), CNN_BATCH):
            standard_step(model, X[i:i + CNN_BATCH], Y[i:i + CNN_BATCH], opt)
    return run


def cnn_eval(channels_last: bool, chunk: int) -> Callable[[], object]:
    """rose.train.evaluate of the CNN over 4096 images in chunks of ``chunk``."""
    model = cnn_model(channels_last)
    X, Y = torch.rand(4096, 1, 28, 28), torch.randint(0, 10, (4096,))
    return lambda: evaluate(model, X, Y, chunk)


def cnn_main(repeats: int = 3) -> float:
    """channels_last over contiguous speed of a CNN epoch slice (CPU seconds of this process,
    1 thread: other work on the machine does not count); then an epoch's evaluation at both
    formats and at a smaller chunk."""
    torch.set_num_threads(1)
    t_contig, t_last = interleaved(cnn_slice(False), cnn_slice(True), repeats, clock=cpu_seconds)
    speed = t_contig / t_last
    print(f"CNN width 16 (paper baseline), {CNN_BATCHES} batches of {CNN_BATCH} 28x28 images, "
          f"1 thread, CPU seconds, median of {repeats}")
    print(f"  contiguous:    {t_contig:.3f} s  ({1e3 * t_contig / CNN_BATCHES:.1f} ms/step)")
    print(f"  channels_last: {t_last:.3f} s  ({1e3 * t_last / CNN_BATCHES:.1f} ms/step)")
    print(f"  channels_last speed-up of training steps = {speed:.2f}x")
    e_contig, e_last = interleaved(cnn_eval(False, 4096), cnn_eval(True, 4096), 2,
                                   clock=cpu_seconds)
    e_small = median_time(cnn_eval(True, 256), 2, clock=cpu_seconds)
    per_epoch = 70_000 / 4096          # paper: train + val + test evaluated after every epoch
    steps = 422                        # 54,000 training images at batch 128
    print(f"  evaluate 4096 images at chunk 4096: contiguous {e_contig:.2f} s, channels_last "
          f"{e_last:.2f} s; channels_last at chunk 256 {e_small:.2f} s")
    for name, train_s, eval_s in (("contiguous", t_contig, e_contig),
                                  ("channels_last", t_last, e_last),
                                  ("channels_last, eval chunk 256", t_last, e_small)):
        print(f"  a Fashion-MNIST epoch ({steps} steps + evaluating 70,000), {name}: "
              f"{steps * train_s / CNN_BATCHES:.0f} s + {per_epoch * eval_s:.0f} s")
    return speed


if __name__ == "__main__":
    main()
