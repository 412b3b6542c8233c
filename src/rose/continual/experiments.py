"""The direction's runs as the workflow calls them: one stream per call, every arm and seed of the
config, written as CSV tables. The ``continual`` config block expands into arms:

  ball         one arm per distance at its fixed radius, K = k, theta_ref = previous model
  controllers  one arm per adaptive controller, on ``controllers.distance``
  frontier     K x r grid of the fixed-radius ball on ``frontier.distance`` (the plasticity vs
               forgetting frontier)
  baselines    named arms (fine-tuning, K unconstrained steps, replay, online EWC, LwF, L2-SP,
               the LDIFS penalty, replay + ball, the task-start anchor); K defaults to ``k``
Arms sharing a kind, distance, controller, anchor and K train together as one batched model.
"""

from __future__ import annotations

import itertools
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rose.continual import metrics
from rose.continual.learner import Arm, Record, Settings, run
from rose.continual.streams import make_stream
from rose.contrasts import check_contrasts
from rose.device import Device
from rose.engine import Job


def arms_from_config(block: dict) -> list[tuple[str, Arm]]:
    """(group, arm) for every arm the config asks for."""
    k = block["k"]
    out = []
    for dist, r in block["ball"].items():
        out.append(("distance", Arm(f"ball_{dist}", "ball", k, dist, r)))
    c = block["controllers"]
    for name in c["names"]:
        out.append(("controller", Arm(f"{c['distance']}_{name}", "ball", k, c["distance"],
                                      block["ball"][c["distance"]], name)))
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


def check_config(block: dict) -> None:
    """Cross-key checks the JSON schema cannot express; a ValueError names the key."""
    c = block["controllers"]
    if c["names"] and c["distance"] not in block["ball"]:
        raise ValueError(f"config key continual.controllers.distance: {c['distance']!r} has no "
                         "radius in continual.ball")
    for name, spec in block["baselines"].items():
        if spec["kind"] == "ball" and "radius" not in spec and \
                spec.get("distance", "euclidean") not in block["ball"]:
            raise ValueError(f"config key continual.baselines.{name}.radius: give a radius or "
                             "list the distance in continual.ball")
    for s, spec in block["streams"].items():
        if s == "split" and spec["tasks"] > 5:
            raise ValueError("config key continual.streams.split.tasks: at most 5 tasks of two "
                             "digit classes")
    from rose.continual.report import EXTRA, METRICS

    check_contrasts(block["primary"], "continual.primary",
                    {a.name for _, a in arms_from_config(block)}, [*METRICS, *EXTRA],
                    {"stream": block["streams"]})


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
                     "memory": arm.memory, "lam": arm.lam,
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


def streams_for(block: dict, stream_name: str, seeds: list[int]) -> list:
    """Every seed's stream of one kind (what the job trains on)."""
    from rose.data.bundled import load_digits, load_mnist5k

    spec = block["streams"][stream_name]
    if block["dataset"] == "digits":    # 8x8 already: no downsampling
        images, labels = load_digits()
        step = 1
    else:
        images, labels = load_mnist5k()
        step = block["downsample"]
    if step > 1 and stream_name != "rotated":   # rotate at full resolution, then downsample
        images = images[:, :, ::step, ::step]
    streams = [make_stream(stream_name, images, labels, s, spec["tasks"],
                           block["samples_per_task"], block["batch_size"],
                           spec.get("max_angle", 180.0)) for s in seeds]
    if stream_name == "rotated" and step > 1:
        streams = [_downsample_stream(st, step) for st in streams]
    return streams


def stream_run(block: dict, stream_name: str, seeds: list[int], out_dir: str | Path,
               threads: int = 1, device: Device = "cpu", checkpoint_seconds: float = 60.0
               ) -> None:
    """All arms on one stream. Writes runs.csv, matrix.csv, anytime.csv, trace.csv. Each group
    of arms trained together is one resumable unit of the job (rose.engine)."""
    torch.set_num_threads(threads)
    streams = streams_for(block, stream_name, seeds)
    c = block["controllers"]
    settings = Settings(block["model"]["hidden"], block["model"]["lr"], block["eval_every"],
                        block["test_per_task"], up=c["up"], down=c["down"], eta=c["eta"],
                        shrink_below=c["shrink_below"], grow_above=c["grow_above"],
                        r_range=c["r_range"])
    arms = arms_from_config(block)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    job = Job(out, {"continual": block, "stream": stream_name, "seeds": seeds},
              checkpoint_seconds, device)
    tables: list[list[dict]] = [[], [], [], []]
    by_kind: dict[tuple, list[tuple[str, Arm]]] = {}
    for group, arm in arms:
        # one batched model per (kind, distance, controller, anchor, K): arms with fewer steps
        # would only be masked out of the extra ones
        by_kind.setdefault((arm.kind, arm.distance, arm.controller, arm.anchor, arm.k),
                           []).append((group, arm))
    for key, members in by_kind.items():
        groups, arm_list = zip(*members, strict=True)

        def unit(groups=groups, arm_list=arm_list) -> list[list[dict]]:
            t0 = time.perf_counter()
            record = run(streams, list(arm_list), settings, seeds, block["noise_std"], device,
                         job)
            print(f"{stream_name}: {len(arm_list)} arms of kind {arm_list[0].kind} "
                  f"({arm_list[0].distance}, {arm_list[0].controller}, {arm_list[0].anchor}) "
                  f"x {len(seeds)} seeds in {time.perf_counter() - t0:.1f} s", flush=True)
            return list(_rows(record, list(arm_list), list(groups), seeds, streams[0], block))
        for tab, rows in zip(tables, job.unit("/".join(map(str, key)), unit), strict=True):
            tab.extend(rows)
    for name, rows in zip(("runs", "matrix", "anytime", "trace"), tables, strict=True):
        pd.DataFrame(rows).assign(stream=stream_name).to_csv(out / f"{name}.csv", index=False)
    job.finish()


def _downsample_stream(st, step: int):
    from dataclasses import replace

    side = math.isqrt(st.x.shape[-1])

    def ds(x: np.ndarray) -> np.ndarray:
        return x.reshape(*x.shape[:-1], side, side)[..., ::step, ::step].reshape(
            *x.shape[:-1], -1)
    return replace(st, x=ds(st.x), test_x=[ds(x) for x in st.test_x])
