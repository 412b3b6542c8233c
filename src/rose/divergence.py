"""Divergence, recorded the same way in every direction.

An instance (one model of a stacked run, or a single run of rose.train) has diverged when a
training loss is not finite or exceeds ``factor`` times the loss of a chance predictor
(ln C for C-way cross-entropy, ln 2 for one logit, the zero predictor's loss for a
reconstruction). From then on it is ``"diverged"``: its rows carry ``status = "diverged"``,
the step it diverged at, and no metric values (NaN); tables count such seeds, never average
them (rose.stats). The other instances of a stacked run continue unaffected.
"""

from __future__ import annotations

import math

import numpy as np
import torch

DEFAULT_FACTOR = 100.0


def chance_loss(n_classes: int) -> float:
    """Cross-entropy of the uniform predictor: ln C (ln 2 for a single logit)."""
    return math.log(max(n_classes, 2))


class Divergence:
    """Per-instance divergence flags of a stacked run."""

    def __init__(self, instances: int, reference_loss: float | np.ndarray,
                 factor: float = DEFAULT_FACTOR) -> None:
        self.limit = factor * np.asarray(reference_loss, dtype=float)   # scalar or [instances]
        self.at_step = np.full(instances, -1, dtype=np.int64)

    def update(self, losses: torch.Tensor, step: int) -> None:
        """Flag the instances whose loss at ``step`` is non-finite or above the limit."""
        loss = losses.detach().float().cpu().numpy()
        bad = ~np.isfinite(loss) | (loss > self.limit)
        new = bad & (self.at_step < 0)
        self.at_step[new] = step

    @property
    def diverged(self) -> np.ndarray:
        return self.at_step >= 0

    def status(self) -> list[str]:
        return ["diverged" if d else "ok" for d in self.diverged]

    def state(self) -> np.ndarray:
        return self.at_step.copy()

    def load(self, at_step: np.ndarray) -> None:
        self.at_step = np.asarray(at_step, dtype=np.int64).copy()

    def mask_rows(self, values: np.ndarray) -> np.ndarray:
        """``values`` [instances, ...] with NaN in the diverged instances' rows."""
        out = np.array(values, dtype=float, copy=True)
        out[self.diverged] = np.nan
        return out
