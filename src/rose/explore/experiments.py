"""The direction's runs as the workflow calls them: one setting (dataset x model x label noise x
batch size) per call, every arm and seed of the config, then the measurements, written as CSV.

The ``explore`` config block:
  settings   name -> {dataset, model, label_noise, batch_size?}; datasets are the prepared
             splits of the data rule (data/processed/<dataset>.npz)
  arms       name -> {method, budget, hyperparameters}; ``contour`` arms take the warm-up's
             settings (rose.explore.contour.ContourSettings) in a ``contour`` block
  ablation   {setting, base, variants}: the base arm with each variant's overrides, on one
             setting (its own job)
  measure    how many HVPs, probes and samples the measurements use
Label noise is symmetric: with probability p a training or validation label is replaced by a
uniformly drawn *other* class, independently per seed; test labels stay clean.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rose.contrasts import check_contrasts
from rose.data.splits import load
from rose.device import Device, as_tensor, generator, resolve_device
from rose.engine import Job
from rose.explore.contour import ContourSettings
from rose.explore.trainer import Arm, Base, Data, Result, step_cost
from rose.explore.tuned import TUNABLE, at_point, grid_points, selected_point, tune_arm
from rose.measure.hessian import hutchinson_trace, spectral_density, top_eigenvalue
from rose.measure.landscape import (
    filter_normalized_direction,
    loss_curve,
    loss_surface,
    trajectory_pca,
)
from rose.measure.sharpness import adaptive_sharpness, sigma_prime
from rose.nn import StackedNet
from rose.sampling import stratified_partition, stratified_sample
from rose.tuning import check_grids, parse_extensions, tuning_table

ABLATION = "ablation"


def make_arm(name: str, spec: dict) -> Arm:
    spec = dict(spec)
    method = spec.pop("method")
    budget = spec.pop("budget", "steps")
    contour = spec.pop("contour", None)
    start = spec.pop("start_epochs", 0.0)
    grid = spec.pop("grid", {})
    return Arm(name, method, budget, spec,
               ContourSettings(**contour) if method == "contour" else None, float(start),
               dict(grid))


def arms_for(block: dict, setting: str) -> list[Arm]:
    if setting == ABLATION:
        ab = block["ablation"]
        base = block["arms"][ab["base"]]
        out = [make_arm(ab["base"], base)]
        for name, over in ab["variants"].items():
            spec = {**base, **{k: v for k, v in over.items() if k != "contour"},
                    "contour": {**base.get("contour", {}), **over.get("contour", {})}}
            out.append(make_arm(name, spec))
        # the variants run at the base arm's selected point (explore.ablation in the rule),
        # untuned themselves
        return [replace(a, grid={}) for a in out]
    spec = block["settings"][setting]
    names = spec.get("arms", list(block["arms"]))
    over = spec.get("grids", {})       # the setting's own grids replace the arms'
    return [make_arm(n, {**block["arms"][n], **({"grid": over[n]} if n in over else {})})
            for n in names]


# what a grid value must be, per hyperparameter (explore.arms.<arm>.grid.<hp>)
GRID_VALUES = {
    "lr": (lambda v: v > 0, "> 0"), "inner_lr": (lambda v: v > 0, "> 0"),
    "outer_lr": (lambda v: v > 0, "> 0"), "step_size": (lambda v: v > 0, "> 0"),
    "warmup_steps": (lambda v: v >= 1 and float(v).is_integer(), "an integer >= 1"),
    "steps": (lambda v: v >= 1 and float(v).is_integer(), "an integer >= 1"),
    "swa_start": (lambda v: 0 < v < 1, "in (0, 1)"),
    **{k: (lambda v: v >= 0, ">= 0") for k in ("rho", "alpha", "gamma0", "weight_decay",
                                                "start_epochs", "grad_rho", "grad_norm_rho")},
}


def check_tuning(block: dict) -> None:
    """Every grid names hyperparameters its method has, with valid values; on every setting the
    tuned arms' grids have equal sizes (equal tuning), and once any arm is tuned there, every
    arm of a primary contrast on it is too."""
    for name, spec in block["arms"].items():
        _check_grid(spec.get("grid", {}), spec["method"], f"explore.arms.{name}.grid")
    for st, sspec in block["settings"].items():
        unknown = sorted(set(sspec.get("grids", {})) - set(sspec.get("arms", block["arms"])))
        if unknown:
            raise ValueError(f"config key explore.settings.{st}.grids: {unknown} do not run on "
                             f"{st!r}")
        for name, grid in sspec.get("grids", {}).items():
            _check_grid(grid, block["arms"][name]["method"],
                        f"explore.settings.{st}.grids.{name}")
        grids = {a.name: a.grid for a in arms_for(block, st) if a.grid}
        check_grids(grids, {n: TUNABLE[block["arms"][n]["method"]] for n in grids},
                    f"explore.settings.{st} (with explore.arms)")
        # one extension rule per hyperparameter for every arm alike (rose.tuning)
        parse_extensions(block.get("extensions"), "explore.extensions", grids)
        if not grids:
            continue
        for i, c in enumerate(block["primary"]):
            if c["setting"] != st:
                continue
            for k in ("arm", "reference"):
                names = block.get("pools", {}).get(c[k], [c[k]])
                untuned = [n for n in names if n in block["arms"] and n not in grids]
                if untuned:
                    raise ValueError(f"config key explore.primary[{i}].{k}: {untuned} have no "
                                     f"grid on {st!r}, but the arms they are compared with are "
                                     "tuned (equal tuning)")


def _check_grid(grid: dict, method: str, key: str) -> None:
    allowed = TUNABLE[method]
    for hp, values in grid.items():
        if hp not in allowed:
            raise ValueError(f"config key {key}.{hp}: {method} has no tunable {hp!r}; "
                             f"tunable: {sorted(allowed)}")
        ok, what = GRID_VALUES[hp]
        bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int | float)
               or not ok(v)]
        if bad:
            raise ValueError(f"config key {key}.{hp}: every value must be {what}, got {bad}")


def check_pools(block: dict) -> None:
    for pool, members in block.get("pools", {}).items():
        if pool in block["arms"]:
            raise ValueError(f"config key explore.pools.{pool}: the name of an arm")
        missing = sorted(set(members) - set(block["arms"]))
        if missing:
            raise ValueError(f"config key explore.pools.{pool}: {missing} are not in "
                             "explore.arms")


def walk_cost(c: ContourSettings, n_walk: int, batch_size: int) -> float:
    """The contour walk's cost in minibatch gradient evaluations (a forward = 1/3): per step a
    predictor gradient, the flat direction's SAM gradient and the corrector's forward; each
    scored candidate 1 + perturb_samples forwards (rose.explore.contour)."""
    per_step = 1 + (c.direction == "flat") + (c.corrector / 3)
    n_cand = 1 + c.steps // c.keep_every + (c.steps % c.keep_every != 0)
    scoring = n_cand * (1 + c.perturb_samples) / 3 if c.select == "perturbation" else 0.0
    return (1 + c.steps * per_step + scoring) * n_walk / batch_size


def check_walk_budget(block: dict, setting: str, n_train: int) -> None:
    """A contour arm whose walk, with the SGD steps before it (``start_epochs``), costs at
    least its whole budget is refused, naming the key."""
    spec = block["settings"][block["ablation"]["setting"] if setting == ABLATION else setting]
    bs = spec.get("batch_size", block["batch_size"])
    per_epoch = n_train // bs
    budget = block["epochs"] * per_epoch
    for arm in arms_for(block, setting):
        if arm.contour is None:
            continue
        for p in grid_points(arm):
            steps = int(p.get("steps", arm.contour.steps))
            start = round(float(p.get("start_epochs", arm.start_epochs)) * per_epoch)
            c = replace(arm.contour, steps=steps)
            cost = walk_cost(c, min(c.probe, n_train // 3), bs)
            if cost + start >= budget:
                raise ValueError(
                    f"config key explore.arms.{arm.name}.contour.steps: a walk of {steps} steps "
                    f"costs {cost:.0f} minibatch gradient evaluations on {setting!r}"
                    + (f" after {start} SGD steps (start_epochs)" if start else "")
                    + f", at least the whole budget of {budget} (explore.epochs x steps per "
                    "epoch)")


def check_walk_budgets(block: dict, data_dir: str | Path) -> None:
    """check_walk_budget on every setting whose prepared split exists (its manifest gives the
    training-set size), so an over-budget walk is refused before any job; on a fresh clone the
    job refuses it when it starts."""
    for st in [*block["settings"], ABLATION]:
        spec = block["settings"][block["ablation"]["setting"] if st == ABLATION else st]
        manifest = Path(data_dir) / f"{spec['dataset']}.manifest.json"
        if manifest.exists():
            n = json.loads(manifest.read_text())["arrays"]["y_train"]["shape"][0]
            check_walk_budget(block, st, n)


def check_config(block: dict) -> None:
    """Cross-key checks the JSON schema cannot express; a ValueError names the key."""
    ab = block["ablation"]
    if ab["setting"] not in block["settings"]:
        raise ValueError(f"config key explore.ablation.setting: {ab['setting']!r} is not in "
                         "explore.settings")
    if ab["base"] not in block["arms"] or block["arms"][ab["base"]]["method"] != "contour":
        raise ValueError("config key explore.ablation.base: must name a contour arm of "
                         "explore.arms")
    for name, spec in block["arms"].items():
        if spec["method"] == "contour" and "contour" not in spec:
            raise ValueError(f"config key explore.arms.{name}.contour: a contour arm needs its "
                             "warm-up settings")
        if spec["method"] != "contour" and "contour" in spec:
            raise ValueError(f"config key explore.arms.{name}.contour: only for method contour")
        if spec["method"] in ("sam", "asam", "gsam") and "rho" not in spec:
            raise ValueError(f"config key explore.arms.{name}.rho: SAM needs rho")
        if spec["method"] == "warmup" and "warmup_steps" not in spec:
            raise ValueError(f"config key explore.arms.{name}.warmup_steps: the linear warm-up "
                             "needs its length")
    for name, spec in block["settings"].items():
        unknown = sorted(set(spec.get("arms", [])) - set(block["arms"]))
        if unknown:
            raise ValueError(f"config key explore.settings.{name}.arms: {unknown} are not in "
                             "explore.arms")
    surface = block.get("surface_arm", "contour")
    if surface not in block["arms"] or block["arms"][surface]["method"] != "contour":
        raise ValueError(f"config key explore.surface_arm: {surface!r} must name a contour arm")
    missing = sorted(set(block.get("trajectory_arms", [])) - set(block["arms"]))
    if missing:
        raise ValueError(f"config key explore.trajectory_arms: {missing} are not in "
                         "explore.arms")
    if "sgd" not in block["arms"]:
        raise ValueError("config key explore.arms: the reference arm 'sgd' is required")
    for name, spec in block["arms"].items():
        if spec["method"] == "gsam" and "alpha" not in spec:
            raise ValueError(f"config key explore.arms.{name}.alpha: GSAM needs alpha")
    if block.get("schedule") == "cosine":
        # the cosine spans the descent before and after the walk, whose cost is known once it
        # has run: SGD before the walk would follow a schedule that then jumps
        specs = [*((f"explore.arms.{n}", a) for n, a in block["arms"].items()),
                 *((f"explore.ablation.variants.{n}", a)
                   for n, a in block["ablation"]["variants"].items())]
        for key, arm in specs:
            if arm.get("start_epochs", 0) > 0 or any(
                    v > 0 for v in arm.get("grid", {}).get("start_epochs", [])):
                raise ValueError(f"config key {key}.start_epochs: SGD before the walk is not "
                                 "supported with explore.schedule: cosine")
    gap = block.get("batch_gap")
    for k in ("small", "large") if gap else ():
        if gap[k] not in block["settings"]:
            raise ValueError(f"config key explore.batch_gap.{k}: {gap[k]!r} is not in "
                             "explore.settings")
    check_tuning(block)
    check_pools(block)
    from rose.explore.report import EXTRA, METRICS

    pools = block.get("pools", {})
    runs_on = {st: {a.name for a in arms_for(block, st)} for st in [*block["settings"], ABLATION]}
    for names in runs_on.values():         # a pool runs where all of its members run
        names.update(p for p, members in pools.items() if set(members) <= names)
    check_contrasts(block["primary"], "explore.primary", set().union(*runs_on.values()),
                    [*METRICS, *EXTRA],
                    {"setting": list(runs_on)})
    for i, c in enumerate(block["primary"]):
        for k in ("arm", "reference"):
            if c[k] not in runs_on[c["setting"]]:
                raise ValueError(f"config key explore.primary[{i}].{k}: {c[k]!r} does not run "
                                 f"on setting {c['setting']!r}")
    check_equal_evaluations(block)


def check_equal_evaluations(block: dict) -> None:
    """Primary contrasts compare arms at equal gradient evaluations (PROTOCOL.md section 2): an
    arm of one (or a pool's member) whose step costs more than one gradient evaluation (SAM,
    GAM, Entropy-SGD) or that walks (contour) must declare ``budget: grad_evals``."""
    pools = block.get("pools", {})
    for i, c in enumerate(block["primary"]):
        arms = {a.name: a for a in arms_for(block, c["setting"])}
        for k in ("arm", "reference"):
            for name in pools.get(c[k], [c[k]]):
                a = arms.get(name)
                if a is not None and a.budget == "steps" and (
                        step_cost(a) > 1 or a.method == "contour"):
                    raise ValueError(
                        f"config key explore.arms.{name}.budget: {name} ({a.method}) is in "
                        f"explore.primary[{i}], compared at equal gradient evaluations, so its "
                        "budget must be grad_evals (steps gives it more gradient evaluations "
                        "than its reference)")


def symmetric_noise(y: np.ndarray, p: float, n_classes: int, rng: np.random.Generator
                    ) -> np.ndarray:
    """Each label replaced with probability p by a uniformly drawn other class."""
    flip = rng.random(len(y)) < p
    other = (y + rng.integers(1, n_classes, len(y))) % n_classes
    return np.where(flip, other, y)


def load_setting(block: dict, setting: str, seeds: list[int], data_dir: str | Path,
                 device: Device = "cpu") -> tuple[Data, dict]:
    """The setting's prepared split on ``device``, each seed's noisy labels, and the two
    class-stratified training samples: the measurement probe (``measure.probe``) and the
    contour walk's batch (the largest walk ``probe`` of the setting's arms; an arm with a
    smaller ``probe`` walks on a stratified sample of it), drawn apart."""
    spec = block["settings"][block["ablation"]["setting"] if setting == ABLATION else setting]
    split = load(Path(data_dir) / f"{spec['dataset']}.npz")
    C = split.n_classes
    noisy = {k: [] for k in ("train", "val")}
    for s in seeds:
        rng = np.random.default_rng([s, 1729])
        for k in noisy:
            noisy[k].append(symmetric_noise(split.y[k].numpy(), spec["label_noise"], C, rng))
    y_clean = split.y["train"].numpy()
    n = len(y_clean)
    sizes = sorted({min(a.contour.probe, n // 3) for a in arms_for(block, setting)
                    if a.contour})
    walk = max(sizes or [0])
    probe = min(block["measure"]["probe"], n - 2 * walk)
    parts = stratified_partition(y_clean, {"probe": probe, "walk": walk, "select": walk,
                                           "rest": -1}, [seeds[0], 31], name="explore.probe")

    def sub(part: str, k: int) -> np.ndarray:
        # an arm walking on fewer examples takes its own stratified sample of the walk (and
        # selection) set
        return parts[part] if k == walk else stratified_sample(
            y_clean, k, [seeds[0], 32 if part == "walk" else 33, k],
            name=f"explore.{part}_batch", within=parts[part])
    walks = {k: sub("walk", k) for k in sizes}
    n_eval = block.get("train_eval")
    train_eval = None if n_eval is None or n_eval >= n else as_tensor(stratified_sample(
        y_clean, n_eval, [seeds[0], 34], name="explore.train_eval"), resolve_device(device))
    selects = {k: sub("select", k) for k in sizes}
    dev = resolve_device(device)
    X = split.X["train"].to(dev)
    y_train = as_tensor(np.stack(noisy["train"]), dev)
    probe_idx = as_tensor(parts["probe"], dev)
    data = Data(X, y_train, split.y["train"].to(dev), split.X["val"].to(dev),
                as_tensor(np.stack(noisy["val"]), dev), split.X["test"].to(dev),
                split.y["test"].to(dev), X[probe_idx], y_train[:, probe_idx], probe_idx,
                {k: as_tensor(v, dev) for k, v in walks.items()}, C,
                {k: as_tensor(v, dev) for k, v in selects.items()}, train_eval)
    return data, {**spec, "input_shape": split.input_shape}


def measure(net: StackedNet, theta: torch.Tensor, data: Data, m: dict, seed: int
            ) -> dict[str, np.ndarray]:
    """lambda_max, Hutchinson trace, sigma', adaptive sharpness of every row, on the probe
    batch (labels as trained on)."""
    X, y = data.X_probe, data.y_probe
    ok = torch.isfinite(theta).all(-1)
    th = torch.where(ok[:, None], theta, torch.zeros_like(theta))
    hvp = net.hvp(th, X, y, shared=True)
    lam, _ = top_eigenvalue(hvp, tuple(th.shape), iters=m["power_iters"], seed=seed,
                            device=th.device)
    tr, tr_se = hutchinson_trace(hvp, tuple(th.shape), probes=m["hutchinson_probes"], seed=seed,
                                 device=th.device)
    sig = sigma_prime(net, th, X, y, samples=m["sigma_samples"], steps=m["sigma_steps"],
                      seed=seed)
    sharp = adaptive_sharpness(net, th, X, y, rho=m["sharpness_rho"], m=m["sharpness_m"],
                               steps=m["sharpness_steps"])
    out = {"lambda_max": lam, "trace": tr, "trace_se": tr_se, "sigma_prime": sig,
           "adaptive_sharpness": sharp}
    return {k: np.where(ok.cpu().numpy(), v.cpu().numpy(), np.nan) for k, v in out.items()}


def _run_rows(setting: str, arm: Arm, res: Result, theta0: torch.Tensor, seeds: list[int],
              meas: dict, walk_meas: dict | None) -> list[dict]:
    hist = pd.DataFrame(res.history)
    rows = []
    for s, seed in enumerate(seeds):
        h = hist[hist.seed_row == s]
        final = h.iloc[-1]
        trained = h[h.phase != "init"]
        best = trained.loc[trained.val_acc.idxmax()] if len(trained) else final
        div = bool(res.diverged[s])
        row = {"setting": setting, "arm": arm.name, "method": arm.method, "budget": arm.budget,
               "seed": seed, "status": "diverged" if div else "ok",
               "grad_evals": res.grad_evals, "steps": res.steps,
               "epochs_equiv": float(final.epochs),
               "distance": float((res.theta[s] - theta0[s]).norm())
               if not div else np.nan,
               "path_length": float(res.path_length[s])}
        vals = {"final_test_acc": final.test_acc, "final_test_loss": final.test_loss,
                "final_train_acc": final.train_acc, "final_train_clean_acc":
                final.train_clean_acc, "final_val_acc": final.val_acc,
                "gen_gap": final.train_clean_acc - final.test_acc,
                "early_test_acc": best.test_acc, "early_val_acc": best.val_acc,
                "early_epoch": best.epochs,
                **{k: v[s] for k, v in meas.items()}}
        if walk_meas is not None:
            w = res.walk
            vals.update({f"walk_start_{k}": v[s] for k, v in walk_meas["start"].items()})
            vals.update({f"walk_end_{k}": v[s] for k, v in walk_meas["end"].items()})
            lvl = np.abs(np.asarray(w.loss)[:, s] - np.asarray(w.level)[:, s])
            vals.update({"walk_chosen_step": float(w.chosen_step[s]),
                         "walk_distance": float(np.asarray(w.distance)[-1, s]),
                         "walk_chosen_distance": float((res.theta_walk_end[s]
                                                        - res.theta_walk_start[s]).norm()),
                         "walk_level_error": float(lvl.max()),
                         "walk_mean_curvature": float(np.asarray(w.curvature)[:, s].mean()),
                         "walk_grad_evals": w.grad_evals, "walk_forwards": w.forwards})
        row.update({k: (np.nan if div else float(v)) for k, v in vals.items()})
        rows.append(row)
    return rows


def pool_rows(runs: list[dict], pools: dict[str, list[str]]) -> list[dict]:
    """For each pool whose members all ran: the runs of the member with the best mean
    early-stopped validation accuracy over seeds (selection on validation only), renamed to the
    pool, with the member in ``pool_member``. A member with a diverged seed ranks last."""
    out = []
    frame = pd.DataFrame(runs)
    for pool, members in pools.items():
        if frame.empty or not set(members) <= set(frame.arm):
            continue
        score = {a: frame[frame.arm == a].early_val_acc.mean(skipna=False) for a in members}
        best = max(members, key=lambda a: (np.isfinite(score[a]), np.nan_to_num(score[a],
                                                                                nan=-1.0)))
        out.extend({**r, "arm": pool, "pool_member": best} for r in runs if r["arm"] == best)
    return out


def setting_seeds(block: dict, setting: str, seeds: list[int]) -> list[int]:
    """The seeds ``setting`` runs: its own ``seeds`` where the config gives them (a subset of
    the direction's, so every setting's seeds share their initial weights), else ``seeds``."""
    own = block["settings"].get(setting, {}).get("seeds") if setting != ABLATION else None
    if own is None:
        return list(seeds)
    extra = sorted(set(own) - set(seeds))
    if extra:
        raise ValueError(f"config key explore.settings.{setting}.seeds: {extra} are not among "
                         f"the direction's seeds {list(seeds)}")
    return list(own)


def setting_run(block: dict, setting: str, seeds: list[int], data_dir: str | Path,
                out_dir: str | Path, threads: int = 1, device: Device = "cpu",
                checkpoint_seconds: float = 60.0, tuned: str | Path | None = None) -> None:
    """Every arm of one setting (or the ablation) for every seed, each tuned on its grid
    (rose.explore.tuned). Writes runs.csv, history.csv, walk.csv, curves.csv, surface.csv,
    trajectory.csv, spectrum.csv, tuning.csv and sweep.csv to ``out_dir``. The ablation's
    variants run at the point selected for the base arm in ``tuned`` (the ablation setting's
    tuning.csv). Each arm (training, measurements, rows) is one resumable unit of the job
    (rose.engine), each of its stacked grid runs one inside it, resumable step by step.
    A pool (``explore.pools``: name -> arms) adds, per seed, the runs of its member with the
    best mean validation score: "the best of SGD and warm-up", chosen on validation."""
    torch.set_num_threads(threads)
    # an exploratory setting may run fewer seeds than the direction (settings.<s>.seeds)
    seeds = setting_seeds(block, setting, seeds)
    dev = resolve_device(device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arms = arms_for(block, setting)
    point = None
    if setting == ABLATION:
        if tuned is None:
            raise ValueError("the ablation runs at the base arm's selected point: pass the "
                             "ablation setting's tuning.csv")
        point = selected_point(pd.read_csv(tuned), block["ablation"]["base"])
        arms = [at_point(a, point) for a in arms]
    # the ablation's point is part of what its checkpoint belongs to
    job = Job(out, {"explore": block, "setting": setting, "seeds": seeds, "point": point},
              checkpoint_seconds, device)
    data, spec = load_setting(block, setting, seeds, data_dir, dev)
    check_walk_budget(block, setting, len(data.X_train))
    m = block["measure"]
    net = StackedNet(spec["model"], spec["input_shape"], data.n_classes)
    theta0 = net.init(seeds, dev)
    base = Base(block["epochs"], spec.get("batch_size", block["batch_size"]), block["lr"],
                block["momentum"], block["weight_decay"],
                schedule=block.get("schedule", "constant"))
    tables = {"runs": [], "history": [], "walk": [], "curves": [], "surface": [],
              "trajectory": [], "spectrum": [], "tuning": [], "sweep": []}
    start_meas: dict[str, dict] = {}     # str(start_epochs) -> measurements
    for arm in arms:
        rows = job.unit(arm.name, lambda arm=arm: _arm_unit(
            net, theta0, data, arm, base, m, seeds, setting, block, start_meas, job))
        # contour arms that start walking at the same time share the start's measurements
        start_meas.update(rows.pop("start_meas"))
        for k, v in rows.items():
            tables[k].extend(v)
        done = [r["final_test_acc"] for r in rows["runs"]]
        print(f"{setting}: {arm.name} ({arm.method}, {arm.budget}) x {len(seeds)} seeds; "
              f"test acc {np.nanmean(done) if np.isfinite(done).any() else float('nan'):.3f}",
              flush=True)
    tables["runs"].extend(pool_rows(tables["runs"], block.get("pools", {})))
    for name, rows in tables.items():
        pd.DataFrame(rows).to_csv(out / f"{name}.csv", index=False)
    job.finish()


def _arm_unit(net: StackedNet, theta0: torch.Tensor, data: Data, arm: Arm, base: Base,
              m: dict, seeds: list[int], setting: str, block: dict,
              start_meas: dict[str, dict], job: Job) -> dict:
    """Tune one arm on its grid for every seed, measure the selected point, and return its rows
    of every table (and, for the first contour arm to walk after ``start_epochs``, the
    measurements at the walk's start, which later arms with the same start reuse)."""
    dev = theta0.device
    alphas = np.linspace(-1, 1, m["curve_points"])
    grid = np.linspace(-1, 1, m["surface_points"])
    res, choice, sweep = tune_arm(net, theta0, data, arm, base, seeds, job,
                                  extensions=parse_extensions(block.get("extensions"),
                                                              "explore.extensions"),
                                  tune_seeds=block.get("tune_seeds"))
    meas = measure(net, res.theta, data, m, seeds[0])
    walk_meas, new_start = None, {}
    if res.walk is not None:
        # arms that walk from theta0 share its measurements; an arm that descends first walks
        # from its own point (its lr, weight decay, budget may differ)
        key = "theta0" if arm.start_epochs == 0 else arm.name
        if key not in start_meas:
            new_start[key] = measure(net, res.theta_walk_start, data, m, seeds[0])
        start = {**start_meas, **new_start}[key]
        # the ablation job reports accuracies and final sharpness only
        walk_meas = {"start": start,
                     "end": measure(net, res.theta_walk_end, data, m, seeds[0])
                     if setting != ABLATION else
                     {k: np.full(len(seeds), np.nan) for k in start}}
    point = json.dumps(choice.selected_point, sort_keys=True)
    out = {"runs": [{**r, "point": point} for r in
                    _run_rows(setting, arm, res, theta0, seeds, meas, walk_meas)],
           "tuning": [{"setting": setting, **r}
                      for r in tuning_table([choice]).to_dict("records")],
           "sweep": [{"setting": setting, **r} for r in sweep],
           "history": [{"setting": setting, "arm": arm.name, "seed": seeds[r.pop("seed_row")],
                        **r} for r in (dict(h) for h in res.history)],
           "walk": [], "curves": [], "surface": [], "trajectory": [], "spectrum": [],
           "start_meas": new_start}
    ok = torch.isfinite(res.theta).all(-1, keepdim=True)
    th = torch.where(ok, res.theta, theta0)
    d = filter_normalized_direction(net, th, generator(seeds[0] + 1, dev))
    loss, acc = loss_curve(net, th, d, data.X_probe, data.y_probe, alphas)
    out["curves"] = [{"setting": setting, "arm": arm.name, "seed": seed, "alpha": float(a),
                      "loss": float(loss[i, s]), "acc": float(acc[i, s])}
                     for s, seed in enumerate(seeds) for i, a in enumerate(alphas)]
    if res.walk is not None:
        w = res.walk
        out["walk"] = [{"setting": setting, "arm": arm.name, "seed": seed, "k": k,
                        "loss": float(w.loss[k][s]), "level": float(w.level[k][s]),
                        "distance": float(w.distance[k][s]),
                        "curvature": float(w.curvature[k - 1][s]) if k else np.nan}
                       for s, seed in enumerate(seeds) for k in range(len(w.loss))]
        if setting != ABLATION and arm.name == block["surface_arm"]:
            gen = generator(seeds[0] + 2, dev)
            for where, th_w in (("before", res.theta_walk_start),
                                ("after", res.theta_walk_end)):
                e1 = filter_normalized_direction(net, th_w[:1], gen)
                e2 = filter_normalized_direction(net, th_w[:1], gen)
                z = loss_surface(net, th_w[:1], e1, e2, data.X_probe, data.y_probe[:1], grid)
                out["surface"].extend({"setting": setting, "arm": arm.name, "where": where,
                                       "a": float(a), "b": float(b), "loss": float(z[i, j, 0])}
                                      for i, a in enumerate(grid) for j, b in enumerate(grid))
    if setting != ABLATION and arm.name in block["trajectory_arms"]:
        # Hessian spectral density of seed 0's final weights (stochastic Lanczos quadrature)
        hv1 = net.hvp(th[:1], data.X_probe, data.y_probe[:1], shared=True)
        nodes, weights = spectral_density(lambda v, hv1=hv1: hv1(v[None])[0], net.dim,
                                          steps=m["lanczos_steps"], seed=seeds[0], device=dev)
        out["spectrum"] = [{"setting": setting, "arm": arm.name, "seed": seeds[0],
                            "node": float(a), "weight": float(w)}
                           for a, w in zip(nodes, weights, strict=True)]
        pca = trajectory_pca(torch.stack(res.snapshots).cpu().numpy())
        h0 = pd.DataFrame(res.history)
        h0 = h0[h0.seed_row == 0].reset_index(drop=True)
        out["trajectory"] = [{"setting": setting, "arm": arm.name, "seed": seeds[0], "t": t,
                              "pc1": float(c[0]), "pc2": float(c[1]),
                              "explained1": float(pca["explained"][0]),
                              "explained2": float(pca["explained"][1]),
                              "train_loss": float(h0.train_loss[t]), "phase": h0.phase[t],
                              "tortuosity": pca["tortuosity"]}
                             for t, c in enumerate(pca["coords"])]
    return out
