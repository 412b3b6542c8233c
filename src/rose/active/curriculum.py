"""Training on the whole labelled pool with a data-selection rule or a group-robust objective,
every (method, seed) pair batched:

  erm               uniform minibatches of n_b
  groupdro          GroupDRO with the true groups (:mod:`rose.active.group_robust`)
  jtt               ERM for ``jtt.first_steps``, then from scratch with the error set upsampled
  rho_correlated    RHO-LOSS, irreducible-loss model trained on a holdout from the training
                    distribution (same spurious correlation)
  rho_resampled     RHO-LOSS, irreducible-loss model on the correlated holdout resampled to
                    balance its groups with the group labels only (the spec's version)
  rho_interventional  RHO-LOSS, irreducible-loss model on the same holdout images re-rendered
                    with the attribute independent of the label: an interventional oracle
                    (generative control of the spurious feature, stronger than group labels)
  rho_loss_only     the same selection with IL = 0 (largest training loss)
  irm               IRMv1 over the two training environments, weight ``irm.lam``
  vrex              V-REx over the two training environments, weight ``vrex.beta``
  erm_no_shortcut   ERM on inputs without the spurious attribute (a reference, not a method)

Equal budget: every method takes ``steps`` Adam steps on n_b examples; JTT's first phase adds
``first_steps``, RHO-LOSS adds a forward pass over n_B = ``candidates`` x n_b per step; both are
reported (``gradient_steps``, ``forward_examples``). Labels: ``labels`` counts every label a
method reads, the pool's and, for RHO-LOSS, its holdout's distinct examples.

Equal tuning (PROTOCOL.md section 2, rose.tuning): every method has a grid of the same size
(``tuning.grids``; tunable: ``weight_decay`` for all, GroupDRO's ``eta``, JTT's ``first_steps``
(T) and ``upsample``, IRMv1's ``lam`` and V-REx's ``beta`` with their ``anneal`` steps). A
method's grid points x seeds train as one batched model. Early stopping and the grid point are
chosen together by one of two selection rules, both from the same runs, each row labelled:

  train_domain_val  validation accuracy on the training distribution (no group labels)
  group_val         the lower of the worst-group accuracy over validation groups with at least
                    ``min_group_size`` points and the accuracy on all bias-conflicting
                    validation points: group labels on validation, the labelled upper bound
                    (Sagawa et al. select GroupDRO by worst-group validation accuracy; on
                    cmnist10's 100 groups most validation groups hold a few points, so the
                    conflicting points together stand in for them)

Per rule: the checkpoint (every ``eval_every`` steps) with the best score is kept per instance,
the grid point with the best mean over seeds is selected, and its test metrics are reported.
Nothing is chosen on the test split. Paired: every method, grid point and seed starts from the
seed's initial weights and draws the seed's minibatches.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from rose import tuning
from rose.active import rho_loss
from rose.active.group_robust import (
    GroupDRO,
    IRMv1,
    VREx,
    balanced_weights,
    jtt_weights,
    means_by,
)
from rose.active.learner import (
    Model,
    TrainSpec,
    group_metrics,
    initial_model,
    predict,
    stack,
    train_instances,
)
from rose.data.group_benchmarks import GroupData, without_shortcut
from rose.device import Device, as_tensor, generator, resolve_device
from rose.engine import Job, NoJob

METHODS = ("erm", "groupdro", "jtt", "irm", "vrex", "rho_correlated", "rho_resampled",
           "rho_interventional", "rho_loss_only", "erm_no_shortcut")
SELECTION_RULES = ("train_domain_val", "group_val")
# what each method's grid may tune (rose.tuning.check_grids)
TUNABLE = {**dict.fromkeys(METHODS, ("weight_decay",)),
           "groupdro": ("weight_decay", "eta"), "jtt": ("weight_decay", "first_steps", "upsample"),
           "irm": ("weight_decay", "lam", "anneal"), "vrex": ("weight_decay", "beta", "anneal")}


def defaults(method: str, cfg: dict, model: dict) -> dict:
    """A method's hyperparameters before tuning (the config's values; the schema's defaults
    where a hand-made block leaves them out)."""
    d = {"weight_decay": model["weight_decay"]}
    block = cfg.get(method, {})
    if method == "groupdro":
        d["eta"] = block.get("eta", 0.01)
    elif method == "jtt":
        d |= {"first_steps": block.get("first_steps", 100), "upsample": block.get("upsample", 20)}
    elif method in ("irm", "vrex"):
        d |= {"lam" if method == "irm" else "beta": block.get("lam" if method == "irm" else
                                                              "beta", 1.0),
              "anneal": block.get("anneal", 0)}
    return d


def group_val_score(pred: torch.Tensor, y: torch.Tensor, groups: torch.Tensor,
                    conflicting: torch.Tensor, n_groups: int, min_group_size: int
                    ) -> torch.Tensor:
    """The ``group_val`` rule's score per instance: pred [I, N] against the instance's seed's
    labels y, groups and bias-conflicting mask [I, N] (rows already gathered)."""
    correct = (pred == y).float()
    acc = means_by(correct, groups, n_groups)
    counts = torch.zeros_like(acc).scatter_add(1, groups, torch.ones_like(correct))
    worst = torch.where(counts >= min_group_size, acc, torch.inf).min(1).values
    conf = (correct * conflicting).sum(1) / conflicting.sum(1).clamp(min=1)
    conf = torch.where(conflicting.sum(1) > 0, conf, torch.inf)
    return torch.minimum(worst, conf)


def curriculum(splits: list[dict[str, GroupData]], methods: list[str], seeds: list[int],
               cfg: dict, model: dict, min_group_size: int = 1, device: Device = "cpu",
               job: Job | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs, tuning): one row per (method, selection rule, seed) with the selected point's
    test-environment, group and validation accuracies and cost; one row per (method, rule,
    grid point) with its validation scores. Each method is one resumable unit of ``job``."""
    job = job or NoJob()
    dev = resolve_device(device)
    S = len(splits)
    n_classes = splits[0]["pool"].n_classes
    n_groups = splits[0]["pool"].n_groups
    X, Y = stack(splits, "pool", dev)
    n_pool = X.shape[1]
    spec = TrainSpec.from_config(model, n_classes, cfg["steps"],
                                 eval_every=cfg.get("eval_every", 50))
    start = initial_model(X.shape[-1], spec, seeds, dev)
    # a method without a grid runs its configured point alone (the workflow's config check
    # requires a grid for every method; tests and scripts may leave it out)
    grids = cfg.get("tuning", {}).get("grids", {})

    def run(method: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        points = [defaults(method, cfg, model) | p
                  for p in tuning.Grid(method, grids.get(method, {})).points]
        P = len(points)
        seed_of = np.tile(np.arange(S), P)            # instance p * S + s: point p, seed s
        rows_t = as_tensor(seed_of, dev)[:, None]

        def col(k: str) -> torch.Tensor:
            """Hyperparameter k of every instance [P * S]."""
            return torch.tensor([float(p[k]) for p in points], device=dev).repeat_interleave(S)
        init = Model(start.net, start.theta.repeat(P, 1))
        full = torch.arange(n_pool, device=dev).expand(P * S, n_pool)
        gen = generator(seeds[0], dev)     # the same minibatch stream for every method
        cost = {"gradient_steps": [cfg["steps"]] * P, "forward_examples": 0, "labels": n_pool}
        data_splits, Xm = splits, X
        if method == "erm_no_shortcut":
            data_splits = [{k: without_shortcut(v) for k, v in s.items()} for s in splits]
            Xm, _ = stack(data_splits, "pool", dev)
        Xv, Yv = stack(data_splits, "val", dev)
        gv = torch.stack([as_tensor(s["val"].group, dev) for s in data_splits])[seed_of]
        cv = torch.stack([as_tensor((~s["val"].aligned).astype(np.float32), dev)
                          for s in data_splits])[seed_of]
        yv = Yv[seed_of]
        rules = {"train_domain_val": lambda pred: (pred == yv).float().mean(1),
                 "group_val": lambda pred: group_val_score(pred, yv, gv, cv, n_groups,
                                                           min_group_size)}
        kw = {"init": init, "val": (Xv, Yv), "rules": rules, "weight_decay": col("weight_decay")}
        if method in ("erm", "erm_no_shortcut"):
            res = train_instances(Xm, Y, seed_of, full, spec, gen, **kw)
        elif method == "groupdro":
            groups = torch.stack([as_tensor(s["pool"].group, dev) for s in splits])
            dro = GroupDRO(groups, rows_t, n_groups, col("eta"))
            res = train_instances(X, Y, seed_of, full, spec, gen, objective=dro,
                                  sample_weights=balanced_weights(groups, n_groups)[seed_of],
                                  **kw)
        elif method in ("irm", "vrex"):
            envs = torch.stack([as_tensor(s["pool"].env, dev) for s in splits])
            n_envs = int(envs.max()) + 1
            obj = IRMv1(envs, rows_t, n_envs, col("lam"), col("anneal")) if method == "irm" \
                else VREx(envs, rows_t, n_envs, col("beta"), col("anneal"))
            res = train_instances(X, Y, seed_of, full, spec, gen, objective=obj, **kw)
        elif method == "jtt":
            # the identification phase: ERM (the config's weight decay) for T steps, once per T
            correct = {}
            for T in sorted({int(p["first_steps"]) for p in points}):
                first = train_instances(X, Y, np.arange(S), full[:S], replace(spec, steps=T),
                                        generator(seeds[0], dev), init=start)
                correct[T] = predict(first.model, X, np.arange(S)).argmax(-1) == Y
            err = torch.cat([correct[int(p["first_steps"])] for p in points])
            res = train_instances(X, Y, seed_of, full, spec, gen,
                                  sample_weights=jtt_weights(err, col("upsample")), **kw)
            cost["gradient_steps"] = [cfg["steps"] + int(p["first_steps"]) for p in points]
            cost["error_set_frac"] = (~err).float().mean(1).reshape(P, S).mean(1).tolist()
        elif method.startswith("rho_"):
            if method == "rho_loss_only":
                il = torch.zeros(S, n_pool, device=dev)
            else:
                holdout = "holdout_" + method.removeprefix("rho_")
                Xh, Yh = stack(splits, holdout, dev)
                il_spec = replace(spec, steps=cfg["il_steps"])
                il_model = train_instances(
                    Xh, Yh, np.arange(S), torch.arange(Xh.shape[1], device=dev).expand(S, -1),
                    il_spec, gen, init=start).model
                il = rho_loss.irreducible_losses(il_model, X, Y, np.arange(S))
                cost["il_gradient_steps"] = cfg["il_steps"]
                # the holdout's labels count in the budget (resampled: its distinct points)
                cost["labels"] = n_pool + int(np.mean([len(np.unique(s[holdout].content.reshape(
                    len(s[holdout]), -1), axis=0)) for s in splits]))
            n_cand = spec.batch_size * cfg["candidates"]
            select = rho_loss.selector(il[seed_of], X, Y, rows_t, spec.batch_size)
            res = train_instances(X, Y, seed_of, full, replace(spec, batch_size=n_cand), gen,
                                  batch_selector=select, **kw)
        else:
            raise ValueError(f"unknown curriculum method {method!r}; expected one of {METHODS}")
        cost["forward_examples"] = res.forward_examples
        Xt, _ = stack(data_splits, "test", dev)
        out, tune_rows = [], []
        for rule in SELECTION_RULES:
            theta, score, at = res.selected[rule]
            diverged = res.diverged_at >= 0
            scores = np.where(diverged, np.nan, score.cpu().numpy()).reshape(P, S)
            chosen = tuning.select(method, points, scores)
            tune_rows.append(tuning.tuning_table([chosen]).assign(method=method,
                                                                  selection=rule))
            p = chosen.selected
            inst = slice(p * S, (p + 1) * S)
            m_sel = Model(res.model.net, theta[inst])
            test_pred = predict(m_sel, Xt, np.arange(S)).argmax(-1).cpu().numpy()
            val_pred = predict(m_sel, Xv, np.arange(S)).argmax(-1).cpu().numpy()
            pool_pred = predict(m_sel, Xm, np.arange(S)).argmax(-1).cpu().numpy()
            for s in range(S):
                dv = bool(diverged[p * S + s])
                m = group_metrics(test_pred[s], data_splits[s]["test"], min_group_size)
                metrics = {**{f"test_{k}": v for k, v in m.items()},
                           "val_acc": float((val_pred[s] == data_splits[s]["val"].y).mean()),
                           "val_score": float(scores[p, s]),
                           "train_acc": float((pool_pred[s] == data_splits[s]["pool"].y).mean())}
                out.append({"method": method, "seed": seeds[s], "selection": rule,
                            "point": json.dumps(points[p], sort_keys=True),
                            "selected_step": int(at[p * S + s]),
                            "status": "diverged" if dv else "ok",
                            "diverged_at_step": int(res.diverged_at[p * S + s]),
                            **{k: (np.nan if dv else v) for k, v in metrics.items()},
                            **{k: (v[p] if isinstance(v, list) else v)
                               for k, v in cost.items()}})
        return pd.DataFrame(out), pd.concat(tune_rows, ignore_index=True)

    parts = [job.unit(m, lambda m=m: run(m)) for m in methods]
    return (pd.concat([r for r, _ in parts], ignore_index=True),
            pd.concat([t for _, t in parts], ignore_index=True))
