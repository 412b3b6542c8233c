"""The activation penalties on a shortcut benchmark: an MLP on Colored MNIST (IRM construction,
:mod:`rose.data.colored_mnist`), where colour is the spurious concept and digit shape the
invariant one. Does pushing hidden units to be on or off make them carry colour *or* shape
rather than both, and does that change what the model relies on?

Every (seed, lambda) pair is one instance of a batched MLP ([instances, d_in, d_out] weights),
trained at once; Adam is elementwise, so this equals one optimiser per instance. Each seed draws
its own colours, label noise, split and initialisation.

Splits (all from the seed's permutation of the images):
  train      two environments, colour flip e = 0.2 and 0.1 ("irm"), or e = 0 coloured by shape
             ("cooccurrence": a small digit is never green in training), or irm with both channels
             showing the digit ("grayscale": the IRM paper's oracle without the shortcut)
  val        10% held out of each training environment (training-domain validation)
  test       colour flip e = 0.9 against the label (the IRM test environment)
  swapped    test images coloured 1 - shape: every (shape, colour) pair against the training
             majority; under "cooccurrence" these pairs never co-occurred in training
  probe      test images with colour drawn independently of everything (for per-unit information)
Model selection: the model after the last step (no early stopping, nothing chosen on test).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from rose.data.colored_mnist import Environment, colour_images, recolour
from rose.superposition.geometry import concept_selectivity, unit_concept_information
from rose.superposition.penalties import activation_penalty, hidden_activation

BENCHMARKS = {  # training environments: (colour flip e, coloured by)
    "irm": ((0.2, "label"), (0.1, "label")),
    "cooccurrence": ((0.0, "shape"), (0.0, "shape")),
    "grayscale": ((0.2, "label"), (0.1, "label")),   # irm with colour removed from the input
}
TEST_FLIP = 0.9
SPLITS = ("train", "val", "test", "swapped", "probe")


def _concat(envs: list[Environment]) -> Environment:
    return Environment(*(np.concatenate([getattr(e, f) for e in envs])
                         for f in ("x", "y", "shape", "colour")))


def make_splits(images: np.ndarray, digits: np.ndarray, benchmark: str, seed: int,
                test_frac: float = 0.2, val_frac: float = 0.1) -> dict[str, Environment]:
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; expected one of {list(BENCHMARKS)}")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(digits))
    n_test = int(test_frac * len(perm))
    test_idx, train_idx = perm[:n_test], perm[n_test:]
    trains, vals = [], []
    for part, (flip, colour_of) in zip(np.array_split(train_idx, 2), BENCHMARKS[benchmark],
                                       strict=True):
        env = colour_images(images[part], digits[part], flip, rng, colour_of)
        n_val = int(val_frac * len(env))
        trains.append(Environment(*(a[n_val:] for a in (env.x, env.y, env.shape, env.colour))))
        vals.append(Environment(*(a[:n_val] for a in (env.x, env.y, env.shape, env.colour))))
    test = colour_images(images[test_idx], digits[test_idx], TEST_FLIP, rng, "label")
    splits = {"train": _concat(trains), "val": _concat(vals), "test": test,
              "swapped": recolour(test, 1 - test.shape),
              "probe": recolour(test, (rng.random(len(test)) < 0.5).astype(np.int64))}
    if benchmark == "grayscale":
        splits = {k: _grayscale(e) for k, e in splits.items()}
    return splits


def _grayscale(env: Environment) -> Environment:
    """The digit in both channels: colour stays a group attribute but the input cannot show it."""
    img = env.x.sum(1, keepdims=True)
    return Environment(np.repeat(img, 2, axis=1), env.y, env.shape, env.colour)


@dataclass
class BatchedMLP:
    """An MLP per instance: weights [instances, d_in, d_out], Xavier-uniform, zero biases (as the
    IRM code's ERM model), one logit for the binary label."""
    weights: list[torch.Tensor]
    biases: list[torch.Tensor]
    activation: str = "relu"
    topk: int = 1

    @classmethod
    def init(cls, instances: int, sizes: list[int], generator: torch.Generator,
             **kwargs) -> BatchedMLP:
        weights, biases = [], []
        for d_in, d_out in itertools.pairwise(sizes):
            bound = (6.0 / (d_in + d_out)) ** 0.5
            w = (torch.rand(instances, d_in, d_out, generator=generator) * 2 - 1) * bound
            weights.append(w.requires_grad_())
            biases.append(torch.zeros(instances, 1, d_out, requires_grad=True))
        return cls(weights, biases, **kwargs)

    def parameters(self) -> list[torch.Tensor]:
        return self.weights + self.biases

    def instance(self, i: int) -> BatchedMLP:
        """A view of instance i alone (shares storage)."""
        return BatchedMLP([w[i:i + 1] for w in self.weights], [b[i:i + 1] for b in self.biases],
                          self.activation, self.topk)

    def forward(self, x: torch.Tensor, dropout: float = 0.0
                ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """x [instances, batch, d] -> (logit [instances, batch], [(z, a) per hidden layer]).
        ``dropout`` > 0 drops hidden activations (inverted dropout, torch's global RNG) after
        recording them, for training with dropout and for MC-dropout predictions."""
        hidden = []
        h = x
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            z = torch.baddbmm(b, h, w)
            h = hidden_activation(z, self.activation, self.topk)
            hidden.append((z, h))
            if dropout > 0:
                h = F.dropout(h, dropout, training=True)
        return torch.baddbmm(self.biases[-1], h, self.weights[-1]).squeeze(-1), hidden


def _flat(env: Environment) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(env.x.reshape(len(env), -1)), torch.from_numpy(env.y).float()


def train_shortcut(splits: list[dict[str, Environment]], lams: list[float], hidden: list[int],
                   steps: int, batch_size: int, lr: float, l2: float, penalty: str,
                   activation: str, topk: int, tau: float, level: float, seed: int
                   ) -> tuple[BatchedMLP, np.ndarray, np.ndarray]:
    """Train one instance per (seed's splits, lambda). Loss per instance: BCE + l2 sum ||W||^2
    (IRM's ERM) + lambda * mean over hidden layers of the penalty. Returns the model and the
    instance -> (seed index, lambda) maps."""
    seed_of = np.repeat(np.arange(len(splits)), len(lams))
    lam_of = np.tile(np.asarray(lams, dtype=np.float32), len(splits))
    xs, ys = zip(*(_flat(s["train"]) for s in splits), strict=True)
    n = min(len(y) for y in ys)
    X, Y = torch.stack([x[:n] for x in xs]), torch.stack([y[:n] for y in ys])
    g = torch.Generator().manual_seed(seed)
    model = BatchedMLP.init(len(seed_of), [X.shape[-1], *hidden, 1], g, activation=activation,
                            topk=topk)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    lam = torch.from_numpy(lam_of)
    rows = torch.from_numpy(seed_of)[:, None]
    for _ in range(steps):
        idx = torch.randint(0, n, (len(seed_of), batch_size), generator=g)
        logit, hid = model.forward(X[rows, idx])
        bce = F.binary_cross_entropy_with_logits(logit, Y[rows, idx], reduction="none").mean(1)
        l2_term = sum((w ** 2).sum((1, 2)) for w in model.weights)
        pen = torch.stack([activation_penalty(penalty, z, a, tau=tau, level=level)
                           for z, a in hid]).mean(0)
        loss = (bce + l2 * l2_term + lam * pen).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, seed_of, lam_of


def worst_group_accuracy(correct: np.ndarray, group: np.ndarray) -> float:
    """min over groups present of the group's accuracy."""
    return float(min(correct[group == g].mean() for g in np.unique(group)))


def evaluate_shortcut(model: BatchedMLP, splits: list[dict[str, Environment]],
                      seed_of: np.ndarray, mi_threshold: float, tau: float) -> pd.DataFrame:
    """One row per instance: accuracy on every split, worst-group test accuracy, and how the
    hidden units (all layers, on the probe split) carry colour and shape."""
    flat = [{name: _flat(sp[name]) for name in SPLITS} for sp in splits]   # once per seed
    rows = []
    for i, s in enumerate(seed_of):
        row: dict[str, float] = {}
        single = model.instance(i)
        for name in SPLITS:
            env = splits[s][name]
            x, y = flat[s][name]
            logit, hid = single.forward(x[None])
            correct = ((logit[0] > 0).float() == y).numpy()
            row[f"{name}_acc"] = float(correct.mean())
            if name == "test":
                row["test_worst_group_acc"] = worst_group_accuracy(correct, env.group)
            if name == "probe":
                z = torch.cat([z[0] for z, _ in hid], 1).numpy()
                a = torch.cat([a[0] for _, a in hid], 1).numpy()
                rms = np.sqrt((z ** 2).mean(0, keepdims=True))   # as in the penalty
                alive = a.std(0) > 1e-6
                nmi_c = unit_concept_information(a, env.colour)
                nmi_s = unit_concept_information(a, env.shape)
                row.update({"nmi_colour": float(nmi_c[alive].mean()) if alive.any() else 0.0,
                            "nmi_shape": float(nmi_s[alive].mean()) if alive.any() else 0.0,
                            "mid_fraction": float((np.abs(z) < tau * rms).mean())})
                row.update(concept_selectivity(nmi_c, nmi_s, alive, mi_threshold,
                                               ("colour", "shape")))
        rows.append(row)
    return pd.DataFrame(rows)
