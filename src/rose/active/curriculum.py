"""Training on the whole labelled pool with a data-selection rule or a group-robust objective,
every (method, seed) pair batched:

  erm               uniform minibatches of n_b
  groupdro          GroupDRO with the true groups (:mod:`rose.active.group_robust`)
  jtt               ERM for ``jtt.first_steps``, then from scratch with the error set upsampled
  rho_correlated    RHO-LOSS, irreducible-loss model trained on a holdout from the training
                    distribution (same spurious correlation)
  rho_balanced      RHO-LOSS, irreducible-loss model on the same holdout images re-rendered with
                    the attribute independent of the label (group-balanced)
  rho_loss_only     the same selection with IL = 0 (largest training loss)
  erm_no_shortcut   ERM on inputs without the spurious attribute (a reference, not a method)

Equal budget: every method takes ``steps`` Adam steps on n_b examples; JTT's first phase adds
``first_steps``, RHO-LOSS adds a forward pass over n_B = ``candidates`` x n_b per step; both are
reported (``gradient_steps``, ``forward_examples``). Model selection: the last step.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from rose.active import rho_loss
from rose.active.group_robust import GroupDRO, jtt_weights
from rose.active.learner import TrainSpec, group_metrics, predict, stack, train_instances
from rose.data.group_benchmarks import GroupData, without_shortcut

METHODS = ("erm", "groupdro", "jtt", "rho_correlated", "rho_balanced", "rho_loss_only",
           "erm_no_shortcut")


def curriculum(splits: list[dict[str, GroupData]], methods: list[str], seeds: list[int],
               cfg: dict, model: dict, min_group_size: int = 1) -> pd.DataFrame:
    """One row per (method, seed): test-environment, group and validation accuracies, cost."""
    n_seeds = len(splits)
    n_classes = splits[0]["pool"].n_classes
    X, Y = stack(splits, "pool")
    n_pool = X.shape[1]
    spec = TrainSpec.from_config(model, n_classes, cfg["steps"])
    gen = torch.Generator().manual_seed(seeds[0])
    torch.manual_seed(seeds[0])
    seed_of = np.arange(n_seeds)
    rows_t = torch.as_tensor(seed_of)[:, None]
    full = torch.arange(n_pool).expand(n_seeds, n_pool)
    results: dict[str, tuple] = {}

    for method in methods:
        cost = {"gradient_steps": cfg["steps"], "forward_examples": 0}
        data_splits = splits
        if method in ("erm", "erm_no_shortcut"):
            if method == "erm_no_shortcut":
                data_splits = [{k: without_shortcut(v) for k, v in s.items()} for s in splits]
            Xm, _ = stack(data_splits, "pool")
            res = train_instances(Xm, Y, seed_of, full, spec, gen)
        elif method == "groupdro":
            groups = torch.stack([torch.from_numpy(s["pool"].group) for s in splits])
            dro = GroupDRO(groups, rows_t, splits[0]["pool"].n_groups, cfg["groupdro"]["eta"])
            res = train_instances(X, Y, seed_of, full, spec, gen, objective=dro)
        elif method == "jtt":
            first = train_instances(X, Y, seed_of, full,
                                    replace(spec, steps=cfg["jtt"]["first_steps"]), gen)
            correct = predict(first.model, X, seed_of).argmax(-1) == Y
            res = train_instances(X, Y, seed_of, full, spec, gen,
                                  sample_weights=jtt_weights(correct, cfg["jtt"]["upsample"]))
            cost["gradient_steps"] += cfg["jtt"]["first_steps"]
            cost["error_set_frac"] = float((~correct).float().mean())
        elif method.startswith("rho_"):
            if method == "rho_loss_only":
                il = torch.zeros(n_seeds, n_pool)
            else:
                holdout = "holdout_" + method.removeprefix("rho_")
                Xh, Yh = stack(splits, holdout)
                il_spec = replace(spec, steps=cfg["il_steps"])
                il_model = train_instances(Xh, Yh, seed_of,
                                           torch.arange(Xh.shape[1]).expand(n_seeds, -1),
                                           il_spec, gen).model
                il = rho_loss.irreducible_losses(il_model, X, Y, seed_of)
                cost["il_gradient_steps"] = cfg["il_steps"]
            n_cand = spec.batch_size * cfg["candidates"]
            select = rho_loss.selector(il, X, Y, rows_t, spec.batch_size)
            res = train_instances(X, Y, seed_of, full, replace(spec, batch_size=n_cand), gen,
                                  batch_selector=select)
        else:
            raise ValueError(f"unknown curriculum method {method!r}; expected one of {METHODS}")
        cost["forward_examples"] = res.forward_examples
        results[method] = (res.model, data_splits, cost)

    out = []
    for method, (model_, data_splits, cost) in results.items():
        Xt, _ = stack(data_splits, "test")
        Xv, _ = stack(data_splits, "val")
        test_pred = predict(model_, Xt, seed_of).argmax(-1).numpy()
        val_pred = predict(model_, Xv, seed_of).argmax(-1).numpy()
        pool_pred = predict(model_, X if data_splits is splits else stack(data_splits, "pool")[0],
                            seed_of).argmax(-1).numpy()
        for s in range(n_seeds):
            m = group_metrics(test_pred[s], data_splits[s]["test"], min_group_size)
            out.append({"method": method, "seed": seeds[s],
                        **{f"test_{k}": v for k, v in m.items()},
                        "val_acc": float((val_pred[s] == data_splits[s]["val"].y).mean()),
                        "train_acc": float((pool_pred[s] == data_splits[s]["pool"].y).mean()),
                        "selection": "last", **cost})
    return pd.DataFrame(out)
