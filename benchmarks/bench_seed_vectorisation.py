"""Is it worth vectorising seeds with torch.func.vmap? SGD-with-momentum steps on S=5 seeds at
once (stack_module_state + functional_call + vmap(grad)) vs a Python loop over the 5 models, for
the baseline MLP on MNIST-sized inputs and for a small MLP on 8x8 digits, one thread.

This measurement is why the baseline keeps one job per seed: for the 784-256-256-10 MLP the
matrix products dominate and vmap buys nothing, while one job per seed stays exact, resumable
and parallel across cores. Small models (toy models, digits) are where vmap pays.
"""

from __future__ import annotations

import copy
import time

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, stack_module_state, vmap

from rose.models import MLP

SEEDS, BATCH, STEPS = 5, 64, 100


def _time(fn, repeats: int = 3) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def compare(in_features: int, hidden: list[int], side: int) -> float:
    models = [MLP(in_features, hidden, 10) for _ in range(SEEDS)]
    X = torch.randn(SEEDS, BATCH, 1, side, side)
    Y = torch.randint(0, 10, (SEEDS, BATCH))

    params, buffers = stack_module_state(models)
    params = {k: v.detach().clone() for k, v in params.items()}
    skeleton = copy.deepcopy(models[0]).to("meta")
    per_seed_grad = vmap(grad(lambda p, b, x, y: F.cross_entropy(
        functional_call(skeleton, (p, b), (x,)), y)))
    opt_v = torch.optim.SGD(list(params.values()), lr=0.05, momentum=0.9)

    def vectorised() -> None:
        for _ in range(STEPS):
            g = per_seed_grad(params, buffers, X, Y)
            for k, v in params.items():
                v.grad = g[k]
            opt_v.step()

    opts = [torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9) for m in models]

    def looped() -> None:
        for _ in range(STEPS):
            for s in range(SEEDS):
                opts[s].zero_grad(set_to_none=True)
                F.cross_entropy(models[s](X[s]), Y[s]).backward()
                opts[s].step()

    t_vec, t_loop = _time(vectorised), _time(looped)
    ratio = t_loop / t_vec
    print(f"  MLP {in_features}-{'-'.join(map(str, hidden))}-10, {SEEDS} seeds x {STEPS} steps: "
          f"loop {t_loop:.3f} s, vmap {t_vec:.3f} s, speed-up {ratio:.2f}x")
    return ratio


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    compare(784, [256, 256], 28)
    compare(64, [32], 8)


if __name__ == "__main__":
    main()
