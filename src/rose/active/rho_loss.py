"""RHO-LOSS (Mindermann et al., ICML 2022; OATML/RHO-Loss src/curricula/selection_methods.py,
``reducible_loss_selection``): from n_B candidates per step train only on the n_b = fraction x n_B
points with the largest *reducible* loss

    reducible(x, y) = CE(model_t(x), y) - IL(x, y),

IL = the loss of an irreducible-loss model trained only on a holdout set, computed once per
example before training. High training loss but low IL = learnable, not yet learned; high IL =
noisy or (pitfall 1) a group the holdout never showed. We train the IL model on either a holdout
drawn from the training distribution (spuriously correlated) or a group-balanced one, and also
report IL = 0 ("loss": plain largest-loss selection).

Cost per step: a forward over n_B candidates plus forward/backward over n_b (the paper's step
counts exclude the candidate pass; we report forward passes too, pitfall 7).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from rose.active.learner import Model


def reducible_loss_selection(loss: torch.Tensor, il: torch.Tensor, n_select: int
                             ) -> torch.Tensor:
    """[I, n_B] training losses and irreducible losses -> positions [I, n_select] of the
    largest reducible losses."""
    return torch.topk(loss - il, n_select, dim=1).indices


def irreducible_losses(model: Model, X: torch.Tensor, Y: torch.Tensor,
                       seed_of) -> torch.Tensor:
    """CE of each IL-model instance on every row of its seed: [I, N]."""
    with torch.no_grad():
        rows = torch.as_tensor(seed_of, device=X.device)
        logits, _ = model.forward(X[rows])
        return F.cross_entropy(logits.transpose(1, 2), Y[rows], reduction="none")


def selector(il: torch.Tensor, X: torch.Tensor, Y: torch.Tensor, rows: torch.Tensor,
             n_select: int) -> Callable[[Model, torch.Tensor], torch.Tensor]:
    """A ``batch_selector`` for train_instances: il [I, N] per instance (zeros = largest loss)."""
    def select(model: Model, cand: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            logits, _ = model.forward(X[rows, cand])
            loss = F.cross_entropy(logits.transpose(1, 2), Y[rows, cand], reduction="none")
        pos = reducible_loss_selection(loss, il.gather(1, cand), n_select)
        return cand.gather(1, pos)
    return select
