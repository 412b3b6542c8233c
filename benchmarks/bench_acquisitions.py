"""Acquisition time per round for every acquisition function on a 4,000-point pool
(cmnist10, an MLP trained on 500 labels; batch of 50 labels; one CPU thread), with the shared
per-round cost (one forward pass over the pool, and BALD's MC-dropout passes) for scale.
Each time is the median of several calls measured side by side in this run."""

from __future__ import annotations

import numpy as np
import torch

from benchmarks.timing import median_time
from rose.active.acquisitions import ACQUISITIONS, AcquisitionContext, acquire
from rose.active.alvin import minority_split
from rose.active.learner import (
    TrainSpec,
    embed,
    initial_model,
    predict,
    stack,
    train_instances,
)
from rose.data.bundled import load_mnist5k
from rose.data.group_benchmarks import make_group_splits

K, LABELLED, REPEATS, MC = 50, 500, 5, 10


def _median_time(fn, repeats: int = REPEATS) -> float:
    return median_time(fn, repeats, warm_up=False)


def main() -> dict[str, float]:
    torch.set_num_threads(1)
    images, digits = load_mnist5k()
    sp = make_group_splits("cmnist10", images, digits, 0, [0.9, 0.9], 0.1, test_frac=0.1,
                           val_frac=0.05, holdout_frac=0.05)
    pool = sp["pool"]
    X, Y = stack([sp], "pool")
    rng = np.random.default_rng(0)
    labelled = rng.choice(len(pool), LABELLED, replace=False)
    spec = TrainSpec([64], 10, 300, 64, 1e-3, 1e-4, 0.2, "last", 25)
    res = train_instances(X, Y, np.zeros(1, dtype=int), torch.as_tensor(labelled)[None], spec,
                          torch.Generator().manual_seed(0),
                          init=initial_model(X.shape[-1], spec, [0], "cpu"),
                          record_dynamics=True)
    single = res.model.instance(0)
    forward_s = _median_time(lambda: embed(single, X[0]))
    probs, emb = embed(single, X[0])
    mc_s = _median_time(lambda: [predict(single, X[:1], np.zeros(1, dtype=int), dropout=0.2)
                                 for _ in range(MC)], 3)
    mc = np.stack([predict(single, X[:1], np.zeros(1, dtype=int), dropout=0.2)[0].numpy()
                   for _ in range(MC)])
    minority = minority_split(res.dynamics[0].numpy(), 0.7)
    head = tuple(v[0].numpy() for v in single.net.views(single.theta)[-2:])
    times = {}
    for name in ACQUISITIONS:
        def call(name=name):
            ctx = AcquisitionContext(
                probs=probs, emb=emb, labelled=labelled,
                candidates=np.setdiff1d(np.arange(len(pool)), labelled), y=pool.y,
                group=pool.group, n_groups=pool.n_groups, rng=np.random.default_rng(1),
                minority=minority, mc_probs=mc, head=head)
            acquire(name, ctx, K)
        call()   # warm up
        times[name] = _median_time(call)
    print(f"pool {len(pool)} points, {LABELLED} labelled, batch {K}, 1 thread; shared per round:"
          f" forward over the pool {1e3 * forward_s:.1f} ms, {MC} MC-dropout passes (BALD) "
          f"{1e3 * mc_s:.1f} ms; minority split found {int(minority.sum())} of {LABELLED}")
    base = times["entropy"]
    for name, t in sorted(times.items(), key=lambda kv: kv[1]):
        print(f"  {name:17s} {1e3 * t:8.2f} ms per round  ({t / base:6.1f}x entropy, "
              f"{t / forward_s:5.2f}x the pool forward)")
    return times


if __name__ == "__main__":
    main()
