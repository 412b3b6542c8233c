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


def _timed(fn: Callable[[], object], clock: Callable[[], float] = time.perf_counter) -> float:
    synchronize()
    t = clock()
    fn()
    synchronize()
    return clock() - t


def cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (user + system): on a shared
    machine, a 1-thread computation's cost without the time other processes took the core."""
    import resource

    own, children = (resource.getrusage(w) for w in (resource.RUSAGE_SELF,
                                                      resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def median_time(fn: Callable[[], object], repeats: int, warm_up: bool = True,
                clock: Callable[[], float] = time.perf_counter) -> float:
    """Median time of ``repeats`` calls (after one warm-up call): wall, or ``clock``."""
    if warm_up:
        fn()
    return statistics.median(_timed(fn, clock) for _ in range(repeats))


def per_call(fn: Callable[[], object], repeats: int, block_seconds: float = 0.05,
             clock: Callable[[], float] = time.perf_counter) -> float:
    """Median time of one call, timed in blocks of calls lasting about ``block_seconds`` each
    (so a fast call is not lost in the clock's resolution), after a warm-up call."""
    t = _timed(fn, clock) or 1e-6
    n = max(1, round(block_seconds / t))

    def block() -> None:
        for _ in range(n):
            fn()
    return median_time(block, repeats, warm_up=False, clock=clock) / n


def interleaved(a: Callable[[], object], b: Callable[[], object], repeats: int,
                clock: Callable[[], float] = time.perf_counter) -> tuple[float, float]:
    """Median times of a and b called alternately (so drifts in clock speed or cache state hit
    both alike), after one warm-up call each; wall time, or ``clock`` (e.g. cpu_seconds)."""
    a(), b()
    ta, tb = [], []
    for _ in range(repeats):
        ta.append(_timed(a, clock))
        tb.append(_timed(b, clock))
    return statistics.median(ta), statistics.median(tb)


def matmul_peak(n: int = 2048, repeats: int = 5, device: str = "cpu",
                clock: Callable[[], float] = time.perf_counter) -> float:
    """Measured fp32 GFLOP/s of one large square matmul (2 n^3 FLOPs) on ``device``."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    t = median_time(lambda: a @ b, repeats, clock=clock)
    return 2 * n ** 3 / t / 1e9


def flops_of(fn: Callable[[], object]) -> int:
    """FLOPs of one call, counted by torch.utils.flop_counter (matmuls and convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()
