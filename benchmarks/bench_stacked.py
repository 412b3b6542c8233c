"""The shared stacked model (rose.nn.StackedNet): per-instance training throughput of 20 stacked
instances of the baseline MLP (784-256-256-10, batch 64, momentum SGD) against one model trained
alone (an nn.Module and torch.optim.SGD), and against the same 20 instances through
torch.func.vmap(functional_call). Each step of every loop draws its minibatch from an in-memory
training set (3,500 x 784, each instance its own batch) and reads its loss (the divergence check
every direction makes), as a real training loop does. Measured interleaved in one run.
Goal from the experiment-layer issue: >= 1.5x per instance. Also the stacked step's FLOP rate
as a fraction of a measured fp32 matmul peak.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad_and_value, stack_module_state, vmap

from benchmarks.timing import flops_of, interleaved, matmul_peak
from rose.models import MLP
from rose.nn import StackedNet

INSTANCES, BATCH, STEPS, N = 20, 64, 10, 3500


def main() -> None:
    torch.manual_seed(0)
    data = torch.rand(N, 784)
    labels = torch.randint(0, 10, (N,))
    gen = torch.Generator().manual_seed(0)

    net = StackedNet({"name": "mlp", "hidden": [256, 256]}, (784,), 10)
    theta = net.init(range(INSTANCES))
    leaves = net.parameters(theta)         # aliasing theta's storage
    opt = torch.optim.SGD(leaves, lr=0.05, momentum=0.9)

    def stacked_step() -> float:
        idx = torch.randint(0, N, (INSTANCES, BATCH), generator=gen)
        losses = net.losses(leaves, data[idx], labels[idx])
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        opt.step()
        return losses.max().item()

    single = MLP(784, [256, 256], 10)
    opt1 = torch.optim.SGD(single.parameters(), lr=0.05, momentum=0.9)

    def single_step() -> float:
        idx = torch.randint(0, N, (BATCH,), generator=gen)
        loss = F.cross_entropy(single(data[idx]), labels[idx])
        opt1.zero_grad(set_to_none=True)
        loss.backward()
        opt1.step()
        return loss.item()

    models = [MLP(784, [256, 256], 10) for _ in range(INSTANCES)]
    params, buffers = stack_module_state(models)
    params = {k: v.detach().clone() for k, v in params.items()}
    skeleton = copy.deepcopy(models[0]).to("meta")
    per_instance = vmap(grad_and_value(lambda p, b, x, y: F.cross_entropy(
        functional_call(skeleton, (p, b), (x,)), y)))
    optv = torch.optim.SGD(list(params.values()), lr=0.05, momentum=0.9)

    def vmap_step() -> float:
        idx = torch.randint(0, N, (INSTANCES, BATCH), generator=gen)
        g, losses = per_instance(params, buffers, data[idx], labels[idx])
        for k, v in params.items():
            v.grad = g[k]
        optv.step()
        return losses.max().item()

    def run(step, times: int = 1):
        return lambda: [step() for _ in range(STEPS * times)]

    t_stack, t_one = interleaved(run(stacked_step), run(single_step, INSTANCES), repeats=5)
    t_vmap, t_one2 = interleaved(run(vmap_step), run(single_step, INSTANCES), repeats=3)
    per_stack, per_one = t_stack / (STEPS * INSTANCES), t_one / (STEPS * INSTANCES)
    per_vmap = t_vmap / (STEPS * INSTANCES)
    print(f"  {INSTANCES} stacked instances of 784-256-256-10, batch {BATCH}, "
          f"{torch.get_num_threads()} threads: {1e3 * per_stack:.3f} ms per instance-step vs "
          f"{1e3 * per_one:.3f} ms for one model alone -> {per_one / per_stack:.2f}x per "
          f"instance (goal >= 1.5x); torch.func.vmap {1e3 * per_vmap:.3f} ms -> "
          f"{t_one2 / t_vmap:.2f}x")
    peak = matmul_peak()
    rate = flops_of(stacked_step) / (t_stack / STEPS) / 1e9
    one = flops_of(single_step) / (t_one / (STEPS * INSTANCES)) / 1e9
    print(f"  stacked step {rate:.0f} GFLOP/s = {rate / peak:.2f} of the measured fp32 matmul "
          f"peak ({peak:.0f} GFLOP/s); one model alone {one:.0f} GFLOP/s = {one / peak:.2f}")


if __name__ == "__main__":
    main()
