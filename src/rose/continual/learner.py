"""The online learner: every stream batch is seen once; on it the model takes K SGD steps,
then (for the ball) is pulled back inside d(theta, theta_ref) <= r.

All arms of one call share a kind (and distance, controller, anchor) and differ in K, r, memory
or penalty weight; each (arm, seed) is an instance of one batched MLP
(:class:`rose.superposition.shortcut.BatchedMLP`), and every arm of a seed starts from the same
initial weights and sees the same stream. Instances with K_i < K_max are masked out of the
extra steps (their loss is multiplied by 0, so plain SGD leaves them unchanged).

Kinds (research notes sections 2 and 5):
  sgd            K plain steps per batch (K = 1: fine-tuning)
  ball           K steps, then the ball around theta_ref (:mod:`rose.continual.ball`);
                 theta_ref = the model before the batch ("prev", no task boundaries) or at the
                 start of the task ("task_start", uses boundaries); with memory > 0 the steps
                 also replay (replay + ball)
  replay         experience replay: reservoir memory of ``memory`` samples (Vitter 1985), each
                 step trains on the batch plus as many memory samples
  ewc            online EWC (Schwarz et al. 2018): at each task boundary F* <- gamma F* + F_task
                 (empirical Fisher averaged over the task's batches), theta* <- theta; penalty
                 lam / 2 sum F* (theta - theta*)^2 (uses boundaries)
  lwf            LwF (Li & Hoiem 2017): lam T^2 KL(softmax(z_old / T) || softmax(z / T)) on the
                 batch, z_old from the model at the task start (uses boundaries)
  l2sp           lam ||theta - theta_task_start||^2 (uses boundaries)
  ldifs_penalty  lam LDIFS(theta, theta_task_start) on the batch, lam = 10 as the paper
                 (uses boundaries)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from rose.continual import radius as ctl
from rose.continual.ball import enforce
from rose.continual.distances import Reference, empirical_fisher, euclidean, ldifs
from rose.continual.streams import Stream
from rose.superposition.shortcut import BatchedMLP

KINDS = ("sgd", "ball", "replay", "ewc", "lwf", "l2sp", "ldifs_penalty")
USES_BOUNDARIES = ("ewc", "lwf", "l2sp", "ldifs_penalty")


@dataclass(frozen=True)
class Arm:
    name: str
    kind: str
    k: int = 1
    distance: str = "euclidean"
    radius: float = math.inf
    controller: str = "fixed"
    anchor: str = "prev"
    memory: int = 0
    lam: float = 0.0
    temperature: float = 2.0
    gamma: float = 1.0

    @property
    def uses_boundaries(self) -> bool:
        return self.kind in USES_BOUNDARIES or self.anchor == "task_start"


@dataclass(frozen=True)
class Settings:
    hidden: list[int]
    lr: float
    eval_every: int            # batches between anytime evaluations
    test_per_task: int
    fisher_decay: float = 0.99
    r_range: float = 8.0       # adaptive radii stay in [r0 / r_range, r0 * r_range]
    up: float = 1.5            # prequential controller
    down: float = 0.5
    eta: float = 1.0           # dual ascent step
    shrink_below: float = 0.25  # ratio test thresholds
    grow_above: float = 0.75
    bisection_iters: int = 20


@dataclass
class Record:
    anytime: np.ndarray        # [instances, evals, tasks] accuracy
    eval_batch: np.ndarray     # [evals] batches seen at each evaluation
    matrix: np.ndarray         # [instances, tasks, tasks] a[i, j] after task i
    radius: np.ndarray         # [instances, batches] r used on each batch
    alpha: np.ndarray          # [instances, batches] the segment fraction kept
    lam: np.ndarray            # [instances, batches] dual variable (dual controller)
    dist: np.ndarray           # [instances, batches] d(theta, theta_ref) after enforcement
    noisy_acc: np.ndarray      # [instances, tasks] final accuracy on noise-perturbed test inputs
    steps: np.ndarray          # [instances] gradient steps taken


def _test_tensors(streams: list[Stream], n: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per task: [seeds, n_j, d] inputs and [seeds, n_j] labels (the first n test points)."""
    T = streams[0].n_tasks
    m = [min(n, min(len(s.test_y[j]) for s in streams)) for j in range(T)]
    xs = [torch.from_numpy(np.stack([s.test_x[j][:m[j]] for s in streams])) for j in range(T)]
    ys = [torch.from_numpy(np.stack([s.test_y[j][:m[j]] for s in streams])) for j in range(T)]
    return xs, ys


@torch.no_grad()
def _accuracy(model: BatchedMLP, xs, ys, seed_of: np.ndarray) -> np.ndarray:
    """[instances, tasks]."""
    out = []
    for x, y in zip(xs, ys, strict=True):
        logits, _ = model.forward(x[seed_of])
        out.append((logits.argmax(-1) == y[seed_of]).float().mean(1))
    return torch.stack(out, 1).numpy()


def run(streams: list[Stream], arms: list[Arm], settings: Settings, seed: int,
        noise_std: float = 0.0) -> Record:
    """Train every (arm, seed) instance along its seed's stream."""
    kinds = {(a.kind, a.distance, a.controller, a.anchor) for a in arms}
    if len(kinds) != 1:
        raise ValueError(f"one call runs one kind of arm, got {sorted(kinds)}")
    kind, dist_name, controller, anchor = kinds.pop()
    S, A = len(streams), len(arms)
    I = S * A
    seed_of = np.tile(np.arange(S), A)
    arm_of = np.repeat(np.arange(A), S)
    rows = torch.as_tensor(seed_of)
    Xs = torch.from_numpy(np.stack([s.x for s in streams]))      # [S, batches, b, d]
    Ys = torch.from_numpy(np.stack([s.y for s in streams]))
    task_of = streams[0].task_of_batch
    n_batches, b, d = Xs.shape[1:]
    T, C = streams[0].n_tasks, streams[0].n_classes
    test_x, test_y = _test_tensors(streams, settings.test_per_task)

    g = torch.Generator().manual_seed(seed)
    init = BatchedMLP.init(S, [d, *settings.hidden, C], g)
    model = BatchedMLP([w.detach()[seed_of].clone().requires_grad_() for w in init.weights],
                       [v.detach()[seed_of].clone().requires_grad_() for v in init.biases])
    opt = torch.optim.SGD(model.parameters(), lr=settings.lr)
    K = torch.tensor([arms[a].k for a in arm_of])
    r = torch.tensor([arms[a].radius for a in arm_of], dtype=torch.float32)
    r_min, r_max = r / settings.r_range, r * settings.r_range
    lam_pen = torch.tensor([arms[a].lam for a in arm_of], dtype=torch.float32)
    lam_dual = torch.zeros(I)
    mem_cap = torch.tensor([arms[a].memory for a in arm_of])
    M = int(mem_cap.max())
    mem_x, mem_y = torch.zeros(I, max(M, 1), d), torch.zeros(I, max(M, 1), dtype=torch.long)
    n_seen = torch.zeros(I, dtype=torch.long)
    fisher = [torch.zeros_like(p) for p in model.parameters()]        # EMA (fisher distance)
    ewc_f = [torch.zeros_like(p) for p in model.parameters()]         # consolidated F*
    task_f = [torch.zeros_like(p) for p in model.parameters()]
    task_batches = 0
    anchor_params = [p.detach().clone() for p in model.parameters()]
    anchor_model = BatchedMLP(anchor_params[:len(model.weights)],
                              anchor_params[len(model.weights):])
    prev_ref = None
    K_max = int(K.max())
    radius_log, alpha_log, lam_log, dist_log = (np.zeros((I, n_batches), np.float32)
                                                for _ in range(4))
    anytime, eval_batch = [], []
    matrix = np.zeros((I, T, T), np.float32)
    steps = torch.zeros(I, dtype=torch.long)

    for t in range(n_batches):
        if t > 0 and task_of[t] != task_of[t - 1]:       # a boundary: only some arms use it
            if kind == "ewc":
                gam = torch.tensor([arms[a].gamma for a in arm_of])
                for f, tf in zip(ewc_f, task_f, strict=True):
                    f.mul_(gam.view(-1, *([1] * (f.dim() - 1)))).add_(tf / max(task_batches, 1))
                    tf.zero_()
                task_batches = 0
            for a_p, p in zip(anchor_params, model.parameters(), strict=True):
                a_p.copy_(p.detach())
        xb, yb = Xs[rows, t], Ys[rows, t]
        fit_x, fit_y, chk_x, chk_y = xb, yb, None, None
        if controller == "ratio":
            h = b // 2
            fit_x, fit_y, chk_x, chk_y = xb[:, :h], yb[:, :h], xb[:, h:], yb[:, h:]
        if controller == "prequential" and prev_ref is not None and kind == "ball":
            with torch.no_grad():
                now = F.cross_entropy(model.forward(xb)[0].transpose(1, 2), yb,
                                      reduction="none").mean(1)
                before = F.cross_entropy(prev_ref.forward(xb)[0].transpose(1, 2), yb,
                                         reduction="none").mean(1)
            r = ctl.prequential_update(r, now < before, settings.up, settings.down,
                                       r_min, r_max)
        if kind == "ball" and dist_name == "fisher":
            f_now = empirical_fisher(model, fit_x, fit_y)
            for f, fn in zip(fisher, f_now, strict=True):
                f.mul_(settings.fisher_decay).add_((1 - settings.fisher_decay) * fn)
        # the first task has nothing to preserve: task-start anchors and penalties start at
        # the first boundary (before it, the ball is around the previous model)
        after_first = float(task_of[t] > 0)
        ref_src = anchor_model if anchor == "task_start" and after_first else model
        if kind == "ball":   # theta_ref and its features on the batch, once per batch
            ref = Reference(ref_src, fit_x, fisher if dist_name == "fisher" else None)
            distance = ref.distance(dist_name)
            if controller == "prequential":   # ref.params are already detached copies
                n_w = len(model.weights)
                prev_ref = BatchedMLP(ref.params[:n_w], ref.params[n_w:])
        if controller == "ratio":
            with torch.no_grad():
                start_fit = F.cross_entropy(model.forward(fit_x)[0].transpose(1, 2), fit_y,
                                            reduction="none").mean(1)
                start_chk = F.cross_entropy(model.forward(chk_x)[0].transpose(1, 2), chk_y,
                                            reduction="none").mean(1)
        if kind == "lwf":
            with torch.no_grad():
                old_logits = anchor_model.forward(fit_x)[0]
        if kind == "ldifs_penalty":
            with torch.no_grad():
                anchor_taps = [a for _, a in anchor_model.forward(fit_x)[1]]
        for k in range(K_max):
            active = (k < K).float()
            x_s, y_s = fit_x, fit_y
            if M > 0:
                filled = torch.minimum(n_seen, mem_cap)
                idx = (torch.rand(I, fit_x.shape[1], generator=g) *
                       filled.clamp(min=1)[:, None]).long()
                rx = mem_x.gather(1, idx[..., None].expand(-1, -1, d))
                ry = mem_y.gather(1, idx)
                use = (filled > 0)[:, None]
                x_s = torch.cat([fit_x, rx], 1)
                y_s = torch.cat([fit_y, ry], 1)
                weight = torch.cat([torch.ones_like(fit_y, dtype=torch.float32),
                                    use.float().expand_as(ry)], 1)
            else:
                weight = torch.ones_like(fit_y, dtype=torch.float32)
            logits, hidden = model.forward(x_s)
            ce = F.cross_entropy(logits.transpose(1, 2), y_s, reduction="none")
            loss = (ce * weight).sum(1) / weight.sum(1)
            params = model.parameters()
            if kind == "ewc":   # F* is zero until the first boundary
                loss = loss + lam_pen / 2 * sum(
                    (f * (p - a_p) ** 2).flatten(1).sum(1)
                    for f, p, a_p in zip(ewc_f, params, anchor_params, strict=True))
            elif kind == "l2sp":
                loss = loss + after_first * lam_pen * euclidean(params, anchor_params) ** 2
            elif kind == "lwf":
                T_ = arms[0].temperature
                z = logits[:, :fit_x.shape[1]]
                loss = loss + after_first * lam_pen * T_ ** 2 * F.kl_div(
                    F.log_softmax(z / T_, -1), F.log_softmax(old_logits / T_, -1),
                    log_target=True, reduction="none").sum(-1).mean(-1)
            elif kind == "ldifs_penalty":
                taps = [a[:, :fit_x.shape[1]] for _, a in hidden]
                loss = loss + after_first * lam_pen * ldifs(taps, anchor_taps)
            elif kind == "ball" and controller == "dual":
                # lambda (d / r)^2: the same constraint, with a gradient that vanishes at
                # theta_ref (d itself is a norm, whose gradient has unit length everywhere)
                loss = loss + lam_dual * (distance(model) / r) ** 2
            opt.zero_grad(set_to_none=True)
            (loss * active).sum().backward()
            opt.step()
        steps += K
        if kind == "ball":
            if controller == "dual":
                with torch.no_grad():
                    lam_dual = ctl.dual_update(lam_dual, distance(model), r, settings.eta,
                                               r ** 2 / (2 * settings.lr))
            alpha = enforce(model, ref.params, distance, dist_name, r,
                            settings.bisection_iters)
            alpha_log[:, t] = alpha.numpy()
            with torch.no_grad():
                dist_log[:, t] = distance(model).numpy()
            if controller == "ratio":
                with torch.no_grad():
                    end_fit = F.cross_entropy(model.forward(fit_x)[0].transpose(1, 2), fit_y,
                                              reduction="none").mean(1)
                    end_chk = F.cross_entropy(model.forward(chk_x)[0].transpose(1, 2), chk_y,
                                              reduction="none").mean(1)
                predicted = start_fit - end_fit
                rho = torch.where(predicted > 0, (start_chk - end_chk) / predicted.clamp(
                    min=1e-12), torch.zeros_like(predicted))
                radius_log[:, t] = r.numpy()
                r = ctl.ratio_update(r, rho, alpha < 1, r_min, r_max,
                                     settings.shrink_below, settings.grow_above)
            else:
                radius_log[:, t] = r.numpy()
        lam_log[:, t] = lam_dual.numpy()
        if kind == "ewc":
            for tf, fn in zip(task_f, empirical_fisher(model, xb, yb), strict=True):
                tf.add_(fn)
            task_batches += 1
        if M > 0:
            _reservoir(mem_x, mem_y, n_seen, mem_cap, xb, yb, g)
        last_of_task = t == n_batches - 1 or task_of[t + 1] != task_of[t]
        if (t + 1) % settings.eval_every == 0 or last_of_task:
            acc = _accuracy(model, test_x, test_y, seed_of)
            anytime.append(acc)
            eval_batch.append(t + 1)
            if last_of_task:
                matrix[:, task_of[t]] = acc
    noisy = np.zeros((I, T), np.float32)
    if noise_std > 0:
        gn = torch.Generator().manual_seed(seed + 1)
        noisy_x = [(x + noise_std * torch.randn(x.shape, generator=gn)).clamp(0, 1)
                   for x in test_x]
        noisy = _accuracy(model, noisy_x, test_y, seed_of)
    return Record(np.stack(anytime, 1), np.asarray(eval_batch), matrix, radius_log, alpha_log,
                  lam_log, dist_log, noisy, steps.numpy())


def _reservoir(mem_x, mem_y, n_seen, cap, xb, yb, g) -> None:
    """Reservoir sampling (Vitter 1985, algorithm R), per instance: sample number n (1-based)
    is stored if n <= capacity, else replaces slot j ~ U{0, n - 1} when j < capacity, so every
    sample seen so far is in memory with probability capacity / n."""
    for i in range(xb.shape[1]):
        n_seen += 1
        j = (torch.rand(len(n_seen), generator=g) * n_seen).long()
        slot = torch.where(n_seen <= cap, n_seen - 1, j)
        keep = (slot < cap) & (cap > 0)
        rows = torch.nonzero(keep).squeeze(1)
        mem_x[rows, slot[rows]] = xb[rows, i]
        mem_y[rows, slot[rows]] = yb[rows, i]
