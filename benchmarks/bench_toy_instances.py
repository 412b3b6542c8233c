"""Toy models of superposition: all instances as one batched weight tensor vs a Python loop
that trains the same instances one at a time (same settings and steps), 1 thread, on the
instance counts of config/quick.yaml. Goal (issues 6, 16): batched at least 5x faster at the
phase-diagram size. Then full.yaml's direction-3b cost in core-hours, each job run by its real
entry point at two small step counts and extrapolated linearly to its configured steps."""

from __future__ import annotations

import time
from pathlib import Path

import torch
import yaml

from rose.superposition.toy_model import ToyModel, importance, train_toy

# (what, n, m, instances, privileged, steps) as in config/quick.yaml's superposition block
WORKLOADS = (("intro sweep", 5, 2, 6, False, 500), ("main sweep", 20, 5, 7, False, 500),
             ("penalty grid", 20, 5, 190, True, 100), ("phase diagram", 2, 1, 98, False, 100))


def _train(instances: int, n: int, m: int, privileged: bool, steps: int,
           sparsities: torch.Tensor) -> float:
    g = torch.Generator().manual_seed(0)
    model = ToyModel.init(range(instances), n, m, privileged=privileged)
    imp = importance(n, 0.9).expand(instances, n)
    density = (1 - sparsities)[:, None].expand(instances, n)
    t = time.perf_counter()
    train_toy(model, imp, density, steps, 1024, 1e-3, g)
    return time.perf_counter() - t


def main(full: bool = True) -> float:
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
    if full:
        full_core_hours()
    return min(ratios)


def _timed(fn, block: dict, steps: int, args) -> float:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        fn({**block, "steps": steps}, *args(d))
        return time.perf_counter() - t


def full_core_hours(root: Path = Path("."), small: int = 4) -> float:
    """full.yaml's direction-3b jobs: each timed at ``small`` and 2 * ``small`` steps with its
    full instance counts (seconds = a + b * steps), extrapolated to its configured steps."""
    from snakemake.utils import validate

    from rose.superposition import experiments as ex

    cfg = yaml.safe_load((root / "config/full.yaml").read_text())
    validate(cfg, str(root / "workflow/schemas/config.schema.yaml"))
    sup, seeds = cfg["superposition"], cfg["seeds"]
    jobs = [(f"toy {k}", ex.toy_sweep, v, lambda d: (Path(d),)) for k, v in sup["toy"].items()]
    jobs += [("phase", ex.phase, sup["phase"], lambda d: (Path(d) / "p.csv",)),
             ("toy penalty", ex.toy_penalty, sup["penalty"], lambda d: (Path(d),))]
    # the Colored MNIST benchmarks cost the same (same images, variants and seeds): one is
    # timed and counted once per benchmark that runs the penalties
    sc = sup["shortcut"]
    penalised = [b for b in sc["benchmarks"] if b not in sc["erm_only"]]
    jobs += [(f"shortcut x{len(penalised)}", ex.shortcut, sc,
              lambda d: (penalised[0], seeds, Path(d) / "s.csv"))]
    total = 0.0
    for name, fn, block, args in jobs:
        t1, t2 = _timed(fn, block, small, args), _timed(fn, block, 2 * small, args)
        per_step = max(t2 - t1, 0.0) / small
        hours = (t1 - per_step * small + per_step * block["steps"]) / 3600
        hours *= len(penalised) if name.startswith("shortcut") else 1
        total += hours
        print(f"full.yaml {name:<18} {per_step * 1000:8.1f} ms/step x {block['steps']:>6} "
              f"steps -> {hours:6.2f} core-hours")
    print(f"full.yaml direction 3b: {total:.1f} core-hours on this CPU, 1 thread per job")
    return total


if __name__ == "__main__":
    main()
