"""The activation penalties on a shortcut benchmark: an MLP on Colored MNIST (IRM construction,
:mod:`rose.data.colored_mnist`), where colour is the spurious concept and digit shape the
invariant one. Does pushing hidden units to be on or off make them carry colour *or* shape
rather than both, and does that change what the model relies on?

Every (seed, lambda) pair is one instance of the shared stacked MLP (rose.nn.StackedNet), all
trained at once; Adam is elementwise, so this equals one optimiser per instance. Each seed draws
its own colours, label noise, split and initialisation; the lambdas and variants of a seed share
its initial weights and its minibatch order (paired). Splits are stratified (rose.sampling).

Splits (all from the seed's permutation of the images):
  train      two environments, colour flip e = 0.2 and 0.1 ("irm"), or e = 0 coloured by shape
             ("cooccurrence": a small digit is never green in training), or irm with both channels
             showing the digit ("grayscale": the IRM paper's oracle without the shortcut)
  val        10% held out of each training environment (training-domain validation)
  test       colour flip e = 0.9 against the label (the IRM test environment): half of the
             test-environment images, stratified by group
  test_val   the other half: test-environment validation, read only by the lambda selection
             labelled as an upper bound (summary.lambda_tuning's "test_env_oracle")
  swapped    test images coloured 1 - shape: every (shape, colour) pair against the training
             majority; under "cooccurrence" these pairs never co-occurred in training
  probe      test images with colour drawn independently of everything (for per-unit information)
No image is in two of train, val, test and test_val. Model selection: the model after the last
step (no early stopping, nothing chosen on test). Every variant of a seed starts from the same
weights (Xavier from the seed; solu and top-k have the same parameters as relu).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from rose.data.colored_mnist import Environment, colour_images, recolour
from rose.device import Device, as_tensor, generator, resolve_device
from rose.divergence import Divergence, chance_loss
from rose.engine import Job, NoJob, restore_training, training_state
from rose.nn import StackedNet
from rose.sampling import stratified_partition
from rose.superposition.geometry import (
    class_selectivity,
    concept_selectivity,
    unit_concept_information,
)
from rose.superposition.penalties import activation_penalty

BENCHMARKS = {  # training environments: (colour flip e, coloured by)
    "irm": ((0.2, "label"), (0.1, "label")),
    "cooccurrence": ((0.0, "shape"), (0.0, "shape")),
    "grayscale": ((0.2, "label"), (0.1, "label")),   # irm with colour removed from the input
}
TEST_FLIP = 0.9
SPLITS = ("train", "val", "test", "test_val", "swapped", "probe")


def _concat(envs: list[Environment]) -> Environment:
    return Environment(*(np.concatenate([getattr(e, f) for e in envs])
                         for f in ("x", "y", "shape", "colour")))


def _subset(env: Environment, idx: np.ndarray) -> Environment:
    return Environment(env.x[idx], env.y[idx], env.shape[idx], env.colour[idx])


def make_splits(images: np.ndarray, digits: np.ndarray, benchmark: str, seed: int,
                test_frac: float = 0.2, val_frac: float = 0.1) -> dict[str, Environment]:
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; expected one of {list(BENCHMARKS)}")
    rng = np.random.default_rng(seed)
    parts = stratified_partition(digits, {"test": test_frac, "train": -1}, [seed, 1],
                                 name="superposition.shortcut.split")
    train_idx = parts["train"]
    halves = stratified_partition(digits[train_idx], {"env0": 0.5, "env1": -1}, [seed, 2],
                                  name="superposition.shortcut.environments")
    trains, vals = [], []
    for e, (half, (flip, colour_of)) in enumerate(zip(halves.values(), BENCHMARKS[benchmark],
                                                      strict=True)):
        idx = train_idx[half]
        env = colour_images(images[idx], digits[idx], flip, rng, colour_of)
        held = stratified_partition(env.group, {"val": val_frac, "train": -1}, [seed, 3, e],
                                    name="superposition.shortcut.val")
        trains.append(_subset(env, held["train"]))
        vals.append(_subset(env, held["val"]))
    test_idx = parts["test"]
    test_env = colour_images(images[test_idx], digits[test_idx], TEST_FLIP, rng, "label")
    test_parts = stratified_partition(test_env.group, {"test_val": 0.5, "test": -1},
                                      [seed, 4], name="superposition.shortcut.test_val")
    test = _subset(test_env, test_parts["test"])
    splits = {"train": _concat(trains), "val": _concat(vals), "test": test,
              "test_val": _subset(test_env, test_parts["test_val"]),
              "swapped": recolour(test, 1 - test.shape),
              "probe": recolour(test, (rng.random(len(test)) < 0.5).astype(np.int64))}
    if benchmark == "grayscale":
        splits = {k: _grayscale(e) for k, e in splits.items()}
    return splits


def _grayscale(env: Environment) -> Environment:
    """The digit in both channels: colour stays a group attribute but the input cannot show it."""
    img = env.x.sum(1, keepdims=True)
    return Environment(np.repeat(img, 2, axis=1), env.y, env.shape, env.colour)


def _flat(env: Environment, device: Device) -> tuple[torch.Tensor, torch.Tensor]:
    return (as_tensor(env.x.reshape(len(env), -1), device),
            as_tensor(env.y, device, torch.float32))


def shortcut_net(d_in: int, hidden: list[int], activation: str, topk: int) -> StackedNet:
    """The MLP of the IRM code's ERM model (one logit), as a stacked network."""
    return StackedNet({"name": "mlp", "hidden": list(hidden), "activation": activation,
                       "k": topk}, (d_in,), 1)


def train_shortcut(splits: list[dict[str, Environment]], lams: list[float], hidden: list[int],
                   steps: int, batch_size: int, lr: float, l2: float, penalty: str,
                   activation: str, topk: int, tau: float, level: float, seeds: list[int],
                   device: Device = "cpu", job: Job | None = None
                   ) -> tuple[StackedNet, torch.Tensor, np.ndarray, np.ndarray, Divergence]:
    """Train one instance per (seed's splits, lambda). Loss per instance: BCE + l2 sum ||W||^2
    (IRM's ERM) + lambda * mean over hidden layers of the penalty. Returns the network, theta,
    the instance -> (seed index, lambda) maps and the divergence record."""
    job = job or NoJob()
    dev = resolve_device(device)
    seed_of = np.repeat(np.arange(len(splits)), len(lams))
    lam_of = np.tile(np.asarray(lams, dtype=np.float32), len(splits))
    xs, ys = zip(*(_flat(s["train"], dev) for s in splits), strict=True)
    n = min(len(y) for y in ys)
    X, Y = torch.stack([x[:n] for x in xs]), torch.stack([y[:n] for y in ys])
    net = shortcut_net(X.shape[-1], hidden, activation, topk)
    theta = torch.nn.Parameter(net.init([seeds[s] for s in seed_of], dev, scheme="xavier"))
    opt = torch.optim.Adam([theta], lr=lr)
    weights = net.weight_mask(dev)
    lam = as_tensor(lam_of, dev)
    rows = as_tensor(seed_of, dev)[:, None]
    g = generator(seeds[0], dev)
    div = Divergence(len(seed_of), chance_loss(1))
    start = 0
    state = job.resume()
    if state is not None:
        restore_training(state, theta, opt, (g,))
        div.load(state["diverged_at"])
        start = state["step"]

    def snapshot() -> dict:
        return {**training_state(theta, opt, (g,), div.state()), "step": step + 1}

    for step in range(start, steps):
        # one minibatch per seed, shared by its lambdas (paired)
        idx = torch.randint(0, n, (len(splits), batch_size), generator=g, device=dev)[seed_of]
        logit, hid = net.forward(theta, X[rows, idx])
        bce = F.binary_cross_entropy_with_logits(logit.squeeze(-1), Y[rows, idx],
                                                 reduction="none").mean(1)
        pen = torch.stack([activation_penalty(penalty, z, a, tau=tau, level=level)
                           for z, a in hid]).mean(0)
        loss = (bce + l2 * (theta ** 2 * weights).sum(1) + lam * pen).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        div.update(bce, step)
        job.tick(snapshot)
    return net, theta.detach(), seed_of, lam_of, div


def worst_group_accuracy(correct: np.ndarray, group: np.ndarray) -> float:
    """min over groups present of the group's accuracy."""
    return float(min(correct[group == g].mean() for g in np.unique(group)))


@torch.no_grad()
def evaluate_shortcut(net: StackedNet, theta: torch.Tensor,
                      splits: list[dict[str, Environment]], seed_of: np.ndarray,
                      mi_threshold: float, tau: float) -> pd.DataFrame:
    """One row per instance: accuracy on every split, worst-group accuracy on test and
    test_val, and how the hidden units (all layers, on the probe split) carry colour, shape and
    the label. Unit measures average over alive units (activation varies over the probe split);
    with none alive they are NaN and frac_alive is 0, so a dead network never looks
    monosemantic or selective."""
    dev = theta.device
    flat = [{name: _flat(sp[name], dev) for name in SPLITS} for sp in splits]  # once per seed
    rows = []
    for i, s in enumerate(seed_of):
        row: dict[str, float] = {}
        for name in SPLITS:
            env = splits[s][name]
            x, y = flat[s][name]
            logit, hid = net.forward(theta[i:i + 1], x, shared=True)
            correct = ((logit[0, :, 0] > 0).float() == y).cpu().numpy()
            row[f"{name}_acc"] = float(correct.mean())
            if name in ("test", "test_val"):
                row[f"{name}_worst_group_acc"] = worst_group_accuracy(correct, env.group)
            if name == "probe":
                z = torch.cat([z[0] for z, _ in hid], 1).cpu().numpy()
                a = torch.cat([a[0] for _, a in hid], 1).cpu().numpy()
                row.update(unit_measures(z, a, env, mi_threshold, tau))
        rows.append(row)
    return pd.DataFrame(rows)


def unit_measures(z: np.ndarray, a: np.ndarray, env: Environment, mi_threshold: float,
                  tau: float) -> dict[str, float]:
    """Per-unit measures on one split (z, a: [samples, units] pre-activations and activations):
    normalised MI with colour and with shape, class selectivity over the label y, the shares
    of units carrying colour / shape / both / neither, and the share of pre-activations within
    tau of zero in RMS units (as in the penalty); all over alive units, NaN if none is."""
    alive = a.std(0) > 1e-6
    nmi_c = unit_concept_information(a, env.colour)
    nmi_s = unit_concept_information(a, env.shape)
    fracs = concept_selectivity(nmi_c, nmi_s, alive, mi_threshold, ("colour", "shape"))
    if not alive.any():
        nan = float("nan")
        return {"nmi_colour": nan, "nmi_shape": nan, "class_selectivity": nan,
                "mid_fraction": nan, **dict.fromkeys(fracs, nan), "frac_alive": 0.0}
    z = z[:, alive]
    rms = np.sqrt((z ** 2).mean(0, keepdims=True))
    sel = class_selectivity(a[:, alive], env.y)
    sel = sel[np.isfinite(sel)]           # NaN: a signed unit, where the index is undefined
    return {"nmi_colour": float(nmi_c[alive].mean()), "nmi_shape": float(nmi_s[alive].mean()),
            "class_selectivity": float(sel.mean()) if sel.size else float("nan"),
            "mid_fraction": float((np.abs(z) < tau * rms).mean()), **fracs}
