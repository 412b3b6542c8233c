"""The pool-based active-learning loop, every (acquisition, seed) pair at once.

Per seed: one class-stratified random initial labelled set and one set of initial weights,
shared by all acquisitions (equal, paired start), then
``rounds`` rounds of: train (``scratch``: from the seed's initial weights again, as BaaL resets
its model every round; ``warm``: from last round's weights; a fresh Adam either way),
evaluate, acquire ``round_size`` labels. Every acquisition holds the same number of labels in a
round, so each round trains all instances as one batched model (:mod:`rose.active.learner`).
Evaluation after every round's training (including the last): test-environment accuracy,
worst-group / mean-group / bias-conflicting accuracy, training-domain validation accuracy, and
the group composition of the labelled set. The model-selection rule is ``loop.selection`` and is
written into every row. If the pool runs out, the round takes what is left and the loop ends
after evaluating it (``pool_exhausted`` is set on the last row). An instance whose training
diverged reports ``status = diverged`` and no accuracies (rose.divergence).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from rose.active.acquisitions import (
    NEEDS_DYNAMICS,
    NEEDS_HEAD,
    TRUE_SPLIT,
    AcquisitionContext,
    acquire,
    method_of,
)
from rose.active.alvin import minority_split
from rose.active.learner import (
    Model,
    TrainSpec,
    embed,
    group_metrics,
    initial_model,
    predict,
    stack,
    train_instances,
)
from rose.data.group_benchmarks import GroupData
from rose.device import Device, as_tensor, generator, resolve_device
from rose.engine import Job, NoJob, rng_states, set_rng_states
from rose.sampling import stratified_sample


def initial_labels(splits: list[dict[str, GroupData]], loop: dict, seeds: list[int]
                   ) -> list[np.ndarray]:
    """Per seed, the initial labelled pool positions: a class-stratified random sample shared
    by every acquisition of the seed."""
    return [stratified_sample(sp["pool"].y, min(loop["initial"], len(sp["pool"])),
                              [seed, 0], name="active.initial_labels")
            for sp, seed in zip(splits, seeds, strict=True)]


def active_learning(splits: list[dict[str, GroupData]], acquisitions: list[str],
                    seeds: list[int], loop: dict, model: dict, params: dict,
                    device: Device = "cpu", job: Job | None = None
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Returns (rounds: one row per acquisition, seed, round; composition: labelled counts per
    acquisition, seed, round, group). Resumable round by round inside ``job``."""
    job = job or NoJob()
    dev = resolve_device(device)
    pool0 = splits[0]["pool"]
    n_seeds, n_pool = len(splits), len(pool0)
    acq_of = np.repeat(np.asarray(acquisitions), n_seeds)
    seed_of = np.tile(np.arange(n_seeds), len(acquisitions))
    X, Y = stack(splits, "pool", dev)
    Xv, Yv = stack(splits, "val", dev)
    Xt, _ = stack(splits, "test", dev)
    spec = TrainSpec.from_config(model, pool0.n_classes, loop["steps"], loop["selection"],
                                 loop["eval_every"])
    start = initial_model(X.shape[-1], spec, [seeds[s] for s in seed_of], dev)
    gen = generator(seeds[0], dev)
    torch.manual_seed(seeds[0])   # MC-dropout masks
    rngs = [np.random.default_rng([seeds[s], a]) for a, s in
            zip(np.repeat(np.arange(len(acquisitions)), n_seeds), seed_of, strict=True)]
    initial = initial_labels(splits, loop, seeds)
    labelled = [initial[s].copy() for s in seed_of]
    need_dyn = any(method_of(a) in NEEDS_DYNAMICS for a in acquisitions)
    rows, comp, prev, exhausted, first = [], [], None, False, 0
    state = job.resume()
    if state is not None:
        labelled, rows, comp = state["labelled"], state["rows"], state["comp"]
        exhausted, first = state["exhausted"], state["round"]
        prev = None if state["prev"] is None else Model(start.net, state["prev"].to(dev))
        set_rng_states(state["rng"], gen, *rngs)

    def snapshot() -> dict:
        return {"labelled": labelled, "rows": rows, "comp": comp, "exhausted": exhausted,
                "round": rnd + 1, "prev": None if prev is None else prev.theta,
                "rng": rng_states(gen, *rngs)}

    for rnd in range(first, loop["rounds"] + 1):
        index = as_tensor(np.stack(labelled), dev)
        res = train_instances(X, Y, seed_of, index, spec, gen, val=(Xv, Yv),
                              record_dynamics=need_dyn,
                              init=prev if loop["retrain"] == "warm" and prev else start)
        prev = res.model
        test_pred = predict(res.model, Xt, seed_of).argmax(-1).cpu().numpy()
        val_pred = predict(res.model, Xv, seed_of).argmax(-1).cpu().numpy()
        remaining = n_pool - len(labelled[0])
        k = min(loop["round_size"], remaining)
        last = rnd == loop["rounds"] or k == 0
        exhausted = exhausted or k == 0
        new_rows = []
        for i in range(len(acq_of)):
            sp = splits[seed_of[i]]
            lab = sp["pool"].subset(labelled[i])
            diverged = res.diverged_at[i] >= 0
            m = group_metrics(test_pred[i], sp["test"], loop["min_group_size"])
            metrics = {**{f"test_{k_}": v for k_, v in m.items()},
                       "val_acc": float((val_pred[i] == sp["val"].y).mean())}
            new_rows.append({"acquisition": acq_of[i], "seed": seeds[seed_of[i]], "round": rnd,
                             "n_labels": len(labelled[i]),
                             "status": "diverged" if diverged else "ok",
                             "diverged_at_step": int(res.diverged_at[i]),
                             **{k_: (np.nan if diverged else v) for k_, v in metrics.items()},
                             "labelled_conflicting_frac": float((~lab.aligned).mean()),
                             "labelled_groups_seen": len(np.unique(lab.group)),
                             "selection": loop["selection"], "retrain": loop["retrain"],
                             "pool_exhausted": exhausted and last})
            counts = np.bincount(lab.group, minlength=lab.n_groups)
            comp.extend({"acquisition": acq_of[i], "seed": seeds[seed_of[i]], "round": rnd,
                         "n_labels": len(labelled[i]), "group": g, "label": g // lab.n_attrs,
                         "attr": g % lab.n_attrs,
                         "aligned": g % lab.n_attrs == (g // lab.n_attrs) % lab.n_attrs,
                         "count": int(c)} for g, c in enumerate(counts))
        rows.extend(new_rows)
        if last:
            break
        for i in range(len(acq_of)):
            sp = splits[seed_of[i]]
            single = res.model.instance(i)
            probs, emb = embed(single, X[seed_of[i]])
            candidates = np.setdiff1d(np.arange(n_pool), labelled[i])
            ctx = AcquisitionContext(
                probs=probs, emb=emb, labelled=labelled[i], candidates=candidates,
                y=sp["pool"].y, group=sp["pool"].group, n_groups=sp["pool"].n_groups,
                rng=rngs[i], params=params.get(acq_of[i], {}))
            quality = {}
            if acq_of[i] in TRUE_SPLIT:     # an upper bound: the true minority, from groups
                ctx.minority = ~sp["pool"].aligned[labelled[i]]
            if method_of(acq_of[i]) in NEEDS_DYNAMICS:
                ctx.minority = minority_split(res.dynamics[i].cpu().numpy(),
                                              loop["minority_threshold"])
                # how well the split finds the true minority (reported, never used)
                truth = ~sp["pool"].aligned[labelled[i]]
                hit = (truth & ctx.minority).sum()
                quality = {"minority_precision": hit / max(ctx.minority.sum(), 1),
                           "minority_recall": hit / max(truth.sum(), 1)}
            if acq_of[i] in NEEDS_HEAD:           # the last linear layer, [h, C] and [C]
                ctx.head = tuple(v[0].cpu().numpy()
                                 for v in single.net.views(single.theta)[-2:])
            if acq_of[i] == "bald":
                ctx.mc_probs = np.stack([
                    predict(single, X[seed_of[i]:seed_of[i] + 1], np.zeros(1, dtype=int),
                            dropout=spec.dropout)[0].cpu().numpy()
                    for _ in range(loop["mc_samples"])])
            new = acquire(acq_of[i], ctx, k)
            new_rows[i].update({"fallback": ctx.fallback,
                                "minority_found": (int(ctx.minority.sum())
                                                   if ctx.minority is not None else -1),
                                **quality})
            labelled[i] = np.concatenate([labelled[i], new])
        job.tick(snapshot)
    return pd.DataFrame(rows), pd.DataFrame(comp)
