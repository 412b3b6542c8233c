"""``rose``: the command line of the library.

    rose run SPEC.json --data data/processed/mnist5k.npz --out results/my_run
    rose prepare mnist5k --out data/processed      (uses config/quick.yaml's data: block)
    rose push | rose pull                          (DVC artifacts; see rose.artifacts)
    rose plan                                      (jobs Snakemake would run, by rule)
    rose plan --cost config/full.yaml              (core-hours and wall time per rule;
                                                    rose.cost)
    rose plan --record-timings                     (the last run's timings -> rose.cost)

Snakemake rules call the same functions through workflow/scripts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rose", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="train one run from a JSON spec")
    p.add_argument("spec", type=Path)
    p.add_argument("--data", type=Path, required=True, help="prepared .npz (rose prepare)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("prepare", help="split a dataset and write it with its manifest")
    p.add_argument("dataset")
    p.add_argument("--config", type=Path, default=Path("config/quick.yaml"))
    p.add_argument("--out", type=Path, default=Path("data/processed"))

    for name, text in [("push", "dvc commit + dvc push, refused if outputs are stale"),
                       ("pull", "dvc pull + snakemake --touch, refused unless git/dvc clean"),
                       ("plan", "jobs snakemake would run for params.yaml's config")]:
        p = sub.add_parser(name, help=text)
        p.add_argument("--root", type=Path, default=Path("."))
    p.add_argument("--cost", type=Path, metavar="CONFIG",
                   help="estimate CONFIG's core-hours and wall time per rule")
    p.add_argument("--cores", type=int, default=64, help="cores for the wall-time estimate")
    p.add_argument("--timings", type=Path, default=None,
                   help="measured timings (default benchmarks/quick_timings.csv)")
    p.add_argument("--record-timings", action="store_true",
                   help="write the last run's per-rule timings (logs/benchmarks) to --timings")

    args = parser.parse_args(argv)
    if args.command == "run":
        from rose.train import train_from_file

        spec = json.loads(args.spec.read_text())
        metrics = train_from_file(spec, args.data, args.out, threads=args.threads,
                               progress=not args.no_progress)
        print(json.dumps({"status": metrics["status"], "final": metrics["final"]}, indent=2))
        return 0
    if args.command == "prepare":
        from rose.data.splits import prepare_to_files

        cfg = yaml.safe_load(args.config.read_text())["data"]
        args.out.mkdir(parents=True, exist_ok=True)
        prepare_to_files(args.dataset, cfg, args.out / f"{args.dataset}.npz",
                        args.out / f"{args.dataset}.manifest.json")
        return 0

    if args.command == "plan" and (args.cost or args.record_timings):
        return _plan_cost(args)

    from rose import artifacts

    try:
        if args.command == "push":
            artifacts.push(args.root)
        elif args.command == "pull":
            left = artifacts.pull(args.root)
            print(f"pulled; jobs snakemake still plans: {left or 'none'}")
        else:
            print(json.dumps(artifacts.planned_jobs(
                args.root, artifacts.dvc_configfile(args.root)), indent=2))
    except artifacts.ArtifactError as err:
        print(f"rose {args.command}: {err}", file=sys.stderr)
        return 2
    return 0


def _plan_cost(args: argparse.Namespace) -> int:
    from rose import cost
    from rose.artifacts import dvc_configfile

    root = args.root
    timings = args.timings or root / cost.TIMINGS
    schema = root / "workflow/schemas/config.schema.yaml"
    try:
        if args.record_timings:
            configfile = dvc_configfile(root)
            cfg = cost.load_config(root / configfile, schema)
            measured = cost.measure(root, cfg)
            if not measured:
                raise cost.CostError(f"no benchmark files under {root / cost.BENCHMARKS}: run "
                                     "the workflow first")
            cost.write_timings(measured, timings, configfile)
            print(f"recorded {len(measured)} rules from {configfile} to {timings}")
        if args.cost:
            cfg = cost.load_config(args.cost, schema)
            est = cost.estimate(cfg, cost.read_timings(timings), list(cost.WORK))
            print(f"{args.cost}: estimated from {timings} (core-seconds x work ratio)")
            print(cost.report(est, args.cores))
    except cost.CostError as err:
        print(f"rose plan: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
