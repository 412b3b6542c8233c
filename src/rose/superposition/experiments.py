"""The direction's runs as the workflow calls them: each takes its block of the config (plain
dicts, defaults filled by the schema) and an output directory, and writes CSV tables (and the
toy weights) that the aggregation, figures and paper read. One process per call.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rose.contrasts import check_contrasts
from rose.device import Device, as_tensor, generator, resolve_device
from rose.engine import Job
from rose.superposition import geometry
from rose.superposition.toy_model import ToyModel, importance, sample_features, train_toy
from rose.tuning import check_grids


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
    from rose.superposition.summary import SHORTCUT_METRICS

    sc = block["shortcut"]
    check_grids(sc["grids"], {n: ({"lam"} if v.get("penalty", "none") != "none" else set())
                              for n, v in sc["variants"].items()},
                "superposition.shortcut.grids")
    check_contrasts(block["primary"], "superposition.primary", sc["variants"],
                    SHORTCUT_METRICS, {"benchmark": sc["benchmarks"]})


def _feature_rows(W: torch.Tensor, imp: torch.Tensor, keys: pd.DataFrame,
                  diverged_at: np.ndarray) -> pd.DataFrame:
    """One row per (instance, feature) with the feature's norm, dimensionality, superposition;
    NaN for diverged instances."""
    n = W.shape[1]
    df = keys.loc[keys.index.repeat(n)].reset_index(drop=True)
    df["feature"] = np.tile(np.arange(n), len(keys))
    df["importance"] = imp.reshape(-1).cpu().numpy()
    bad = np.repeat(diverged_at >= 0, n)
    for k, v in (("norm", geometry.feature_norms(W)), ("dimensionality",
                 geometry.dimensionality(W)), ("superposition", geometry.superposition(W))):
        df[k] = np.where(bad, np.nan, v.reshape(-1).cpu().numpy())
    return df


def _instance_rows(W: torch.Tensor, keys: pd.DataFrame, loss: torch.Tensor,
                   diverged_at: np.ndarray) -> pd.DataFrame:
    df = keys.copy()
    bad = diverged_at >= 0
    df["status"] = np.where(bad, "diverged", "ok")
    df["diverged_at_step"] = diverged_at
    df["loss"] = np.where(bad, np.nan, loss.cpu().numpy())
    df["features_per_dimension"] = np.where(
        bad, np.nan, geometry.features_per_dimension(W).cpu().numpy())
    df["n_represented"] = np.where(bad, np.nan,
                                   (geometry.feature_norms(W) > 0.5).sum(1).cpu().numpy())
    return df


def _rows_of(seeds: np.ndarray, device) -> torch.Tensor:
    """A seed index per instance (common random numbers across a seed's instances)."""
    return as_tensor(np.unique(seeds, return_inverse=True)[1], device)


def toy_sweep(params: dict, outdir: str | Path, threads: int = 1, device: Device = "cpu",
              checkpoint_seconds: float = 60.0) -> None:
    """A sparsity sweep of the ReLU output toy model (Elhage et al. 2022): one instance per
    (sparsity, seed). Writes instances.csv, features.csv and weights.npz."""
    torch.set_num_threads(threads)
    dev = resolve_device(device)
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    job = Job(out, {"toy_sweep": params}, checkpoint_seconds, device)
    S = np.repeat(np.asarray(params["sparsities"], dtype=np.float32), params["seeds"])
    keys = pd.DataFrame({"sparsity": S,
                         "seed": np.tile(np.arange(params["seeds"]), len(params["sparsities"]))})
    n, m = params["n"], params["m"]

    def train() -> dict:
        seeds = [params["seed"] * 1000 + int(k) for k in keys["seed"]]
        model = ToyModel.init(seeds, n, m, dev, readout=params["readout"])
        imp = importance(n, params["importance_decay"], dev).expand(len(S), n).contiguous()
        density = as_tensor(1 - S, dev)[:, None].expand(len(S), n).contiguous()
        res = train_toy(model, imp, density, params["steps"], params["batch_size"],
                        params["lr"], generator(params["seed"], dev),
                        rows=_rows_of(keys["seed"].to_numpy(), dev), job=job)
        return {"W": model.W, "b": model.b, "loss": res.loss, "diverged_at": res.diverged_at}

    r = job.unit("train", train)
    W, b = r["W"].to(dev), r["b"].to(dev)
    inst = _instance_rows(W, keys, r["loss"], r["diverged_at"])
    inst.to_csv(out / "instances.csv", index=False)
    _feature_rows(W, importance(n, params["importance_decay"], dev).expand(len(S), n), keys,
                  r["diverged_at"]).to_csv(out / "features.csv", index=False)
    np.savez(out / "weights.npz", W=W.cpu().numpy(), b=b.cpu().numpy(), sparsity=S,
             seed=keys["seed"].to_numpy())
    job.finish()


def phase(params: dict, out_csv: str | Path, threads: int = 1, device: Device = "cpu",
          checkpoint_seconds: float = 60.0) -> None:
    """The 2-features-in-1-dimension phase diagram over relative importance x density."""
    from rose.superposition.phase_diagram import phase_diagram

    torch.set_num_threads(threads)
    r = np.geomspace(*params["importance_range"], params["n_importance"])
    p = np.geomspace(*params["density_range"], params["n_density"])
    out = Path(out_csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    job = Job(out.parent, {"phase": params}, checkpoint_seconds, device)
    df = job.unit("train", lambda: phase_diagram(
        r, p, params["seeds"], params["steps"], params["batch_size"], params["lr"],
        params["seed"], device, job))
    df.to_csv(out, index=False)
    job.finish()


def _lams(variant: dict, lams: list[float]) -> list[float]:
    """Strengths a variant is run at: 0 and the sweep for a penalty, just 0 without one."""
    return [0.0] if variant["penalty"] == "none" else [0.0, *lams]


def _grid(params: dict, variant: str) -> list[float]:
    """The shortcut variant's declared lambda grid (config ``shortcut.grids``), or lambda = 0
    alone for a variant without one."""
    return [float(v) for v in params["grids"].get(variant, {}).get("lam", [0.0])]


def toy_penalty(params: dict, variant_name: str, outdir: str | Path, threads: int = 1,
                device: Device = "cpu", checkpoint_seconds: float = 60.0) -> None:
    """One penalty (or hidden activation) on the toy model with a privileged basis,
    h = act(W x), x' = ReLU(W^T h + b), over sparsities x lambda x seeds (all at once; the
    lambdas of a seed share its initial weights and data draws)."""
    torch.set_num_threads(threads)
    dev = resolve_device(device)
    v = params["variants"][variant_name]
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    job = Job(out, {"toy_penalty": params, "variant": variant_name}, checkpoint_seconds,
              device)
    grid = pd.MultiIndex.from_product(
        [params["sparsities"], _lams(v, params["lams"]), range(params["seeds"])],
        names=["sparsity", "lam", "seed"]).to_frame(index=False)
    n, m, inst = params["n"], params["m"], len(grid)
    imp = importance(n, params["importance_decay"], dev).expand(inst, n).contiguous()
    density = as_tensor(1 - grid["sparsity"].to_numpy(), dev, torch.float32)
    density = density[:, None].expand(inst, n).contiguous()

    def train() -> dict:
        seeds = [params["seed"] * 1000 + int(k) for k in grid["seed"]]
        model = ToyModel.init(seeds, n, m, dev, privileged=True, activation=v["activation"],
                              topk=v["k"])
        lam = as_tensor(grid["lam"].to_numpy(), dev, torch.float32)
        res = train_toy(model, imp, density, params["steps"], params["batch_size"],
                        params["lr"], generator(params["seed"], dev), penalty=v["penalty"],
                        lam=lam, tau=v["tau"], level=v["level"], anneal_frac=v["anneal_frac"],
                        rows=_rows_of(grid["seed"].to_numpy(), dev), job=job)
        # how bimodal the hidden activations are on fresh data: share of units strictly
        # between "off" (< 0.05 of the unit's max over the batch) and "on" (> 0.5 of it)
        with torch.no_grad():
            x = sample_features(density, 4096, generator(params["seed"] + 1, dev))
            _, h = model.hidden(x)
            frac = h / h.amax(1, keepdim=True).clamp_min(1e-6)
            mid = ((frac > 0.05) & (frac < 0.5)).float().mean((1, 2))
        return {"W": model.W, "loss": res.loss, "penalty": res.penalty, "mid": mid,
                "diverged_at": res.diverged_at}

    r = job.unit("train", train)
    W = r["W"].to(dev)
    grid.insert(0, "variant", variant_name)
    df = _instance_rows(W, grid, r["loss"], r["diverged_at"])
    extra = {"penalty_value": r["penalty"].numpy(),
             "mean_dimensionality": geometry.dimensionality(W).mean(1).cpu().numpy(),
             "neuron_polysemanticity": geometry.neuron_polysemanticity(W).mean(1).cpu().numpy(),
             "mid_activation_fraction": r["mid"].numpy()}
    diverged = r["diverged_at"] >= 0
    for k, vals in extra.items():
        df[k] = np.where(diverged, np.nan, vals)
    df.to_csv(out / "instances.csv", index=False)
    _feature_rows(W, imp, grid, r["diverged_at"]).to_csv(out / "features.csv", index=False)
    job.finish()


def shortcut(params: dict, benchmark: str, seeds: list[int], out_csv: str | Path,
             threads: int = 1, device: Device = "cpu", checkpoint_seconds: float = 60.0
             ) -> None:
    """Every variant on one Colored MNIST benchmark: per variant, one instance per
    (seed, lambda), all at once; the seeds' data, initial weights and minibatch order are
    shared by the variants and lambdas (paired). One resumable unit per variant."""
    from rose.data.bundled import load_mnist5k
    from rose.superposition.shortcut import evaluate_shortcut, make_splits, train_shortcut

    torch.set_num_threads(threads)
    dev = resolve_device(device)
    X, digits = load_mnist5k()
    splits = [make_splits(X, digits, benchmark, s) for s in seeds]
    out = Path(out_csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    job = Job(out.parent / benchmark, {"shortcut": params, "benchmark": benchmark,
                                       "seeds": seeds}, checkpoint_seconds, device)
    frames = []
    for name, v in params["variants"].items():
        def run(v=v, name=name) -> pd.DataFrame:
            net, theta, seed_of, lam_of, div = train_shortcut(
                splits, _grid(params, name), params["hidden"], params["steps"],
                params["batch_size"], params["lr"], params["l2"], v["penalty"],
                v["activation"], v["k"], v["tau"], v["level"], seeds, dev, job)
            df = evaluate_shortcut(net, theta, splits, seed_of, params["mi_threshold"],
                                   v["tau"])
            df[div.diverged] = np.nan
            df.insert(0, "diverged_at_step", div.at_step)
            df.insert(0, "status", div.status())
            df.insert(0, "lam", lam_of)
            df.insert(0, "seed", np.asarray(seeds)[seed_of])
            df.insert(0, "variant", name)
            df.insert(0, "benchmark", benchmark)
            return df
        frames.append(job.unit(name, run))
        print(f"{benchmark}/{name}: done", flush=True)
    pd.concat(frames, ignore_index=True).to_csv(out, index=False)
    job.finish()
