"""Direction 1 building blocks, measured side by side in one run (1 thread, the baseline MLP
784-256-256-10 on a batch of 64 MNIST-shaped inputs):

- one SAM step / one SGD step (goal <= 2.1: SAM needs two gradients)
- one HVP in rose.measure.hessian.flat_hvp (double backward on a cached gradient graph, as
  power iteration uses it on a fixed batch; also timed with the graph built, for a single HVP)
  vs a plain double-backward HVP from scratch and torch.func's jvp of grad. Goal: ratio to the
  faster of those two <= 1.0.
- the direction's trainer: one SGD step of 5 seeds stacked in one theta [5, P]
  (rose.nn.StackedNet, the functional path direction 1 trains through) vs 5 separate models
  stepped in a loop, on the quick config's MLP 784-128-10 with batch 100 (below 1: stacking is
  faster), and the stacked SAM step / stacked SGD step.
- one GSAM step / one SGD step (goal <= 2.1: two gradients plus a decomposition).
- equal tuning: the whole tuning of sgd and contour_eq as the quick config runs it, the grid
  points stacked as rows of one run (rose.nn.optim.PerInstanceLR) vs one run per point (the
  seeds stacked), interleaved (below 1: stacking the grid is faster; the trainer stacks).
- full.yaml's estimated cost for direction 1 in core-hours (rose.cost): the measured
  core-seconds per unit of work of the last quick run times full.yaml's work, work
  = rows x epochs x (training examples x gradient evaluations per step + evaluated examples / 3)
  x parameters, summed over settings, arms and grid points (the measurements' HVPs are left
  out, so it is a lower bound).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from benchmarks.timing import interleaved, median_time
from rose import layout
from rose.cost import config_core_hours
from rose.explore.experiments import arms_for
from rose.explore.sam import SAM
from rose.measure.hessian import double_backward_hvp, flat_hvp, jvp_hvp
from rose.nn import StackedNet


def _mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 256), torch.nn.ReLU(),
                               torch.nn.Linear(256, 256), torch.nn.ReLU(),
                               torch.nn.Linear(256, 10))


def _sam_step(x: torch.Tensor, y: torch.Tensor, alpha: float):
    """One SAM (alpha = 0) or GSAM step of a fresh baseline MLP, as a callable."""
    model = _mlp()
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.05, alpha=alpha, lr=0.01, momentum=0.9)

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss
    return lambda: opt.step(closure)


def main() -> dict[str, float]:
    torch.set_num_threads(1)
    x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
    sgd_model = _mlp()
    sgd = torch.optim.SGD(sgd_model.parameters(), lr=0.01, momentum=0.9)

    def sgd_step():
        sgd.zero_grad(set_to_none=True)
        F.cross_entropy(sgd_model(x), y).backward()
        sgd.step()
    t_sgd, t_sam = interleaved(sgd_step, _sam_step(x, y, alpha=0.0), 300)
    t_sgd2, t_gsam = interleaved(sgd_step, _sam_step(x, y, alpha=0.4), 300)

    model = _mlp()
    ours, dim = flat_hvp(model, F.cross_entropy, x, y)
    func, _ = jvp_hvp(model, F.cross_entropy, x, y)
    plain = double_backward_hvp(model, F.cross_entropy, x, y)
    v = torch.randn(dim)
    t_ours = median_time(lambda: ours(v), 50)
    t_first = median_time(lambda: flat_hvp(model, F.cross_entropy, x, y)[0](v), 50)
    t_func = median_time(lambda: func(v), 50)
    t_plain = median_time(lambda: plain(v), 50)
    faster = min(t_func, t_plain)

    S = 5
    X, Y = torch.rand(S, 100, 1, 28, 28), torch.randint(0, 10, (S, 100))
    net = StackedNet({"name": "mlp", "hidden": [128]}, (1, 28, 28), 10)

    def build():
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 128),
                                   torch.nn.ReLU(), torch.nn.Linear(128, 10))
    theta = torch.nn.Parameter(net.init(list(range(S))))
    st_sgd = torch.optim.SGD([theta], lr=0.01, momentum=0.9)
    theta_sam = torch.nn.Parameter(theta.detach().clone())
    st_sam = SAM([theta_sam], torch.optim.SGD, rho=0.05, batched=True, lr=0.01, momentum=0.9)
    models = [build() for _ in range(S)]
    opts = [torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for m in models]

    def stacked_step():
        st_sgd.zero_grad(set_to_none=True)
        net.losses(theta, X, Y).sum().backward()
        st_sgd.step()

    def loop_step():
        for s_, (m, o) in enumerate(zip(models, opts, strict=True)):
            o.zero_grad(set_to_none=True)
            F.cross_entropy(m(X[s_]), Y[s_]).backward()
            o.step()

    def st_closure():
        st_sam.zero_grad(set_to_none=True)
        loss = net.losses(theta_sam, X, Y)
        loss.sum().backward()
        return loss

    def stacked_sam_step():
        st_sam.step(st_closure)
    t_stacked, t_loop = interleaved(stacked_step, loop_step, 200)
    t_grid, t_grid_loop = _grid_runs()
    t_st_sgd, t_st_sam = interleaved(stacked_step, stacked_sam_step, 200)
    print(f"SAM step {1e3 * t_sam:.2f} ms / SGD step {1e3 * t_sgd:.2f} ms = "
          f"{t_sam / t_sgd:.2f} (goal <= 2.1)")
    print(f"GSAM step {1e3 * t_gsam:.2f} ms / SGD step {1e3 * t_sgd2:.2f} ms = "
          f"{t_gsam / t_sgd2:.2f} (goal <= 2.1)")
    print(f"tuning sgd and contour_eq on quick's mnist_noisy (their grids x {S} seeds, 2 epochs): "
          f"points stacked {t_grid:.1f} s / one run per point {t_grid_loop:.1f} s = "
          f"{t_grid / t_grid_loop:.2f} (below 1: stacking the grid is faster; the trainer "
          "stacks)")
    hours = full_core_hours()
    print(f"full.yaml, direction 1: about {hours:.0f} core-hours on this CPU (from the last "
          "quick run's measured core-seconds per unit of work; measurements left out)")
    print(f"HVP, {dim} parameters: ours (cached gradient graph) {1e3 * t_ours:.2f} ms per HVP "
          f"({1e3 * t_first:.2f} ms for the first, graph included); plain double-backward "
          f"{1e3 * t_plain:.2f} ms; torch.func jvp-of-grad {1e3 * t_func:.2f} ms -> ours / "
          f"faster = {t_ours / faster:.2f} per HVP (goal <= 1.0), "
          f"{t_first / faster:.2f} for a single HVP")
    print(f"{S} seeds, MLP 784-128-10, batch 100: stacked SGD step {1e3 * t_stacked:.2f} ms / "
          f"{S} separate models {1e3 * t_loop:.2f} ms = {t_stacked / t_loop:.2f} (informs design); "
          f"stacked SAM / stacked SGD = {t_st_sam / t_st_sgd:.2f}")
    return {"sam_over_sgd": t_sam / t_sgd, "hvp_ratio": t_ours / faster,
            "first_hvp_ratio": t_first / faster, "stacked_over_loop": t_stacked / t_loop,
            "stacked_sam_over_sgd": t_st_sam / t_st_sgd, "gsam_over_sgd": t_gsam / t_sgd2,
            "grid_stacked_over_loop": t_grid / t_grid_loop, "full_core_hours": hours}


def _grid_runs(repeats: int = 2) -> tuple[float, float]:
    """Tuning two arms as the quick config does (mnist_noisy, their grid points x 5 seeds, 2
    epochs): the points stacked as rows of one run vs one run per point (seeds stacked), the
    whole trainer (steps, evaluations, the walk) for sgd and the contour arm; interleaved."""
    from snakemake.utils import validate

    from rose.engine import NoJob
    from rose.explore.experiments import load_setting
    from rose.explore.trainer import Base
    from rose.explore.tuned import tune_arm

    cfg = yaml.safe_load(Path("config/quick.yaml").read_text())
    validate(cfg, "workflow/schemas/config.schema.yaml")
    b = {**cfg["explore"], "epochs": 2}
    data, spec = load_setting(b, "mnist_noisy", cfg["seeds"], layout.processed(cfg["name"]))
    net = StackedNet(spec["model"], spec["input_shape"], data.n_classes)
    theta0 = net.init(cfg["seeds"])
    base = Base(2, b["batch_size"], b["lr"], b["momentum"], b["weight_decay"])
    arms = [a for a in arms_for(b, "mnist_noisy") if a.name in ("sgd", "contour_eq")]

    def run(stack):
        return lambda: [tune_arm(net, theta0, data, a, base, cfg["seeds"], NoJob(), stack)
                        for a in arms]
    return interleaved(run(True), run(False), repeats)


def full_core_hours(root: Path = Path(".")) -> float:
    """full.yaml's direction-1 cost in core-hours (rose.cost: the last quick run's
    core-seconds, or the committed ones, times full.yaml's work over quick's)."""
    return config_core_hours(root / "config/full.yaml", ["explore_setting"], root)


if __name__ == "__main__":
    main()
