"""The tuning helper: grids checked before any job, selection on validation only, and a real
grid trained as stacked instances."""

import numpy as np
import pytest
import torch

from rose.nn import StackedNet
from rose.nn.optim import PerInstanceLR
from rose.tuning import Grid, check_grids, select, tune, tuning_table

ALLOWED = {"sgd": {"lr", "momentum"}, "sam": {"lr", "rho"}}


def test_grid_points_are_the_product_in_declared_order():
    g = Grid("sam", {"lr": [0.1, 0.01], "rho": [0.05]})
    assert g.points == [{"lr": 0.1, "rho": 0.05}, {"lr": 0.01, "rho": 0.05}] and g.size == 2


@pytest.mark.parametrize(("grids", "key"), [
    ({"sgd": {"lr": [0.1], "nope": [1]}}, "grids.sgd.nope"),
    ({"sgd": {}}, "grids.sgd"),
    ({"sgd": {"lr": []}}, "grids.sgd.lr"),
    ({"adam": {"lr": [0.1]}}, "grids.adam"),
    ({"sgd": {"lr": [0.1, 0.2]}, "sam": {"rho": [0.05]}}, "grids"),
])
def test_bad_grids_are_refused_naming_the_key(grids, key):
    with pytest.raises(ValueError, match=f"config key {key}[:. ]"):
        check_grids(grids, ALLOWED, "grids")


def test_selection_uses_mean_validation_and_never_a_diverged_point():
    pts = [{"lr": 1.0}, {"lr": 0.1}, {"lr": 0.01}]
    scores = np.array([[0.99, np.nan], [0.80, 0.82], [0.80, 0.84]])
    r = select("sgd", pts, scores)
    assert r.selected_point == {"lr": 0.01} and r.selected_score == pytest.approx(0.82)
    assert select("sgd", pts, scores, higher_is_better=False).selected_point == {"lr": 0.1}
    tie = select("sgd", pts[:2], np.array([[0.5, 0.5], [0.5, 0.5]]))
    assert tie.selected == 0
    table = tuning_table([r])
    assert table.selected.tolist() == [False, False, True]
    assert table.n_diverged.tolist() == [1, 0, 0] and set(table.grid_size) == {3}


def test_a_learning_rate_grid_trains_as_stacked_instances_and_selects_on_validation(digits):
    seeds = [0, 1]
    Xtr, ytr = digits.X["train"], digits.y["train"]
    Xv, yv = digits.X["val"], digits.y["val"]
    net = StackedNet({"name": "mlp", "hidden": [16]}, digits.input_shape, digits.n_classes)

    def train(points, budget):
        lrs = torch.tensor([p["lr"] for p in points for _ in seeds])
        theta = torch.nn.Parameter(net.init(seeds * len(points)))
        opt = PerInstanceLR(torch.optim.SGD([theta], lr=1.0), theta, lrs)
        g = torch.Generator().manual_seed(0)
        for _ in range(budget):
            idx = torch.randint(0, len(ytr), (64,), generator=g)
            opt.zero_grad()
            net.losses(theta, Xtr[idx], ytr[idx], shared=True).sum().backward()
            opt.step()
        _, acc = net.evaluate(theta.detach(), Xv, yv)
        return acc.view(len(points), len(seeds)).numpy()

    r = tune(Grid("sgd", {"lr": [1e-4, 0.3]}), 60, train)
    assert r.selected_point == {"lr": 0.3}            # 60 steps at 1e-4 stay near chance
    assert r.scores[1].mean() > r.scores[0].mean() + 0.3
