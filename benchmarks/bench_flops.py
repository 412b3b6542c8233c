"""Each direction's training step as a fraction of the machine's measured fp32 matmul peak, at the
shapes config/paper.yaml trains: the FLOPs of one step (torch.utils.flop_counter: matmuls and
convolutions) over its median time, all measured in one run on one thread (the workflow's jobs
run on one) in CPU seconds of this process (so other work on the machine does not count).

The baseline's MLP and CNN train as rose.train trains them (an nn.Module, momentum SGD, the CNN
in channels_last; contiguous beside it); the directions' models as their jobs stack them
(rose.nn.StackedNet, instances along a leading axis). The peak is the larger of two
measurements, before and after the directions' steps (the cores are shared). A row below half
the peak prints why its shape cannot reach it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.timing import cpu_seconds, flops_of, interleaved, matmul_peak, per_call
from rose import cost
from rose.models import build_model
from rose.nn import StackedNet
from rose.superposition.toy_model import ToyModel, importance, train_toy
from rose.train import standard_step

CONFIG = Path("config/paper.yaml")
TARGET = 0.5          # of the matmul peak
REPEATS = 15


@dataclass(frozen=True)
class Step:
    """One direction's training step: its model, input shape, classes, stacked instances and
    batch per instance; ``why``: what keeps the shape from the matmul peak."""

    direction: str
    what: str
    arch: dict
    shape: tuple[int, ...]
    classes: int
    instances: int
    batch: int
    why: str


def paper_steps(cfg: dict) -> list[Step]:
    """The stacked training steps of the directions' blocks of ``cfg``."""
    from rose.continual.experiments import arms_from_config
    from rose.explore.experiments import setting_seeds

    seeds = len(cfg["seeds"])
    steps = []
    ex = cfg["explore"]
    for name, st in ex["settings"].items():
        shape = cost.DATASETS[st["dataset"]].shape
        batch = st.get("batch_size", ex["batch_size"])
        side = "x".join(map(str, shape[1:]))
        # the selected point's run: the setting's seeds stacked (its own, else the direction's)
        n = len(setting_seeds(ex, name, ex.get("seeds", cfg["seeds"])))
        steps.append(Step("1 explore", f"{name}: {_arch(st['model'])} on {side}, {n} seeds "
                          f"stacked, batch {batch}", st["model"], shape, 10, n, batch,
                          _why_mlp(st["model"], batch, math.prod(shape), "per seed")))
    co = cfg["continual"]
    side = 8 if co.get("dataset") == "digits" else 28 // co.get("downsample", 2)
    arms = len(arms_from_config(co))
    mlp = {"name": "mlp", "hidden": co["model"]["hidden"]}
    steps.append(Step("2 continual", f"{_arch(mlp, side * side)}, {arms * seeds} instances "
                      f"({arms} arms x {seeds} seeds), batch {co['batch_size']}", mlp,
                      (side * side,), 10, arms * seeds, co["batch_size"],
                      f"batch {co['batch_size']} per instance (a stream's minibatch): each weight "
                      f"is loaded for {co['batch_size']} multiply-adds"))
    ac = cfg["active"]
    mlp = {"name": "mlp", "hidden": ac["model"]["hidden"]}
    n_acq = len(ac["acquisitions"])
    steps.append(Step("3a active", f"{_arch(mlp, 588)}, {n_acq * seeds} instances ({n_acq} "
                      f"acquisitions x {seeds} seeds), batch {ac['model']['batch_size']}", mlp,
                      (588,), 10, n_acq * seeds, ac["model"]["batch_size"],
                      _why_mlp(mlp, ac["model"]["batch_size"], 588, "per instance")))
    sc = cfg["superposition"]["shortcut"]
    mlp = {"name": "mlp", "hidden": sc["hidden"]}
    lams = max((len(g["lam"]) for g in sc.get("grids", {}).values()), default=1)
    steps.append(Step("3b superposition", f"{_arch(mlp, cost.CMNIST_INPUT, 1)}, {lams * seeds} "
                      f"instances ({lams} lambdas x {seeds} seeds), batch {sc['batch_size']}",
                      mlp, (cost.CMNIST_INPUT,), 1, lams * seeds, sc["batch_size"],
                      _why_mlp(mlp, sc["batch_size"], cost.CMNIST_INPUT, "per instance") +
                      ", one output unit"))
    return steps


def _why_mlp(model: dict, batch: int, inputs: int, per: str) -> str:
    if model["name"] != "mlp":
        return "a small CNN: convolutions over few channels, memory-bound pooling"
    return (f"hidden {model['hidden']} at batch {batch}: {per}, matmuls of {batch} x {inputs} x "
            f"{model['hidden'][0]} and smaller")


def _arch(model: dict, inputs: int = 784, out: int = 10) -> str:
    if model["name"] == "cnn":
        return f"CNN width {model.get('width', 16)}"
    return "MLP " + "-".join(map(str, [inputs, *model["hidden"], out]))


def stacked_step(s: Step) -> Callable[[], None]:
    """One training step of ``s.instances`` stacked models (momentum SGD)."""
    net = StackedNet(s.arch, s.shape, max(s.classes, 2) if s.classes > 1 else 1)
    params = net.parameters(net.init(range(s.instances), scheme="xavier"))
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    x = torch.rand(s.instances, s.batch, *s.shape)
    y = torch.randint(0, max(s.classes, 2), (s.instances, s.batch))

    def step() -> None:
        out = net.forward(params, x)[0]
        loss = (F.binary_cross_entropy_with_logits(out[..., 0], y.float()) if s.classes == 1
                else F.cross_entropy(out.transpose(1, 2), y))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def baseline_step(model: dict, batch: int, channels_last: bool = False) -> Callable[[], object]:
    """rose.train's step of the baseline's ``model`` on Fashion-MNIST-shaped images."""
    torch.manual_seed(0)
    net = build_model(model, (1, 28, 28), 10)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    x, y = torch.rand(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    return lambda: standard_step(net, x, y, opt)


def _rate(flops: int, seconds: float) -> float:
    return flops / seconds / 1e9


def _row(direction: str, what: str, seconds: float, flops: int, peak: float,
         why: str = "") -> None:
    """One step's rate as a fraction of the peak; why, when below TARGET."""
    rate = _rate(flops, seconds)
    print(f"  {direction:<17} {what}: {1e3 * seconds:.2f} ms per step, {rate:.1f} GFLOP/s = "
          f"{rate / peak:.2f} of peak")
    if round(rate / peak, 2) < TARGET and why:
        print(f"  {'':<17}   below {TARGET}: {why}")


def baseline_rows(cfg: dict, peak: float) -> None:
    """The baseline's methods; a CNN contiguous and channels_last side by side."""
    b = cfg["baseline"]
    for method, spec in b["methods"].items():
        model, batch = spec.get("model", b["model"]), b["batch_size"]
        what = f"{method}: {_arch(model)} on 28x28, batch {batch}"
        if model["name"] != "cnn":
            step = baseline_step(model, batch)
            _row("0 baseline", what, per_call(step, REPEATS, clock=cpu_seconds),
                 flops_of(step), peak, "its matmuls (128 x 784 x 256 and smaller) are about 70% "
                 "of the step (torch.profiler), the SGD update and elementwise passes the rest")
            continue
        last, contig = baseline_step(model, batch, True), baseline_step(model, batch)
        t_last, t_contig = interleaved(last, contig, REPEATS, clock=cpu_seconds)
        flops = flops_of(last)
        why = ("convolutions (1 and 16 input channels: 9 and 144 multiply-adds per output) are "
               "under half the step (torch.profiler); ReLU backward, max-pooling and layout "
               "copies over 128 x 16 x 28 x 28 activations are memory-bound")
        _row("0 baseline", what + ", channels_last", t_last, flops, peak, why)
        _row("0 baseline", what + ", contiguous", t_contig, flops, peak, why)
        print(f"  {'':<17}   channels_last / contiguous speed: {t_contig / t_last:.2f}x")


def toy_row(cfg: dict, peak: float) -> None:
    """The toy model of the superposition block's main sweep (all sparsities stacked)."""
    main = cfg["superposition"]["toy"]["main"]
    n, m = main["n"], main["m"]
    inst = len(main["sparsities"]) * main.get("seeds", 1)
    batch = main.get("batch_size", 1024)
    imp = importance(n, main["importance_decay"]).expand(inst, n)
    density = torch.full((inst, n), 0.1)

    def toy() -> None:
        model = ToyModel.init(range(inst), n, m)
        train_toy(model, imp, density, 20, batch, 1e-3, torch.Generator().manual_seed(0))
    t = per_call(toy, 5, clock=cpu_seconds) / 20
    _row("3b superposition", f"toy model n={n} m={m}, {inst} instances, batch {batch}", t,
         flops_of(toy) // 20, peak, f"{n} features into {m} dimensions: elementwise work and "
         f"matmuls of {batch} x {n} x {m}, far from any matmul peak by construction")


def main() -> None:
    torch.set_num_threads(1)
    cfg = cost.load_config(CONFIG)
    rows: list[tuple[str, str, float, int, str]] = []
    before = matmul_peak(clock=cpu_seconds)
    for s in paper_steps(cfg):
        step = stacked_step(s)
        rows.append((s.direction, s.what, per_call(step, REPEATS, clock=cpu_seconds),
                     flops_of(step), s.why))
    after = matmul_peak(clock=cpu_seconds)
    peak = max(before, after)
    print(f"  measured fp32 matmul peak: {peak:.0f} GFLOP/s (1 thread; {before:.0f} before the "
          f"directions' steps, {after:.0f} after); shapes of {CONFIG}")
    baseline_rows(cfg, peak)
    for row in rows:
        _row(*row[:4], peak, row[4])
    toy_row(cfg, peak)


if __name__ == "__main__":
    main()
