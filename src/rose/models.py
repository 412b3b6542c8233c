"""Models shared by the directions: an MLP and a small CNN for 1-3 channel images."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


class MLP(nn.Module):
    """Flatten, then ``hidden`` fully connected layers with an activation, then a linear head."""

    def __init__(self, in_features: int, hidden: list[int], n_classes: int,
                 activation: str = "relu", dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SmallCNN(nn.Module):
    """Two 3x3 conv blocks (conv-ReLU-maxpool) and a linear head; no BatchNorm, so a model is
    a plain function of its weights (convenient for torch.func and Hessian measurements)."""

    def __init__(self, in_channels: int, n_classes: int, width: int = 16,
                 image_size: int = 28) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        side = image_size // 4
        self.head = nn.Linear(2 * width * side * side, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def build_model(cfg: dict[str, Any], input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    """Model from its config block (``name`` plus that model's keyword arguments)."""
    name = cfg["name"]
    if name == "mlp":
        return MLP(math.prod(input_shape), list(cfg.get("hidden", [256, 256])), n_classes,
                   cfg.get("activation", "relu"), cfg.get("dropout", 0.0))
    if name == "cnn":
        if len(input_shape) != 3:
            raise ValueError(f"model.name=cnn needs image inputs (C, H, W), got {input_shape}")
        return SmallCNN(input_shape[0], n_classes, cfg.get("width", 16), input_shape[-1])
    raise ValueError(f"unknown model.name {name!r}; known: mlp, cnn")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
