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
from rose.superposition import monosemanticity as mono
from rose.superposition.toy_model import Segment, ToyModel, importance, sample_features, train_toy
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
    lams = block["penalty"]["lams"]
    if len(set(lams)) < 2:
        raise ValueError("config key superposition.penalty.lams: a Pareto grid needs at least "
                         f"two penalty strengths, got {lams}")
    for name, v in block["shortcut"]["variants"].items():
        if v.get("hidden_bias", 0.0) != 0.0:
            raise ValueError(f"config key superposition.shortcut.variants.{name}.hidden_bias: "
                             "the negative-bias start is a toy-model variant only")
    from rose.superposition.frontier import TOY_PRIMARY_METRICS
    from rose.superposition.summary import SHORTCUT_METRICS

    sc = block["shortcut"]
    check_grids(sc["grids"], {n: ({"lam"} if v.get("penalty", "none") != "none" else set())
                              for n, v in sc["variants"].items()},
                "superposition.shortcut.grids")
    toy_arms = block["penalty"]["variants"]
    check_contrasts(block["primary"], "superposition.primary", {*sc["variants"], *toy_arms},
                    {**SHORTCUT_METRICS, **TOY_PRIMARY_METRICS},
                    {"benchmark": [*sc["benchmarks"], "toy"]})
    for b in sc.get("erm_only", []):
        if b not in sc["benchmarks"]:
            raise ValueError(f"config key superposition.shortcut.erm_only: {b!r} is not one of "
                             "superposition.shortcut.benchmarks")
    for i, c in enumerate(block["primary"]):
        if c["benchmark"] in sc.get("erm_only", []):     # no other variant runs there
            raise ValueError(f"config key superposition.primary[{i}].benchmark: "
                             f"{c['benchmark']!r} runs erm only (superposition.shortcut."
                             "erm_only)")
        toy = c["benchmark"] == "toy"
        arms, metrics = (toy_arms, TOY_PRIMARY_METRICS) if toy else (sc["variants"],
                                                                      SHORTCUT_METRICS)
        where = "superposition.penalty.variants" if toy else "superposition.shortcut.variants"
        for k in ("arm", "reference"):
            if c[k] not in arms:
                raise ValueError(f"config key superposition.primary[{i}].{k}: {c[k]!r} is not "
                                 f"in {where}")
        if c["metric"] not in metrics:
            raise ValueError(f"config key superposition.primary[{i}].metric: {c['metric']!r} "
                             f"is not a metric of benchmark {c['benchmark']!r}; known: "
                             f"{sorted(metrics)}")


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
    df["norm_represented"] = np.where(bad, np.nan,
                                      (geometry.feature_norms(W) > 0.5).sum(1).cpu().numpy())
    return df


GAIN_BATCH = 1024   # inputs per gain estimate: stratified by presence, 4n forward passes each


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
        x = sample_features(density, GAIN_BATCH, generator(params["seed"] + 1, dev))
        gain = mono.reconstruction_gain(model, x[:, :GAIN_BATCH], imp, density)
        return {"W": model.W, "b": model.b, "loss": res.loss, "diverged_at": res.diverged_at,
                "gain": gain}

    r = job.unit("train", train)
    W, b = r["W"].to(dev), r["b"].to(dev)
    bad = r["diverged_at"] >= 0
    rep = mono.represented(r["gain"])
    inst = _instance_rows(W, keys, r["loss"], r["diverged_at"])
    inst["n_represented"] = np.where(bad, np.nan, rep.sum(1).cpu().numpy())
    inst["mean_dimensionality"] = np.where(
        bad, np.nan, mono.mean_dimensionality(W, rep.to(dev)).cpu().numpy())
    inst.to_csv(out / "instances.csv", index=False)
    feats = _feature_rows(W, importance(n, params["importance_decay"], dev).expand(len(S), n),
                          keys, r["diverged_at"])
    feats["gain"] = np.where(np.repeat(bad, n), np.nan, r["gain"].reshape(-1).cpu().numpy())
    feats["represented"] = feats["gain"] > mono.REPRESENTED_GAIN
    feats.to_csv(out / "features.csv", index=False)
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
        params["seed"], device, job)).assign(model="elhage")
    pen = params.get("penalised")
    if pen:
        priv = job.unit("penalised", lambda: phase_diagram(
            r, p, params["seeds"], params["steps"], params["batch_size"], params["lr"],
            params["seed"], device, job, lams=(0.0, pen["lam"]), penalty=pen["penalty"],
            tau=pen["tau"]))
        priv["model"] = np.where(priv.lam == 0, "privileged", f"privileged_{pen['penalty']}")
        df = pd.concat([df, priv], ignore_index=True)
    df.to_csv(out, index=False)
    job.finish()


def penalty_grid(params: dict) -> pd.DataFrame:
    """The toy penalty study's instances, variant-major (one Segment per variant): a penalised
    variant at every lambda of the Pareto grid (config ``penalty.lams``), a variant without a
    penalty (none, an activation, a negative bias) once at lambda = 0; each x sparsity x seed.
    ``none`` is the unpenalised ReLU model of the same seeds, their lambda = 0 point."""
    frames = []
    for name, v in params["variants"].items():
        lams = params["lams"] if v["penalty"] != "none" else [0.0]
        frames.append(pd.MultiIndex.from_product(
            [[name], params["sparsities"], lams, range(params["seeds"])],
            names=["variant", "sparsity", "lam", "seed"]).to_frame(index=False))
    return pd.concat(frames, ignore_index=True)


def _segments(grid: pd.DataFrame, variants: dict) -> tuple[Segment, ...]:
    bounds = grid.groupby("variant", sort=False).size().cumsum()
    out, start = [], 0
    for name, stop in bounds.items():
        v = variants[name]
        out.append(Segment(start, int(stop), v["activation"], v["k"], v["penalty"], v["tau"],
                           v["level"]))
        start = int(stop)
    return tuple(out)


@torch.no_grad()
def toy_metrics(model: ToyModel, imp: torch.Tensor, density: torch.Tensor,
                gen: torch.Generator, rows: torch.Tensor | None = None, batch: int = 2048,
                chunk: int = 256) -> dict[str, torch.Tensor]:
    """Per instance, on fresh inputs: the metrics that cannot be fooled (monosemanticity) beside
    the norm-based ones they replace (kept, labelled, for comparison). The instances of a seed
    (``rows``, its index per instance) are measured on the same inputs (paired), ``chunk``
    instances at a time (full.yaml's penalty study has thousands)."""
    x = sample_features(density, batch, gen, rows)
    parts = [_toy_metrics(model.subset(a, a + chunk), imp[a:a + chunk],
                          density[a:a + chunk], x[a:a + chunk])
             for a in range(0, model.W.shape[0], chunk)]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def _toy_metrics(model: ToyModel, imp: torch.Tensor, density: torch.Tensor,
                 x: torch.Tensor) -> dict[str, torch.Tensor]:
    gain = mono.reconstruction_gain(model, x[:, :GAIN_BATCH], imp, density)
    rep = mono.represented(gain)
    _, h = model.hidden(x)
    alive = mono.alive_units(h)
    near, both = mono.bimodality(h, alive)
    W = model.W
    return {"n_represented": rep.sum(1).float(),
            "mean_dimensionality": mono.mean_dimensionality(W, rep),
            "represented_per_dimension": mono.features_per_dimension(rep, W.shape[-1]),
            "polysemanticity": mono.polysemanticity_alive(W, alive),
            "n_alive": alive.sum(1).float(), "near_mode_share": near,
            "both_modes_share": both,
            "norm_represented": (geometry.feature_norms(W) > 0.5).sum(1).float(),
            "mean_dimensionality_all": geometry.dimensionality(W).mean(1),
            "polysemanticity_all_units": geometry.neuron_polysemanticity(W).mean(1),
            "gain": gain}


def toy_penalty(params: dict, outdir: str | Path, threads: int = 1, device: Device = "cpu",
                checkpoint_seconds: float = 60.0) -> None:
    """Every penalty (and hidden activation, and the negative-bias start) on the toy model with
    a privileged basis, h = act(W x + c), x' = ReLU(W^T h + b), over variant x lambda x
    sparsity x seed, all instances in one batched model (one Segment per variant). The
    instances of a seed share its initial weights and data draws, whatever their variant and
    lambda (paired). Writes instances.csv and features.csv."""
    torch.set_num_threads(threads)
    dev = resolve_device(device)
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    job = Job(out, {"toy_penalty": params}, checkpoint_seconds, device)
    variants = params["variants"]
    grid = penalty_grid(params)
    n, m, inst = params["n"], params["m"], len(grid)
    imp = importance(n, params["importance_decay"], dev).expand(inst, n).contiguous()
    density = as_tensor(1 - grid["sparsity"].to_numpy(), dev, torch.float32)
    density = density[:, None].expand(inst, n).contiguous()
    per_instance = {k: as_tensor(grid["variant"].map(lambda v, k=k: variants[v][k])
                                 .to_numpy(np.float32), dev, torch.float32)
                    for k in ("hidden_bias", "anneal_frac")}

    def train() -> dict:
        seeds = [params["seed"] * 1000 + int(k) for k in grid["seed"]]
        model = ToyModel.init(seeds, n, m, dev, hidden_bias=per_instance["hidden_bias"],
                              privileged=True, segments=_segments(grid, variants))
        lam = as_tensor(grid["lam"].to_numpy(), dev, torch.float32)
        res = train_toy(model, imp, density, params["steps"], params["batch_size"],
                        params["lr"], generator(params["seed"], dev), lam=lam,
                        anneal_frac=per_instance["anneal_frac"],
                        rows=_rows_of(grid["seed"].to_numpy(), dev), job=job)
        metrics = toy_metrics(model, imp, density, generator(params["seed"] + 1, dev),
                              _rows_of(grid["seed"].to_numpy(), dev))
        return {"W": model.W, "loss": res.loss, "penalty": res.penalty,
                "diverged_at": res.diverged_at, "metrics": metrics}

    r = job.unit("train", train)
    W = r["W"].to(dev)
    df = _instance_rows(W, grid, r["loss"], r["diverged_at"]).drop(columns="norm_represented")
    diverged = r["diverged_at"] >= 0
    zero = mono.zero_predictor_loss(imp, density).mean(1).cpu().numpy()
    extra = {"penalty_value": r["penalty"].cpu().numpy(),
             "relative_loss": r["loss"].cpu().numpy() / zero,
             **{k: v.cpu().numpy() for k, v in r["metrics"].items() if k != "gain"}}
    for k, vals in extra.items():
        df[k] = np.where(diverged, np.nan, vals)
    df.to_csv(out / "instances.csv", index=False)
    feats = _feature_rows(W, imp, grid, r["diverged_at"])
    feats["gain"] = np.where(np.repeat(diverged, n), np.nan,
                             r["metrics"]["gain"].reshape(-1).cpu().numpy())
    feats["represented"] = feats["gain"] > mono.REPRESENTED_GAIN
    feats.to_csv(out / "features.csv", index=False)
    job.finish()


def _grid(params: dict, variant: str) -> list[float]:
    """The shortcut variant's declared lambda grid (config ``shortcut.grids``), or lambda = 0
    alone for a variant without one."""
    return [float(v) for v in params["grids"].get(variant, {}).get("lam", [0.0])]


def shortcut_images(params: dict, processed_dir: str | Path | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The 28x28 images and class labels Colored MNIST is built from
    (``superposition.shortcut.dataset``, by the shared loader rose.data.images). For a prepared
    dataset (fashion_mnist, mnist) this is its prepared train + val images only: make_splits
    carves its own train, val, test and test_val from them as for MNIST 5k, and the prepared
    (official) test images stay out of every split for now (evaluating on them is the
    direction's own follow-up)."""
    from rose.data.images import MNIST_SHAPE, load_images

    return load_images(params.get("dataset", "mnist5k"), processed_dir,
                       "superposition.shortcut.dataset", MNIST_SHAPE).pool


def shortcut(params: dict, benchmark: str, seeds: list[int], out_csv: str | Path,
             threads: int = 1, device: Device = "cpu", checkpoint_seconds: float = 60.0,
             processed_dir: str | Path | None = None) -> None:
    """Every variant on one Colored MNIST benchmark: per variant, one instance per
    (seed, lambda), all at once; the seeds' data, initial weights and minibatch order are
    shared by the variants and lambdas (paired). One resumable unit per variant. A benchmark
    listed in ``erm_only`` (a reference such as grayscale, which no primary contrast reads)
    runs the unpenalised variant alone. ``processed_dir``: where a prepared
    ``superposition.shortcut.dataset`` lies (unused for mnist5k)."""
    from rose.data.images import resume_identity
    from rose.superposition.shortcut import evaluate_shortcut, make_splits, train_shortcut

    torch.set_num_threads(threads)
    dev = resolve_device(device)
    X, digits = shortcut_images(params, processed_dir)
    splits = [make_splits(X, digits, benchmark, s) for s in seeds]
    out = Path(out_csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    job = Job(out.parent / benchmark, {"shortcut": params, "benchmark": benchmark,
                                       "seeds": seeds,
                                       **resume_identity(params.get("dataset", "mnist5k"),
                                                         processed_dir)},
              checkpoint_seconds, device)
    frames = []
    variants = {k: v for k, v in params["variants"].items()
                if benchmark not in params["erm_only"] or k == "erm"}
    for name, v in variants.items():
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
