"""How features sit in the hidden space (Elhage et al. 2022, section "Feature dimensionality"),
and how concepts sit in a network's units. W is [instances, n, m] (row W_i embeds feature i)
or a single [n, m].
"""

from __future__ import annotations

import numpy as np
import torch

_EPS = 1e-12


def _gram(W: torch.Tensor) -> torch.Tensor:
    return W @ W.transpose(-1, -2)          # (W_i . W_j)


def feature_norms(W: torch.Tensor) -> torch.Tensor:
    """||W_i||: about 1 when feature i is represented, about 0 when it is not."""
    return W.norm(dim=-1)


def superposition(W: torch.Tensor) -> torch.Tensor:
    """sum_{j != i} (W_i_hat . W_j)^2, W_i_hat = W_i / ||W_i|| (0 for an unlearned feature)."""
    g = _gram(W)
    sq = g.diagonal(dim1=-2, dim2=-1)
    total = (g ** 2).sum(-1) / sq.clamp_min(_EPS)   # sum_j (W_i_hat . W_j)^2
    return torch.where(sq > _EPS, total - sq, torch.zeros_like(sq))


def dimensionality(W: torch.Tensor) -> torch.Tensor:
    """D_i = ||W_i||^2 / sum_j (W_i_hat . W_j)^2 = (W_i.W_i)^2 / sum_j (W_i.W_j)^2 (Elhage et al.
    2022; Scherlis et al. 2022's "capacity"). In [0, 1]; 1/2 for an antipodal pair, 2/5 in a
    pentagon; 0 for a feature that is not learned."""
    g = _gram(W)
    sq = g.diagonal(dim1=-2, dim2=-1)
    return sq ** 2 / (g ** 2).sum(-1).clamp_min(_EPS)


def features_per_dimension(W: torch.Tensor) -> torch.Tensor:
    """||W||_F^2 / m; the paper plots its inverse, dimensions per feature, against 1/(1-S)."""
    return (W ** 2).sum((-1, -2)) / W.shape[-1]


def neuron_polysemanticity(W: torch.Tensor) -> torch.Tensor:
    """Per hidden unit k: 1 - max_i W_ik^2 / sum_i W_ik^2 (0 = the unit reads one feature)."""
    sq = W ** 2
    total = sq.sum(-2)
    return torch.where(total > _EPS, 1 - sq.max(-2).values / total.clamp_min(_EPS),
                       torch.zeros_like(total))


def unit_concept_information(acts: np.ndarray, concept: np.ndarray, bins: int = 8) -> np.ndarray:
    """Mutual information (nats) between each unit's activation, discretised into ``bins``
    quantile bins, and a discrete concept, divided by the concept's entropy (1 = the unit
    determines the concept). acts: [samples, units].

    I(A; C) = sum_{a,c} p(a,c) log(p(a,c) / (p(a) p(c))): the same number as
    sklearn.metrics.mutual_info_score per unit (tested), computed for all units at once from
    one contingency tensor, because the per-unit calls dominated the evaluation time.
    """
    edges = np.quantile(acts, np.linspace(0, 1, bins + 1)[1:-1], axis=0).T   # [units, bins-1]
    codes = (acts[:, :, None] >= edges[None]).sum(-1)                        # [samples, units]
    _, c = np.unique(concept, return_inverse=True)
    joint = np.zeros((acts.shape[1], bins, c.max() + 1))
    np.add.at(joint, (np.arange(acts.shape[1])[None, :], codes, c[:, None]), 1.0)
    joint /= len(concept)
    pa, pc = joint.sum(2, keepdims=True), joint.sum(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(joint > 0, joint * np.log(joint / (pa * pc)), 0.0)
    p = pc[0, 0]
    h = float(-(p[p > 0] * np.log(p[p > 0])).sum())
    return terms.sum((1, 2)) / h


def concept_selectivity(info_a: np.ndarray, info_b: np.ndarray, alive: np.ndarray,
                        threshold: float, names: tuple[str, str] = ("a", "b")) -> dict[str, float]:
    """Fractions of the alive units that carry concept a only, b only, both (polysemantic in
    the sense that matters for shortcuts) or neither, by normalised MI >= ``threshold``."""
    a, b = info_a >= threshold, info_b >= threshold
    n = max(int(alive.sum()), 1)
    return {f"frac_only_{names[0]}": float((a & ~b & alive).sum() / n),
            f"frac_only_{names[1]}": float((b & ~a & alive).sum() / n),
            "frac_both": float((a & b & alive).sum() / n),
            "frac_neither": float((~a & ~b & alive).sum() / n),
            "frac_alive": float(alive.mean())}


def class_selectivity(acts: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Class selectivity index per unit (Morcos et al. 2018, section 2.2; Leavitt & Morcos
    2021, eq. 1): with mu_c the unit's mean activation over the samples of class c,

        mu_max = max_c mu_c,  mu_-max = mean of mu_c over the other classes,
        selectivity = (mu_max - mu_-max) / (mu_max + mu_-max),

    1 when the unit is active on one class only, 0 when every class gets the same mean (and
    for a unit that is never active, 0 / 0 := 0). The index is defined for non-negative
    activations (both papers measure ReLU units); a unit with a negative activation (SoLU's
    LayerNorm, tanh) gets NaN rather than a number outside [0, 1]. acts: [samples, units];
    classes: [samples] (only the classes present count)."""
    acts = np.asarray(acts, dtype=np.float64)
    _, c = np.unique(classes, return_inverse=True)
    counts = np.bincount(c)
    mu = np.stack([acts[c == k].mean(0) for k in range(len(counts))])     # [classes, units]
    top = mu.argmax(0)
    mu_max = mu[top, np.arange(mu.shape[1])]
    mu_rest = (mu.sum(0) - mu_max) / max(len(counts) - 1, 1)
    total = mu_max + mu_rest
    with np.errstate(divide="ignore", invalid="ignore"):
        sel = np.where(total > 0, (mu_max - mu_rest) / total, 0.0)
    return np.where((acts < 0).any(0), np.nan, sel)
