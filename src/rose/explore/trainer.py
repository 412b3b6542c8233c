"""Training of one arm (a method with its hyperparameters and budget) for S seeds at once, on
in-memory tensors, with the seeds as the rows of one stacked theta [S, P] (rose.nn.StackedNet).

Methods and their cost in gradient evaluations per step (one = forward + backward of a
minibatch):
    sgd          SGD with momentum (torch.optim.SGD)                                       1
    warmup       the same with a linear learning-rate warm-up (Goyal et al. 2017)           1
    adam, radam  torch.optim.Adam / torch.optim.RAdam (RAdam: an implicit warm-up)          1
    sam, asam    rose.explore.sam.SAM over momentum SGD (ASAM: adaptive=True)               2
    gsam         the same with GSAM's surrogate-gap term (alpha > 0)                         2
    gam          rose.explore.gam, accelerated GAM over momentum SGD                        4
    swa          momentum SGD, then torch.optim.swa_utils.AveragedModel of the iterates
                 from ``swa_start`` (a fraction of the run) with SWALR's annealing           1
    entropy_sgd  rose.explore.entropy_sgd, L Langevin steps per outer step                  L
    contour      ``start_epochs`` of SGD, the contour warm-up on a probe batch
                 (rose.explore.contour), then momentum SGD                           1 + walk
Schedules (``Base.schedule``): ``constant``, or ``cosine``, eta_t = eta (1 + cos(pi t / T)) / 2
over the arm's T descent steps (Loshchilov & Hutter 2017, SGDR without restarts, eta_min = 0),
times the linear warm-up's factor for ``warmup`` (the product: the cosine counts from step 0, so a
warm-up of w steps peaks at (1 + cos(pi w / T)) / 2 of the rate, not at the rate; timm's
``warmup_prefix=False``). The contour arm's T counts the SGD steps before
and after its walk; SWA keeps its own schedule (Izmailov et al. 2018: the rate held, then SWALR's
annealing to ``swa_lr_factor`` x the rate while the iterates are averaged).

Budgets: ``steps`` gives every arm the same number of (outer) optimizer steps, so expensive
methods use more gradient evaluations; ``grad_evals`` gives every arm the gradient evaluations
of ``epochs`` of SGD (SAM gets half the steps; the contour arm's SGD phase is shortened by the
walk's cost in minibatch equivalents, a forward counted as 1/3 of a gradient evaluation).

Rows may also be grid points x seeds (``Rows``, rose.tuning): the hyperparameters in
``STACKABLE`` then take one value per row (learning rates through rose.nn.optim.PerInstanceLR,
so every method's optimiser is built with lr = 1; warm-up lengths as a per-row factor on that
rate; SAM's rho and Entropy-SGD's coupling as per-row tensors; the walk's step size per row).
Rows of one seed share initial weights, label noise and minibatches.

A row whose minibatch loss is non-finite or above ``divergence_factor`` x ln(classes) is recorded
as diverged (no final numbers; rose.divergence); the other rows continue unaffected (rows never
interact). Training is resumable step by step inside a rose.engine Job: weights, optimiser,
schedulers, SWA average, minibatch sampler, RNG states, history and the walk are checkpointed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import SWALR, AveragedModel

from rose.device import generator
from rose.divergence import Divergence, chance_loss
from rose.engine import Job, NoJob, rng_states, set_rng_states
from rose.explore.contour import ContourSettings, WalkRecord, contour_walk
from rose.explore.entropy_sgd import entropy_sgd_direction
from rose.explore.gam import gam_direction
from rose.explore.sam import SAM
from rose.nn import StackedNet
from rose.nn.optim import PerInstanceLR

METHODS = ("sgd", "warmup", "adam", "radam", "sam", "asam", "gsam", "gam", "swa", "entropy_sgd",
           "contour")
SCHEDULES = ("constant", "cosine")
# hyperparameters that may differ between the rows of one stacked run (one value per row)
STACKABLE = ("lr", "warmup_steps", "rho", "gamma0", "step_size")


@dataclass(frozen=True)
class Rows:
    """The rows of a stacked run: ``seed`` [R] each row's seed (its index into the data's
    per-seed labels and into theta0), ``hp`` STACKABLE name -> [R] per-row values."""
    seed: np.ndarray
    hp: dict = field(default_factory=dict)

    @staticmethod
    def seeds(n: int) -> Rows:
        return Rows(np.arange(n))


@dataclass
class Data:
    """Shared inputs, per-seed labels: y_train/y_val [S, N] carry each seed's label noise (the
    labels trained on); y_train_clean [N] and y_test [N] are the true labels. Two
    class-stratified samples of the training set (rose.sampling), pairwise disjoint: the probe
    batch every measurement uses, the walk batch the contour warm-up walks on, and the
    selection batch its candidates are scored on."""
    X_train: torch.Tensor
    y_train: torch.Tensor
    y_train_clean: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    X_probe: torch.Tensor            # the measurement probe [B, ...]
    y_probe: torch.Tensor            # its labels per seed [S, B]
    probe_index: torch.Tensor        # its positions in the training set
    walk_index: dict[int, torch.Tensor]   # walk size -> the walk batch's training positions
    n_classes: int
    select_index: dict[int, torch.Tensor] = field(default_factory=dict)
    # walk size -> the training positions the walk's candidates are scored on (disjoint from
    # the walk batch and the probe)
    train_eval_index: torch.Tensor | None = None
    # the training positions the training loss and accuracy are evaluated on (a stratified
    # sample, rose.sampling; None: the whole training set)


@dataclass(frozen=True)
class Arm:
    name: str
    method: str
    budget: str = "steps"
    hp: dict = field(default_factory=dict)         # the method's hyperparameters
    contour: ContourSettings | None = None
    start_epochs: float = 0.0                      # contour: SGD epochs before the walk
    grid: dict = field(default_factory=dict)       # hyperparameter -> candidates (tuned)


@dataclass
class Base:
    epochs: int
    batch_size: int
    lr: float
    momentum: float = 0.9
    weight_decay: float = 0.0
    divergence_factor: float = 100.0
    schedule: str = "constant"                     # or "cosine" (module docstring)


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

    def rows(self, idx: np.ndarray, snap: int) -> Result:
        """The result of rows ``idx`` only (renumbered 0..len-1 in the history); snapshots
        are then those of snapshot row ``snap`` (snapshots keep every seed-0 row)."""
        idx = np.asarray(idx)
        pos = {int(r): i for i, r in enumerate(idx)}
        hist = [{**h, "seed_row": pos[h["seed_row"]]} for h in self.history
                if h["seed_row"] in pos]
        walk = None
        if self.walk is not None:
            w = self.walk
            walk = WalkRecord(**{**asdict(w), **{k: [np.asarray(a)[idx] for a in getattr(w, k)]
                                                 for k in ("loss", "level", "distance",
                                                           "curvature")},
                                 "chosen_step": np.asarray(w.chosen_step)[idx],
                                 "candidate_scores": np.asarray(w.candidate_scores)[:, idx]})
        t = torch.as_tensor(idx, device=self.theta.device)
        return Result(self.theta[t], hist, self.diverged[idx], self.grad_evals, self.steps,
                      self.path_length[idx], [s[snap] for s in self.snapshots], walk,
                      None if self.theta_walk_start is None else self.theta_walk_start[t],
                      None if self.theta_walk_end is None else self.theta_walk_end[t])


def step_cost(arm: Arm) -> int:
    if arm.method == "entropy_sgd":
        return int(arm.hp.get("langevin_steps", 20))
    return {"sam": 2, "asam": 2, "gsam": 2, "gam": 4}.get(arm.method, 1)


class Sampler:
    """Per-seed minibatches without replacement; a fresh permutation per epoch and seed. The
    order depends only on ``seed``, so arms compared on a seed see the same batches."""

    def __init__(self, data: Data, batch_size: int, seed: int,
                 row_seed: np.ndarray | None = None) -> None:
        self.data, self.bs = data, batch_size
        # rows of one seed (grid points) draw the same batches: one permutation per seed
        self.row_seed = None if row_seed is None else \
            torch.as_tensor(row_seed, device=data.X_train.device)
        self.S = data.y_train.shape[0] if row_seed is None else int(np.max(row_seed)) + 1
        self.n = len(data.X_train)
        self.per_epoch = self.n // batch_size
        self.gen = generator(seed, data.X_train.device)
        self.i = self.per_epoch
        self.perm = torch.zeros(0, dtype=torch.long, device=data.X_train.device)

    def __call__(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.i == self.per_epoch:
            self.perm = torch.argsort(torch.rand(self.S, self.n, generator=self.gen,
                                                 device=self.gen.device), dim=1)
            self.i = 0
        idx = self.perm[:, self.i * self.bs:(self.i + 1) * self.bs]
        if self.row_seed is not None:
            idx = idx[self.row_seed]
        self.i += 1
        return self.data.X_train[idx], torch.gather(self.data.y_train, 1, idx)

    def state(self) -> dict:
        return {"gen": self.gen.get_state(), "i": self.i, "perm": self.perm}

    def load(self, st: dict) -> None:
        self.gen.set_state(st["gen"])
        self.i, self.perm = st["i"], st["perm"].to(self.data.X_train.device)


def evaluate(net: StackedNet, theta: torch.Tensor, data: Data, chunk: int = 2048
             ) -> dict[str, np.ndarray]:
    """Loss and accuracy of every row: train (on its noisy labels and on the clean ones), val
    (noisy, as a practitioner has it) and test (clean)."""
    with torch.no_grad():
        def run(X, labels):
            out = {k: [torch.zeros(theta.shape[0], device=theta.device),
                       torch.zeros(theta.shape[0], device=theta.device)] for k in labels}
            for i in range(0, len(X), chunk):
                logits = net.logits(theta, X[i:i + chunk], shared=True)
                for k, y in labels.items():
                    yy = (y[..., i:i + chunk]).expand(logits.shape[0], -1)
                    out[k][0] += F.cross_entropy(logits.transpose(1, 2), yy,
                                                 reduction="none").sum(1)
                    out[k][1] += (logits.argmax(-1) == yy).sum(1)
            return {k: (v[0] / len(X), v[1] / len(X)) for k, v in out.items()}
        i = data.train_eval_index
        X_tr, y_tr, y_cl = (data.X_train, data.y_train, data.y_train_clean) if i is None else \
            (data.X_train[i], data.y_train[:, i], data.y_train_clean[i])
        res = {**run(X_tr, {"train": y_tr, "train_clean": y_cl}),
               **run(data.X_val, {"val": data.y_val}), **run(data.X_test, {"test": data.y_test})}
        flat = {}
        for k, (loss, acc) in res.items():
            flat[f"{k}_loss"], flat[f"{k}_acc"] = loss.cpu().numpy(), acc.cpu().numpy()
        return flat


def row_values(arm: Arm, rows: Rows, name: str, default: float, device) -> torch.Tensor:
    """[R] per-row values of hyperparameter ``name``: the rows' own, else the arm's, else
    ``default``."""
    if name in rows.hp:
        return torch.as_tensor(np.asarray(rows.hp[name], dtype=np.float32), device=device)
    return torch.full((len(rows.seed),), float(arm.hp.get(name, default)), device=device)


def learning_rates(arm: Arm, base: Base, rows: Rows, device) -> torch.Tensor:
    """[R] each row's learning rate (Entropy-SGD: its outer rate on w - mu, reference 1)."""
    if arm.method == "entropy_sgd":
        return row_values(arm, rows, "outer_lr", 1.0, device)
    return row_values(arm, rows, "lr", base.lr, device)


def _optimizer(arm: Arm, base: Base, param: nn.Parameter, rows: Rows) -> torch.optim.Optimizer:
    """The arm's optimiser at lr = 1; rose.nn.optim.PerInstanceLR gives each row its rate."""
    wd = arm.hp.get("weight_decay", base.weight_decay)
    if arm.method in ("adam", "radam"):
        cls = torch.optim.Adam if arm.method == "adam" else torch.optim.RAdam
        return cls([param], lr=1.0, weight_decay=wd)
    if arm.method in ("sam", "asam", "gsam"):
        rho = row_values(arm, rows, "rho", float("nan"), param.device)
        return SAM([param], torch.optim.SGD, rho=rho, adaptive=arm.method == "asam",
                   alpha=float(arm.hp.get("alpha", 0.0)) if arm.method == "gsam" else 0.0,
                   batched=True, lr=1.0, momentum=base.momentum, weight_decay=wd)
    if arm.method == "entropy_sgd":                # outer step on w - mu
        return torch.optim.SGD([param], lr=1.0, momentum=base.momentum, nesterov=True)
    return torch.optim.SGD([param], lr=1.0, momentum=base.momentum, weight_decay=wd)


def _optimizer_state(opt: torch.optim.Optimizer) -> dict:
    """SAM keeps its base optimiser's state (momentum buffers) apart from its own."""
    out = {"own": opt.state_dict()}
    if isinstance(opt, SAM):
        out["base"] = opt.base_optimizer.state_dict()
    return out


def _load_optimizer_state(opt: torch.optim.Optimizer, st: dict) -> None:
    opt.load_state_dict(st["own"])
    if isinstance(opt, SAM):
        opt.base_optimizer.load_state_dict(st["base"])
        opt.param_groups = opt.base_optimizer.param_groups


class _Run:
    """The state of one arm's training (everything a checkpoint holds) and its steps."""

    def __init__(self, net: StackedNet, theta0: torch.Tensor, data: Data, arm: Arm,
                 base: Base, seed: int, job: Job, rows: Rows) -> None:
        dev = theta0.device
        rs = torch.as_tensor(rows.seed, device=dev)
        data = replace(data, y_train=data.y_train[rs], y_val=data.y_val[rs],
                       y_probe=data.y_probe[rs])
        theta0 = theta0[rs]
        self.net, self.data, self.arm, self.base, self.seed, self.job, self.rows = \
            net, data, arm, base, seed, job, rows
        self.sampler = Sampler(data, base.batch_size, seed, rows.seed)
        self.snap_rows = torch.as_tensor(np.flatnonzero(rows.seed == 0), device=dev)
        self.row_seed = rs                    # each row's seed index, for shared random draws
        self.per_epoch = self.sampler.per_epoch
        self.cost = step_cost(arm)
        self.budget_steps = base.epochs * self.per_epoch
        self.holder = nn.Module()
        self.holder.theta = nn.Parameter(theta0.clone())
        self.param = self.holder.theta
        S = theta0.shape[0]
        self.history: list[dict[str, Any]] = []
        self.div = Divergence(S, chance_loss(data.n_classes), base.divergence_factor)
        self.path = np.zeros(S)
        self.snapshots: list[torch.Tensor] = []
        self.grad_evals = 0.0
        self.step = 0
        self.phase, self.k = 0, 0        # phase index and steps done within it
        self.walk: WalkRecord | None = None
        self.walk_start: torch.Tensor | None = None
        self.walk_end: torch.Tensor | None = None
        self.remaining = 0               # contour: SGD steps after the walk
        self.total = self.budget_steps   # descent steps the schedule spans (set in run)
        self.rate = learning_rates(arm, base, rows, dev)
        # linear warm-up (Goyal et al. 2017): row i's rate times min(1, (t + 1) / warm_i)
        self.warm = row_values(arm, rows, "warmup_steps", float("nan"), dev) \
            if arm.method == "warmup" else None
        self._build_optimizer()
        self.swa = None
        if arm.method == "swa":          # average once per evaluation (epoch) from swa_start on
            n_steps = self.budget_steps if arm.budget == "steps" else \
                self.budget_steps // self.cost
            self.swa = {"avg": AveragedModel(self.holder), "sched": None,
                        "start": int(arm.hp.get("swa_start", 0.75) * n_steps)}

    # -- checkpoints --------------------------------------------------------------------------
    def state(self) -> dict:
        swa = None
        if self.swa is not None:
            swa = {"avg": self.swa["avg"].state_dict(),
                   "sched": None if self.swa["sched"] is None else
                   self.swa["sched"].state_dict()}
        return {"theta": self.param.detach(), "opt": _optimizer_state(self.opt), "swa": swa,
                "sampler": self.sampler.state(), "history": self.history,
                "diverged_at": self.div.state(), "path": self.path,
                "snapshots": self.snapshots, "grad_evals": self.grad_evals, "step": self.step,
                "phase": self.phase, "k": self.k, "remaining": self.remaining,
                "walk": None if self.walk is None else asdict(self.walk),
                "walk_start": self.walk_start, "walk_end": self.walk_end,
                "rng": rng_states()}

    def load(self, st: dict) -> None:
        dev = self.param.device
        with torch.no_grad():
            self.param.copy_(st["theta"])
        # schedulers set the learning rate when built: build them, then restore the
        # optimiser (its learning rates included), then the schedulers' own counters
        self._build_optimizer()                                  # fresh after a walk, too
        swa_sched = self.swa is not None and st["swa"]["sched"] is not None
        if swa_sched:
            self.swa["sched"] = self._swalr()
        _load_optimizer_state(self.opt, st["opt"])
        if self.swa is not None:
            self.swa["avg"].load_state_dict(st["swa"]["avg"])
            if swa_sched:
                self.swa["sched"].load_state_dict(st["swa"]["sched"])
        self.sampler.load(st["sampler"])
        self.history, self.path, self.snapshots = st["history"], st["path"], st["snapshots"]
        self.div.load(st["diverged_at"])
        self.grad_evals, self.step = st["grad_evals"], st["step"]
        self.phase, self.k, self.remaining = st["phase"], st["k"], st["remaining"]
        self.walk = None if st["walk"] is None else WalkRecord(**st["walk"])
        self.walk_start = None if st["walk_start"] is None else st["walk_start"].to(dev)
        self.walk_end = None if st["walk_end"] is None else st["walk_end"].to(dev)
        set_rng_states(st["rng"])

    def _build_optimizer(self) -> None:
        self.opt = _optimizer(self.arm, self.base, self.param, self.rows)
        self.stepper = PerInstanceLR(self.opt, self.param, self.rate)

    def _rates_now(self) -> torch.Tensor:
        return self.rate * schedule_factor(self.base.schedule, self.step, self.total,
                                           self.warm, self.swa is not None)

    def _swalr(self) -> SWALR:
        # the optimiser runs at lr = 1 (rows scale it): SWALR anneals to a factor of each
        # row's rate, 1 = the row's own rate
        return SWALR(self.opt, swa_lr=self.arm.hp.get("swa_lr_factor", 1.0),
                     anneal_epochs=int(self.arm.hp.get("anneal_epochs", 1)),
                     anneal_strategy="cos")

    # -- steps --------------------------------------------------------------------------------
    def record(self, th: torch.Tensor, phase: str) -> None:
        ev = evaluate(self.net, th, self.data)
        self.snapshots.append(th[self.snap_rows].detach().cpu().clone())
        for s in range(th.shape[0]):
            self.history.append({"step": self.step, "grad_evals": self.grad_evals,
                                 "epochs": self.grad_evals / self.per_epoch, "phase": phase,
                                 "seed_row": s, **{k: float(v[s]) for k, v in ev.items()}})

    def minibatch_grad(self, th: torch.Tensor, batch=None):
        xb, yb = batch if batch is not None else self.sampler()
        return self.net.grad(th, xb, yb)

    def one_step(self) -> torch.Tensor:
        """One optimiser step of the arm's method; returns the minibatch losses [S]."""
        arm, param, opt = self.arm, self.param, self.opt
        self.stepper.set_rates(self._rates_now())
        if arm.method in ("sam", "asam", "gsam"):
            batch = self.sampler()

            def closure(batch=batch):
                opt.zero_grad(set_to_none=True)
                loss = self.net.losses(param, *batch)
                loss.sum().backward()
                return loss.detach()
            return self.stepper.step(closure)
        if arm.method == "gam":
            batch = self.sampler()
            losses, direction = gam_direction(
                param.detach(), lambda th, b=batch: self.minibatch_grad(th, b),
                **{k: v for k, v in arm.hp.items() if k in
                   ("grad_rho", "grad_norm_rho", "gamma")})
        elif arm.method == "entropy_sgd":
            hp = {k: v for k, v in arm.hp.items() if k in
                  ("langevin_steps", "inner_lr", "gamma0", "gamma1", "noise", "beta1")}
            if "gamma0" in self.rows.hp:
                hp["gamma0"] = row_values(arm, self.rows, "gamma0", 0.0, param.device)[:, None]
            losses, direction = entropy_sgd_direction(
                param.detach(), self.minibatch_grad, self.step,
                rows=self.row_seed, **hp)
        else:
            losses, direction = self.minibatch_grad(param.detach())
        param.grad = direction
        self.stepper.step()
        return losses

    def sgd_phase(self, n_steps: int, eval_every: int, phase: str) -> None:
        """Steps self.k..n_steps of a descent phase (resumable at any step)."""
        while self.k < n_steps:
            before = self.param.detach().clone()
            losses = self.one_step()
            self.grad_evals += self.cost
            self.div.update(losses, self.step)
            self.path[:] += (self.param.detach() - before).norm(dim=-1).nan_to_num(0.0) \
                .cpu().numpy()
            self.k += 1
            self.step += 1
            if self.k % eval_every == 0 or self.k == n_steps:
                swa = self.swa
                if swa is not None and self.step >= swa["start"]:
                    if swa["sched"] is None:    # SWALR from here on: anneal to swa_lr
                        swa["sched"] = self._swalr()
                    else:
                        swa["sched"].step()
                    swa["avg"].update_parameters(self.holder)
                    self.record(swa["avg"].module.theta.detach(), phase + "_swa")
                else:
                    self.record(self.param.detach(), phase)
            self.job.tick(self.state)

    def run(self) -> Result:
        arm, base, data = self.arm, self.base, self.data
        if self.phase == 0 and self.k == 0 and not self.history:
            self.record(self.param.detach(), "init")
        if arm.method == "contour":
            start_steps = round(arm.start_epochs * self.per_epoch)
            # the walk's cost is known once it has run: until then the schedule spans the budget
            self.total = start_steps + self.remaining if self.phase == 2 else self.budget_steps
            if self.phase == 0:
                self.sgd_phase(start_steps, self.per_epoch, "descent")
                self.phase, self.k = 1, 0
            if self.phase == 1:
                self.walk_start = self.param.detach().clone()
                idx = data.walk_index[min(arm.contour.probe, len(data.X_train) // 3)]
                sel = data.select_index[min(arm.contour.probe, len(data.X_train) // 3)]
                step_size = row_values(arm, self.rows, "step_size", arm.contour.step_size,
                                       self.param.device) if "step_size" in self.rows.hp \
                    else None
                chosen, walk = contour_walk(self.net, self.param.detach(), data.X_train[idx],
                                            data.y_train[:, idx], arm.contour, self.seed,
                                            select_on=(data.X_train[sel], data.y_train[:, sel]),
                                            step_size=step_size,
                                            row_seed=self.row_seed)
                n_probe = len(idx)
                walk_equiv = (walk.grad_evals + walk.forwards / 3) * n_probe / base.batch_size
                self.grad_evals += walk_equiv
                with torch.no_grad():
                    self.param.copy_(chosen)
                # the walk moved theta: momentum from before it would point the wrong way
                self._build_optimizer()
                self.walk, self.walk_end = walk, chosen.clone()
                self.record(self.param.detach(), "walk")
                self.remaining = self.budget_steps - start_steps
                if arm.budget == "grad_evals":
                    self.remaining -= math.ceil(walk_equiv)
                    if self.remaining < 0:      # never spend more than the reference
                        raise ValueError(
                            f"arm {arm.name}: the walk and the SGD before it cost "
                            f"{start_steps + math.ceil(walk_equiv)} minibatch gradient "
                            f"evaluations, more than the budget of {self.budget_steps}")
                self.phase, self.k = 2, 0
                self.total = start_steps + self.remaining
                self.job.tick(self.state, force=True)
            self.sgd_phase(self.remaining, self.per_epoch, "descent")
        else:
            n_steps = self.budget_steps if arm.budget == "steps" else \
                self.budget_steps // self.cost
            eval_every = self.per_epoch if arm.budget == "steps" else \
                max(1, self.per_epoch // self.cost)
            self.total = n_steps
            self.sgd_phase(n_steps, eval_every, "train")
            if self.swa is not None:
                with torch.no_grad():
                    self.param.copy_(self.swa["avg"].module.theta)
        theta = self.param.detach().clone()
        diverged = self.div.diverged | ~torch.isfinite(theta).all(-1).cpu().numpy()
        return Result(theta, self.history, diverged, self.grad_evals, self.step, self.path,
                      self.snapshots, self.walk, self.walk_start, self.walk_end)


def schedule_factor(schedule: str, step: int, total: int, warm: torch.Tensor | None = None,
                    swa: bool = False) -> torch.Tensor | float:
    """The factor on each row's rate at descent step ``step`` (0-based) of ``total``:
    cosine (1 + cos(pi t / T)) / 2 (SGDR, Loshchilov & Hutter 2017, eta_min = 0; not for SWA,
    which anneals with SWALR) times the linear warm-up min(1, (t + 1) / warm) (Goyal et al.
    2017) where ``warm`` [R] is given."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; known: {SCHEDULES}")
    f: torch.Tensor | float = 1.0
    if schedule == "cosine" and not swa:
        f = 0.5 * (1.0 + math.cos(math.pi * min(step, total) / max(total, 1)))
    if warm is not None:
        f = f * torch.clamp((step + 1) / warm, max=1.0)
    return f


def train_arm(net: StackedNet, theta0: torch.Tensor, data: Data, arm: Arm, base: Base,
              seed: int, job: Job | None = None, rows: Rows | None = None) -> Result:
    """Train every row of theta0 [S, P] (one per seed) with ``arm``, or the ``rows`` (grid
    points x seeds, each starting from its seed's theta0 row); evaluate once per epoch of its
    budget. Inside ``job`` (rose.engine) the training resumes from its last checkpoint."""
    if arm.method not in METHODS:
        raise ValueError(f"unknown method {arm.method!r}; known: {METHODS}")
    job = job or NoJob()
    torch.manual_seed(seed)
    rows = rows or Rows.seeds(theta0.shape[0])
    unknown = sorted(set(rows.hp) - set(STACKABLE))
    if unknown:
        raise ValueError(f"per-row hyperparameters {unknown} cannot be stacked; stackable: "
                         f"{STACKABLE}")
    run = _Run(net, theta0, data, arm, base, seed, job, rows)
    saved = job.resume()
    if saved is not None:
        run.load(saved)
    return run.run()
