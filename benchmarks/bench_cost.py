"""full.yaml's estimated cost per rule and direction: `rose plan --cost config/full.yaml`
(rose.cost: the committed quick timings, benchmarks/quick_timings.csv, times each rule's work
under full.yaml over its work under quick.yaml), on 64 cores and on this machine's."""

from __future__ import annotations

import os

from rose.cli import main as rose_main


def main() -> None:
    for cores in (64, os.cpu_count() or 1):
        rose_main(["plan", "--cost", "config/full.yaml", "--cores", str(cores)])


if __name__ == "__main__":
    main()
