"""The direction's runs as the workflow calls them: one stream per call, every arm and seed of the
config, tuned on a validation stream, then run on the test stream; written as CSV tables. The
``continual`` config block expands into arms:

  ball         one arm per distance at its nominal radius, K = k, theta_ref = previous model,
               the ball enforced after the K steps
  per_step     the same ball enforced after every one of the K steps (``ball_<distance>_step``)
  controllers  every adaptive controller on every listed distance (``<distance>_<controller>``)
  frontier     K x r grid of the fixed-radius ball on ``frontier.distance`` (the plasticity vs
               forgetting frontier; a grid itself, so not tuned)
  baselines    named arms (fine-tuning, K unconstrained steps, replay, online EWC, LwF, L2-SP,
               the LDIFS penalty, MER, replay + ball, the task-start anchor); K defaults to ``k``

Equal tuning (PROTOCOL.md section 2, rose.tuning): every arm but the frontier's has a grid of
the same size (``tuning.grids``, by arm name or by group), trained on the validation stream
(rose.continual.streams: held-out tasks and images, same protocol), and the point with the best
mean validation score is run on the test stream. Tunable: ``lr``; ``radius_scale`` (times the
arm's nominal radius, for the ball and the controllers' start radius); ``lam`` (penalty
weights); MER's ``beta`` and ``gamma``. ``ball_best`` is the ball arm (a distance, per-step or
controller arm) with the best validation score at its selected point: the proposal's method,
chosen without test data, that the primary contrasts compare with tuned fine-tuning.
Arms sharing a kind, distance, controller, anchor, enforcement and K train together as one
batched model (grid points and seeds are its instances).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rose import tuning
from rose.continual import metrics
from rose.continual.learner import Arm, Record, Settings, run
from rose.continual.streams import make_stream, overlaps
from rose.contrasts import check_contrasts
from rose.device import Device
from rose.engine import Job

TUNABLE = {"sgd": ("lr",), "replay": ("lr",),
           "ball": ("radius_scale", "lr", "shrink_below", "grow_above", "up", "down", "eta"),
           "ewc": ("lam", "lr"), "lwf": ("lam", "lr"), "l2sp": ("lam", "lr"),
           "ldifs_penalty": ("lam", "lr"), "mer": ("lr", "beta", "gamma")}
BALL_GROUPS = ("distance", "controller")
SELECTED = "ball_best"
UNTUNED = ("frontier",)
# the validation runs start from other initial weights than the test runs of the same seed
# (and draw other evaluation samples): no choice is fitted to a test initialisation
VALIDATION_SEED_OFFSET = 100_000


def arms_from_config(block: dict) -> list[tuple[str, Arm]]:
    """(group, arm) for every arm the config asks for."""
    k = block["k"]
    out = []
    for dist, r in block["ball"].items():
        out.append(("distance", Arm(f"ball_{dist}", "ball", k, dist, r)))
    for dist in block.get("per_step", []):
        out.append(("distance", Arm(f"ball_{dist}_step", "ball", k, dist, block["ball"][dist],
                                    enforce="step")))
    c = block["controllers"]
    for dist in c["distances"]:
        for name in c["names"]:
            out.append(("controller", Arm(f"{dist}_{name}", "ball", k, dist, block["ball"][dist],
                                          name)))
    f = block["frontier"]
    for kk, r in itertools.product(f["ks"], f["radii"]):
        out.append(("frontier", Arm(f"frontier_k{kk}_r{r:g}", "ball", kk, f["distance"], r)))
    for kk in f["ks"]:
        out.append(("frontier", Arm(f"frontier_k{kk}_rinf", "sgd", kk)))
    for name, spec in block["baselines"].items():
        spec = {"k": k, **spec}
        if "radius" not in spec and spec["kind"] == "ball":
            spec["radius"] = block["ball"].get(spec.get("distance", "euclidean"), math.inf)
        out.append(("baseline", Arm(name, **spec)))
    return out


def grid_of(block: dict, group: str, arm: Arm) -> dict | None:
    """The arm's declared grid (under its name, else under its group); None if untuned."""
    if group in UNTUNED:
        return None
    grids = block["tuning"]["grids"]
    return grids.get(arm.name, grids.get(group))


def at_point(arm: Arm, point: dict, name: str | None = None) -> Arm:
    """The arm with a grid point's hyperparameters."""
    changes = {k: v for k, v in point.items() if k != "radius_scale"}
    if "radius_scale" in point:
        changes["radius"] = arm.radius * point["radius_scale"]
    return replace(arm, name=name or arm.name, **changes)


def check_config(block: dict) -> None:
    """Cross-key checks the JSON schema cannot express; a ValueError names the key."""
    c = block["controllers"]
    for i, dist in enumerate(c["distances"]):
        if c["names"] and dist not in block["ball"]:
            raise ValueError(f"config key continual.controllers.distances[{i}]: {dist!r} has "
                             "no radius in continual.ball")
    for i, dist in enumerate(block.get("per_step", [])):
        if dist not in block["ball"]:
            raise ValueError(f"config key continual.per_step[{i}]: {dist!r} has no radius in "
                             "continual.ball")
    for name, spec in block["baselines"].items():
        if spec["kind"] == "ball" and "radius" not in spec and \
                spec.get("distance", "euclidean") not in block["ball"]:
            raise ValueError(f"config key continual.baselines.{name}.radius: give a radius or "
                             "list the distance in continual.ball")
        if spec["kind"] == "mer" and not spec.get("memory"):
            raise ValueError(f"config key continual.baselines.{name}.memory: MER replays; give "
                             "it a memory")
    for s, spec in block["streams"].items():
        if s == "split" and spec["tasks"] > 5:
            raise ValueError("config key continual.streams.split.tasks: at most 5 tasks of two "
                             "digit classes")
    v = block.get("validation", {})
    for s in block["streams"]:
        why = overlaps(s, v.get("angle_offset", 0.5), v.get("class_shift", 1))
        if why:
            raise ValueError(f"config key continual.validation.{why.split(':')[0]}: the "
                             f"validation stream would overlap the test stream ({why})")
    arms = arms_from_config(block)
    names = [a.name for _, a in arms]
    dup = sorted({n for n in names if names.count(n) > 1} | ({SELECTED} & set(names)))
    if dup:
        raise ValueError(f"config key continual.baselines.{dup[0]}: the arm name {dup[0]!r} is "
                         "taken")
    _check_tuning(block, arms)
    from rose.continual.report import EXTRA, METRICS

    check_contrasts(block["primary"], "continual.primary", {*names, SELECTED},
                    [*METRICS, *EXTRA], {"stream": block["streams"]})


def _check_tuning(block: dict, arms: list[tuple[str, Arm]]) -> None:
    """Grids name an arm or a ball group (``distance``, ``controller``), hold only the arm's
    tunable hyperparameters, have equal sizes (rose.tuning.check_grids), and every compared
    arm has one."""
    known = {arm.name: TUNABLE[arm.kind] for group, arm in arms if group not in UNTUNED}
    for g in BALL_GROUPS:
        if any(group == g for group, _ in arms):
            known[g] = TUNABLE["ball"]
    tuning.check_grids(block["tuning"]["grids"], known, "continual.tuning.grids")
    for group, arm in arms:
        if group not in UNTUNED and grid_of(block, group, arm) is None:
            raise ValueError(f"config key continual.tuning.grids: arm {arm.name!r} has no grid "
                             f"(give one under {arm.name!r} or its group {group!r}); every "
                             "compared arm is tuned (equal tuning)")


def _rows(record: Record, arms: list[Arm], groups: list[str], seeds: list[int], stream,
          block: dict) -> tuple[list[dict], list[dict], list[dict], list[dict]]:
    S = len(seeds)
    task_at_eval = stream.task_of_batch[record.eval_batch - 1]
    first_batch = np.searchsorted(stream.task_of_batch, np.arange(stream.n_tasks))
    into = (record.eval_batch - first_batch[task_at_eval]) * stream.y.shape[1]
    runs, matrix, anytime, trace = [], [], [], []
    for i in range(len(arms) * S):
        arm, s = arms[i // S], i % S
        a = record.matrix[i]
        stt = metrics.samples_to_threshold(record.anytime[i], task_at_eval, into,
                                           block["threshold"])
        key = {"arm": arm.name, "group": groups[i // S], "seed": seeds[s]}
        diverged = bool(record.diverged_at[i] >= 0)
        values = {"final_acc": metrics.final_accuracy(a),
                  "learning_acc": metrics.learning_accuracy(a),
                  "bwt": metrics.backward_transfer(a), "forgetting": metrics.forgetting(a),
                  "aaa": metrics.average_anytime_accuracy(record.anytime[i], task_at_eval),
                  "curve_auc": metrics.learning_curve_auc(record.anytime[i], task_at_eval),
                  "samples_to_threshold": float(np.nanmean(stt)) if np.isfinite(stt).any()
                  else float("nan"),
                  "threshold_reached": float(np.isfinite(stt).mean()),
                  "noisy_acc": float(record.noisy_acc[i].mean())}
        runs.append({**key, "status": "diverged" if diverged else "ok",
                     "diverged_at_batch": int(record.diverged_at[i]), "kind": arm.kind,
                     "k": arm.k, "distance": arm.distance if arm.kind == "ball" else "",
                     "radius": arm.radius,
                     "controller": arm.controller if arm.kind == "ball" else "",
                     "anchor": arm.anchor if arm.kind == "ball" else "",
                     "memory": arm.memory, "lam": arm.lam, "lr": arm.lr,
                     "enforce": arm.enforce if arm.kind == "ball" else "",
                     "beta": arm.beta if arm.kind == "mer" else float("nan"),
                     "gamma": arm.gamma if arm.kind in ("mer", "ewc") else float("nan"),
                     "uses_boundaries": arm.uses_boundaries,
                     **{k: (float("nan") if diverged else v) for k, v in values.items()},
                     "steps_per_sample": float(record.steps[i]) / stream.y.size,
                     "constraint_active": float((record.alpha[i] < 1).mean())
                     if arm.kind == "ball" else float("nan"),
                     "final_radius": float(record.radius[i, -1]) if arm.kind == "ball"
                     else float("nan")})
        matrix.extend({**key, "after_task": r, "task": c, "acc": float(a[r, c])}
                      for r in range(len(a)) for c in range(len(a)))
        anytime.extend({**key, "batch": int(bt), "samples": int(bt) * stream.y.shape[1],
                        "task": int(tk), "seen_acc": float(record.anytime[i, e, :tk + 1].mean())}
                       for e, (bt, tk) in enumerate(zip(record.eval_batch, task_at_eval,
                                                        strict=True)))
        if arm.kind == "ball" and groups[i // S] != "frontier":
            trace.extend({**key, "batch": t, "task": int(stream.task_of_batch[t]),
                          "radius": float(record.radius[i, t]),
                          "alpha": float(record.alpha[i, t]), "lam": float(record.lam[i, t]),
                          "distance": float(record.dist[i, t])}
                         for t in range(record.radius.shape[1]))
    return runs, matrix, anytime, trace


def stream_images(block: dict, processed_dir: str | Path | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels the streams are built from (``continual.dataset``, by the shared
    loader rose.data.images). For a prepared dataset (fashion_mnist, mnist) this is its
    prepared train + val images only: the streams carve their own training and per-task test
    images from them as for MNIST 5k, and the prepared (official) test images stay out of every
    stream for now (evaluating on them is the direction's own follow-up)."""
    from rose.data.images import load_images

    return load_images(block.get("dataset", "mnist5k"), processed_dir, "continual.dataset").pool


def streams_for(block: dict, stream_name: str, seeds: list[int], role: str = "test",
                processed_dir: str | Path | None = None) -> list:
    """Every seed's stream of one kind (what the job trains on): the test stream or the
    validation stream the arms are tuned on (rose.continual.streams). ``processed_dir``: where
    a prepared ``continual.dataset`` lies (unused for the bundled ones)."""
    spec = block["streams"][stream_name]
    v = block.get("validation", {})
    images, labels = stream_images(block, processed_dir)
    # digits are 8x8 already: no downsampling; 28x28 images (MNIST, Fashion-MNIST) by `downsample`
    step = 1 if block.get("dataset", "mnist5k") == "digits" else block["downsample"]
    if step > 1 and stream_name != "rotated":   # rotate at full resolution, then downsample
        images = images[:, :, ::step, ::step]
    streams = [make_stream(stream_name, images, labels, s, spec["tasks"],
                           spec.get("samples_per_task", block["samples_per_task"]),
                           block["batch_size"],
                           spec.get("max_angle", 180.0), role, v.get("angle_offset", 0.5),
                           v.get("class_shift", 1)) for s in seeds]
    if stream_name == "rotated" and step > 1:
        streams = [_downsample_stream(st, step) for st in streams]
    return streams


def settings_of(block: dict) -> Settings:
    c = block["controllers"]
    return Settings(block["model"]["hidden"], block["model"]["lr"], block["eval_every"],
                    block["test_per_task"], up=c["up"], down=c["down"], eta=c["eta"],
                    shrink_below=c["shrink_below"], grow_above=c["grow_above"],
                    r_range=c["r_range"], cka_probe=block["cka_probe"],
                    line_search_iters=block["line_search_iters"])


def _batched(members: list[tuple[str, Arm]]) -> dict[tuple, list[tuple[str, Arm]]]:
    """One batched model per (kind, distance, controller, anchor, enforcement, K): arms with
    fewer steps would only be masked out of the extra ones."""
    out: dict[tuple, list[tuple[str, Arm]]] = {}
    for group, arm in members:
        out.setdefault((arm.kind, arm.distance, arm.controller, arm.anchor, arm.enforce,
                        arm.k), []).append((group, arm))
    return out


def validation_scores(record: Record, metric: str, stream) -> np.ndarray:
    """[instances] the tuning score of each instance on the validation stream (NaN if it
    diverged): final accuracy or average anytime accuracy."""
    if metric == "final_acc":
        score = np.array([metrics.final_accuracy(m) for m in record.matrix])
    elif metric == "aaa":
        task_at_eval = stream.task_of_batch[record.eval_batch - 1]
        score = np.array([metrics.average_anytime_accuracy(a, task_at_eval)
                          for a in record.anytime])
    else:
        raise ValueError(f"config key continual.tuning.metric: {metric!r} is not final_acc or "
                         "aaa")
    return np.where(record.diverged_at >= 0, np.nan, score)


def tune_arms(block: dict, arms: list[tuple[str, Arm]], val_streams: list, seeds: list[int],
              settings: Settings, job: Job, device: Device, label: str
              ) -> list[tuning.TuningResult]:
    """Every tuned arm's grid on the validation stream (points x seeds stacked per batched
    model), each arm's point selected by its mean validation score (rose.tuning.select)."""
    tuned = [(g, a) for g, a in arms if g not in UNTUNED]
    points = {a.name: tuning.Grid(a.name, grid_of(block, g, a)).points for g, a in tuned}
    expanded = [(g, at_point(a, p, f"{a.name}#{i}")) for g, a in tuned
                for i, p in enumerate(points[a.name])]
    S = len(seeds)
    scores: dict[str, np.ndarray] = {}
    for key, members in _batched(expanded).items():
        arm_list = [a for _, a in members]

        def unit(arm_list=arm_list) -> list[list[float]]:
            t0 = time.perf_counter()
            record = run(val_streams, arm_list, settings,
                         [s + VALIDATION_SEED_OFFSET for s in seeds], 0.0, device, job,
                         anytime=block["tuning"]["metric"] == "aaa")
            print(f"{label} validation: {len(arm_list)} grid points of kind "
                  f"{arm_list[0].kind} ({arm_list[0].distance}, {arm_list[0].controller}, "
                  f"{arm_list[0].enforce}) x {S} seeds in {time.perf_counter() - t0:.1f} s",
                  flush=True)
            v = validation_scores(record, block["tuning"]["metric"], val_streams[0])
            return v.reshape(len(arm_list), S).tolist()
        got = np.asarray(job.unit("validation/" + "/".join(map(str, key)), unit), float)
        for arm, row in zip(arm_list, got, strict=True):
            scores[arm.name] = row
    return [tuning.select(a.name, points[a.name],
                          np.stack([scores[f"{a.name}#{i}"]
                                    for i in range(len(points[a.name]))]))
            for _, a in tuned]


def stream_run(block: dict, stream_name: str, seeds: list[int], out_dir: str | Path,
               threads: int = 1, device: Device = "cpu", checkpoint_seconds: float = 60.0,
               processed_dir: str | Path | None = None) -> None:
    """All arms on one stream: tuned on the validation stream, then run on the test stream at
    their selected points. Writes runs.csv, matrix.csv, anytime.csv, trace.csv and
    tuning.csv. Each batched model is one resumable unit of the job (rose.engine).
    ``processed_dir``: where a prepared ``continual.dataset`` lies."""
    from rose.data.images import resume_identity

    torch.set_num_threads(threads)
    check_config(block)
    settings = settings_of(block)
    arms = arms_from_config(block)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    job = Job(out, {"continual": block, "stream": stream_name, "seeds": seeds,
                    **resume_identity(block.get("dataset", "mnist5k"), processed_dir)},
              checkpoint_seconds, device)
    at = {"processed_dir": processed_dir} if processed_dir is not None else {}  # bundled: as before
    val_streams = streams_for(block, stream_name, seeds, "validation", **at)
    streams = streams_for(block, stream_name, seeds, **at)
    if val_streams[0].n_batches != streams[0].n_batches:
        raise ValueError(
            f"config key continual.streams.{stream_name}.samples_per_task: the validation "
            f"stream holds {val_streams[0].n_batches} batches and the test stream "
            f"{streams[0].n_batches}; the validation pool (training images only) is too small "
            "for this many samples per task: lower it so both streams have the same length")
    results = tune_arms(block, arms, val_streams, seeds, settings, job, device, stream_name)
    chosen = {r.arm: r for r in results}
    test_arms = [(g, at_point(a, chosen[a.name].selected_point) if a.name in chosen else a)
                 for g, a in arms]
    tables: list[list[dict]] = [[], [], [], []]
    for key, members in _batched(test_arms).items():
        groups, arm_list = zip(*members, strict=True)

        def unit(groups=groups, arm_list=arm_list) -> list[list[dict]]:
            t0 = time.perf_counter()
            record = run(streams, list(arm_list), settings, seeds, block["noise_std"], device,
                         job)
            print(f"{stream_name}: {len(arm_list)} arms of kind {arm_list[0].kind} "
                  f"({arm_list[0].distance}, {arm_list[0].controller}, {arm_list[0].enforce}) "
                  f"x {len(seeds)} seeds in {time.perf_counter() - t0:.1f} s", flush=True)
            return list(_rows(record, list(arm_list), list(groups), seeds, streams[0], block))
        for tab, rows in zip(tables, job.unit("test/" + "/".join(map(str, key)), unit),
                             strict=True):
            tab.extend(rows)
    best = best_ball(results, dict((a.name, g) for g, a in arms))
    table = tuning.tuning_table(results).assign(stream=stream_name)
    table["group"] = table.arm.map({a.name: g for g, a in arms})
    table["ball_best"] = table.arm == best
    runs = pd.DataFrame(tables[0])
    picked = runs[runs.arm == best].assign(arm=SELECTED, group="selected")
    runs = pd.concat([runs, picked], ignore_index=True)
    runs["selected_arm"] = np.where(runs.arm == SELECTED, best, "")
    runs["val_score"] = runs.arm.map({r.arm: r.selected_score for r in results})
    runs.loc[runs.arm == SELECTED, "val_score"] = chosen[best].selected_score
    runs.assign(stream=stream_name).to_csv(out / "runs.csv", index=False)
    for name, rows in zip(("matrix", "anytime", "trace"), tables[1:], strict=True):
        pd.DataFrame(rows).assign(stream=stream_name).to_csv(out / f"{name}.csv", index=False)
    table.to_csv(out / "tuning.csv", index=False)
    job.finish()


def best_ball(results: list[tuning.TuningResult], group_of: dict[str, str]) -> str:
    """The ball arm with the best validation score at its selected point (first on ties)."""
    balls = [r for r in results if group_of[r.arm] in BALL_GROUPS]
    if not balls:
        raise ValueError("no ball arm to select ball_best from")
    return max(balls, key=lambda r: (np.nan_to_num(r.selected_score, nan=-np.inf),
                                     -balls.index(r))).arm


def _downsample_stream(st, step: int):
    from dataclasses import replace

    side = math.isqrt(st.x.shape[-1])

    def ds(x: np.ndarray) -> np.ndarray:
        return x.reshape(*x.shape[:-1], side, side)[..., ::step, ::step].reshape(
            *x.shape[:-1], -1)
    return replace(st, x=ds(st.x), test_x=[ds(x) for x in st.test_x])
