"""The direction's runs as the workflow calls them: each takes its block of the config (plain
dicts, defaults filled by the schema) and an output directory, and writes CSV tables (and the
toy weights) that the aggregation, figures and paper read. One process per call.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rose.superposition import geometry
from rose.superposition.toy_model import ToyModel, importance, sample_features, train_toy


def check_config(block: dict) -> None:
    """Cross-key checks the JSON schema cannot express; a ValueError names the key."""
    sweeps = {f"superposition.toy.{k}": v for k, v in block["toy"].items()}
    sweeps["superposition.penalty"] = block["penalty"]
    for key, sweep in sweeps.items():
        if sweep["m"] > sweep["n"]:
            raise ValueError(f"config key {key}.m: m = {sweep['m']} > n = {sweep['n']}; "
                             "the toy model must compress n features into m <= n dimensions")
    for key, variants, units in (
            ("superposition.penalty.variants", block["penalty"]["variants"],
             block["penalty"]["m"]),
            ("superposition.shortcut.variants", block["shortcut"]["variants"],
             min(block["shortcut"]["hidden"]))):
        for name, v in variants.items():
            if v.get("activation") == "topk" and v.get("k", 1) > units:
                raise ValueError(f"config key {key}.{name}.k: k = {v['k']} exceeds the "
                                 f"{units} hidden units")


def _feature_rows(W: torch.Tensor, imp: torch.Tensor, keys: pd.DataFrame) -> pd.DataFrame:
    """One row per (instance, feature) with the feature's norm, dimensionality, superposition."""
    n = W.shape[1]
    df = keys.loc[keys.index.repeat(n)].reset_index(drop=True)
    df["feature"] = np.tile(np.arange(n), len(keys))
    df["importance"] = imp.reshape(-1).numpy()
    df["norm"] = geometry.feature_norms(W).reshape(-1).numpy()
    df["dimensionality"] = geometry.dimensionality(W).reshape(-1).numpy()
    df["superposition"] = geometry.superposition(W).reshape(-1).numpy()
    return df


def _instance_rows(W: torch.Tensor, keys: pd.DataFrame, loss: torch.Tensor) -> pd.DataFrame:
    df = keys.copy()
    df["loss"] = loss.numpy()
    df["features_per_dimension"] = geometry.features_per_dimension(W).numpy()
    df["n_represented"] = (geometry.feature_norms(W) > 0.5).sum(1).numpy()
    return df


def toy_sweep(params: dict, outdir: str | Path, threads: int = 1) -> None:
    """A sparsity sweep of the ReLU output toy model (Elhage et al. 2022): one instance per
    (sparsity, seed). Writes instances.csv, features.csv and weights.npz."""
    torch.set_num_threads(threads)
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    S = np.repeat(np.asarray(params["sparsities"], dtype=np.float32), params["seeds"])
    keys = pd.DataFrame({"sparsity": S,
                         "seed": np.tile(np.arange(params["seeds"]), len(params["sparsities"]))})
    n, m = params["n"], params["m"]
    g = torch.Generator().manual_seed(params["seed"])
    model = ToyModel.init(len(S), n, m, g, readout=params["readout"])
    imp = importance(n, params["importance_decay"]).expand(len(S), n).contiguous()
    density = torch.from_numpy(1 - S)[:, None].expand(len(S), n).contiguous()
    res = train_toy(model, imp, density, params["steps"], params["batch_size"], params["lr"], g)
    _instance_rows(model.W, keys, res.loss).to_csv(out / "instances.csv", index=False)
    _feature_rows(model.W, imp, keys).to_csv(out / "features.csv", index=False)
    np.savez(out / "weights.npz", W=model.W.numpy(), b=model.b.numpy(), sparsity=S,
             seed=keys["seed"].to_numpy())


def phase(params: dict, out_csv: str | Path, threads: int = 1) -> None:
    """The 2-features-in-1-dimension phase diagram over relative importance x density."""
    from rose.superposition.phase_diagram import phase_diagram

    torch.set_num_threads(threads)
    r = np.geomspace(*params["importance_range"], params["n_importance"])
    p = np.geomspace(*params["density_range"], params["n_density"])
    df = phase_diagram(r, p, params["seeds"], params["steps"], params["batch_size"],
                       params["lr"], params["seed"])
    Path(out_csv).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out_csv, index=False)


def _lams(variant: dict, lams: list[float]) -> list[float]:
    """Strengths a variant is run at: 0 and the sweep for a penalty, just 0 without one."""
    return [0.0] if variant["penalty"] == "none" else [0.0, *lams]


def toy_penalty(params: dict, variant_name: str, outdir: str | Path, threads: int = 1) -> None:
    """One penalty (or hidden activation) on the toy model with a privileged basis,
    h = act(W x), x' = ReLU(W^T h + b), over sparsities x lambda x seeds (all at once)."""
    torch.set_num_threads(threads)
    v = params["variants"][variant_name]
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    grid = pd.MultiIndex.from_product(
        [params["sparsities"], _lams(v, params["lams"]), range(params["seeds"])],
        names=["sparsity", "lam", "seed"]).to_frame(index=False)
    n, m, inst = params["n"], params["m"], len(grid)
    g = torch.Generator().manual_seed(params["seed"])
    model = ToyModel.init(inst, n, m, g, privileged=True, activation=v["activation"],
                          topk=v["k"])
    imp = importance(n, params["importance_decay"]).expand(inst, n).contiguous()
    density = torch.tensor(1 - grid["sparsity"].to_numpy(), dtype=torch.float32)
    density = density[:, None].expand(inst, n).contiguous()
    lam = torch.tensor(grid["lam"].to_numpy(), dtype=torch.float32)
    res = train_toy(model, imp, density, params["steps"], params["batch_size"], params["lr"], g,
                    penalty=v["penalty"], lam=lam, tau=v["tau"], level=v["level"],
                    anneal_frac=v["anneal_frac"])
    grid.insert(0, "variant", variant_name)
    df = _instance_rows(model.W, grid, res.loss)
    df["penalty_value"] = res.penalty.numpy()
    df["mean_dimensionality"] = geometry.dimensionality(model.W).mean(1).numpy()
    df["neuron_polysemanticity"] = geometry.neuron_polysemanticity(model.W).mean(1).numpy()
    # how bimodal the hidden activations are on fresh data: share of units strictly between
    # "off" (< 0.05 of the unit's max over the batch) and "on" (> 0.5 of it)
    with torch.no_grad():
        x = sample_features(density, 4096, torch.Generator().manual_seed(params["seed"] + 1))
        _, h = model.hidden(x)
        scale = h.amax(1, keepdim=True).clamp_min(1e-6)
        frac = h / scale
        df["mid_activation_fraction"] = ((frac > 0.05) & (frac < 0.5)).float().mean((1, 2)).numpy()
    df.to_csv(out / "instances.csv", index=False)
    _feature_rows(model.W, imp, grid).to_csv(out / "features.csv", index=False)


def shortcut(params: dict, benchmark: str, seeds: list[int], out_csv: str | Path,
             threads: int = 1) -> None:
    """Every variant on one Colored MNIST benchmark: per variant, one instance per
    (seed, lambda), all at once; the seeds' data are shared by the variants (paired)."""
    from rose.data.bundled import load_mnist5k
    from rose.superposition.shortcut import evaluate_shortcut, make_splits, train_shortcut

    torch.set_num_threads(threads)
    X, digits = load_mnist5k()
    splits = [make_splits(X, digits, benchmark, s) for s in seeds]
    frames = []
    for name, v in params["variants"].items():
        model, seed_of, lam_of = train_shortcut(
            splits, _lams(v, params["lams"]), params["hidden"], params["steps"],
            params["batch_size"], params["lr"], params["l2"], v["penalty"], v["activation"],
            v["k"], v["tau"], v["level"], seed=seeds[0])
        df = evaluate_shortcut(model, splits, seed_of, params["mi_threshold"], v["tau"])
        df.insert(0, "lam", lam_of)
        df.insert(0, "seed", np.asarray(seeds)[seed_of])
        df.insert(0, "variant", name)
        df.insert(0, "benchmark", benchmark)
        frames.append(df)
        print(f"{benchmark}/{name}: done", flush=True)
    Path(out_csv).parent.mkdir(parents=True, exist_ok=True)
    pd.concat(frames, ignore_index=True).to_csv(out_csv, index=False)

