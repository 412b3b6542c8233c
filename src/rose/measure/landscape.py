"""Loss landscapes and optimisation trajectories of stacked models (theta [S, P], one model per
row; rose.nn.StackedNet).

filter_normalized_direction
    Li et al. 2018 (tomgoldstein/loss-landscape@64ef4d5, net_plotter.py): a Gaussian direction
    per parameter tensor, each output filter / neuron rescaled to the norm of the same filter of
    the weights, d_i <- d_i ||w_i|| / (||d_i|| + 1e-10); 1-D tensors (biases) zeroed, as with
    ignore='biasbn'. Makes curves comparable across networks whose weights differ in scale.
loss_curve / loss_surface
    L(theta + a d) on a 1-D grid and L(theta + a d1 + b d2) on a 2-D grid.
trajectory_pca
    The trajectory's snapshots minus the final point, projected on their first two principal
    components (the paper's trajectory plots; random directions show nothing in high
    dimension, its section 7); plus path length and tortuosity (path length / displacement).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.decomposition import PCA

from rose.nn import StackedNet


def random_rows(shape: tuple[int, ...] | torch.Size, generator: torch.Generator,
                device: torch.device, rows: torch.Tensor | None = None) -> torch.Tensor:
    """Standard normal draws of ``shape`` [S, ...]; with ``rows`` one draw per seed index,
    repeated for every row of that seed (row i gets draw rows[i])."""
    if rows is None:
        return torch.randn(shape, generator=generator, device=device)
    n = int(rows.max()) + 1
    return torch.randn((n, *shape[1:]), generator=generator, device=device)[rows]


def filter_normalized_direction(net: StackedNet, theta: torch.Tensor,
                                generator: torch.Generator,
                                rows: torch.Tensor | None = None) -> torch.Tensor:
    """A random direction [S, P] with every filter scaled to the weights' filter norm; biases
    zero (ignore='biasbn'). With ``rows`` [S] (each row's seed index) one Gaussian draw per
    seed is shared by that seed's rows (common random numbers across grid points)."""
    r = random_rows(theta.shape, generator, theta.device, rows)
    d = r * net.filter_norm(theta) / (net.filter_norm(r) + 1e-10)
    return d * net.weight_mask(theta.device)


def loss_curve(net: StackedNet, theta: torch.Tensor, d: torch.Tensor, X: torch.Tensor,
               y: torch.Tensor, alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(loss, accuracy), each [len(alphas), S], along theta + a d on a shared set."""
    with torch.no_grad():
        out = [net.evaluate(theta + float(a) * d, X, y) for a in alphas]
        return (np.stack([o[0].cpu().numpy() for o in out]),
                np.stack([o[1].cpu().numpy() for o in out]))


def loss_surface(net: StackedNet, theta: torch.Tensor, d1: torch.Tensor, d2: torch.Tensor,
                 X: torch.Tensor, y: torch.Tensor, grid: np.ndarray) -> np.ndarray:
    """Loss [len(grid), len(grid), S] at theta + a d1 + b d2 (a down the rows)."""
    with torch.no_grad():
        return np.stack([np.stack([net.evaluate(theta + float(a) * d1 + float(b) * d2, X, y)[0]
                                   .cpu().numpy() for b in grid]) for a in grid])


def trajectory_pca(snapshots: np.ndarray) -> dict[str, np.ndarray | float]:
    """``snapshots`` [T, P] of one model's weights along training. Returns the 2-D coordinates
    of every snapshot relative to the last, the explained variance ratio of the two axes, the
    path length sum ||w_{t+1} - w_t||, the displacement ||w_T - w_0|| and their ratio."""
    rel = snapshots - snapshots[-1]
    pca = PCA(n_components=2, svd_solver="full").fit(rel)
    steps = np.linalg.norm(np.diff(snapshots, axis=0), axis=1)
    path = float(steps.sum())
    disp = float(np.linalg.norm(snapshots[-1] - snapshots[0]))
    return {"coords": pca.transform(rel) - pca.transform(np.zeros((1, rel.shape[1]))),
            "explained": pca.explained_variance_ratio_, "path_length": path,
            "displacement": disp, "tortuosity": path / max(disp, 1e-12)}
