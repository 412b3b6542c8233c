"""The pool-based active-learning loop, every (acquisition, seed) pair at once.

Per seed: one random initial labelled set shared by all acquisitions (equal start), then
``rounds`` rounds of: train (from scratch or warm start from last round's weights, fresh Adam),
evaluate, acquire ``round_size`` labels. Every acquisition holds the same number of labels in a
round, so each round trains all instances as one batched model (:mod:`rose.active.learner`).
Evaluation after every round's training (including the last): test-environment accuracy,
worst-group / mean-group / bias-conflicting accuracy, training-domain validation accuracy, and
the group composition of the labelled set. The model-selection rule is ``loop.selection`` and is
written into every row. If the pool runs out, the round takes what is left and the loop ends
after evaluating it (``pool_exhausted`` is set on the last row).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from rose.active.acquisitions import NEEDS_DYNAMICS, AcquisitionContext, acquire
from rose.active.alvin import minority_split
from rose.active.learner import TrainSpec, embed, group_metrics, predict, stack, train_instances
from rose.data.group_benchmarks import GroupData


def active_learning(splits: list[dict[str, GroupData]], acquisitions: list[str],
                    seeds: list[int], loop: dict, model: dict, params: dict
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Returns (rounds: one row per acquisition, seed, round; composition: labelled counts per
    acquisition, seed, round, group)."""
    pool0 = splits[0]["pool"]
    n_seeds, n_pool = len(splits), len(pool0)
    acq_of = np.repeat(np.asarray(acquisitions), n_seeds)
    seed_of = np.tile(np.arange(n_seeds), len(acquisitions))
    X, Y = stack(splits, "pool")
    Xv, Yv = stack(splits, "val")
    Xt, _ = stack(splits, "test")
    spec = TrainSpec.from_config(model, pool0.n_classes, loop["steps"], loop["selection"],
                                 loop["eval_every"])
    gen = torch.Generator().manual_seed(seeds[0])
    torch.manual_seed(seeds[0])   # dropout masks
    rngs = [np.random.default_rng([seeds[s], a]) for a, s in
            zip(np.repeat(np.arange(len(acquisitions)), n_seeds), seed_of, strict=True)]
    initial = [np.random.default_rng(seeds[s]).choice(n_pool, min(loop["initial"], n_pool),
                                                      replace=False) for s in range(n_seeds)]
    labelled = [initial[s].copy() for s in seed_of]
    need_dyn = any(a in NEEDS_DYNAMICS for a in acquisitions)
    rows, comp, prev, exhausted = [], [], None, False
    for rnd in range(loop["rounds"] + 1):
        index = torch.as_tensor(np.stack(labelled))
        res = train_instances(X, Y, seed_of, index, spec, gen, val=(Xv, Yv),
                              record_dynamics=need_dyn,
                              init=prev if loop["retrain"] == "warm" else None)
        prev = res.model
        test_pred = predict(res.model, Xt, seed_of).argmax(-1).numpy()
        val_pred = predict(res.model, Xv, seed_of).argmax(-1).numpy()
        remaining = n_pool - len(labelled[0])
        k = min(loop["round_size"], remaining)
        last = rnd == loop["rounds"] or k == 0
        exhausted = exhausted or k == 0
        for i in range(len(acq_of)):
            sp = splits[seed_of[i]]
            lab = sp["pool"].subset(labelled[i])
            m = group_metrics(test_pred[i], sp["test"], loop["min_group_size"])
            rows.append({"acquisition": acq_of[i], "seed": seeds[seed_of[i]], "round": rnd,
                         "n_labels": len(labelled[i]),
                         **{f"test_{k_}": v for k_, v in m.items()},
                         "val_acc": float((val_pred[i] == sp["val"].y).mean()),
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
            if acq_of[i] in NEEDS_DYNAMICS:
                ctx.minority = minority_split(res.dynamics[i].numpy(),
                                              loop["minority_threshold"])
                # how well the split finds the true minority (reported, never used)
                truth = ~sp["pool"].aligned[labelled[i]]
                hit = (truth & ctx.minority).sum()
                quality = {"minority_precision": hit / max(ctx.minority.sum(), 1),
                           "minority_recall": hit / max(truth.sum(), 1)}
            if acq_of[i] == "bald":
                ctx.mc_probs = np.stack([
                    predict(single, X[seed_of[i]:seed_of[i] + 1], np.zeros(1, dtype=int),
                            dropout=spec.dropout)[0].numpy()
                    for _ in range(loop["mc_samples"])])
            t = time.perf_counter()
            new = acquire(acq_of[i], ctx, k)
            rows[-len(acq_of) + i].update({"acquisition_s": time.perf_counter() - t,
                                           "fallback": ctx.fallback,
                                           "minority_found": (int(ctx.minority.sum())
                                                              if ctx.minority is not None
                                                              else -1), **quality})
            labelled[i] = np.concatenate([labelled[i], new])
    return pd.DataFrame(rows), pd.DataFrame(comp)
