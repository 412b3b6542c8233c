"""Where tensors live: the configured device (``device: auto | cpu | cuda``) reaches every
direction through these helpers, and no rose code creates a tensor on an implicit default.

resolve_device   "auto" -> CUDA when torch sees it, else the CPU
generator        a seeded torch.Generator on a device
as_tensor        numpy / lists -> a tensor on the device (the one way data enters torch)
strict_device    a check for tests: inside it, a tensor factory (torch.zeros, torch.rand,
                 torch.tensor, torch.from_numpy, ...) called from rose's own code without an
                 explicit ``device=`` raises ImplicitDeviceError naming the file and line. On a
                 CPU-only machine that is how a tensor that would land off the GPU is caught.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

Device = torch.device | str


def resolve_device(name: Device = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("device: cuda was requested but torch sees no CUDA device")
    return torch.device(name)


def generator(seed: int, device: Device = "cpu") -> torch.Generator:
    """A torch.Generator on ``device`` seeded with ``seed``."""
    return torch.Generator(device=resolve_device(device)).manual_seed(int(seed))


def as_tensor(x: Any, device: Device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """An array (numpy, list, tensor) as a tensor on ``device``."""
    if isinstance(x, np.ndarray) and not x.flags.writeable:
        x = x.copy()
    return torch.as_tensor(x, dtype=dtype, device=resolve_device(device))


class ImplicitDeviceError(RuntimeError):
    """A rose function created a tensor without saying on which device."""


FACTORIES = {torch.zeros, torch.ones, torch.empty, torch.full, torch.rand, torch.randn,
             torch.randint, torch.randperm, torch.arange, torch.linspace, torch.logspace,
             torch.eye, torch.tensor, torch.as_tensor, torch.from_numpy, torch.normal,
             torch.bernoulli}
_ROSE = str(Path(__file__).resolve().parent)


class strict_device(TorchFunctionMode):
    """Raise when code inside rose calls a tensor factory without ``device=`` (``*_like``
    functions and factories whose data is already a tensor follow their input and pass)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in FACTORIES and kwargs.get("device") is None:
            data_is_tensor = func in (torch.tensor, torch.as_tensor) and args and \
                isinstance(args[0], torch.Tensor)
            frame = sys._getframe(1)
            where = frame.f_code.co_filename
            if where.startswith(_ROSE) and not data_is_tensor:
                raise ImplicitDeviceError(
                    f"{func.__name__} without device= at {where}:{frame.f_lineno}")
        return func(*args, **kwargs)
