"""What a config costs: core-hours and wall time per rule, scaled from measured timings.

Every rule of the workflow writes a Snakemake benchmark file to
``logs/<config name>/benchmarks/<rule>/<wildcards>.tsv`` (outside the DVC-tracked outputs).
After a run of config NAME, ``rose plan --record-timings --config NAME`` sums them per rule into
``benchmarks/NAME_timings.csv`` (rule, part, jobs, core-seconds, and the rule's *work* under
the config that was measured; ``benchmarks/quick_timings.csv`` is committed). ``rose plan
--cost CONFIG [--timings FILE ...]`` then estimates each rule as

    core-seconds(CONFIG) = measured core-seconds x work(CONFIG) / work(measured config)

where work is the rule's training work in the units below: for the baseline, FLOP-equivalents
of an MLP training step (:func:`model_flops`, weighted by measured per-kind costs, plus each
job's start); for the directions, their own work counts (instances x steps x batch x weights,
a proxy proportional to the floating-point work of MLP jobs). A rule whose jobs mix kinds of
model (the baseline's MLP and CNN) is measured and scaled per *part* (``train_baseline[cnn]``).
Timings of the estimated config itself come first, then the files in the order given (list
paper-scale timings before quick's). A rule with no measured timing is named, not guessed; so
is a rule without a work model (every rule must have one: tests/test_cost.py checks the list).

Timings scale within one state of the machine: a run on a slower or busier machine takes
longer for the same work (this repository's 2-core machine has varied between sessions: on
2026-12-07 a quick baseline job took 9.6-10.7 s against the committed timings' 3.87 s). Compare
an estimate with a run of the same session, or record that run's timings and estimate from them
(``benchmarks/bench_cost.py`` prints a quick baseline job run now beside the committed mean).

Wall time on C cores is a lower bound: max(total / C, a rule's mean job); it ignores the
dependencies between jobs (the explore ablation waits for its setting's tuning) and that a
rule's largest job can be several times its mean (the uniform toy sweep).
"""

from __future__ import annotations

import csv
import functools
import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

TIMINGS = Path("benchmarks/quick_timings.csv")


def timings_file(name: str) -> Path:
    """Where ``rose plan --record-timings --config NAME`` writes NAME's timings by default."""
    return Path("benchmarks") / f"{name}_timings.csv"


def benchmarks_dir(name: str) -> Path:
    """Where config ``name``'s jobs write their Snakemake benchmark files (rose.layout)."""
    from rose import layout

    return Path(layout.logs(name)) / "benchmarks"


@dataclass(frozen=True)
class Dataset:
    """A dataset's size as rose.data prepares it: all examples, one example's shape, and (for
    datasets with an official test set) how many of the examples are the official training
    part (``data.split.test: official`` carves validation from these, the rest is test)."""

    examples: int
    shape: tuple[int, ...]
    official_train: int | None = None


DATASETS = {
    "mnist5k": Dataset(5000, (1, 28, 28)),
    "digits": Dataset(1797, (1, 8, 8)),
    "mnist": Dataset(70_000, (1, 28, 28), 60_000),
    "fashion_mnist": Dataset(70_000, (1, 28, 28), 60_000),
    "cifar10": Dataset(60_000, (3, 32, 32), 50_000),
}   # synthetic: from the config (data.synthetic)
MNIST_TRAIN_IMAGES = 5000            # Colored MNIST and the active benchmarks draw from these
CMNIST_INPUT = 2 * 14 * 14           # their inputs: two colour channels of 14 x 14
OFFICIAL = "official"                # data.split.test: the dataset's own test set

# Seconds per counted FLOP of each kind of model, relative to the reference: an MLP
# 784-256-256-10 training step at batch 128 (forward, backward and the SGD update), one thread.
# TRAIN_COST by training batch size (the nearest measured batch is used), EVAL_COST for
# rose.train.evaluate's forward passes (chunks of 4096). JOB_START: a training job's fixed cost
# (a job of next to no work: interpreter, Snakemake's preamble, imports, the first call of every
# kernel, outputs), LOAD_PER_VALUE the cost of loading and checking one float32 value of the
# prepared split, PREPARE_PER_VALUE of preparing one (rose.data.prepare_to_files of
# Fashion-MNIST: IDX files read and MD5-checked, split, written with their sha256), all in
# reference FLOPs. Measured by benchmarks/bench_cost.py ("measured for rose.cost": CPU seconds
# of epoch-like slices run back to back, interleaved with the reference), 1 thread, on this
# repository's 2-core machine (AMD EPYC, torch 2.13; medians of 2-7 runs on 2026-12-07, runs
# varying by up to 25% while other jobs shared the cores); re-measure after a change to
# rose.train. The CNN's evaluation at chunks of 4096 (205 MB activations) is its costliest
# phase per FLOP: at chunks of 256 it measured 3-3.7x faster (benchmarks/bench_train_loop.py).
TRAIN_COST = {"mlp": {64: 1.33, 128: 1.0}, "cnn": {128: 1.5}}
EVAL_COST = {"mlp": 0.7, "cnn": 4.7}
JOB_START = 1.8e11          # 5.4-6.5 s of CPU here while the cores were shared
LOAD_PER_VALUE = 310.0      # the paper's 70,000 x 784 values: 1.7e10
PREPARE_PER_VALUE = 1000.0  # Fashion-MNIST: 2.4-3 s of CPU here


class CostError(ValueError):
    """A rule that cannot be estimated (no measured timing, or no work model)."""


def _mlp_weights(sizes: list[int]) -> int:
    return sum(a * b for a, b in itertools.pairwise(sizes))


def _dataset(cfg: dict, dataset: str) -> Dataset:
    """The dataset's size; the synthetic set's from the config."""
    if dataset == "synthetic":
        syn = cfg["data"]["synthetic"]
        return Dataset(syn["n_samples"], (syn["n_features"],))
    if dataset not in DATASETS:
        raise CostError(f"dataset {dataset!r} has no size in rose.cost.DATASETS; add it")
    return DATASETS[dataset]


def _n_classes(cfg: dict, dataset: str) -> int:
    return cfg["data"]["synthetic"]["n_classes"] if dataset == "synthetic" else 10


def split_sizes(cfg: dict, dataset: str) -> dict[str, float]:
    """Examples in each part of ``dataset`` under the config's ``data.split`` (rose.data.splits:
    fractions of all examples, or with ``test: official`` the official test set as test and
    ``val`` a fraction of the official training set)."""
    ds, split = _dataset(cfg, dataset), cfg["data"]["split"]
    if split["test"] == OFFICIAL:
        if ds.official_train is None:
            raise CostError(f"data.split.test: official, but {dataset!r} has no official test set")
        train = ds.official_train
        return {"train": train * (1 - split["val"]), "val": train * split["val"],
                "test": float(ds.examples - train)}
    return {"train": ds.examples * (1 - split["val"] - split["test"]),
            "val": ds.examples * split["val"], "test": ds.examples * split["test"]}


def _train_examples(cfg: dict, dataset: str) -> float:
    return split_sizes(cfg, dataset)["train"]


# -- FLOPs of the shared models (rose.models) --------------------------------------------------

@dataclass(frozen=True)
class ModelFlops:
    """FLOPs of one example as torch.utils.flop_counter counts them (2 M N K per matmul, the
    same for a convolution's multiply-adds; elementwise work not counted): its forward pass, and
    its training step (forward and backward; no gradient of the input itself)."""

    forward: int
    step: int


def model_flops(model: dict, shape: tuple[int, ...], n_classes: int) -> ModelFlops:
    """:class:`ModelFlops` of rose.models.build_model(model, shape, n_classes), counted once per
    (model config, input shape, classes)."""
    return _count_flops(json.dumps(model, sort_keys=True), tuple(shape), n_classes)


@functools.cache
def _count_flops(model_json: str, shape: tuple[int, ...], n_classes: int) -> ModelFlops:
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from rose.models import build_model

    net = build_model(json.loads(model_json), shape, n_classes)
    x, y = torch.zeros(1, *shape), torch.zeros(1, dtype=torch.long)
    with torch.no_grad(), FlopCounterMode(display=False) as forward:
        net(x)
    with FlopCounterMode(display=False) as step:
        F.cross_entropy(net(x), y).backward()
    return ModelFlops(forward.get_total_flops(), step.get_total_flops())


def train_cost(kind: str, batch: int) -> float:
    """Seconds per training FLOP of a ``kind`` model relative to the reference, at the measured
    batch size nearest ``batch`` (in ratio)."""
    if kind not in TRAIN_COST or kind not in EVAL_COST:
        raise CostError(f"model kind {kind!r} has no measured cost in rose.cost.TRAIN_COST and "
                        f"EVAL_COST; measure it (benchmarks/bench_cost.py)")
    costs = TRAIN_COST[kind]
    return costs[min(costs, key=lambda b: abs(math.log(b / batch)))]


# -- the work of each rule: (number of jobs, work) under a validated config -------------------

def _prepare_data(cfg):
    """Per dataset, a job's start and its values prepared (read, checked, split, written)."""
    values = [_dataset(cfg, d).examples * math.prod(_dataset(cfg, d).shape)
              for d in cfg["data"]["datasets"]]
    return len(values), sum(JOB_START + PREPARE_PER_VALUE * v for v in values)


def _baseline_jobs(cfg: dict) -> list[tuple[str, str, dict]]:
    """(dataset, method, model config) of each of the baseline's jobs but the seeds."""
    b = cfg["baseline"]
    return [(d, m, spec.get("model", b["model"])) for d in b["datasets"]
            for m, spec in b["methods"].items()]


def baseline_job_work(cfg: dict, dataset: str, model: dict) -> float:
    """One baseline job in reference FLOPs: its start and data load, then every epoch's
    training steps and its forward passes over train, val and test (rose.train), each kind's
    FLOPs weighted by their measured cost."""
    b, ds = cfg["baseline"], _dataset(cfg, dataset)
    sizes = split_sizes(cfg, dataset)
    flops = model_flops(model, ds.shape, _n_classes(cfg, dataset))
    kind = model["name"]
    epoch = (sizes["train"] * flops.step * train_cost(kind, b["batch_size"])
             + sum(sizes.values()) * flops.forward * EVAL_COST[kind])
    return JOB_START + LOAD_PER_VALUE * ds.examples * math.prod(ds.shape) + b["epochs"] * epoch


def _baseline_parts(cfg: dict) -> dict[str, tuple[int, float]]:
    """Per kind of model (the part), its jobs and their work."""
    seeds = len(cfg["seeds"])
    parts: dict[str, tuple[int, float]] = {}
    for d, _, model in _baseline_jobs(cfg):
        jobs, w = parts.get(model["name"], (0, 0.0))
        parts[model["name"]] = (jobs + seeds, w + seeds * baseline_job_work(cfg, d, model))
    return parts


def _baseline_job_part(cfg: dict, stem: str) -> str | None:
    """The part of the job whose benchmark file is ``{dataset}-{method}-{seed}.tsv``; None
    for a file of no job of ``cfg``."""
    for d, m, model in _baseline_jobs(cfg):
        prefix = f"{d}-{m}-"
        if stem.startswith(prefix) and stem[len(prefix):].isdigit():
            return model["name"]
    return None


def _train_baseline(cfg):
    parts = _baseline_parts(cfg).values()
    return sum(j for j, _ in parts), sum(w for _, w in parts)


def _explore_setting(cfg):
    """Per setting (and the ablation) and arm: rows x epochs x (training examples x gradient
    evaluations per step x a step's FLOPs x its kind's cost + evaluated examples x a forward's
    FLOPs x its evaluation cost). Rows: the grid points x the tuning seeds (``tune_seeds``) and,
    when those are fewer than the setting's seeds, the selected point x every seed
    (rose.explore.tuned); evaluated: the training sample (``train_eval``), validation and test,
    once per epoch."""
    from rose.explore.experiments import ABLATION, arms_for, setting_seeds
    from rose.explore.trainer import step_cost
    from rose.explore.tuned import grid_points

    block = cfg["explore"]
    all_seeds = block.get("seeds", cfg["seeds"])
    settings = [*block["settings"], *([ABLATION] if "ablation" in block else [])]
    total = 0.0
    for st in settings:
        spec = block["settings"][block["ablation"]["setting"] if st == ABLATION else st]
        seeds = len(setting_seeds(block, st, all_seeds))
        ds, sizes = _dataset(cfg, spec["dataset"]), split_sizes(cfg, spec["dataset"])
        kind = spec["model"]["name"]
        flops = model_flops(spec["model"], ds.shape, _n_classes(cfg, spec["dataset"]))
        step = flops.step * train_cost(kind, spec.get("batch_size", block["batch_size"]))
        evaluated = (min(block.get("train_eval", sizes["train"]), sizes["train"])
                     + sizes["val"] + sizes["test"])
        for arm in arms_for(block, st):
            cost = step_cost(arm) if arm.budget == "steps" else 1
            per_row = block["epochs"] * (sizes["train"] * cost * step
                                         + evaluated * flops.forward * EVAL_COST[kind])
            tune = min(block.get("tune_seeds", seeds), seeds) if arm.grid else seeds
            rows = len(grid_points(arm)) * tune + (seeds if tune < seeds else 0)
            total += rows * per_row
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
DIRECTIONS = ("explore", "continual", "active", "superposition")
DIRECTION = {"prepare_data": "data", "tex_provenance": "paper", "tex_summary": "paper",
             "paper": "paper"}
for _r in WORK:
    DIRECTION.setdefault(_r, next((d for d in ("baseline", *DIRECTIONS) if d in _r), "paper"))


# rules whose jobs are measured and scaled in parts: rule -> (parts under a config, the part of
# the job whose benchmark file has a given stem, or None for no job of the config)
PARTS: dict[str, tuple[Callable[[dict], dict[str, tuple[int, float]]],
                       Callable[[dict, str], str | None]]] = {
    "train_baseline": (_baseline_parts, _baseline_job_part),
}

# configs whose direction blocks are placeholders, said when they are estimated
PROVISIONAL = {
    "paper": "paper.yaml's continual, active and superposition blocks are still quick's "
             "designs; each direction's issue redesigns its block at paper scale, so their "
             "estimates will change (explore is at paper scale: issue 28)",
}


def load_config(path: str | Path, schema: str | Path = "workflow/schemas/config.schema.yaml"
                ) -> dict:
    """The config with the schema's defaults filled in, as the workflow sees it."""
    import yaml
    from snakemake.utils import validate

    cfg = yaml.safe_load(Path(path).read_text())
    validate(cfg, str(schema))
    return cfg


def work(rule: str, cfg: dict) -> tuple[int, float]:
    """(jobs, work) of ``rule`` under ``cfg``, its parts summed."""
    if rule not in WORK:
        raise CostError(f"rule {rule!r} has no work model in rose.cost.WORK, so its cost "
                        f"cannot be scaled; add one")
    return WORK[rule](cfg)


def work_parts(rule: str, cfg: dict) -> dict[str, tuple[int, float]]:
    """Part -> (jobs, work) of ``rule`` under ``cfg``; one part "" for an unparted rule."""
    if rule in PARTS:
        return PARTS[rule][0](cfg)
    return {"": work(rule, cfg)}


def label(rule: str, part: str = "") -> str:
    """``rule`` or ``rule[part]``: how timings files and reports name a rule's part."""
    return f"{rule}[{part}]" if part else rule


@dataclass(frozen=True)
class Measured:
    """A rule's (part's) core-seconds in a run of ``config`` (name ``name``) and its work there;
    ``source``: the timings file it was read from."""

    rule: str
    jobs: int
    core_seconds: float
    work: float
    part: str = ""
    config: str = ""
    name: str = ""
    source: str = field(default="", compare=False)

    @property
    def key(self) -> str:
        return label(self.rule, self.part)


def _job_seconds(path: Path) -> float:
    """A Snakemake benchmark file's wall seconds (its last row: the last attempt)."""
    with open(path) as fh:
        return float(list(csv.DictReader(fh, delimiter="\t"))[-1]["s"])


def _job_part(rule: str, cfg: dict, stem: str) -> str | None:
    return PARTS[rule][1](cfg, stem) if rule in PARTS else ""


def measure(root: Path, cfg: dict, rules: list[str] | None = None,
            config: str = "") -> list[Measured]:
    """Per rule (part), the core-seconds its jobs took in the last run of ``cfg`` (the config
    that ran, file ``config``; Snakemake benchmark files, wall seconds x the rule's 1 thread)
    and its work under ``cfg``. A part with another number of files than jobs (another
    config's run, renamed jobs, a run still going) is left out rather than mis-scaled."""
    out = []
    bench = root / benchmarks_dir(cfg["name"])
    for d in sorted(bench.iterdir()) if bench.is_dir() else []:
        if rules is not None and d.name not in rules:
            continue
        parts = work_parts(d.name, cfg)
        seconds: dict[str, list[float]] = {}
        for f in sorted(d.glob("*.tsv")):
            part = _job_part(d.name, cfg, f.stem)
            if part is not None:
                seconds.setdefault(part, []).append(_job_seconds(f))
        for part, (jobs, w) in parts.items():
            if len(seconds.get(part, [])) == jobs:
                out.append(Measured(d.name, jobs, sum(seconds[part]), w, part, config,
                                    cfg["name"]))
    return out


COLUMNS = ["rule", "part", "jobs", "core_seconds", "work", "config", "name"]


def write_timings(measured: list[Measured], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for m in measured:
            w.writerow([m.rule, m.part, m.jobs, f"{m.core_seconds:.2f}", repr(m.work), m.config,
                        m.name])


def read_timings(path: Path) -> dict[str, Measured]:
    """Label -> timing of a timings file (a file without ``part`` or ``name`` columns: no
    parts, and the config's name from its file name)."""
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    out = {}
    for r in rows:
        m = Measured(r["rule"], int(r["jobs"]), float(r["core_seconds"]), float(r["work"]),
                     r.get("part") or "", r["config"], r.get("name") or Path(r["config"]).stem,
                     str(path))
        out[m.key] = m
    return out


def combine_timings(paths: list[Path], name: str | None = None) -> dict[str, Measured]:
    """Each label's timing from ``paths``: one measured on config ``name`` itself first, then
    the files in the order given."""
    files = [read_timings(p) for p in paths]
    out: dict[str, Measured] = {}
    for t in files:
        out.update({k: m for k, m in t.items() if m.name == name and k not in out})
    for t in files:
        out.update({k: m for k, m in t.items() if k not in out})
    return out


@dataclass(frozen=True)
class Estimate:
    rule: str
    direction: str
    jobs: int
    core_hours: float
    part: str = ""
    basis: Measured | None = None

    @property
    def job_hours(self) -> float:
        return self.core_hours / max(self.jobs, 1)

    @property
    def key(self) -> str:
        return label(self.rule, self.part)


def _timing_for(timings: dict[str, Measured], rule: str, part: str) -> Measured | None:
    """The part's own timing, else the whole rule's, else another part's of the rule (its work
    is in the same reference FLOPs, the kinds' costs weighted in)."""
    if label(rule, part) in timings:
        return timings[label(rule, part)]
    if rule in timings:
        return timings[rule]
    return next((m for m in timings.values() if m.rule == rule), None)


def estimate(cfg: dict, timings: dict[str, Measured], rules: list[str]) -> list[Estimate]:
    """Each rule part's core-hours under ``cfg``; CostError naming every one without a timing."""
    out, missing = [], []
    for r in rules:
        for part, (jobs, w) in work_parts(r, cfg).items():
            m = _timing_for(timings, r, part)
            if m is None:
                missing.append(label(r, part))
                continue
            scale = w / m.work if m.work > 0 else 1.0
            out.append(Estimate(r, DIRECTION[r], jobs, m.core_seconds * scale / 3600, part, m))
    if missing:
        raise CostError(f"no measured timing for rule(s) {', '.join(missing)}: run them (the "
                        f"quick config, or this one), then `rose plan --record-timings`")
    return out


def wall_hours(estimates: list[Estimate], cores: int) -> float:
    """A lower bound: max(total / cores, the longest mean job of a rule)."""
    total = sum(e.core_hours for e in estimates)
    return max(total / cores, max((e.job_hours for e in estimates), default=0.0))


def _basis(e: Estimate) -> str:
    """Where an estimate was scaled from, in a few words."""
    m = e.basis
    if m is None:
        return ""
    return m.name + (f" {m.key}" if m.key != e.key else "")


def report(estimates: list[Estimate], cores: int) -> str:
    lines = [f"{'rule':<34}{'jobs':>6}{'core-h':>10}{'per job h':>11}  scaled from"]
    for e in estimates:
        lines.append(f"{e.key:<34}{e.jobs:>6}{e.core_hours:>10.3f}{e.job_hours:>11.3f}  "
                     f"{_basis(e)}")
    by_dir: dict[str, float] = {}
    for e in estimates:
        by_dir[e.direction] = by_dir.get(e.direction, 0.0) + e.core_hours
    lines.append("")
    for d, h in by_dir.items():
        lines.append(f"{'direction ' + d:<34}{'':>6}{h:>10.3f}")
    total = sum(e.core_hours for e in estimates)
    lines.append(f"{'total':<34}{sum(e.jobs for e in estimates):>6}{total:>10.3f}")
    lines.append(f"wall time on {cores} cores: at least {wall_hours(estimates, cores):.2f} h "
                 f"(max(total / cores, longest mean job); dependencies not counted)")
    return "\n".join(lines)


def provenance(estimates: list[Estimate]) -> list[str]:
    """Which measurement each rule was scaled from: the timings files and their configs, and
    every part scaled from another kind's timing."""
    by_source: dict[tuple[str, str, str], list[str]] = {}
    for e in estimates:
        if e.basis is not None:
            key = (e.basis.name, e.basis.source, e.basis.config)
            by_source.setdefault(key, []).append(e.key)
    lines = [f"scaled from {name} ({source or 'measured'}, {config or 'config ' + name}): "
             f"{', '.join(keys)}" for (name, source, config), keys in by_source.items()]
    for e in estimates:
        if e.basis is not None and e.basis.key != e.key:
            lines.append(f"{e.key}: no timing of its own; scaled from {e.basis.key} of "
                         f"{e.basis.name}, its FLOPs weighted by the kinds' measured costs "
                         f"(rose.cost.TRAIN_COST, EVAL_COST: benchmarks/bench_cost.py)")
    return lines


def design_notes(cfg: dict, root: Path = Path(".")) -> list[str]:
    """What the estimate of ``cfg``'s directions stands for: configs whose direction blocks are
    placeholders (PROVISIONAL), and blocks identical to config/quick.yaml's."""
    notes = [PROVISIONAL[cfg["name"]]] if cfg["name"] in PROVISIONAL else []
    quick_file = root / "config/quick.yaml"
    if cfg["name"] != "quick" and quick_file.exists():
        quick = load_config(quick_file, root / "workflow/schemas/config.schema.yaml")
        same = [d for d in DIRECTIONS if cfg.get(d) == quick.get(d)]
        if same:
            notes.append(f"direction block(s) identical to config/quick.yaml's: "
                         f"{', '.join(same)} (quick's design at this config's seeds)")
    return notes


def config_core_hours(config: str | Path, rules: list[str], root: Path = Path(".")) -> float:
    """``config``'s core-hours over ``rules``, scaled from this checkout's last run of
    params.yaml's first config (its benchmark files under logs/<name>/benchmarks) where they
    cover a rule, else from the committed quick timings."""
    from rose.artifacts import dvc_configfile

    schema = root / "workflow/schemas/config.schema.yaml"
    timings = read_timings(root / TIMINGS)
    if (root / "params.yaml").exists():
        ran_file = dvc_configfile(root)
        ran = load_config(root / ran_file, schema)
        timings |= {m.key: m for m in measure(root, ran, rules, ran_file)}
    return sum(e.core_hours for e in estimate(load_config(config, schema), timings, rules))
