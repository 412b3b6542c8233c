"""Hidden activations of the stacked networks, applied over the last (unit) dimension.

relu, gelu, tanh  the usual ones (torch.nn.functional)
solu              LayerNorm(z * softmax(z)) over the units (Elhage et al. 2022, "Softmax Linear
                  Units"); the bare softmax product shrinks every unit by about 1/units and does
                  not train without the normalisation. No learned gain or bias here: in these
                  MLPs a linear layer always follows, and W diag(g) LN(u) + b' = (W diag(g))
                  LN(u) + b' absorbs them exactly, so a gain would only add a direction along
                  which an activation penalty is gamed (g -> 0, W -> infinity). The toy model's
                  hidden layer is read by the tied W^T, which cannot absorb it, so there SoLU
                  has its learned gain (rose.superposition.toy_model; g = 0 gives h = 0, tested)
topk              ReLU, then keep the k largest units per example (Makhzani & Frey 2013;
                  Gao et al. 2024)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ACTIVATIONS = ("relu", "gelu", "tanh", "solu", "topk")


def hidden_activation(z: torch.Tensor, kind: str = "relu", k: int = 1) -> torch.Tensor:
    if kind == "relu":
        return torch.relu(z)
    if kind == "gelu":
        return F.gelu(z)
    if kind == "tanh":
        return torch.tanh(z)
    if kind == "solu":
        u = z * torch.softmax(z, dim=-1)
        return F.layer_norm(u, u.shape[-1:])
    if kind == "topk":
        a = torch.relu(z)
        kth = a.topk(k, dim=-1).values[..., -1:]
        return torch.where(a >= kth, a, torch.zeros_like(a))
    raise ValueError(f"unknown hidden activation {kind!r}; expected one of {ACTIVATIONS}")
