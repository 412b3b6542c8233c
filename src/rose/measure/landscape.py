"""Loss landscapes and optimisation trajectories of stacked models (theta [S, P], one model per
row; rose.explore.stacked.StackedNet).

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

from rose.explore.stacked import StackedNet


def filter_normalized_direction(net: StackedNet, theta: torch.Tensor,
                                generator: torch.Generator) -> torch.Tensor:
    """A random direction [S, P] with every filter scaled to the weights' filter norm."""
    d = torch.zeros_like(theta)
    for off, size, shape in net.filter_groups():
        if len(shape) < 2:
            continue                                  # biases: zero (ignore='biasbn')
        w = theta[:, off:off + size].reshape(theta.shape[0], shape[0], -1)
        r = torch.randn(w.shape, generator=generator)
        r = r * w.norm(dim=-1, keepdim=True) / (r.norm(dim=-1, keepdim=True) + 1e-10)
        d[:, off:off + size] = r.reshape(theta.shape[0], -1)
    return d


@torch.no_grad()
def loss_curve(net: StackedNet, theta: torch.Tensor, d: torch.Tensor, X: torch.Tensor,
               y: torch.Tensor, alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(loss, accuracy), each [len(alphas), S], along theta + a d on a shared set."""
    out = [net.accuracy(theta + float(a) * d, X, y) for a in alphas]
    return (np.stack([o[0].numpy() for o in out]), np.stack([o[1].numpy() for o in out]))


@torch.no_grad()
def loss_surface(net: StackedNet, theta: torch.Tensor, d1: torch.Tensor, d2: torch.Tensor,
                 X: torch.Tensor, y: torch.Tensor, grid: np.ndarray) -> np.ndarray:
    """Loss [len(grid), len(grid), S] at theta + a d1 + b d2 (a down the rows)."""
    return np.stack([np.stack([net.accuracy(theta + float(a) * d1 + float(b) * d2, X, y)[0]
                               .numpy() for b in grid]) for a in grid])


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
