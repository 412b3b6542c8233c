"""The 2-features-in-1-dimension phase diagram (Elhage et al. 2022, "Superposition as a phase
change"): feature 1 has importance 1, feature 2 a relative importance r; both have density p.
Each grid cell is a batch of instances (one per seed); the seed with the lowest final loss
stands for the cell, as the optimum is what the diagram describes.

Phases, read from the trained W = (w_1, w_2) in R^{2 x 1}:
  "not_represented"  |w_2| < t                       (feature 2 gets nothing)
  "dedicated"        |w_2| >= t and |w_1| < t        (feature 2 takes the only dimension)
  "superposition"    both >= t and w_1 w_2 < 0       (an antipodal pair)
t = 0.5 separates "about 0" from "about 1" (research/superposition.md, diagnostics).

The penalised diagram (issue 16) trains the privileged-basis model h = ReLU(w . x + c),
x' = ReLU(w h + b) at lambda = 0 and at the configured penalty strength, paired by seed; a
penalty "shifts the boundaries" when the two privileged diagrams differ.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from rose.device import Device, as_tensor, generator, resolve_device
from rose.engine import Job
from rose.superposition.toy_model import ToyModel, train_toy

PHASES = ("not_represented", "dedicated", "superposition")


def classify_phase(w: torch.Tensor | np.ndarray, threshold: float = 0.5) -> str:
    """The phase of one trained W of shape [2, 1] (or [2])."""
    w1, w2 = (float(v) for v in w.reshape(2))
    if abs(w2) < threshold:
        return "not_represented"
    if abs(w1) < threshold:
        return "dedicated"
    return "superposition" if w1 * w2 < 0 else "other"


def phase_diagram(importances: np.ndarray, densities: np.ndarray, seeds: int, steps: int,
                  batch_size: int, lr: float, seed: int, device: Device = "cpu",
                  job: Job | None = None, lams: tuple[float, ...] = (),
                  penalty: str = "none", tau: float = 1.0) -> pd.DataFrame:
    """Train every (relative importance, density, seed) instance at once and return one row per
    grid cell: r, p, the best seed's w_1, w_2, loss and phase. Instances of one seed share their
    initial weights and data draws across cells. With ``lams``, the privileged-basis model is
    trained instead, once per lambda (column ``lam``), with the activation ``penalty``; the
    reconstruction loss picks each cell's best seed."""
    dev = resolve_device(device)
    privileged = len(lams) > 0
    lam_grid = np.asarray(lams if privileged else [0.0], dtype=np.float32)
    r, p, lam, s = np.meshgrid(importances, densities, lam_grid, np.arange(seeds),
                               indexing="ij")
    r, p, lam, s = r.ravel(), p.ravel(), lam.ravel(), s.ravel()
    model = ToyModel.init([seed * 1000 + int(k) for k in s], 2, 1, dev,
                          privileged=privileged)
    rt, pt = as_tensor(r, dev, torch.float32), as_tensor(p, dev, torch.float32)
    imp = torch.stack([torch.ones_like(rt), rt], 1)
    res = train_toy(model, imp, pt[:, None].expand(-1, 2), steps, batch_size, lr,
                    generator(seed, dev), penalty=penalty if privileged else "none",
                    lam=as_tensor(lam, dev, torch.float32), tau=tau, rows=as_tensor(s, dev),
                    job=job)
    W = model.W.cpu()
    df = pd.DataFrame({"importance": r.astype(np.float32), "density": p.astype(np.float32),
                       "lam": lam, "seed": s, "w1": W[:, 0, 0].numpy(),
                       "w2": W[:, 1, 0].numpy(),
                       "loss": np.where(res.diverged_at >= 0, np.nan,
                                        res.loss.cpu().numpy())})
    best = df.loc[df.groupby(["importance", "density", "lam"])["loss"].idxmin()] \
        .reset_index(drop=True)
    best["phase"] = [classify_phase(np.array([a, b])) for a, b in zip(best.w1, best.w2,
                                                                         strict=True)]
    return best
