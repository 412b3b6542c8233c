"""Shared timing helpers for the benchmarks. Every timed call ends with a device synchronise,
so CUDA timings measure the kernels, not their launch (a no-op on the CPU)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _timed(fn: Callable[[], object]) -> float:
    synchronize()
    t = time.perf_counter()
    fn()
    synchronize()
    return time.perf_counter() - t


def median_time(fn: Callable[[], object], repeats: int, warm_up: bool = True) -> float:
    """Median wall time of ``repeats`` calls (after one warm-up call)."""
    if warm_up:
        fn()
    return statistics.median(_timed(fn) for _ in range(repeats))


def interleaved(a: Callable[[], object], b: Callable[[], object], repeats: int
                ) -> tuple[float, float]:
    """Median wall times of a and b called alternately (so drifts in clock speed or cache
    state hit both alike), after one warm-up call each."""
    a(), b()
    ta, tb = [], []
    for _ in range(repeats):
        ta.append(_timed(a))
        tb.append(_timed(b))
    return statistics.median(ta), statistics.median(tb)


def matmul_peak(n: int = 2048, repeats: int = 5, device: str = "cpu") -> float:
    """Measured fp32 GFLOP/s of one large square matmul (2 n^3 FLOPs) on ``device``."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    t = median_time(lambda: a @ b, repeats)
    return 2 * n ** 3 / t / 1e9


def flops_of(fn: Callable[[], object]) -> int:
    """FLOPs of one call, counted by torch.utils.flop_counter (matmuls and convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()
