"""What a config costs: core-hours and wall time per rule, scaled from measured timings.

Every rule of the workflow writes a Snakemake benchmark file to
``logs/benchmarks/<rule>/<wildcards>.tsv`` (outside the DVC-tracked outputs). After a run of
the quick config, ``rose plan --record-timings`` sums them per rule into
``benchmarks/quick_timings.csv`` (committed: rule, jobs, core-seconds, and the rule's *work*
under the config that was measured). ``rose plan --cost CONFIG`` then estimates each rule as

    core-seconds(CONFIG) = measured core-seconds x work(CONFIG) / work(measured config)

where work is the rule's training work in the units below (a proxy proportional to the
floating-point work of its jobs: instances x steps x batch x weights, or the directions' own
work counts). A rule with no measured timing is named, not guessed; so is a rule without a
work model (every rule must have one: tests/test_cost.py checks the rule list).

Wall time on C cores is a lower bound: max(total / C, a rule's mean job); it ignores the
dependencies between jobs (the explore ablation waits for its setting's tuning) and that a
rule's largest job can be several times its mean (the uniform toy sweep).
"""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TIMINGS = Path("benchmarks/quick_timings.csv")
BENCHMARKS = Path("logs/benchmarks")

# examples and input size of the datasets (rose.data; the split fractions come from the config)
DATASETS = {"mnist5k": (5000, 28 * 28), "digits": (1797, 8 * 8), "synthetic": (2000, 20)}
MNIST_TRAIN_IMAGES = 5000            # Colored MNIST and the active benchmarks draw from these
CMNIST_INPUT = 2 * 14 * 14           # their inputs: two colour channels of 14 x 14


class CostError(ValueError):
    """A rule that cannot be estimated (no measured timing, or no work model)."""


def _mlp_weights(sizes: list[int]) -> int:
    return sum(a * b for a, b in itertools.pairwise(sizes))


def _dataset(cfg: dict, dataset: str) -> tuple[int, int]:
    """(examples, input size); the synthetic set's from the config."""
    if dataset == "synthetic":
        syn = cfg["data"]["synthetic"]
        return syn["n_samples"], syn["n_features"]
    return DATASETS[dataset]


def _train_examples(cfg: dict, dataset: str) -> float:
    n, _ = _dataset(cfg, dataset)
    split = cfg["data"]["split"]
    return n * (1 - split["val"] - split["test"])


# -- the work of each rule: (number of jobs, work) under a validated config -------------------

def _prepare_data(cfg):
    return len(cfg["data"]["datasets"]), float(len(cfg["data"]["datasets"]))


def _train_baseline(cfg):
    b = cfg["baseline"]
    jobs = len(b["datasets"]) * len(b["methods"]) * len(cfg["seeds"])
    work = sum(b["epochs"] * _train_examples(cfg, d)
               * _mlp_weights([_dataset(cfg, d)[1], *b["model"].get("hidden", []), 10])
               for d in b["datasets"]) * len(b["methods"]) * len(cfg["seeds"])
    return jobs, work


def _explore_setting(cfg):
    """Rows x epochs x (training examples x gradient evaluations per step + evaluated examples
    / 3) x parameters, over every setting (and the ablation), arm and grid point."""
    from rose.explore.experiments import ABLATION, arms_for
    from rose.explore.trainer import step_cost
    from rose.explore.tuned import grid_points
    from rose.nn import StackedNet

    block, seeds = cfg["explore"], len(cfg["seeds"])
    settings = [*block["settings"], *([ABLATION] if "ablation" in block else [])]
    total = 0.0
    for st in settings:
        spec = block["settings"][block["ablation"]["setting"] if st == ABLATION else st]
        n, d_in = DATASETS[spec["dataset"]]
        side = math.isqrt(d_in)
        params = StackedNet(spec["model"], (1, side, side), 10).dim
        for arm in arms_for(block, st):
            cost = step_cost(arm) if arm.budget == "steps" else 1
            per_row = block["epochs"] * (_train_examples(cfg, spec["dataset"]) * cost
                                         + n / 3) * params
            total += len(grid_points(arm)) * seeds * per_row
    return len(settings), total


def _continual_stream(cfg):
    """Instances x (training examples x K x 3 + evaluated examples) x weights, the validation
    grids included (bisection and feature distances counted as plain steps)."""
    from rose import tuning
    from rose.continual.experiments import UNTUNED, arms_from_config, grid_of

    block, seeds = cfg["continual"], len(cfg["seeds"])
    side = 8 if block.get("dataset") == "digits" else 28 // block.get("downsample", 2)
    weights = _mlp_weights([side * side, *block["model"]["hidden"], 10])
    total = 0.0
    for s in block["streams"].values():
        tasks = s["tasks"]
        batches = tasks * s.get("samples_per_task", block["samples_per_task"]) \
            // block["batch_size"]
        # training: forward + backward (x3) of K steps per batch; evaluation: every task's
        # test points every eval_every batches and at each task's end (forward only)
        evals = (batches // block["eval_every"] + tasks) * tasks * block["test_per_task"]
        for group, arm in arms_from_config(block):
            runs = 1 if group in UNTUNED else 1 + tuning.Grid(
                arm.name, grid_of(block, group, arm)).size
            train = batches * arm.k * block["batch_size"] * 3
            total += runs * seeds * (train + evals) * weights
    return len(block["streams"]), total


def _toy(block):
    return block["steps"] * block["batch_size"] * block["n"] * block["m"]


def _toy_sweep(cfg):
    toy = cfg["superposition"]["toy"]
    return len(toy), float(sum(len(b["sparsities"]) * b.get("seeds", 1) * _toy(b)
                               for b in toy.values()))


def _phase(cfg):
    p = cfg["superposition"]["phase"]
    models = 1 + (2 if p.get("penalised") else 0)       # unprivileged, then lambda = 0 and lam
    return 1, float(p["n_importance"] * p["n_density"] * p["seeds"] * models * p["steps"]
                    * p["batch_size"] * 2)


def _toy_penalty(cfg):
    p = cfg["superposition"]["penalty"]
    instances = sum(len(p["lams"]) if v["penalty"] != "none" else 1
                    for v in p["variants"].values()) * len(p["sparsities"]) * p["seeds"]
    return 1, float(instances * _toy(p))


def _shortcut(cfg):
    sc, seeds = cfg["superposition"]["shortcut"], len(cfg["seeds"])
    weights = _mlp_weights([CMNIST_INPUT, *sc["hidden"], 1])
    grids = sc.get("grids", {})
    penalised = sum(len(grids[v]["lam"]) if v in grids else 1 for v in sc["variants"])
    runs = sum(1 if b in sc.get("erm_only", []) else penalised for b in sc["benchmarks"])
    return len(sc["benchmarks"]), float(runs * seeds * sc["steps"] * sc["batch_size"] * weights)


def _active_learning(cfg):
    a, seeds = cfg["active"], len(cfg["seeds"])
    loop = a["loop"]
    weights = _mlp_weights([CMNIST_INPUT, *a["model"]["hidden"], 10])
    per_run = (loop["rounds"] + 1) * loop["steps"] * a["model"]["batch_size"] * weights \
        + (loop["rounds"] + 1) * MNIST_TRAIN_IMAGES * weights * loop["mc_samples"]
    sweep = a.get("alvin_sweep") or {"alpha": [], "anchors_per_minority": []}
    n_acq = len(a["acquisitions"]) + len(sweep["alpha"]) * len(sweep["anchors_per_minority"])
    return len(a["benchmarks"]), float(len(a["benchmarks"]) * n_acq * seeds * per_run)


def _active_curriculum(cfg):
    a, seeds = cfg["active"], len(cfg["seeds"])
    c = a["curriculum"]
    weights = _mlp_weights([CMNIST_INPUT, *a["model"]["hidden"], 10])
    per_method = (c["steps"] + c["il_steps"]) * a["model"]["batch_size"] * c["candidates"]
    points = max(math.prod(len(v) for v in g.values()) for g in c["tuning"]["grids"].values())
    return len(a["benchmarks"]), float(len(a["benchmarks"]) * len(c["methods"]) * seeds
                                       * points * per_method * weights)


def _per_seed(cfg):
    """Aggregation and figures: one pass over every seed's rows."""
    return 1, float(len(cfg["seeds"]))


def _once(cfg):
    return 1, 1.0


WORK: dict[str, Callable[[dict], tuple[int, float]]] = {
    "prepare_data": _prepare_data,
    "train_baseline": _train_baseline,
    "aggregate_baseline": _per_seed,
    "figure_baseline_learning_curves": _per_seed,
    "tex_baseline": _once,
    "explore_setting": _explore_setting,
    "aggregate_explore": _per_seed,
    "figures_explore": _per_seed,
    "tex_explore": _once,
    "continual_stream": _continual_stream,
    "aggregate_continual": _per_seed,
    "figures_continual": _per_seed,
    "tex_continual": _once,
    "active_learning": _active_learning,
    "active_curriculum": _active_curriculum,
    "aggregate_active": _per_seed,
    "figures_active": _per_seed,
    "tex_active": _once,
    "superposition_toy_sweep": _toy_sweep,
    "superposition_phase": _phase,
    "superposition_toy_penalty": _toy_penalty,
    "superposition_shortcut": _shortcut,
    "aggregate_superposition": _per_seed,
    "figures_superposition": _per_seed,
    "tex_superposition": _once,
    "tex_provenance": _once,
    "tex_summary": _once,
    "paper": _once,
}
DIRECTION = {"prepare_data": "data", "tex_provenance": "paper", "tex_summary": "paper",
             "paper": "paper"}
for _r in WORK:
    DIRECTION.setdefault(_r, next(
        (d for d in ("baseline", "explore", "continual", "active", "superposition")
         if d in _r), "paper"))


def load_config(path: str | Path, schema: str | Path = "workflow/schemas/config.schema.yaml"
                ) -> dict:
    """The config with the schema's defaults filled in, as the workflow sees it."""
    import yaml
    from snakemake.utils import validate

    cfg = yaml.safe_load(Path(path).read_text())
    validate(cfg, str(schema))
    return cfg


def work(rule: str, cfg: dict) -> tuple[int, float]:
    if rule not in WORK:
        raise CostError(f"rule {rule!r} has no work model in rose.cost.WORK, so its cost "
                        f"cannot be scaled; add one")
    return WORK[rule](cfg)


@dataclass(frozen=True)
class Measured:
    rule: str
    jobs: int
    core_seconds: float
    work: float


def measure(root: Path, cfg: dict, rules: list[str] | None = None) -> list[Measured]:
    """Per rule, the core-seconds its jobs took in the last run (Snakemake benchmark files,
    wall seconds x the rule's 1 thread) and its work under ``cfg``, the config that ran."""
    out = []
    for d in sorted((root / BENCHMARKS).iterdir()) if (root / BENCHMARKS).is_dir() else []:
        if rules is not None and d.name not in rules:
            continue
        seconds = []
        for f in sorted(d.glob("*.tsv")):
            with open(f) as fh:
                rows = list(csv.DictReader(fh, delimiter="\t"))
            seconds.append(float(rows[-1]["s"]))
        jobs, w = work(d.name, cfg)
        if len(seconds) == jobs:       # else files of another config or renamed jobs: skipped
            out.append(Measured(d.name, jobs, sum(seconds), w))
    return out


def write_timings(measured: list[Measured], path: Path, config_name: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["rule", "jobs", "core_seconds", "work", "config"])
        for m in measured:
            w.writerow([m.rule, m.jobs, f"{m.core_seconds:.2f}", repr(m.work), config_name])


def read_timings(path: Path) -> dict[str, Measured]:
    with open(path) as fh:
        return {r["rule"]: Measured(r["rule"], int(r["jobs"]), float(r["core_seconds"]),
                                    float(r["work"])) for r in csv.DictReader(fh)}


@dataclass(frozen=True)
class Estimate:
    rule: str
    direction: str
    jobs: int
    core_hours: float

    @property
    def job_hours(self) -> float:
        return self.core_hours / max(self.jobs, 1)


def estimate(cfg: dict, timings: dict[str, Measured], rules: list[str]) -> list[Estimate]:
    """Each rule's core-hours under ``cfg``; CostError naming every rule without a timing."""
    missing = [r for r in rules if r not in timings]
    if missing:
        raise CostError(f"no measured timing for rule(s) {', '.join(missing)}: run them on "
                        f"the quick config, then `rose plan --record-timings`")
    out = []
    for r in rules:
        jobs, w = work(r, cfg)
        m = timings[r]
        scale = w / m.work if m.work > 0 else 1.0
        out.append(Estimate(r, DIRECTION[r], jobs, m.core_seconds * scale / 3600))
    return out


def wall_hours(estimates: list[Estimate], cores: int) -> float:
    """A lower bound: max(total / cores, the longest mean job of a rule)."""
    total = sum(e.core_hours for e in estimates)
    return max(total / cores, max((e.job_hours for e in estimates), default=0.0))


def report(estimates: list[Estimate], cores: int) -> str:
    lines = [f"{'rule':<34}{'jobs':>6}{'core-h':>10}{'per job h':>11}"]
    for e in estimates:
        lines.append(f"{e.rule:<34}{e.jobs:>6}{e.core_hours:>10.2f}{e.job_hours:>11.2f}")
    by_dir: dict[str, float] = {}
    for e in estimates:
        by_dir[e.direction] = by_dir.get(e.direction, 0.0) + e.core_hours
    lines.append("")
    for d, h in by_dir.items():
        lines.append(f"{'direction ' + d:<34}{'':>6}{h:>10.2f}")
    total = sum(e.core_hours for e in estimates)
    lines.append(f"{'total':<34}{sum(e.jobs for e in estimates):>6}{total:>10.2f}")
    lines.append(f"wall time on {cores} cores: at least {wall_hours(estimates, cores):.2f} h "
                 f"(max(total / cores, longest mean job); dependencies not counted)")
    return "\n".join(lines)


def config_core_hours(config: str | Path, rules: list[str], root: Path = Path(".")) -> float:
    """``config``'s core-hours over ``rules``, scaled from this checkout's last run when its
    benchmark files (logs/benchmarks) cover the rules, else from the committed timings."""
    from rose.artifacts import dvc_configfile

    schema = root / "workflow/schemas/config.schema.yaml"
    timings = read_timings(root / TIMINGS)
    if (root / BENCHMARKS).is_dir():
        ran = load_config(root / dvc_configfile(root), schema)
        fresh = {m.rule: m for m in measure(root, ran, rules)}
        if set(rules) <= set(fresh):
            timings = fresh
    return sum(e.core_hours for e in estimate(load_config(config, schema), timings, rules))
