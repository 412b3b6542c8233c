"""Wall time of `snakemake` on config/quick.yaml from an empty results/ (a fresh copy of the
repository), and the peak RSS of the largest job it ran. Each direction's part is timed first
on its own (its targets, from empty results/quick/), then the rest of the DAG."""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from tests.workflow.conftest import copy_repo, sh

# each direction's targets: its results, its figures and its generated LaTeX
DIRECTION_TARGETS = {
    "3b superposition": ["superposition", "figures_superposition",
                         "paper/generated/quick/superposition_macros.tex"],
    "3a active": ["active", "figures_active", "paper/generated/quick/active_macros.tex"],
    "2 continual": ["continual", "figures_continual",
                    "paper/generated/quick/continual_macros.tex"],
    "1 explore": ["explore", "figures_explore", "paper/generated/quick/explore_macros.tex"],
}
DIRECTION_GOAL_S = {"3b superposition": 150, "3a active": 180, "2 continual": 180,
                    "1 explore": 150}


def main() -> float:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["DVC_NO_ANALYTICS"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        repo = copy_repo(Path(tmp) / "repo", env)
        parts = {}
        for direction, targets in DIRECTION_TARGETS.items():
            t = time.perf_counter()
            sh(["snakemake", *targets, "--configfile", "config/quick.yaml"], repo, env)
            parts[direction] = time.perf_counter() - t
        t = time.perf_counter()
        sh(["snakemake", "--configfile", "config/quick.yaml"], repo, env)
        wall = time.perf_counter() - t + sum(parts.values())
        # ru_maxrss of RUSAGE_CHILDREN: the largest descendant process that was waited for (KiB)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        tsv = [(p, pd.read_csv(p, sep="\t")["max_rss"].max())
               for p in repo.glob("logs/quick/benchmarks/*/*.tsv")]
        biggest = max(tsv, key=lambda x: x[1])
        n_train = len(list((repo / "results/quick/baseline").glob("*/*/seed*/metrics.json")))
    print(f"snakemake on config/quick.yaml from empty results/quick/, {os.cpu_count()} cores: "
          f"{wall:.1f} s ({n_train} baseline training runs + data, directions, figures, paper; "
          f"goal <= 720 s)")
    for direction, seconds in parts.items():
        print(f"  of which direction {direction} (its results, figures and LaTeX): "
              f"{seconds:.1f} s (goal <= {DIRECTION_GOAL_S[direction]} s)")
    print(f"  peak RSS of any process in the run: {peak_mb:.0f} MB")
    print(f"  largest job by Snakemake benchmark: {biggest[1]:.0f} MB "
          f"({biggest[0].relative_to(repo)})")
    return wall


if __name__ == "__main__":
    main()
