"""``rose``: the command line of the library.

    rose run SPEC.json --data data/processed/mnist5k.npz --out results/my_run
    rose prepare mnist5k --out data/processed      (uses config/quick.yaml's data: block)
    rose push | rose pull [--config paper]         (DVC artifacts; see rose.artifacts)
    rose plan                                      (jobs Snakemake would run, by rule)
    rose plan --cost config/full.yaml [--timings FILE ...]  (core-hours and wall time per
                                                    rule; rose.cost)
    rose plan --record-timings [--config paper]    (the last run's timings ->
                                                    benchmarks/<name>_timings.csv)
    rose plan --power config/full.yaml [--pilot DIR] (seeds each primary contrast's target
                                                    needs at a pilot's spread; rose.power)

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
                       ("plan", "jobs snakemake would run for a config of params.yaml")]:
        p = sub.add_parser(name, help=text)
        p.add_argument("--root", type=Path, default=Path("."))
        p.add_argument("--config", default=None, metavar="NAME",
                       help="a config of params.yaml (default: its first, quick)")
        if name == "push":
            p.add_argument("--targets", nargs="+", default=(), metavar="STAGE",
                           help="only these stages (e.g. data baseline); default: all")
        if name == "pull":
            p.add_argument("--checkpoints", action="store_true",
                           help="also pull the checkpoints (from the shared remote)")
    p.add_argument("--cost", type=Path, metavar="CONFIG",
                   help="estimate CONFIG's core-hours and wall time per rule")
    p.add_argument("--cores", type=int, default=64, help="cores for the wall-time estimate")
    p.add_argument("--timings", type=Path, nargs="+", default=None, metavar="FILE",
                   help="measured timings, earlier files first (a timing of the estimated "
                        "config itself always first); default benchmarks/<its name>"
                        "_timings.csv if present, then benchmarks/quick_timings.csv")
    p.add_argument("--record-timings", action="store_true",
                   help="write the last run's per-rule timings of --config (its files under "
                        "logs/<name>/benchmarks) to --timings (default "
                        "benchmarks/<name>_timings.csv)")
    p.add_argument("--power", type=Path, metavar="CONFIG",
                   help="seeds each primary contrast of CONFIG needs to reach its target "
                        "(exit 2 naming the contrast when CONFIG's seeds do not)")
    p.add_argument("--pilot", type=Path, metavar="DIR", default=None,
                   help="results root of the pilot: DIR/<direction>/runs.csv or primary.csv "
                        "(default results/<CONFIG's name>; results/quick as a fallback)")

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

    if args.command == "plan" and args.power:
        return _plan_power(args)
    if args.command == "plan" and (args.cost or args.record_timings):
        return _plan_cost(args)

    from rose import artifacts

    try:
        if args.command == "push":
            artifacts.push(args.root, args.config, tuple(args.targets))
        elif args.command == "pull":
            left = artifacts.pull(args.root, args.config, checkpoints=args.checkpoints)
            print(f"pulled; jobs snakemake still plans: {left or 'none'}")
        else:
            print(json.dumps(artifacts.planned_jobs(
                args.root, artifacts.dvc_configfile(args.root, args.config)), indent=2))
    except artifacts.ArtifactError as err:
        print(f"rose {args.command}: {err}", file=sys.stderr)
        return 2
    return 0


def _plan_cost(args: argparse.Namespace) -> int:
    """``rose plan --record-timings`` and ``rose plan --cost``: see rose.cost."""
    from rose import cost
    from rose.artifacts import ArtifactError

    try:
        if args.record_timings:
            _record_timings(args)
        if args.cost:
            _print_cost(args)
    except (cost.CostError, ArtifactError) as err:
        print(f"rose plan: {err}", file=sys.stderr)
        return 2
    return 0


def _record_timings(args: argparse.Namespace) -> None:
    """Sum config ``--config``'s benchmark files per rule (part) into its timings file."""
    from rose import cost
    from rose.artifacts import dvc_configfile

    root = args.root
    configfile = dvc_configfile(root, args.config)
    cfg = cost.load_config(root / configfile, root / "workflow/schemas/config.schema.yaml")
    out = args.timings[0] if args.timings else root / cost.timings_file(cfg["name"])
    measured = cost.measure(root, cfg, config=configfile)
    if not measured:
        raise cost.CostError(f"no complete rule in {root / cost.benchmarks_dir(cfg['name'])}: "
                             f"run the workflow on {configfile} first")
    cost.write_timings(measured, out)
    print(f"recorded {len(measured)} rules (parts) of {configfile} to {out}: "
          f"{', '.join(m.key for m in measured)}")


def _print_cost(args: argparse.Namespace) -> None:
    """The estimate of ``--cost CONFIG`` per rule and direction, and what it was scaled from."""
    from rose import cost

    root = args.root
    cfg = cost.load_config(args.cost, root / "workflow/schemas/config.schema.yaml")
    files = args.timings or [p for p in (root / cost.timings_file(cfg["name"]),
                                         root / cost.TIMINGS) if p.exists()]
    est = cost.estimate(cfg, cost.combine_timings(files, cfg["name"]), list(cost.WORK))
    print(f"{args.cost}: estimated from {', '.join(map(str, files))} (core-seconds x work "
          f"ratio)")
    print(cost.report(est, args.cores))
    for line in [*cost.provenance(est), *cost.design_notes(cfg, root)]:
        print(f"note: {line}")


def _pilot_tables(results: Path, direction: str) -> list[tuple[str, str, object]]:
    """The pilot tables of one direction under a results root, in the order rose.power tries
    them: its per-seed runs table (rose.power.RUNS_TABLES), then its primary.csv."""
    import pandas as pd

    from rose import power

    found = []
    for kind, name in (("runs", power.RUNS_TABLES.get(direction)),
                       ("primary", power.PRIMARY_TABLE)):
        path = results / direction / name if name else None
        if path is not None and path.is_file() and path.stat().st_size > 1:
            found.append((kind, str(path), pd.read_csv(path)))
    return found


def _plan_power(args: argparse.Namespace) -> int:
    """``rose plan --power CONFIG [--pilot DIR]``: rose.power's plan of every direction's
    primary family; exit 2 naming each contrast whose target CONFIG's seeds cannot reach."""
    import pandas as pd

    from rose import cost, layout, power

    root = args.root
    try:
        cfg = cost.load_config(args.power, root / "workflow/schemas/config.schema.yaml")
    except Exception as err:  # snakemake's WorkflowError and yaml errors name the key
        print(f"rose plan: {args.power}: {err}", file=sys.stderr)
        return 2
    pilot = args.pilot or root / layout.results(cfg["name"])
    fallback = root / layout.results("quick")
    plans = []
    for d in power.DIRECTIONS:
        declared = cfg[d]["primary"]
        tables = _pilot_tables(pilot, d)
        spare = [] if fallback.resolve() == pilot.resolve() else _pilot_tables(fallback, d)
        pilots = [power.find_pilot(c, tables) or power.find_pilot(c, spare, power.FALLBACK_NOTE)
                  for c in declared]
        plans.append(power.plan_family(d, declared, [power.config_seeds(cfg, d, c)
                                                     for c in declared], pilots))
    plan = pd.concat(plans, ignore_index=True)
    print(f"{args.power}: seeds for 80% power at the Holm level alpha / m (m = the direction's "
          f"primary contrasts); target, pilot sd and SDE in points (100 x the stored "
          f"difference); pilot {pilot}")
    print(power.format_plan(plan))
    for source in dict.fromkeys(s for s in plan.pilot_source if s):
        print(f"pilot: {source}")
    if (plan.status == "no pilot").any():
        print("no pilot: a declared target without pilot rows is not checked")
    try:
        power.check_plan(plan)
    except ValueError as err:
        print(f"rose plan: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
