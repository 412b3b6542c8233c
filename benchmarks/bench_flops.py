"""Each direction's training step as a fraction of the machine's measured fp32 matmul peak: the
FLOPs of one step (torch.utils.flop_counter: matmuls and convolutions) over its median wall
time, for the step shapes the quick config trains (instances stacked as the jobs stack them),
all measured in one run on the configured number of threads."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmarks.timing import flops_of, matmul_peak, median_time
from rose.nn import StackedNet
from rose.superposition.toy_model import ToyModel, importance, train_toy

# (direction, what, arch, input, classes, instances, batch): config/quick.yaml's shapes
STEPS = (
    ("1 explore", "MLP 784-128-10, 5 seeds, batch 100", {"name": "mlp", "hidden": [128]},
     (1, 28, 28), 10, 5, 100),
    ("1 explore", "CNN width 8 on 8x8 digits, 5 seeds, batch 50", {"name": "cnn", "width": 8},
     (1, 8, 8), 10, 5, 50),
    ("2 continual", "MLP 196-100-100-10, 165 instances (33 arms x 5 seeds), batch 10",
     {"name": "mlp", "hidden": [100, 100]}, (196,), 10, 165, 10),
    ("3a active", "MLP 588-64-10, 50 instances (10 acquisitions x 5 seeds), batch 64",
     {"name": "mlp", "hidden": [64]}, (588,), 10, 50, 64),
    ("3b superposition", "MLP 392-64-64-1, 15 instances (3 lambdas x 5 seeds), batch 256",
     {"name": "mlp", "hidden": [64, 64]}, (392,), 1, 15, 256),
)


def _stacked_step(arch, shape, classes, instances, batch):
    net = StackedNet(arch, shape, max(classes, 2) if classes > 1 else 1)
    theta = net.init(range(instances), scheme="xavier")
    params = net.parameters(theta)
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    x = torch.rand(instances, batch, *shape)
    y = torch.randint(0, max(classes, 2), (instances, batch))

    def step():
        out = net.forward(params, x)[0]
        loss = (F.binary_cross_entropy_with_logits(out[..., 0], y.float()) if classes == 1
                else F.cross_entropy(out.transpose(1, 2), y))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def main() -> None:
    peak = matmul_peak()
    print(f"  measured fp32 matmul peak: {peak:.0f} GFLOP/s ({torch.get_num_threads()} threads)")
    for direction, what, arch, shape, classes, instances, batch in STEPS:
        step = _stacked_step(arch, shape, classes, instances, batch)
        t = median_time(step, 30)
        rate = flops_of(step) / t / 1e9
        print(f"  {direction:<17} {what}: {1e3 * t:.2f} ms per step, {rate:.1f} GFLOP/s = "
              f"{rate / peak:.2f} of peak")
    # toy models: elementwise and tiny matmuls, far from any matmul peak by construction
    n, m, inst = 20, 5, 42
    imp = importance(n, 0.7).expand(inst, n)
    density = torch.full((inst, n), 0.1)

    def toy():
        model = ToyModel.init(range(inst), n, m)
        train_toy(model, imp, density, 20, 1024, 1e-3, torch.Generator().manual_seed(0))
    t = median_time(toy, 5) / 20
    rate = flops_of(toy) / 20 / t / 1e9
    print(f"  {'3b superposition':<17} toy model n=20 m=5, {inst} instances, batch 1024: "
          f"{1e3 * t:.2f} ms per step, {rate:.2f} GFLOP/s = {rate / peak:.3f} of peak")


if __name__ == "__main__":
    main()
