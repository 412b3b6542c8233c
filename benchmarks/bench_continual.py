"""Cost per batch of enforcing each distance's ball (reference features + projection or a
false-position line search, and for fisher the Fisher update) relative to one plain SGD step,
on the quick config's MLP (196-100-100-10), stream batch 10, 5 seeds as one batched model, 1 thread.
Median of many repetitions, measured side by side in one run. Also a whole batch of K = 5 steps
with the ball enforced once at the end and after every step (the per-step projection), each
relative to one plain SGD step, and full.yaml's estimated training cost for direction 2 in
core-hours: the last quick run's measured core-seconds (rose.cost, logs/benchmarks)
per unit of work (instances x batches x K x weights, validation grids and test runs) times
full.yaml's work."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.timing import median_time
from rose.continual.ball import enforce
from rose.continual.distances import DISTANCES, Reference, empirical_fisher
from rose.continual.learner import Settings
from rose.cost import config_core_hours
from rose.nn import StackedNet

ITERS = Settings.line_search_iters      # the learner's default

REPEATS = 200


def _median(fn, repeats: int = REPEATS) -> float:
    return median_time(fn, repeats)


def main() -> dict[str, float]:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    net = StackedNet({"name": "mlp", "hidden": [100, 100]}, (196,), 10)
    theta = net.init(range(5), scheme="xavier")
    params = net.parameters(theta)
    x, y = torch.rand(5, 10, 196, generator=g), torch.randint(0, 10, (5, 10), generator=g)
    opt = torch.optim.SGD(params, lr=0.05)

    def sgd_step():
        loss = F.cross_entropy(net.forward(params, x)[0].transpose(1, 2), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    step = _median(sgd_step)
    fisher = empirical_fisher(net, theta, x, y)
    start = theta.clone()
    moved = start + 0.05 * torch.randn(start.shape, generator=g)
    ratios_radius = {}
    for name in DISTANCES:
        ref = Reference(net, start, x, fisher)
        ratios_radius[name] = ref.distance(name)(moved).mean().detach()
    ratios = {}
    for name in DISTANCES:
        def enforce_once(name=name):
            theta.copy_(moved)
            f = empirical_fisher(net, theta, x, y) if name == "fisher" else fisher
            ref = Reference(net, start, x, f)
            d = ref.distance(name)
            enforce(theta, ref.theta, d, name, 0.5 * d(theta).detach(), ITERS)
        ratios[name] = _median(enforce_once) / step
    batch = {}
    for name in DISTANCES:
        for where in ("end", "step"):
            def one_batch(name=name, where=where):
                theta.copy_(start)
                f = empirical_fisher(net, theta, x, y) if name == "fisher" else fisher
                ref = Reference(net, start, x, f)
                d = ref.distance(name)
                r = torch.full((5,), 0.5 * float(ratios_radius[name]))
                for _ in range(5):
                    sgd_step()
                    if where == "step":
                        enforce(theta, ref.theta, d, name, r, ITERS)
                if where == "end":
                    enforce(theta, ref.theta, d, name, r, ITERS)
            batch[(name, where)] = _median(one_batch, REPEATS // 4) / step
    print(f"one plain SGD step (5 instances, batch 10): {1e3 * step:.2f} ms")
    for name, r in ratios.items():
        how = ("closed form" if name in ("euclidean", "fisher")
               else f"false-position line search, {ITERS} steps")
        print(f"  enforcing {name:9s} per batch: {r:5.2f}x one SGD step ({how}); a batch of "
              f"K = 5 steps: {batch[(name, 'end')]:5.2f}x enforced at the end, "
              f"{batch[(name, 'step')]:5.2f}x enforced after every step")
    out = {**ratios, **{f"{n}_batch_{w}": v for (n, w), v in batch.items()}}
    try:
        hours = full_core_hours()
        print(f"full.yaml, direction 2: about {hours:.0f} core-hours on this CPU (from the "
              "last quick run's measured job times, scaled by instances x batches x K x "
              "weights)")
        out["full_core_hours"] = hours
    except FileNotFoundError as e:
        print(f"full.yaml, direction 2: no estimate ({e}; run the quick config first)")
    return out


def full_core_hours(root: Path = Path(".")) -> float:
    """full.yaml's direction-2 cost in core-hours (rose.cost: the last quick run's
    core-seconds, or the committed ones, times full.yaml's work over quick's)."""
    return config_core_hours(root / "config/full.yaml", ["continual_stream"], root)


if __name__ == "__main__":
    main()
