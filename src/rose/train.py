"""The one training loop every direction uses.

``train(spec, data, outdir)`` trains ``spec["model"]`` on in-memory tensors and writes

* ``metrics.json`` — the spec and its hash, ``status`` (``ok`` or ``diverged``), final and
  early-stopped (best validation epoch) metrics, gradient evaluations; byte-identical
  between two runs of one spec on one machine (a DVC-tracked output), so the timing is not
  in it: ``train`` returns it under ``timing`` and prints it to stderr (the job's log);
* ``history.csv``  — one row per epoch (train/val/test loss and accuracy at the epoch's end);
* ``model.ckpt``   — the final weights (see :mod:`rose.checkpoint`).

While running it keeps ``resume.ckpt`` (every ``checkpoint_every`` steps): model, optimizer,
scheduler, both RNG states and the epoch's accumulators, so a killed run resumes to the same
final numbers as an uninterrupted one (bitwise on CPU for a fixed thread count). A non-finite
loss, or a minibatch loss above ``divergence_factor`` (default 100) times the loss of a chance
predictor, ln(n_classes), stops the run and records it as ``diverged`` with no final numbers.

A spec is a plain dict (JSON)::

    dataset, seed, epochs, batch_size, checkpoint_every, device ("auto" | "cpu" | "cuda"),
    model:     {name: mlp | cnn, ...}                         (rose.models.build_model)
    optimizer: {name: sgd | adam | adamw | radam, lr, momentum, weight_decay, nesterov, betas}
    schedule:  {name: constant | linear_warmup | cosine, warmup_steps}
    divergence_factor (optional, default 100)

Directions with their own update rule (SAM, Entropy-SGD, ...) pass ``step_fn``; it returns the
minibatch loss and how many gradient evaluations it used, so budgets stay comparable.
"""

from __future__ import annotations

import csv
import json
import math
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from rose.checkpoint import load_checkpoint, save_checkpoint
from rose.data.splits import SplitData
from rose.device import resolve_device
from rose.models import build_model, count_parameters
from rose.provenance import stable_hash

StepFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.optim.Optimizer],
                  tuple[torch.Tensor, int]]

REQUIRED_SPEC_KEYS = {"dataset", "seed", "epochs", "batch_size", "model", "optimizer"}
OPTIMIZERS = ("sgd", "adam", "adamw", "radam")
SCHEDULES = ("constant", "linear_warmup", "cosine")


def build_optimizer(cfg: dict[str, Any], params) -> torch.optim.Optimizer:
    name, lr, wd = cfg["name"], cfg["lr"], cfg.get("weight_decay", 0.0)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.get("momentum", 0.0),
                               nesterov=cfg.get("nesterov", False), weight_decay=wd)
    betas = tuple(cfg.get("betas", (0.9, 0.999)))
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=wd)
    if name == "radam":
        return torch.optim.RAdam(params, lr=lr, betas=betas, weight_decay=wd)
    raise ValueError(f"unknown optimizer.name {name!r}; known: {OPTIMIZERS}")


def lr_factor(schedule: dict[str, Any], step: int, total_steps: int) -> float:
    """Multiplier of the base learning rate after ``step`` optimizer steps.

    linear_warmup: min(1, (step + 1) / warmup_steps)  (Goyal et al. 2017, gradual warm-up)
    cosine:        warm-up as above, then 0.5 (1 + cos(pi t)) with t the post-warm-up progress
    """
    name = schedule.get("name", "constant")
    warm = schedule.get("warmup_steps", 0)
    if name == "constant":
        return 1.0
    if step < warm:
        return (step + 1) / warm
    if name == "linear_warmup":
        return 1.0
    if name == "cosine":
        t = (step - warm) / max(1, total_steps - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))
    raise ValueError(f"unknown schedule.name {name!r}; known: {SCHEDULES}")


def standard_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                  optimizer: torch.optim.Optimizer) -> tuple[torch.Tensor, int]:
    """One minibatch step of the optimizer on the cross-entropy loss: one gradient evaluation."""
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.detach(), 1


@torch.no_grad()
def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, chunk: int = 4096
             ) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on (X, y), in eval mode."""
    was_training = model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    for i in range(0, len(y), chunk):
        logits = model(X[i:i + chunk])
        loss_sum += F.cross_entropy(logits, y[i:i + chunk], reduction="sum").item()
        correct += (logits.argmax(1) == y[i:i + chunk]).sum().item()
    model.train(was_training)
    return loss_sum / len(y), correct / len(y)


def _epoch_row(model: nn.Module, data: SplitData, epoch: int, step: int, grad_evals: int,
               running_loss: float, lr: float) -> dict[str, float]:
    row: dict[str, float] = {"epoch": epoch + 1, "step": step, "grad_evals": grad_evals,
                             "lr": lr, "train_loss_running": running_loss}
    for split in ("train", "val", "test"):
        loss, acc = evaluate(model, data.X[split], data.y[split])
        row[f"{split}_loss"], row[f"{split}_acc"] = loss, acc
    return row


def _finite_row(row: dict[str, float]) -> bool:
    return all(math.isfinite(v) for v in row.values())


def train(spec: dict[str, Any], data: SplitData, outdir: str | Path, *,
          threads: int | None = None, progress: bool = True,
          step_fn: StepFn = standard_step,
          weights_path: str | Path | None = None) -> dict[str, Any]:
    """Train one run described by ``spec``; write its outputs to ``outdir`` and the final
    weights to ``weights_path`` (default ``outdir/model.ckpt``; the workflow keeps weights
    under checkpoints/, apart from the small results); return metrics."""
    missing = sorted(REQUIRED_SPEC_KEYS - spec.keys())
    if missing:
        raise ValueError(f"run spec is missing {missing}; see the rose.train module docstring")
    t0 = time.perf_counter()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    device = resolve_device(spec.get("device", "auto"))
    spec_hash = stable_hash(spec)
    seed = int(spec["seed"])

    torch.manual_seed(seed)
    data = data.to(device)
    model = build_model(spec["model"], data.input_shape, data.n_classes).to(device)
    if any(isinstance(m, nn.Conv2d) for m in model.modules()):
        # NHWC: oneDNN's convolutions and max-pooling run about 2x faster per step on the CPU
        # (benchmarks/bench_train_loop.py); the same function of the weights
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(spec["optimizer"], model.parameters())
    X, Y = data.X["train"], data.y["train"]
    n, bs = len(Y), int(spec["batch_size"])
    batches = math.ceil(n / bs)
    total_steps = int(spec["epochs"]) * batches
    schedule = spec.get("schedule", {"name": "constant"})
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(schedule, s, total_steps))
    gen = torch.Generator().manual_seed(seed)  # minibatch order, independent of init/dropout

    step, epoch, batch, grad_evals = 0, 0, 0, 0
    history: list[dict[str, float]] = []
    acc_loss, acc_seen = 0.0, 0
    epoch_gen_state = gen.get_state()
    resumed_from = None
    resume_path = outdir / "resume.ckpt"
    if resume_path.exists():
        ck = load_checkpoint(resume_path, map_location=device)  # raises if corrupt
        if ck["spec_hash"] != spec_hash:
            print(f"[rose] {resume_path} belongs to another spec ({ck['spec_hash']} != "
                  f"{spec_hash}); starting from scratch", file=sys.stderr)
        else:
            model.load_state_dict(ck["model"])
            optimizer.load_state_dict(ck["optimizer"])
            scheduler.load_state_dict(ck["scheduler"])
            torch.set_rng_state(ck["torch_rng"])
            step, epoch, batch, grad_evals = ck["step"], ck["epoch"], ck["batch"], ck["grad_evals"]
            epoch_gen_state = ck["epoch_gen_state"]
            acc_loss, acc_seen = ck["acc_loss"], ck["acc_seen"]
            history = ck["history"]
            resumed_from = step

    def checkpoint() -> None:
        save_checkpoint({
            "spec_hash": spec_hash, "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(), "epoch_gen_state": epoch_gen_state,
            "step": step, "epoch": epoch, "batch": batch, "grad_evals": grad_evals,
            "acc_loss": acc_loss, "acc_seen": acc_seen,
            "history": history,
        }, resume_path)

    every = int(spec.get("checkpoint_every", 0))
    max_loss = float(spec.get("divergence_factor", 100.0)) * math.log(data.n_classes)
    diverged_at: int | None = None
    model.train()
    bar = tqdm(total=total_steps, initial=step, disable=not progress, mininterval=1.0,
               desc=f"{spec['dataset']} seed {seed}", file=sys.stderr)
    while epoch < int(spec["epochs"]) and diverged_at is None:
        if batch == 0:
            epoch_gen_state = gen.get_state()
        else:
            gen.set_state(epoch_gen_state)
        perm = torch.randperm(n, generator=gen, device="cpu").to(device)
        while batch < batches:
            idx = perm[batch * bs:(batch + 1) * bs]
            y = Y[idx]
            loss, evals = step_fn(model, X[idx], y, optimizer)
            scheduler.step()
            step, batch, grad_evals = step + 1, batch + 1, grad_evals + evals
            loss_value = loss.item()
            if not math.isfinite(loss_value) or loss_value > max_loss:
                diverged_at = step
                break
            acc_loss += loss_value * len(y)
            acc_seen += len(y)
            bar.update()
            if every and step % every == 0:
                checkpoint()
        if diverged_at is not None:
            break
        row = _epoch_row(model, data, epoch, step, grad_evals, acc_loss / acc_seen,
                         optimizer.param_groups[0]["lr"])
        history.append(row)
        if not _finite_row(row):
            diverged_at = step
            break
        epoch, batch = epoch + 1, 0
        acc_loss, acc_seen = 0.0, 0
    bar.close()

    metrics = _summarise(spec, spec_hash, history, diverged_at, step, grad_evals)
    metrics["n_params"] = count_parameters(model)
    metrics["env"] = {"torch": torch.__version__, "python": platform.python_version(),
                      "device": str(device), "threads": torch.get_num_threads()}
    final = {"spec_hash": spec_hash, "spec_json": json.dumps(spec)}
    if diverged_at is None:
        final["model"] = model.state_dict()
    else:  # no trustworthy weights, but the DAG's outputs stay complete
        final["diverged_at_step"] = diverged_at
    weights_path = Path(weights_path) if weights_path else outdir / "model.ckpt"
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(final, weights_path)
    with open(outdir / "history.csv", "w", newline="") as f:  # csv, not pandas: 0.3 s less
        writer = csv.DictWriter(f, fieldnames=HISTORY_COLUMNS)   # import in every job
        writer.writeheader()
        writer.writerows(history)
    (outdir / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    resume_path.unlink(missing_ok=True)
    timing = {"wall_seconds": time.perf_counter() - t0, "resumed_from_step": resumed_from}
    print(f"timing: {json.dumps(timing)}", file=sys.stderr)
    return {**metrics, "timing": timing}


HISTORY_COLUMNS = ["epoch", "step", "grad_evals", "lr", "train_loss_running",
                   "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc"]
FINAL_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc")


def _summarise(spec: dict[str, Any], spec_hash: str, history: list[dict[str, float]],
               diverged_at: int | None, steps: int, grad_evals: int) -> dict[str, Any]:
    """Final and early-stopped numbers; ``None`` everywhere for a diverged run."""
    out: dict[str, Any] = {"spec": spec, "spec_hash": spec_hash,
                           "status": "ok" if diverged_at is None else "diverged",
                           "diverged_at_step": diverged_at, "steps": steps,
                           "grad_evals": grad_evals}
    if diverged_at is not None or not history:
        out["final"] = dict.fromkeys(FINAL_KEYS)
        out["final"]["generalisation_gap"] = None
        out["early_stopped"] = {"epoch": None, "val_acc": None, "test_acc": None}
        return out
    last = history[-1]
    out["final"] = {k: last[k] for k in FINAL_KEYS}
    out["final"]["generalisation_gap"] = last["train_acc"] - last["test_acc"]
    best = max(history, key=lambda r: (r["val_acc"], -r["epoch"]))  # earliest best epoch
    out["early_stopped"] = {"epoch": int(best["epoch"]), "val_acc": best["val_acc"],
                            "test_acc": best["test_acc"]}
    return out


def train_from_file(spec: dict[str, Any], data_npz: str | Path, outdir: str | Path,
                    threads: int | None = None, progress: bool = True,
                    weights_path: str | Path | None = None) -> dict[str, Any]:
    """:func:`train` on a prepared split file (what the training rule and ``rose run`` call)."""
    from rose.data.splits import load

    split = load(data_npz)
    if split.name != spec["dataset"]:
        raise ValueError(f"spec is for dataset {spec['dataset']!r} but {data_npz} holds "
                         f"{split.name!r}")
    return train(spec, split, outdir, threads=threads, progress=progress,
                 weights_path=weights_path)
