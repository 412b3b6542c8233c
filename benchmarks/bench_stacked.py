"""The shared stacked model (rose.nn.StackedNet): per-instance training throughput of 20 stacked
instances of the baseline MLP (784-256-256-10, batch 64, momentum SGD) against one model trained
alone (an nn.Module and torch.optim.SGD), and against the same 20 instances through
torch.func.vmap(functional_call), measured interleaved in one run. Goal: >= 1.5x per instance.
Also the FLOP rate of the stacked step as a fraction of a measured fp32 matmul peak.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, stack_module_state, vmap

from benchmarks.timing import flops_of, interleaved, matmul_peak
from rose.models import MLP
from rose.nn import StackedNet

INSTANCES, BATCH, STEPS = 20, 64, 10
ARCH = {"name": "mlp", "hidden": [256, 256]}


def main() -> None:
    torch.manual_seed(0)
    net = StackedNet(ARCH, (1, 28, 28), 10)
    theta = torch.nn.Parameter(net.init(range(INSTANCES)))
    opt = torch.optim.SGD([theta], lr=0.05, momentum=0.9)
    X = torch.rand(INSTANCES, BATCH, 1, 28, 28)
    Y = torch.randint(0, 10, (INSTANCES, BATCH))

    def stacked_step() -> None:
        opt.zero_grad(set_to_none=True)
        net.losses(theta, X, Y).sum().backward()
        opt.step()

    single = MLP(784, [256, 256], 10)
    opt1 = torch.optim.SGD(single.parameters(), lr=0.05, momentum=0.9)

    def single_step() -> None:
        opt1.zero_grad(set_to_none=True)
        F.cross_entropy(single(X[0]), Y[0]).backward()
        opt1.step()

    models = [MLP(784, [256, 256], 10) for _ in range(INSTANCES)]
    params, buffers = stack_module_state(models)
    params = {k: v.detach().clone() for k, v in params.items()}
    skeleton = copy.deepcopy(models[0]).to("meta")
    per_instance_grad = vmap(grad(lambda p, b, x, y: F.cross_entropy(
        functional_call(skeleton, (p, b), (x,)), y)))
    optv = torch.optim.SGD(list(params.values()), lr=0.05, momentum=0.9)

    def vmap_step() -> None:
        g = per_instance_grad(params, buffers, X, Y)
        for k, v in params.items():
            v.grad = g[k]
        optv.step()

    def run(step):
        return lambda: [step() for _ in range(STEPS)]

    t_stack, t_one = interleaved(run(stacked_step), run(single_step), repeats=5)
    t_vmap, _ = interleaved(run(vmap_step), run(single_step), repeats=3)
    per_stack = t_stack / (STEPS * INSTANCES)
    per_one = t_one / STEPS
    per_vmap = t_vmap / (STEPS * INSTANCES)
    print(f"  {INSTANCES} stacked instances of 784-256-256-10, batch {BATCH}, "
          f"{torch.get_num_threads()} threads: {1e3 * per_stack:.3f} ms per instance-step vs "
          f"{1e3 * per_one:.3f} ms for one model alone -> {per_one / per_stack:.2f}x per "
          f"instance (goal >= 1.5x); torch.func.vmap {1e3 * per_vmap:.3f} ms -> "
          f"{per_one / per_vmap:.2f}x")
    peak = matmul_peak()
    rate = flops_of(stacked_step) / (t_stack / STEPS) / 1e9
    print(f"  stacked step {rate:.0f} GFLOP/s = {rate / peak:.2f} of the measured fp32 matmul "
          f"peak ({peak:.0f} GFLOP/s)")


if __name__ == "__main__":
    main()
