"""Toy models of superposition: all instances as one batched weight tensor vs a Python loop
that trains the same instances one at a time (same settings and steps), 1 thread, on the
instance counts of config/quick.yaml. Goal (issue 6): batched at least 5x faster."""

from __future__ import annotations

import time

import torch

from rose.superposition.toy_model import ToyModel, importance, train_toy

# (what, n, m, instances, privileged, steps) as in config/quick.yaml's superposition block
WORKLOADS = (("intro sweep", 5, 2, 6, False, 500), ("main sweep", 20, 5, 7, False, 500),
             ("penalty grid", 20, 5, 18, True, 300), ("phase diagram", 2, 1, 192, False, 100))


def _train(instances: int, n: int, m: int, privileged: bool, steps: int,
           sparsities: torch.Tensor) -> float:
    g = torch.Generator().manual_seed(0)
    model = ToyModel.init(range(instances), n, m, privileged=privileged)
    imp = importance(n, 0.9).expand(instances, n)
    density = (1 - sparsities)[:, None].expand(instances, n)
    t = time.perf_counter()
    train_toy(model, imp, density, steps, 1024, 1e-3, g)
    return time.perf_counter() - t


def main() -> float:
    torch.set_num_threads(1)
    _train(4, 5, 2, False, 200, torch.zeros(4))   # warm-up: the first call pays for allocation
    ratios = []
    for what, n, m, k, privileged, steps in WORKLOADS:
        S = torch.linspace(0.0, 0.99, k)
        batched = _train(k, n, m, privileged, steps, S)
        loop = sum(_train(1, n, m, privileged, steps, S[i:i + 1]) for i in range(k))
        ratios.append(loop / batched)
        print(f"{what:<14} n={n:>2} m={m} {k:>3} instances x {steps} steps: batched "
              f"{batched:.2f} s, loop {loop:.2f} s -> {loop / batched:.1f}x (goal >= 5)")
    return min(ratios)


if __name__ == "__main__":
    main()
