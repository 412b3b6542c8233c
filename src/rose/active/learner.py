"""Training many small classifiers at once, each on its own subset of its seed's data.

An *instance* is one (method, seed) pair. Instances share nothing but the tensors: instance i
trains an MLP (the shared stacked network, :class:`rose.nn.StackedNet`) on rows ``index[i]`` of
its seed's data ``X[seed_of[i]]``. Adam is elementwise, so one optimiser over the stacked
weights is one optimiser per instance. In active learning every instance holds the same number
of labels in a round, so the whole round trains as one batched model.

Paired by seed: every instance of a seed starts from the seed's initial weights (Xavier, drawn
from the seed alone), draws the same minibatch positions and the same dropout masks; so methods
that hold the same labelled set (round 0 of every acquisition) train identically.

Hooks keep the methods small: ``sample_weights`` (JTT's upsampling), ``objective`` (GroupDRO's
group-weighted loss), ``batch_selector`` (RHO-LOSS's selection from a larger candidate batch).
Model selection is explicit: ``"last"`` (the model after the last step) or
``"train_domain_val"`` (the evaluated checkpoint with the best validation accuracy on the
training distribution; nothing is chosen on the test environment).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from rose.data.group_benchmarks import GroupData
from rose.device import Device, as_tensor
from rose.divergence import Divergence, chance_loss
from rose.nn import StackedNet

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


@dataclass
class Model:
    """Stacked weights theta [I, P] of ``net`` (one row per instance)."""
    net: StackedNet
    theta: torch.Tensor

    def instance(self, i: int) -> Model:
        return Model(self.net, self.theta[i:i + 1])

    def forward(self, x: torch.Tensor, **kwargs):
        return self.net.forward(self.theta, x, **kwargs)


def network(d_in: int, spec: TrainSpec) -> StackedNet:
    return StackedNet({"name": "mlp", "hidden": list(spec.hidden)}, (d_in,), spec.n_classes)


def initial_model(d_in: int, spec: TrainSpec, seeds: Sequence[int], device: Device) -> Model:
    """One instance per entry of ``seeds``, its weights drawn from that seed alone."""
    net = network(d_in, spec)
    return Model(net, net.init(seeds, device, scheme="xavier"))


def stack(splits: list[dict[str, GroupData]], name: str, device: Device = "cpu"
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """One split of every seed as tensors X [seeds, N, d], Y [seeds, N]. Split sizes depend only
    on the config, so they are equal across seeds."""
    xs = [s[name].x.reshape(len(s[name]), -1) for s in splits]
    ys = [s[name].y for s in splits]
    if len({len(y) for y in ys}) != 1:
        raise ValueError(f"split {name!r} differs in size across seeds")
    return as_tensor(np.stack(xs), device), as_tensor(np.stack(ys), device)


@dataclass
class TrainResult:
    model: Model
    dynamics: torch.Tensor | None   # [instances, n, records] bool: correct on own training rows
    forward_examples: int   # per instance: examples passed forward (incl. unselected candidates)
    diverged_at: np.ndarray  # [instances] step of divergence, -1 if never
    # per checkpoint rule: (theta [I, P] of the evaluated checkpoint with the best validation
    # score, that score [I], the step it was taken at [I]); empty without ``rules``
    selected: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = \
        field(default_factory=dict)


def train_instances(X: torch.Tensor, Y: torch.Tensor, seed_of: np.ndarray, index: torch.Tensor,
                    spec: TrainSpec, generator: torch.Generator, *,
                    init: Model,
                    sample_weights: torch.Tensor | None = None,
                    objective: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                    batch_selector: Callable[[Model, torch.Tensor], torch.Tensor] | None = None,
                    val: tuple[torch.Tensor, torch.Tensor] | None = None,
                    record_dynamics: bool = False,
                    weight_decay: torch.Tensor | None = None,
                    rules: dict[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
                    ) -> TrainResult:
    """Train every instance for ``spec.steps`` Adam steps from ``init`` on minibatches of its
    rows ``index[i]`` (positions drawn with replacement, one draw per seed shared by the seed's
    instances; by ``sample_weights[i]`` if given). Loss per instance:
    ``objective(per-example CE [I, B], row indices [I, B])``, the batch mean by default.
    ``batch_selector(model, candidate rows) -> rows`` lets a curriculum pick the rows to train on
    from a larger candidate draw (the candidates are ``batch_size`` rows per instance here; the
    selector returns fewer).

    ``weight_decay`` [I] gives every instance its own L2 weight (a tuning grid's points stacked
    as instances): w_i theta_i is added to instance i's gradient before the Adam step, which is
    what Adam's own (coupled) ``weight_decay`` does with one value for all. ``rules`` (early
    stopping): name -> score(predicted labels on ``val`` [I, N_val]) -> [I]; every
    ``eval_every`` steps each rule keeps, per instance, the checkpoint with the best score so
    far (``TrainResult.selected``), all rules from the same run."""
    dev = X.device
    seed_rows = as_tensor(seed_of, dev)
    rows = seed_rows[:, None]
    n_inst, n = index.shape
    n_seeds = int(seed_of.max()) + 1
    net = init.net
    theta = init.theta.detach().clone().contiguous()
    params = net.parameters(theta)
    opt = torch.optim.Adam(params, lr=spec.lr,
                           weight_decay=spec.weight_decay if weight_decay is None else 0.0)
    if weight_decay is not None:
        wd = [weight_decay.to(dev).reshape(-1, *([1] * (p.dim() - 1))) for p in params]
    div = Divergence(n_inst, chance_loss(spec.n_classes))
    records, best, best_acc, forwarded = [], None, None, 0
    selected: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
    for step in range(spec.steps + 1):
        if step % spec.eval_every == 0 or step == spec.steps:
            with torch.no_grad():
                # training dynamics from step 1: the random-init model's chance-correct
                # predictions would count as "then forgotten" and bias the minority split
                if record_dynamics and step > 0:
                    pred = predict(Model(net, theta), X, seed_of, index).argmax(-1)
                    records.append(pred == Y[rows, index])
                if spec.selection == "train_domain_val" and val is not None:
                    pred = predict(Model(net, theta), val[0], seed_of).argmax(-1)
                    acc = (pred == val[1][seed_rows]).float().mean(1)
                    if best is None:
                        best, best_acc = theta.clone(), acc
                    else:
                        better = acc > best_acc
                        best[better] = theta[better]
                        best_acc = torch.where(better, acc, best_acc)
                if rules and step > 0:
                    pred = predict(Model(net, theta), val[0], seed_of).argmax(-1)
                    for name, score_of in rules.items():
                        score = score_of(pred)
                        if name not in selected:
                            selected[name] = (theta.clone(), score,
                                              torch.full_like(score, step))
                            continue
                        th, sc, at = selected[name]
                        better = score > sc
                        th[better] = theta[better]
                        selected[name] = (th, torch.where(better, score, sc),
                                          torch.where(better, float(step), at))
        if step == spec.steps:
            break
        if sample_weights is None:
            pos = torch.randint(0, n, (n_seeds, spec.batch_size), generator=generator,
                                device=dev)[seed_rows]
        else:
            pos = torch.multinomial(sample_weights, spec.batch_size, replacement=True,
                                    generator=generator)
        idx = index.gather(1, pos)
        if batch_selector is not None:
            forwarded += idx.shape[1]
            idx = batch_selector(Model(net, theta), idx)
        logits, _ = net.forward(params, X[rows, idx], dropout=spec.dropout,
                                dropout_rows=seed_rows, generator=generator)
        forwarded += idx.shape[1]
        loss = F.cross_entropy(logits.transpose(1, 2), Y[rows, idx], reduction="none")
        if objective is None:
            per_instance = loss.mean(1)
        elif getattr(objective, "uses_logits", False):      # IRMv1 reads the logits
            per_instance = objective(loss, idx, logits, Y[rows, idx])
        else:
            per_instance = objective(loss, idx)
        opt.zero_grad(set_to_none=True)
        per_instance.sum().backward()
        if weight_decay is not None:
            with torch.no_grad():
                for p, w in zip(params, wd, strict=True):
                    p.grad.add_(w * p)
        opt.step()
        div.update(loss.detach().mean(1), step)
    if best is not None:
        theta.copy_(best)
    dyn = torch.stack(records, -1) if record_dynamics else None
    return TrainResult(Model(net, theta.detach()), dyn, forwarded, div.at_step, selected)


def predict(model: Model, X: torch.Tensor, seed_of: np.ndarray,
            index: torch.Tensor | None = None, chunk: int = 16, dropout: float = 0.0
            ) -> torch.Tensor:
    """Softmax probabilities [instances, N, C] on the seed's rows (all, or ``index[i]``), eval
    mode unless ``dropout`` > 0 (MC dropout, torch's global RNG); chunks of instances bound
    memory."""
    out = []
    rows = as_tensor(seed_of, X.device)
    for s in range(0, len(seed_of), chunk):
        sl = slice(s, s + chunk)
        x = X[rows[sl]] if index is None else X[rows[sl, None], index[sl]]
        with torch.no_grad():
            logits, _ = model.net.forward(model.theta[sl], x, dropout=dropout)
            out.append(torch.softmax(logits, -1))
    return torch.cat(out)


def embed(model: Model, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """One instance (``model.instance(i)``) on rows x [N, d]: (probabilities [N, C], the last
    hidden layer's activations [N, h] = the representation the acquisitions measure in)."""
    with torch.no_grad():
        logits, hidden = model.net.forward(model.theta, x, shared=True)
    return torch.softmax(logits[0], -1).cpu().numpy(), hidden[-1][1][0].cpu().numpy()


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
