"""Training of one arm (a method with its hyperparameters and budget) for S seeds at once, on
in-memory tensors, with the seeds as the rows of one stacked theta [S, P] (rose.explore.stacked).

Methods and their cost in gradient evaluations per step (one = forward + backward of a
minibatch):
    sgd          SGD with momentum (torch.optim.SGD)                                       1
    warmup       the same with a linear learning-rate warm-up (Goyal et al. 2017)           1
    adam, radam  torch.optim.Adam / torch.optim.RAdam (RAdam: an implicit warm-up)          1
    sam, asam    rose.explore.sam.SAM over momentum SGD (ASAM: adaptive=True)               2
    gam          rose.explore.gam, accelerated GAM over momentum SGD                        4
    swa          momentum SGD, then torch.optim.swa_utils.AveragedModel of the iterates
                 from ``swa_start`` (a fraction of the run) with SWALR's annealing           1
    entropy_sgd  rose.explore.entropy_sgd, L Langevin steps per outer step                  L
    contour      ``start_epochs`` of SGD, the contour warm-up on a probe batch
                 (rose.explore.contour), then momentum SGD                           1 + walk
Budgets: ``steps`` gives every arm the same number of (outer) optimizer steps, so expensive
methods use more gradient evaluations; ``grad_evals`` gives every arm the gradient evaluations
of ``epochs`` of SGD (SAM gets half the steps; the contour arm's SGD phase is shortened by the
walk's cost in minibatch equivalents, a forward counted as 1/3 of a gradient evaluation).

A row whose minibatch loss is non-finite or above ``divergence_factor`` x ln(classes) is recorded
as diverged (no final numbers); the other rows continue unaffected (rows never interact).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import SWALR, AveragedModel

from rose.explore.contour import ContourSettings, WalkRecord, contour_walk
from rose.explore.entropy_sgd import entropy_sgd_direction
from rose.explore.gam import gam_direction
from rose.explore.sam import SAM
from rose.explore.stacked import StackedNet

METHODS = ("sgd", "warmup", "adam", "radam", "sam", "asam", "gam", "swa", "entropy_sgd",
           "contour")


@dataclass
class Data:
    """Shared inputs, per-seed labels: y_train/y_val [S, N] carry each seed's label noise (the
    labels trained on); y_train_clean [N] and y_test [N] are the true labels."""
    X_train: torch.Tensor
    y_train: torch.Tensor
    y_train_clean: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    X_probe: torch.Tensor            # a fixed slice of the training set for the measurements
    y_probe: torch.Tensor            # its labels per seed [S, B]
    n_classes: int


@dataclass(frozen=True)
class Arm:
    name: str
    method: str
    budget: str = "steps"
    hp: dict = field(default_factory=dict)         # the method's hyperparameters
    contour: ContourSettings | None = None
    start_epochs: float = 0.0                      # contour: SGD epochs before the walk


@dataclass
class Base:
    epochs: int
    batch_size: int
    lr: float
    momentum: float = 0.9
    weight_decay: float = 0.0
    divergence_factor: float = 100.0


@dataclass
class Result:
    theta: torch.Tensor                   # final weights [S, P] (SWA: the average)
    history: list[dict[str, Any]]         # one row per evaluation and seed
    diverged: np.ndarray                  # [S] bool
    grad_evals: float                     # minibatch-equivalent gradient evaluations
    steps: int
    path_length: np.ndarray               # [S] sum of ||theta_{t+1} - theta_t||
    snapshots: list[torch.Tensor]         # row 0's weights at every evaluation
    walk: WalkRecord | None = None
    theta_walk_start: torch.Tensor | None = None
    theta_walk_end: torch.Tensor | None = None


def step_cost(arm: Arm) -> int:
    return {"sam": 2, "asam": 2, "gam": 4}.get(arm.method, 1) if arm.method != "entropy_sgd" \
        else int(arm.hp.get("langevin_steps", 20))


class Sampler:
    """Per-seed minibatches without replacement; a fresh permutation per epoch and seed. The
    order depends only on ``seed``, so arms compared on a seed see the same batches."""

    def __init__(self, data: Data, batch_size: int, seed: int) -> None:
        self.data, self.bs = data, batch_size
        self.S = data.y_train.shape[0]
        self.n = len(data.X_train)
        self.per_epoch = self.n // batch_size
        self.gen = torch.Generator().manual_seed(seed)
        self.i = self.per_epoch

    def __call__(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.i == self.per_epoch:
            self.perm = torch.argsort(torch.rand(self.S, self.n, generator=self.gen), dim=1)
            self.i = 0
        idx = self.perm[:, self.i * self.bs:(self.i + 1) * self.bs]
        self.i += 1
        return self.data.X_train[idx], torch.gather(self.data.y_train, 1, idx)


@torch.no_grad()
def evaluate(net: StackedNet, theta: torch.Tensor, data: Data, chunk: int = 2048
             ) -> dict[str, np.ndarray]:
    """Loss and accuracy of every row: train (on its noisy labels and on the clean ones), val
    (noisy, as a practitioner has it) and test (clean)."""
    def run(X, labels):
        out = {k: [torch.zeros(theta.shape[0]), torch.zeros(theta.shape[0])] for k in labels}
        for i in range(0, len(X), chunk):
            logits = net.apply(theta, X[i:i + chunk], shared=True)
            for k, y in labels.items():
                yy = (y[..., i:i + chunk]).expand(logits.shape[0], -1)
                out[k][0] += torch.nn.functional.cross_entropy(
                    logits.flatten(0, 1), yy.reshape(-1), reduction="none"
                ).view(logits.shape[:2]).sum(1)
                out[k][1] += (logits.argmax(-1) == yy).sum(1)
        return {k: (v[0] / len(X), v[1] / len(X)) for k, v in out.items()}
    res = {**run(data.X_train, {"train": data.y_train, "train_clean": data.y_train_clean}),
           **run(data.X_val, {"val": data.y_val}), **run(data.X_test, {"test": data.y_test})}
    flat = {}
    for k, (loss, acc) in res.items():
        flat[f"{k}_loss"], flat[f"{k}_acc"] = loss.numpy(), acc.numpy()
    return flat


def _optimizer(arm: Arm, base: Base, param: nn.Parameter) -> torch.optim.Optimizer:
    lr = arm.hp.get("lr", base.lr)
    wd = arm.hp.get("weight_decay", base.weight_decay)
    if arm.method in ("adam", "radam"):
        cls = torch.optim.Adam if arm.method == "adam" else torch.optim.RAdam
        return cls([param], lr=lr, weight_decay=wd)
    if arm.method in ("sam", "asam"):
        return SAM([param], torch.optim.SGD, rho=arm.hp["rho"], adaptive=arm.method == "asam",
                   batched=True, lr=lr, momentum=base.momentum, weight_decay=wd)
    if arm.method == "entropy_sgd":                # outer step on w - mu (reference: lr 1)
        return torch.optim.SGD([param], lr=arm.hp.get("outer_lr", 1.0), momentum=base.momentum,
                               nesterov=True)
    return torch.optim.SGD([param], lr=lr, momentum=base.momentum, weight_decay=wd)


def train_arm(net: StackedNet, theta0: torch.Tensor, data: Data, arm: Arm, base: Base,
              seed: int) -> Result:
    """Train every row of theta0 with ``arm``; evaluate once per epoch of its budget."""
    if arm.method not in METHODS:
        raise ValueError(f"unknown method {arm.method!r}; known: {METHODS}")
    torch.manual_seed(seed)
    sampler = Sampler(data, base.batch_size, seed)
    per_epoch = sampler.per_epoch
    cost = step_cost(arm)
    budget_steps = base.epochs * per_epoch
    holder = nn.Module()
    holder.theta = nn.Parameter(theta0.clone())
    param = holder.theta
    S = theta0.shape[0]
    history: list[dict[str, Any]] = []
    diverged = np.zeros(S, bool)
    path = np.zeros(S)
    snapshots: list[torch.Tensor] = []
    grad_evals = 0.0
    chance = math.log(data.n_classes)
    res = Result(theta0, history, diverged, 0.0, 0, path, snapshots)

    def record(step: int, th: torch.Tensor, phase: str) -> None:
        ev = evaluate(net, th, data)
        snapshots.append(th[0].detach().clone())
        for s in range(S):
            history.append({"step": step, "grad_evals": grad_evals,
                            "epochs": grad_evals / per_epoch, "phase": phase, "seed_row": s,
                            **{k: float(v[s]) for k, v in ev.items()}})

    def minibatch_grad(th: torch.Tensor, batch=None):
        xb, yb = batch if batch is not None else sampler()
        return net.grad(th, xb, yb)

    def check(losses: torch.Tensor) -> None:
        bad = ~torch.isfinite(losses) | (losses > base.divergence_factor * chance)
        diverged[bad.numpy()] = True

    def sgd_phase(opt, n_steps: int, step0: int, eval_every: int, phase: str,
                  swa: dict | None = None) -> int:
        nonlocal grad_evals
        sched = None
        if arm.method == "warmup":
            warm = int(arm.hp["warmup_steps"])
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: min(1.0, (k + 1) / warm))
        for k in range(n_steps):
            before = param.detach().clone()
            if arm.method in ("sam", "asam"):
                batch = sampler()

                def closure(batch=batch):
                    opt.zero_grad(set_to_none=True)
                    loss = net.losses(param, *batch)
                    loss.sum().backward()
                    return loss.detach()
                losses = opt.step(closure)
            elif arm.method == "gam":
                batch = sampler()
                losses, direction = gam_direction(
                    param.detach(), lambda th, b=batch: minibatch_grad(th, b),
                    **{k: v for k, v in arm.hp.items() if k in
                       ("grad_rho", "grad_norm_rho", "gamma")})
                param.grad = direction
                opt.step()
            elif arm.method == "entropy_sgd":
                hp = {k: v for k, v in arm.hp.items() if k in
                      ("langevin_steps", "inner_lr", "gamma0", "gamma1", "noise", "beta1")}
                losses, direction = entropy_sgd_direction(param.detach(), minibatch_grad,
                                                          step0 + k, **hp)
                param.grad = direction
                opt.step()
            else:
                losses, g = minibatch_grad(param.detach())
                param.grad = g
                opt.step()
            if sched is not None:
                sched.step()
            grad_evals += cost
            check(losses)
            path[:] += (param.detach() - before).norm(dim=-1).nan_to_num(0.0).numpy()
            step = step0 + k + 1
            if (k + 1) % eval_every == 0 or k + 1 == n_steps:
                if swa is not None and step >= swa["start"]:
                    if swa["sched"] is None:    # SWALR from here on: anneal to swa_lr
                        swa["sched"] = SWALR(opt, swa_lr=arm.hp.get("swa_lr", base.lr),
                                             anneal_epochs=int(arm.hp.get("anneal_epochs", 1)),
                                             anneal_strategy="cos")
                    else:
                        swa["sched"].step()
                    swa["avg"].update_parameters(holder)
                    record(step, swa["avg"].module.theta.detach(), phase + "_swa")
                else:
                    record(step, param.detach(), phase)
        return step0 + n_steps

    opt = _optimizer(arm, base, param)
    record(0, param.detach(), "init")
    if arm.method == "contour":
        start_steps = round(arm.start_epochs * per_epoch)
        step = sgd_phase(opt, start_steps, 0, per_epoch, "descent") if start_steps else 0
        res.theta_walk_start = param.detach().clone()
        n_probe = arm.contour.probe
        chosen, walk = contour_walk(net, param.detach(), data.X_train[:n_probe],
                                    data.y_train[:, :n_probe], arm.contour, seed)
        walk_equiv = (walk.grad_evals + walk.forwards / 3) * n_probe / base.batch_size
        grad_evals += walk_equiv
        with torch.no_grad():
            param.copy_(chosen)
        # the walk moved theta: momentum from before it would point the wrong way
        opt = _optimizer(arm, base, param)
        res.walk, res.theta_walk_end = walk, chosen.clone()
        record(step, param.detach(), "walk")
        remaining = budget_steps - start_steps
        if arm.budget == "grad_evals":
            remaining = max(0, remaining - math.ceil(walk_equiv))
        eval_every = per_epoch
        step = sgd_phase(opt, remaining, step, eval_every, "descent")
    else:
        n_steps = budget_steps if arm.budget == "steps" else budget_steps // cost
        eval_every = per_epoch if arm.budget == "steps" else max(1, per_epoch // cost)
        swa = None
        if arm.method == "swa":    # average once per evaluation (epoch) from swa_start on
            swa = {"avg": AveragedModel(holder), "sched": None,
                   "start": int(arm.hp.get("swa_start", 0.75) * n_steps)}
        step = sgd_phase(opt, n_steps, 0, eval_every, "train", swa)
        if swa is not None:
            with torch.no_grad():
                param.copy_(swa["avg"].module.theta)
    res.theta = param.detach().clone()
    res.grad_evals = grad_evals
    res.steps = step
    bad_rows = ~torch.isfinite(res.theta).all(-1)
    diverged[bad_rows.numpy()] = True
    return res
