"""The contour warm-up (the proposal's first direction; no public implementation exists): before
ordinary training, walk along the level set of the training loss, keep candidate points, and
descend from the best one. Predictor-corrector on a fixed probe batch P (research notes,
explore.md section 3), on the rows of a stacked theta [S, P] (one model per row):

    g = grad L_P(th),  g^ = g / ||g||,  d = a proposal direction (``direction``):
        random    filter-normalised Gaussian (Li et al. 2018), fresh every step
        momentum  an exponential average of those: a persistent heading
        flat      -(grad L_P(th + rho g^) - g): descent on SAM's sharpness estimate
                  L_P(th + rho g^) - L_P(th), whose tangent part lowers the SAM loss while the
                  corrector holds L_P, plus ``noise`` times a random direction. (GSAM's
                  ascent -alpha (grad f)_perp does the mirror image: it holds the perturbed
                  loss f_p to first order and raises f; this walk holds f and lowers f_p.)
    predictor  th~ = th + eta ||th_0|| t,   t = (d - (d.g^) g^) / ||d - (d.g^) g^||
    corrector  th  = th~ - ((L_P(th~) - c) / ||grad L_P(th~)||^2) grad L_P(th~)   (one Newton
               step back to the level c; for a unit tangent t, L(th + eta t) - L(th) ~
               eta^2 t^T H t / 2, so the predictor's drift measures the curvature along t)
    level      c_k = c_0 (1 - level_decay k / T)  (fixed when level_decay = 0)

``tangent=False`` drops the projection (the predictor moves along d itself) and ``corrector=False``
the Newton step back to the level; with ``direction: random`` and both off the walk is the
isotropic random walk of the same length and step. The gradient at th~ is reused as the next
step's g (it differs from the gradient at the corrected point only at second order in the small
corrector step).

Selection (``select``): candidates are th_0 and every ``keep_every``-th point; each row descends
from its candidate with the lowest score:
    none          the walk's end point
    random        a candidate drawn uniformly (the ablation of selection: same walk, no score)
    perturbation  mean rise of L_S under magnitude-aware noise th + sigma |th| xi (forwards
                  only), on the selection batch S (``select_on``; a sample apart from the walk's
                  P, so selection does not reward the walk's own batch), with common random
                  numbers: the same draws xi score every candidate of a row
    curvature     mean predictor drift 2 (L_P(th~) - L_P(th)) / (eta ||th_0||)^2 since the
                  previous candidate (free: the corrector measured it); th_0 has no measured
                  curvature and is not a candidate under this rule
Cost is counted in gradient evaluations and forwards on the probe batch; callers convert to
minibatch equivalents (a forward = 1/3 of a gradient evaluation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from rose.device import generator
from rose.measure.landscape import filter_normalized_direction, random_rows
from rose.nn import StackedNet

DIRECTIONS = ("random", "momentum", "flat")
SELECTIONS = ("none", "random", "perturbation", "curvature")


@dataclass(frozen=True)
class ContourSettings:
    steps: int = 100
    probe: int = 100                  # walk batch: a class-stratified training sample
    step_size: float = 0.01           # predictor length as a fraction of ||theta_0||
    direction: str = "flat"
    tangent: bool = True              # project the predictor onto the level set's tangent
    corrector: bool = True            # the Newton step back to the level c_k
    select: str = "perturbation"
    keep_every: int = 10
    level_decay: float = 0.0
    rho: float = 0.05                 # "flat": SAM radius of the sharpness estimate
    noise: float = 0.5                # "flat": weight of the random part of d
    momentum: float = 0.9             # "momentum": heading persistence
    perturb_sigma: float = 0.05       # "perturbation": magnitude-aware noise scale
    perturb_samples: int = 4


@dataclass
class WalkRecord:
    """Per step k: probe loss [T+1, S], level c_k [T+1, S], distance from th_0 [T+1, S],
    curvature along the predictor [T, S]; the chosen candidate's index and step per row."""
    loss: list = field(default_factory=list)
    level: list = field(default_factory=list)
    distance: list = field(default_factory=list)
    curvature: list = field(default_factory=list)
    chosen_step: np.ndarray | None = None
    candidate_steps: list = field(default_factory=list)
    candidate_scores: np.ndarray | None = None
    grad_evals: int = 0
    forwards: int = 0


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / (v.norm(dim=-1, keepdim=True) + 1e-12)


def tangent_step(theta: torch.Tensor, g: torch.Tensor, d: torch.Tensor, eta: torch.Tensor
                 ) -> torch.Tensor:
    """Predictor: theta + eta t, t the unit tangent (d - (d.g^) g^) / ||...|| (row-wise)."""
    gh = _unit(g)
    return theta + eta * _unit(d - (d * gh).sum(-1, keepdim=True) * gh)


def newton_correct(theta: torch.Tensor, loss: torch.Tensor, g: torch.Tensor,
                   level: torch.Tensor) -> torch.Tensor:
    """Corrector: one Newton step along g back to L = level,
    theta - ((L(theta) - level) / ||g||^2) g (row-wise)."""
    return theta - ((loss - level)[:, None] / ((g * g).sum(-1, keepdim=True) + 1e-12)) * g


def _perturbation_score(net: StackedNet, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor,
                        s: ContourSettings, gen_state: torch.Tensor,
                        rows: torch.Tensor | None = None) -> tuple[torch.Tensor, int]:
    """Mean loss rise under ``perturb_samples`` draws of sigma |th| xi; the draws xi restart
    from ``gen_state`` at every call (common random numbers across candidates) and are shared
    by the rows of one seed (``rows``: each row's seed index)."""
    gen = torch.Generator(device=theta.device)
    gen.set_state(gen_state)
    with torch.no_grad():
        base = net.losses(theta, X, y, shared=True)
        rise = torch.zeros(theta.shape[0], device=theta.device)
        for _ in range(s.perturb_samples):
            noise = s.perturb_sigma * theta.abs() * random_rows(theta.shape, gen,
                                                                theta.device, rows)
            rise += net.losses(theta + noise, X, y, shared=True) - base
        return rise / s.perturb_samples, 1 + s.perturb_samples


def lowest_score(scores: torch.Tensor) -> torch.Tensor:
    """scores [K candidates, S rows] -> the index of each row's lowest score; a NaN score (a
    candidate whose loss diverged) counts as +inf, so it is never preferred to a finite one."""
    return torch.nan_to_num(scores, nan=float("inf")).argmin(0)


def contour_walk(net: StackedNet, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor,
                 s: ContourSettings, seed: int = 0,
                 select_on: tuple[torch.Tensor, torch.Tensor] | None = None,
                 step_size: torch.Tensor | None = None, row_seed: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, WalkRecord]:
    """Walk from theta [S, P] on the probe batch (X [B, ...] shared, y [S, B] per row's labels);
    returns (the selected point per row, the record). ``select_on`` = (X_S, y_S) is the batch
    the perturbation rule scores candidates on (default: the walk's own batch);
    ``step_size`` [S] gives each row its own predictor length (default ``s.step_size``);
    ``row_seed`` [S] each row's seed index, so rows of one seed (grid points) share every
    random draw and walk exactly as they would alone."""
    if s.direction not in DIRECTIONS:
        raise ValueError(f"contour direction {s.direction!r}; known: {DIRECTIONS}")
    if s.select not in SELECTIONS:
        raise ValueError(f"contour select {s.select!r}; known: {SELECTIONS}")
    if s.steps < 1:
        raise ValueError("contour steps must be >= 1 when the warm-up is on")
    gen = generator(seed, theta.device)
    crn = generator(seed + 7919, theta.device).get_state()         # the scoring draws
    Xs, ys = select_on if select_on is not None else (X, y)
    rec = WalkRecord()
    th0 = theta.clone()
    frac = s.step_size if step_size is None else step_size.reshape(-1, 1)
    eta = frac * th0.norm(dim=-1, keepdim=True)                    # [S, 1]
    loss, g = net.grad(theta, X, y, shared=True)
    rec.grad_evals += 1
    c0 = loss.clone()
    heading = torch.zeros_like(theta)
    candidates = [theta.clone()]
    rec.candidate_steps.append(0)
    scores: list[torch.Tensor] = []
    curv_since: list[torch.Tensor] = []

    def score(th: torch.Tensor) -> torch.Tensor:
        if s.select == "perturbation":
            sc, nf = _perturbation_score(net, th, Xs, ys, s, crn, row_seed)
            rec.forwards += nf
            return sc
        if s.select == "curvature":
            return torch.stack(curv_since).mean(0) if curv_since else torch.full(
                (th.shape[0],), float("inf"), device=th.device)
        return torch.zeros(th.shape[0], device=th.device)

    scores.append(score(theta))
    rec.loss.append(loss.cpu().numpy())
    rec.level.append(c0.cpu().numpy())
    rec.distance.append(np.zeros(theta.shape[0]))
    for k in range(1, s.steps + 1):
        c = c0 * (1 - s.level_decay * k / s.steps)
        rand = filter_normalized_direction(net, theta, gen, row_seed)
        if s.direction == "random":
            d = rand
        elif s.direction == "momentum":
            heading = s.momentum * heading + (1 - s.momentum) * _unit(rand)
            d = heading
        else:                                                       # flat
            _, g_sam = net.grad(theta + s.rho * _unit(g), X, y, shared=True)
            rec.grad_evals += 1
            d = _unit(-(g_sam - g)) + s.noise * _unit(rand)
        pred = tangent_step(theta, g, d, eta) if s.tangent else theta + eta * _unit(d)
        loss_pred, g_pred = net.grad(pred, X, y, shared=True)
        rec.grad_evals += 1
        curv = 2 * (loss_pred - loss) / eta[:, 0] ** 2
        rec.curvature.append(curv.cpu().numpy())
        curv_since.append(curv)
        if s.corrector:
            theta = newton_correct(pred, loss_pred, g_pred, c)
            loss = net.losses(theta, X, y, shared=True)
            rec.forwards += 1
        else:
            theta, loss = pred, loss_pred
        g = g_pred
        rec.loss.append(loss.cpu().numpy())
        rec.level.append(c.cpu().numpy())
        rec.distance.append((theta - th0).norm(dim=-1).cpu().numpy())
        if k % s.keep_every == 0 or k == s.steps:
            candidates.append(theta.clone())
            rec.candidate_steps.append(k)
            scores.append(score(theta))
            curv_since = []
    stacked = torch.stack(scores)                                   # [K, S]
    if s.select == "none":
        pick = torch.full((theta.shape[0],), len(candidates) - 1, device=theta.device)
    elif s.select == "random":
        n = theta.shape[0] if row_seed is None else int(row_seed.max()) + 1
        pick = torch.randint(len(candidates), (n,), generator=gen, device=theta.device)
        pick = pick if row_seed is None else pick[row_seed]
    else:
        pick = lowest_score(stacked)
    rec.candidate_scores = stacked.cpu().numpy()
    rec.chosen_step = np.asarray(rec.candidate_steps)[pick.cpu().numpy()]
    chosen = torch.stack(candidates)[pick, torch.arange(theta.shape[0], device=theta.device)]
    return chosen, rec
