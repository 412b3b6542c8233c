"""Cost per batch of enforcing each distance's ball (reference features + projection or
bisection, and for fisher the Fisher update) relative to one plain SGD step, on the quick
config's MLP (196-100-100-10), stream batch 10, 5 seeds as one batched model, 1 thread.
Median of many repetitions, measured side by side in one run."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmarks.timing import median_time
from rose.continual.ball import enforce
from rose.continual.distances import DISTANCES, Reference, empirical_fisher
from rose.nn import StackedNet

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
    ratios = {}
    for name in DISTANCES:
        def enforce_once(name=name):
            theta.copy_(moved)
            f = empirical_fisher(net, theta, x, y) if name == "fisher" else fisher
            ref = Reference(net, start, x, f)
            d = ref.distance(name)
            enforce(theta, ref.theta, d, name, 0.5 * d(theta).detach())
        ratios[name] = _median(enforce_once) / step
    print(f"one plain SGD step (5 instances, batch 10): {1e3 * step:.2f} ms")
    for name, r in ratios.items():
        how = "closed form" if name in ("euclidean", "fisher") else "bisection, 20 iterations"
        print(f"  enforcing {name:9s} per batch: {r:5.2f}x one SGD step ({how}; "
              f"K = 5 steps cost 5x)")
    return ratios


if __name__ == "__main__":
    main()
