"""The online learner: every stream batch is seen once; on it the model takes K SGD steps,
then (for the ball) is pulled back inside d(theta, theta_ref) <= r.

All arms of one call share a kind (and distance, controller, anchor) and differ in K, r, memory
or penalty weight; each (arm, seed) is an instance of the shared stacked MLP
(:class:`rose.nn.StackedNet`, weights theta [I, P]), and every arm of a seed starts from the
seed's initial weights and sees the seed's stream (paired). Instances with K_i < K_max are
masked out of the extra steps (their loss is multiplied by 0, so plain SGD leaves them
unchanged). Evaluation on each task's test set uses a class-stratified sample of it
(rose.sampling). The loop is resumable batch by batch inside a rose.engine Job; an instance
whose loss is not finite or exceeds 100 ln C is recorded as diverged (rose.divergence).

Each instance has its own learning rate (``Arm.lr``, the settings' rate if None): the
optimiser is plain SGD at lr = 1 on sum_i lr_i L_i, whose step on instance i is exactly
-lr_i grad L_i (the instances share no weights), so a learning-rate grid trains stacked.

Kinds (research notes sections 2 and 5):
  sgd            K plain steps per batch (K = 1: fine-tuning)
  ball           K steps inside the ball around theta_ref (:mod:`rose.continual.ball`),
                 enforced after the K steps (``enforce="end"``: the segment from theta_ref to
                 theta_K) or after every step (``enforce="step"``: each step's end point is
                 pulled back onto its segment from theta_ref, so every iterate is feasible);
                 theta_ref = the model before the batch ("prev", no task boundaries) or at the
                 start of the task ("task_start", uses boundaries); with memory > 0 the steps
                 also replay (replay + ball). The Fisher ball uses an exponential moving
                 average of per-batch empirical Fishers with Adam's bias correction
                 (Kingma & Ba 2015, alg. 1): F_hat_n = F_ema_n / (1 - decay^n), so after n
                 batches it is the decay-weighted mean of the n batch Fishers (not (1 - decay^n)
                 times it, which would inflate the radius 1 / sqrt(1 - decay^n)-fold). CKA is
                 measured on the batch plus ``cka_probe`` past inputs from a reservoir that
                 only the distance reads (linear CKA of independent features is near 1 on a
                 handful of samples: uninformative at batch 10).
  mer            Meta-Experience Replay (Riemer et al. 2019) as Mammoth's models/mer.py runs
                 it, with the stream batch in place of its single sample: theta_A0 = theta;
                 K times: theta_W0 = theta, one SGD step on the batch plus as many reservoir
                 samples, theta <- theta_W0 + beta (theta - theta_W0); then
                 theta <- theta_A0 + gamma (theta - theta_A0) (within- and across-batch
                 Reptile). With one step per inner batch, beta only rescales lr; gamma is the
                 across-step Reptile interpolation, MER's fixed-fraction ball.
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

from rose.continual import penalties as pen
from rose.continual import radius as ctl
from rose.continual.ball import enforce
from rose.continual.distances import Reference, corrected_fisher, empirical_fisher
from rose.continual.streams import Stream
from rose.device import Device, as_tensor, generator, resolve_device
from rose.divergence import Divergence, chance_loss
from rose.engine import Job, NoJob, restore_training, training_state
from rose.nn import StackedNet
from rose.sampling import stratified_sample

KINDS = ("sgd", "ball", "replay", "ewc", "lwf", "l2sp", "ldifs_penalty", "mer")
ENFORCE = ("end", "step")
CONSTANTS = ("shrink_below", "grow_above", "up", "down", "eta")    # controllers, per arm
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
    gamma: float = 1.0          # online EWC's Fisher decay; MER's across-batch Reptile fraction
    beta: float = 1.0           # MER's within-batch Reptile fraction
    lr: float | None = None     # None: Settings.lr
    enforce: str = "end"        # ball: after the K steps, or after every step
    # controller constants (None: the Settings value), tunable per arm
    shrink_below: float | None = None
    grow_above: float | None = None
    up: float | None = None
    down: float | None = None
    eta: float | None = None

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
    line_search_iters: int = 6  # feature-distance balls: false-position steps (continual.ball)
    cka_probe: int = 64        # past inputs added to the batch for the CKA distance


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
    diverged_at: np.ndarray    # [instances] batch at which the instance diverged, -1 if never


def evaluation_sets(streams: list[Stream], n: int, seeds: list[int], device: Device
                    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per task: [seeds, n_j, d] inputs and [seeds, n_j] labels, each seed's a class-stratified
    random sample of its task's test set (n_j = n, or the smallest test set if smaller)."""
    T = streams[0].n_tasks
    xs, ys = [], []
    for j in range(T):
        m = min(n, min(len(s.test_y[j]) for s in streams))
        picks = [stratified_sample(s.test_y[j], m, [seed, 7, j], name="continual.evaluation")
                 for s, seed in zip(streams, seeds, strict=True)]
        xs.append(as_tensor(np.stack([s.test_x[j][p] for s, p in
                                      zip(streams, picks, strict=True)]), device))
        ys.append(as_tensor(np.stack([s.test_y[j][p] for s, p in
                                      zip(streams, picks, strict=True)]), device))
    return xs, ys


def _accuracy(net: StackedNet, theta: torch.Tensor, xs, ys, rows: torch.Tensor) -> np.ndarray:
    """[instances, tasks]."""
    with torch.no_grad():
        out = []
        for x, y in zip(xs, ys, strict=True):
            logits, _ = net.forward(theta, x[rows])
            out.append((logits.argmax(-1) == y[rows]).float().mean(1))
        return torch.stack(out, 1).cpu().numpy()


def _ce(net: StackedNet, theta, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(net.forward(theta, x)[0].transpose(1, 2), y,
                           reduction="none").mean(1)


def run(streams: list[Stream], arms: list[Arm], settings: Settings, seeds: list[int],
        noise_std: float = 0.0, device: Device = "cpu", job: Job | None = None,
        anytime: bool = True) -> Record:
    """Train every (arm, seed) instance along its seed's stream. ``anytime=False`` evaluates
    only at the end of each task (the accuracy matrix; what tuning on final accuracy needs)."""
    job = job or NoJob()
    dev = resolve_device(device)
    kinds = {(a.kind, a.distance, a.controller, a.anchor, a.enforce) for a in arms}
    if len(kinds) != 1:
        raise ValueError(f"one call runs one kind of arm, got {sorted(kinds)}")
    kind, dist_name, controller, anchor, enforce_at = kinds.pop()
    if enforce_at not in ENFORCE:
        raise ValueError(f"unknown enforcement {enforce_at!r}; expected one of {ENFORCE}")
    S, A = len(streams), len(arms)
    I = S * A
    seed_of = np.tile(np.arange(S), A)
    arm_of = np.repeat(np.arange(A), S)
    rows = as_tensor(seed_of, dev)
    Xs = as_tensor(np.stack([s.x for s in streams]), dev)      # [S, batches, b, d]
    Ys = as_tensor(np.stack([s.y for s in streams]), dev)
    task_of = streams[0].task_of_batch
    n_batches, b, d = Xs.shape[1:]
    T, C = streams[0].n_tasks, streams[0].n_classes
    test_x, test_y = evaluation_sets(streams, settings.test_per_task, seeds, dev)

    def per_instance(values, dtype=torch.float32) -> torch.Tensor:
        return as_tensor([values(arms[a]) for a in arm_of], dev, dtype)

    net = StackedNet({"name": "mlp", "hidden": list(settings.hidden)}, (d,), C)
    theta = net.init([seeds[s] for s in seed_of], dev, scheme="xavier")   # paired by seed
    params = net.parameters(theta)
    opt = torch.optim.SGD(params, lr=1.0)      # each instance's rate scales its loss
    g = generator(seeds[0], dev)
    g_probe = generator(seeds[0] + 2, dev)     # the CKA probe's reservoir: not g's draws
    K = per_instance(lambda a: a.k, torch.long)
    def own(field: str):
        return per_instance(lambda a: getattr(settings, field) if getattr(a, field) is None
                            else getattr(a, field))
    lr = own("lr")
    shrink_below, grow_above, up, down, eta = (own(f) for f in CONSTANTS)
    r0 = per_instance(lambda a: a.radius)
    r_min, r_max = r0 / settings.r_range, r0 * settings.r_range
    lam_pen = per_instance(lambda a: a.lam)
    gam = per_instance(lambda a: a.gamma)
    beta = per_instance(lambda a: a.beta)
    mem_cap = per_instance(lambda a: a.memory, torch.long)
    probe = settings.cka_probe if kind == "ball" and dist_name == "cka" else 0
    replays = int(mem_cap.max()) > 0           # the steps train on memory samples too
    M = int(mem_cap.max())
    K_max = int(K.max())
    div = Divergence(I, chance_loss(C))
    # everything below changes along the stream and is checkpointed
    st = {"t": 0, "r": r0.clone(), "lam_dual": torch.zeros(I, device=dev),
          "mem_x": torch.zeros(I, max(M, 1), d, device=dev),
          "mem_y": torch.zeros(I, max(M, 1), dtype=torch.long, device=dev),
          "n_seen": torch.zeros(I, dtype=torch.long, device=dev),
          # the CKA probe: its own reservoir of past inputs, read by the distance only
          "probe_x": torch.zeros(I, max(probe, 1), d, device=dev),
          "probe_y": torch.zeros(I, max(probe, 1), dtype=torch.long, device=dev),
          "probe_seen": torch.zeros(I, dtype=torch.long, device=dev),
          "fisher": torch.zeros_like(theta), "fisher_n": 0,   # EMA (fisher distance)
          "ewc_f": torch.zeros_like(theta),           # consolidated F*
          "task_f": torch.zeros_like(theta), "task_batches": 0,
          "anchor": theta.clone(), "prev_theta": None,
          "pred": torch.zeros(I, device=dev), "was_active": torch.zeros(I, dtype=torch.bool,
                                                                        device=dev),
          "radius_log": np.zeros((I, n_batches), np.float32),
          "alpha_log": np.zeros((I, n_batches), np.float32),
          "lam_log": np.zeros((I, n_batches), np.float32),
          "dist_log": np.zeros((I, n_batches), np.float32),
          "anytime": [], "eval_batch": [], "matrix": np.zeros((I, T, T), np.float32),
          "steps": torch.zeros(I, dtype=torch.long, device=dev)}
    saved = job.resume()
    if saved is not None:
        restore_training(saved, theta, opt, (g, g_probe))
        div.load(saved["diverged_at"])
        st = {k: (v.to(dev) if isinstance(v, torch.Tensor) else v)
              for k, v in saved["state"].items()}

    def snapshot() -> dict:
        return {**training_state(theta, opt, (g, g_probe), div.state()), "state": st}

    def memory_sample(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """n replay-memory samples per instance (uniform over what is stored) and whether the
        instance has any."""
        filled = torch.minimum(st["n_seen"], mem_cap)
        idx = (torch.rand(I, n, generator=g, device=dev) * filled.clamp(min=1)[:, None]).long()
        return (st["mem_x"].gather(1, idx[..., None].expand(-1, -1, d)),
                st["mem_y"].gather(1, idx), filled > 0)

    while st["t"] < n_batches:
        t = st["t"]
        r = st["r"]
        if t > 0 and task_of[t] != task_of[t - 1]:       # a boundary: only some arms use it
            if kind == "ewc":
                st["ewc_f"] = pen.consolidate_fisher(st["ewc_f"], st["task_f"],
                                                     st["task_batches"], gam)
                st["task_f"].zero_()
                st["task_batches"] = 0
            st["anchor"].copy_(theta)
        xb, yb = Xs[rows, t], Ys[rows, t]
        if kind == "ball" and controller in ("ratio", "prequential") and \
                st["prev_theta"] is not None:
            # prequential check (Gama et al. 2013): the last batch's update, judged on this
            # batch before the model trains on it (every sample is learned; none held out)
            with torch.no_grad():
                before = _ce(net, st["prev_theta"], xb, yb)
                now = _ce(net, theta, xb, yb)
            if controller == "prequential":
                r = ctl.prequential_update(r, now < before, up, down, r_min, r_max)
            else:
                # no predicted decrease on the fitted batch: no evidence either way, r kept
                # (NaN fails both threshold tests)
                actual = before - now
                rho = torch.where(st["pred"] > 0, actual / st["pred"].clamp(min=1e-12),
                                  torch.full_like(actual, float("nan")))
                r = ctl.ratio_update(r, rho, st["was_active"], r_min, r_max, shrink_below,
                                     grow_above)
        if kind == "ball" and dist_name == "fisher":
            f_now = empirical_fisher(net, theta, xb, yb)
            st["fisher"].mul_(settings.fisher_decay).add_((1 - settings.fisher_decay) * f_now)
            st["fisher_n"] += 1
        # the first task has nothing to preserve: task-start anchors and penalties start at
        # the first boundary (before it, the ball is around the previous model)
        after_first = float(task_of[t] > 0)
        ref_theta = st["anchor"] if anchor == "task_start" and after_first else theta
        if kind == "ball":   # theta_ref and its features on the batch, once per batch
            ref_x = xb
            stored = min(probe, int(st["probe_seen"][0]))   # the same for every instance
            if stored:
                ref_x = torch.cat([xb, st["probe_x"][:, :stored]], 1)
            fisher = None
            if dist_name == "fisher":
                fisher = corrected_fisher(st["fisher"], st["fisher_n"], settings.fisher_decay)
            ref = Reference(net, ref_theta, ref_x, fisher)
            distance = ref.distance(dist_name)
        if kind == "ball" and controller in ("ratio", "prequential"):
            st["prev_theta"] = theta.detach().clone()
            with torch.no_grad():
                start_fit = _ce(net, theta, xb, yb)
        if kind == "lwf":
            with torch.no_grad():
                old_logits = net.forward(st["anchor"], xb)[0]
        if kind == "ldifs_penalty":
            with torch.no_grad():
                anchor_taps = [a for _, a in net.forward(st["anchor"], xb)[1]]
        first_loss = None
        alpha = torch.ones(I, device=dev)
        d_pre = torch.zeros(I, device=dev)     # the largest distance before any projection
        start_all = theta.detach().clone() if kind == "mer" else None
        for k in range(K_max):
            active = (k < K).float()
            x_s, y_s = xb, yb
            weight = torch.ones_like(yb, dtype=torch.float32)
            if replays:
                rx, ry, use = memory_sample(b)
                x_s = torch.cat([xb, rx], 1)
                y_s = torch.cat([yb, ry], 1)
                weight = torch.cat([weight, (use & (mem_cap > 0))[:, None].float()
                                    .expand_as(ry)], 1)
            logits, hidden = net.forward(params, x_s)
            ce = F.cross_entropy(logits.transpose(1, 2), y_s, reduction="none")
            loss = (ce * weight).sum(1) / weight.sum(1)
            if first_loss is None:
                first_loss = loss.detach()
            flat = None
            if kind in ("ewc", "l2sp"):
                flat = torch.cat([p.reshape(I, -1) for p in params], -1)
            if kind == "ewc":   # F* is zero until the first boundary
                loss = loss + pen.ewc_penalty(flat, st["anchor"], st["ewc_f"], lam_pen)
            elif kind == "l2sp":
                loss = loss + after_first * pen.l2sp_penalty(flat, st["anchor"], lam_pen)
            elif kind == "lwf":
                loss = loss + after_first * pen.lwf_penalty(
                    logits[:, :b], old_logits, lam_pen, arms[0].temperature)
            elif kind == "ldifs_penalty":
                taps = [a[:, :b] for _, a in hidden]
                loss = loss + after_first * pen.ldifs_penalty(taps, anchor_taps, lam_pen)
            elif kind == "ball" and controller == "dual":
                # lambda (d / r)^2: the same constraint, with a gradient that vanishes at
                # theta_ref (d itself is a norm, whose gradient has unit length everywhere)
                loss = loss + st["lam_dual"] * (distance(params) / r) ** 2
            step_start = theta.detach().clone() if kind == "mer" else None
            opt.zero_grad(set_to_none=True)
            (loss * active * lr).sum().backward()
            opt.step()
            if kind == "mer":      # within-batch Reptile
                with torch.no_grad():
                    theta.copy_(torch.lerp(step_start, theta, beta[:, None]))
            if kind == "ball" and enforce_at == "step":
                if controller == "dual":
                    with torch.no_grad():
                        d_pre = torch.maximum(d_pre, distance(theta))
                alpha = torch.minimum(alpha, enforce(theta, ref.theta, distance, dist_name, r,
                                                     settings.line_search_iters))
        if kind == "mer":          # across-batch Reptile
            with torch.no_grad():
                theta.copy_(torch.lerp(start_all, theta, gam[:, None]))
        div.update(first_loss, t)
        st["steps"] += K
        if kind == "ball":
            if controller == "dual":       # d before the projection (per step: the largest)
                with torch.no_grad():
                    d_pre = torch.maximum(d_pre, distance(theta))
                    st["lam_dual"] = ctl.dual_update(st["lam_dual"], d_pre, r, eta,
                                                     r ** 2 / (2 * lr))
            alpha = torch.minimum(alpha, enforce(theta, ref.theta, distance, dist_name, r,
                                                 settings.line_search_iters))
            st["alpha_log"][:, t] = alpha.cpu().numpy()
            with torch.no_grad():
                st["dist_log"][:, t] = distance(theta).cpu().numpy()
                if controller == "ratio":           # its predicted decrease, checked next batch
                    st["pred"] = start_fit - _ce(net, theta, xb, yb)
            st["was_active"] = alpha < 1
            st["radius_log"][:, t] = r.cpu().numpy()
        st["lam_log"][:, t] = st["lam_dual"].cpu().numpy()
        if kind == "ewc":
            st["task_f"].add_(empirical_fisher(net, theta, xb, yb))
            st["task_batches"] += 1
        if M > 0:
            pen.reservoir(st["mem_x"], st["mem_y"], st["n_seen"], mem_cap, xb, yb, g)
        if probe:
            pen.reservoir(st["probe_x"], st["probe_y"], st["probe_seen"],
                          torch.full_like(mem_cap, probe), xb, yb, g_probe)
        last_of_task = t == n_batches - 1 or task_of[t + 1] != task_of[t]
        if (anytime and (t + 1) % settings.eval_every == 0) or last_of_task:
            acc = _accuracy(net, theta, test_x, test_y, rows)
            st["anytime"].append(acc)
            st["eval_batch"].append(t + 1)
            if last_of_task:
                st["matrix"][:, task_of[t]] = acc
        st["r"] = r
        st["t"] = t + 1
        job.tick(snapshot)
    noisy = np.zeros((I, T), np.float32)
    if noise_std > 0:
        gn = generator(seeds[0] + 1, dev)
        noisy_x = [(x + noise_std * torch.randn(x.shape, generator=gn, device=dev)).clamp(0, 1)
                   for x in test_x]
        noisy = _accuracy(net, theta, noisy_x, test_y, rows)
    return Record(np.stack(st["anytime"], 1), np.asarray(st["eval_batch"]), st["matrix"],
                  st["radius_log"], st["alpha_log"], st["lam_log"], st["dist_log"], noisy,
                  st["steps"].cpu().numpy(), div.at_step)
