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
method reads, the pool's and, for RHO-LOSS, its holdout's distinct examples. Model selection:
the last step. Paired: every method of a seed starts from the same weights and minibatch
stream.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from rose.active import rho_loss
from rose.active.group_robust import GroupDRO, IRMv1, VREx, jtt_weights
from rose.active.learner import (
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


def curriculum(splits: list[dict[str, GroupData]], methods: list[str], seeds: list[int],
               cfg: dict, model: dict, min_group_size: int = 1, device: Device = "cpu",
               job: Job | None = None) -> pd.DataFrame:
    """One row per (method, seed): test-environment, group and validation accuracies, cost.
    Every method of a seed starts from the seed's initial weights and draws the seed's
    minibatches (paired); each method is one resumable unit of ``job``."""
    job = job or NoJob()
    dev = resolve_device(device)
    n_seeds = len(splits)
    n_classes = splits[0]["pool"].n_classes
    X, Y = stack(splits, "pool", dev)
    n_pool = X.shape[1]
    spec = TrainSpec.from_config(model, n_classes, cfg["steps"])
    seed_of = np.arange(n_seeds)
    rows_t = as_tensor(seed_of, dev)[:, None]
    full = torch.arange(n_pool, device=dev).expand(n_seeds, n_pool)
    start = initial_model(X.shape[-1], spec, seeds, dev)

    def run(method: str) -> pd.DataFrame:
        gen = generator(seeds[0], dev)     # the same minibatch stream for every method
        cost = {"gradient_steps": cfg["steps"], "forward_examples": 0, "labels": n_pool}
        data_splits, Xm = splits, X
        if method in ("erm", "erm_no_shortcut"):
            if method == "erm_no_shortcut":
                data_splits = [{k: without_shortcut(v) for k, v in s.items()} for s in splits]
                Xm, _ = stack(data_splits, "pool", dev)
            res = train_instances(Xm, Y, seed_of, full, spec, gen, init=start)
        elif method == "groupdro":
            groups = torch.stack([as_tensor(s["pool"].group, dev) for s in splits])
            dro = GroupDRO(groups, rows_t, splits[0]["pool"].n_groups, cfg["groupdro"]["eta"])
            res = train_instances(X, Y, seed_of, full, spec, gen, init=start, objective=dro)
        elif method in ("irm", "vrex"):
            envs = torch.stack([as_tensor(s["pool"].env, dev) for s in splits])
            n_envs = int(envs.max()) + 1
            obj = IRMv1(envs, rows_t, n_envs, cfg["irm"]["lam"]) if method == "irm" else \
                VREx(envs, rows_t, n_envs, cfg["vrex"]["beta"])
            res = train_instances(X, Y, seed_of, full, spec, gen, init=start, objective=obj)
        elif method == "jtt":
            first = train_instances(X, Y, seed_of, full,
                                    replace(spec, steps=cfg["jtt"]["first_steps"]), gen,
                                    init=start)
            correct = predict(first.model, X, seed_of).argmax(-1) == Y
            res = train_instances(X, Y, seed_of, full, spec, gen, init=start,
                                  sample_weights=jtt_weights(correct, cfg["jtt"]["upsample"]))
            cost["gradient_steps"] += cfg["jtt"]["first_steps"]
            cost["error_set_frac"] = float((~correct).float().mean())
        elif method.startswith("rho_"):
            if method == "rho_loss_only":
                il = torch.zeros(n_seeds, n_pool, device=dev)
            else:
                holdout = "holdout_" + method.removeprefix("rho_")
                Xh, Yh = stack(splits, holdout, dev)
                il_spec = replace(spec, steps=cfg["il_steps"])
                il_model = train_instances(
                    Xh, Yh, seed_of, torch.arange(Xh.shape[1], device=dev).expand(n_seeds, -1),
                    il_spec, gen, init=start).model
                il = rho_loss.irreducible_losses(il_model, X, Y, seed_of)
                cost["il_gradient_steps"] = cfg["il_steps"]
                # the holdout's labels count in the budget (resampled: its distinct points)
                cost["labels"] = n_pool + int(np.mean([len(np.unique(s[holdout].content.reshape(
                    len(s[holdout]), -1), axis=0)) for s in splits]))
            n_cand = spec.batch_size * cfg["candidates"]
            select = rho_loss.selector(il, X, Y, rows_t, spec.batch_size)
            res = train_instances(X, Y, seed_of, full, replace(spec, batch_size=n_cand), gen,
                                  init=start, batch_selector=select)
        else:
            raise ValueError(f"unknown curriculum method {method!r}; expected one of {METHODS}")
        cost["forward_examples"] = res.forward_examples
        Xt, _ = stack(data_splits, "test", dev)
        Xv, _ = stack(data_splits, "val", dev)
        test_pred = predict(res.model, Xt, seed_of).argmax(-1).cpu().numpy()
        val_pred = predict(res.model, Xv, seed_of).argmax(-1).cpu().numpy()
        pool_pred = predict(res.model, Xm, seed_of).argmax(-1).cpu().numpy()
        out = []
        for s in range(n_seeds):
            diverged = res.diverged_at[s] >= 0
            m = group_metrics(test_pred[s], data_splits[s]["test"], min_group_size)
            metrics = {**{f"test_{k}": v for k, v in m.items()},
                       "val_acc": float((val_pred[s] == data_splits[s]["val"].y).mean()),
                       "train_acc": float((pool_pred[s] == data_splits[s]["pool"].y).mean())}
            out.append({"method": method, "seed": seeds[s],
                        "status": "diverged" if diverged else "ok",
                        "diverged_at_step": int(res.diverged_at[s]),
                        **{k: (np.nan if diverged else v) for k, v in metrics.items()},
                        "selection": "last", **cost})
        return pd.DataFrame(out)

    return pd.concat([job.unit(m, lambda m=m: run(m)) for m in methods], ignore_index=True)
