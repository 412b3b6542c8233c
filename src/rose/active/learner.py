"""Training many small classifiers at once, each on its own subset of its seed's data.

An *instance* is one (method, seed) pair. Instances share nothing but the tensors: instance i
trains an MLP (:class:`rose.superposition.shortcut.BatchedMLP`, weights [instances, d_in, d_out])
on rows ``index[i]`` of its seed's data ``X[seed_of[i]]``. Adam is elementwise, so one optimiser
over the stacked weights is one optimiser per instance. In active learning every instance holds
the same number of labels in a round, so the whole round trains as one batched model.

Hooks keep the methods small: ``sample_weights`` (JTT's upsampling), ``objective`` (GroupDRO's
group-weighted loss), ``batch_selector`` (RHO-LOSS's selection from a larger candidate batch).
Model selection is explicit: ``"last"`` (the model after the last step) or
``"train_domain_val"`` (the evaluated checkpoint with the best validation accuracy on the
training distribution; nothing is chosen on the test environment).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from rose.data.group_benchmarks import GroupData
from rose.superposition.shortcut import BatchedMLP

SELECTION_RULES = ("last", "train_domain_val")


@dataclass(frozen=True)
class TrainSpec:
    hidden: list[int]
    n_classes: int
    steps: int
    batch_size: int
    lr: float = 1e-3
    weight_decay: float = 0.0   # Adam's coupled L2: adds weight_decay * w to the gradient
    dropout: float = 0.0
    selection: str = "last"
    eval_every: int = 50        # validation (selection) and training-dynamics records

    @classmethod
    def from_config(cls, model: dict, n_classes: int, steps: int, selection: str = "last",
                    eval_every: int = 50) -> TrainSpec:
        return cls(list(model["hidden"]), n_classes, steps, model["batch_size"], model["lr"],
                   model["weight_decay"], model["dropout"], selection, eval_every)


def stack(splits: list[dict[str, GroupData]], name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One split of every seed as tensors X [seeds, N, d], Y [seeds, N]. Split sizes depend only
    on the config, so they are equal across seeds."""
    xs = [torch.from_numpy(s[name].x.reshape(len(s[name]), -1)) for s in splits]
    ys = [torch.from_numpy(s[name].y) for s in splits]
    if len({len(y) for y in ys}) != 1:
        raise ValueError(f"split {name!r} differs in size across seeds")
    return torch.stack(xs), torch.stack(ys)


@dataclass
class TrainResult:
    model: BatchedMLP
    dynamics: torch.Tensor | None   # [instances, n, records] bool: correct on own training rows
    forward_examples: int   # per instance: examples passed forward (incl. unselected candidates)


def train_instances(X: torch.Tensor, Y: torch.Tensor, seed_of: np.ndarray, index: torch.Tensor,
                    spec: TrainSpec, generator: torch.Generator, *,
                    sample_weights: torch.Tensor | None = None,
                    objective: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                    batch_selector: Callable[[BatchedMLP, torch.Tensor], torch.Tensor] | None
                    = None,
                    init: BatchedMLP | None = None,
                    val: tuple[torch.Tensor, torch.Tensor] | None = None,
                    record_dynamics: bool = False) -> TrainResult:
    """Train every instance for ``spec.steps`` Adam steps on minibatches of its rows ``index[i]``
    (sampled with replacement; by ``sample_weights[i]`` if given). Loss per instance:
    ``objective(per-example CE [I, B], row indices [I, B])``, the batch mean by default.
    ``batch_selector(model, candidate rows) -> rows`` lets a curriculum pick the rows to train on
    from a larger candidate draw (the candidates are ``batch_size`` rows per instance here; the
    selector returns fewer)."""
    rows = torch.as_tensor(seed_of)[:, None]
    n_inst, n = index.shape
    if init is None:
        model = BatchedMLP.init(n_inst, [X.shape[-1], *spec.hidden, spec.n_classes], generator)
    else:
        model = BatchedMLP([w.detach().clone().requires_grad_() for w in init.weights],
                           [b.detach().clone().requires_grad_() for b in init.biases])
    opt = torch.optim.Adam(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    records, best, best_acc, forwarded = [], None, None, 0
    for step in range(spec.steps + 1):
        if step % spec.eval_every == 0 or step == spec.steps:
            with torch.no_grad():
                if record_dynamics:
                    pred = predict(model, X, seed_of, index).argmax(-1)
                    records.append(pred == Y[rows, index])
                if spec.selection == "train_domain_val" and val is not None:
                    pred = predict(model, val[0], seed_of).argmax(-1)
                    acc = (pred == val[1][torch.as_tensor(seed_of)]).float().mean(1)
                    if best is None:
                        best, best_acc = [p.detach().clone() for p in model.parameters()], acc
                    else:
                        better = acc > best_acc
                        for b, p in zip(best, model.parameters(), strict=True):
                            b[better] = p.detach()[better]
                        best_acc = torch.where(better, acc, best_acc)
        if step == spec.steps:
            break
        if sample_weights is None:
            pos = torch.randint(0, n, (n_inst, spec.batch_size), generator=generator)
        else:
            pos = torch.multinomial(sample_weights, spec.batch_size, replacement=True,
                                    generator=generator)
        idx = index.gather(1, pos)
        if batch_selector is not None:
            forwarded += idx.shape[1]
            idx = batch_selector(model, idx)
        logits, _ = model.forward(X[rows, idx], dropout=spec.dropout)
        forwarded += idx.shape[1]
        loss = F.cross_entropy(logits.transpose(1, 2), Y[rows, idx], reduction="none")
        per_instance = loss.mean(1) if objective is None else objective(loss, idx)
        opt.zero_grad(set_to_none=True)
        per_instance.sum().backward()
        opt.step()
    if best is not None:
        with torch.no_grad():
            for b, p in zip(best, model.parameters(), strict=True):
                p.copy_(b)
    for p in model.parameters():
        p.requires_grad_(False)
    dyn = torch.stack(records, -1) if record_dynamics else None
    return TrainResult(model, dyn, forwarded)


def predict(model: BatchedMLP, X: torch.Tensor, seed_of: np.ndarray,
            index: torch.Tensor | None = None, chunk: int = 16,
            dropout: float = 0.0) -> torch.Tensor:
    """Softmax probabilities [instances, N, C] on the seed's rows (all, or ``index[i]``), eval
    mode unless ``dropout`` > 0 (MC dropout); chunks of instances bound memory."""
    out = []
    for s in range(0, len(seed_of), chunk):
        sl = slice(s, s + chunk)
        sub = BatchedMLP([w[sl] for w in model.weights], [b[sl] for b in model.biases])
        x = X[seed_of[sl]] if index is None else X[torch.as_tensor(seed_of[sl])[:, None],
                                                   index[sl]]
        with torch.no_grad():
            out.append(torch.softmax(sub.forward(x, dropout=dropout)[0], -1))
    return torch.cat(out)


def embed(model: BatchedMLP, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """One instance (``model.instance(i)``) on rows x [N, d]: (probabilities [N, C], the last
    hidden layer's activations [N, h] = the representation the acquisitions measure in)."""
    with torch.no_grad():
        logits, hidden = model.forward(x[None])
    return torch.softmax(logits[0], -1).numpy(), hidden[-1][1][0].numpy()


def group_metrics(pred: np.ndarray, data: GroupData, min_group_size: int = 1
                  ) -> dict[str, float]:
    """Accuracy; worst-group = min over (class, attribute) groups with at least
    ``min_group_size`` points; mean over those groups; accuracy on bias-conflicting and
    bias-aligned points."""
    correct = pred == data.y
    groups, counts = np.unique(data.group, return_counts=True)
    per_group = np.array([correct[data.group == g].mean() for g in groups])
    big = counts >= min_group_size
    conflicting = ~data.aligned
    return {"acc": float(correct.mean()),
            "worst_group_acc": float(per_group[big].min()) if big.any() else float("nan"),
            "mean_group_acc": float(per_group[big].mean()) if big.any() else float("nan"),
            "conflicting_acc": (float(correct[conflicting].mean()) if conflicting.any()
                                else float("nan")),
            "aligned_acc": float(correct[~conflicting].mean())}
