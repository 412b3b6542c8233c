"""The 2-features-in-1-dimension phase diagram (Elhage et al. 2022, "Superposition as a phase
change"): feature 1 has importance 1, feature 2 a relative importance r; both have density p.
Each grid cell is a batch of instances (one per seed); the seed with the lowest final loss
stands for the cell, as the optimum is what the diagram describes.

Phases, read from each feature's reconstruction gain G_i (rose.superposition.monosemanticity:
the share of its zero-predictor loss the model recovers; represented iff G_i > 1/4) and the
trained W = (w_1, w_2) in R^{2 x 1}:
  "not_represented"  feature 2 not represented        (feature 2 gets nothing)
  "dedicated"        feature 2 represented, 1 not     (feature 2 takes the only dimension)
  "superposition"    both represented, w_1 w_2 < 0    (an antipodal pair)
The paper reads the same phases from the norms (|w_i| < 0.5 is "about 0",
research/superposition.md, diagnostics); that rule is kept as ``phase_norm`` for comparison,
but it calls a model with inflated weights or dead hidden units "represented" (issue 16), which
a penalised diagram can produce. The gain cannot be fooled that way (tested).

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
from rose.superposition.monosemanticity import reconstruction_gain, represented
from rose.superposition.toy_model import ToyModel, sample_features, train_toy

PHASES = ("not_represented", "dedicated", "superposition")


GAIN_BATCH = 2048   # inputs per gain estimate (stratified by presence: 8 forward passes)


def classify_phase(rep: tuple[bool, bool], w: torch.Tensor | np.ndarray) -> str:
    """The phase of one trained model from which features are represented (by gain) and its
    W of shape [2, 1] (or [2]), whose signs tell an antipodal pair."""
    w1, w2 = (float(v) for v in np.asarray(w).reshape(2))
    if not rep[1]:
        return "not_represented"
    if not rep[0]:
        return "dedicated"
    return "superposition" if w1 * w2 < 0 else "other"


def classify_phase_by_norm(w: torch.Tensor | np.ndarray, threshold: float = 0.5) -> str:
    """The paper's rule: the phase of one trained W of shape [2, 1] (or [2]), a feature
    represented when its norm reaches ``threshold``."""
    w1, w2 = (abs(float(v)) for v in np.asarray(w).reshape(2))
    return classify_phase((w1 >= threshold, w2 >= threshold), w)


def phase_diagram(importances: np.ndarray, densities: np.ndarray, seeds: int, steps: int,
                  batch_size: int, lr: float, seed: int, device: Device = "cpu",
                  job: Job | None = None, lams: tuple[float, ...] = (),
                  penalty: str = "none", tau: float = 1.0) -> pd.DataFrame:
    """Train every (relative importance, density, seed) instance at once and return one row per
    grid cell: r, p, the best seed's w_1, w_2, gains, loss, phase and phase_norm. Instances of
    one seed share their initial weights and data draws across cells. With ``lams``, the
    privileged-basis model is trained instead, once per lambda (column ``lam``), with the
    activation ``penalty``; the reconstruction loss picks each cell's best seed."""
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
    with torch.no_grad():
        x = sample_features(pt[:, None].expand(-1, 2), GAIN_BATCH, generator(seed + 1, dev),
                            as_tensor(s, dev))
        gain = reconstruction_gain(model, x, imp, pt[:, None].expand(-1, 2)).cpu().numpy()
    W = model.W.detach().cpu()
    df = pd.DataFrame({"importance": r.astype(np.float32), "density": p.astype(np.float32),
                       "lam": lam, "seed": s, "w1": W[:, 0, 0].numpy(),
                       "w2": W[:, 1, 0].numpy(), "gain1": gain[:, 0], "gain2": gain[:, 1],
                       "loss": np.where(res.diverged_at >= 0, np.nan,
                                        res.loss.cpu().numpy())})
    best = df.loc[df.groupby(["importance", "density", "lam"])["loss"].idxmin()] \
        .reset_index(drop=True)
    rep = represented(best[["gain1", "gain2"]].to_numpy())      # (elementwise: numpy too)
    w = best[["w1", "w2"]].to_numpy()
    best["phase"] = [classify_phase(tuple(r_), w_) for r_, w_ in zip(rep, w, strict=True)]
    best["phase_norm"] = [classify_phase_by_norm(w_) for w_ in w]
    return best
