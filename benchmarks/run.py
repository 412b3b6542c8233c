"""`make bench`: every benchmark, each printing numbers measured side by side in one run.

    python benchmarks/run.py            # all
    python benchmarks/run.py train_loop # one
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import (
    bench_acquisitions,
    bench_continual,
    bench_cost,
    bench_explore,
    bench_flops,
    bench_quick_dag,
    bench_seed_vectorisation,
    bench_stacked,
    bench_toy_instances,
    bench_train_loop,
)

BENCHMARKS = {
    "train_loop": bench_train_loop.main,
    "stacked": bench_stacked.main,
    "flops": bench_flops.main,
    "seed_vectorisation": bench_seed_vectorisation.main,
    "toy_instances": bench_toy_instances.main,
    "acquisitions": bench_acquisitions.main,
    "continual": bench_continual.main,
    "explore": bench_explore.main,
    "quick_dag": bench_quick_dag.main,
    "cost": bench_cost.main,
}

if __name__ == "__main__":
    for name in sys.argv[1:] or list(BENCHMARKS):
        print(f"== {name}", flush=True)
        BENCHMARKS[name]()
