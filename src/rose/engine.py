"""Resumable direction jobs: a job killed at any moment resumes to the outputs an uninterrupted
run would have written (bitwise on the CPU for a fixed thread count).

A direction job is a sequence of *units* (an arm group, a penalty variant, an active-learning
round), each of which may run a long *loop* (training steps, stream batches). ``Job`` keeps

* the results of every finished unit, and
* the loop state of the unit in progress (weights, optimiser state, RNG states, loop position,
  buffers and accumulators: whatever the loop hands to ``tick``),

in one checkpoint file (``<out_dir>/resume.ckpt``, written atomically and sha256-verified by
rose.checkpoint, loaded with ``weights_only=True``). A unit found finished is not recomputed; a
loop that finds its state resumes from it. The file is saved at the end of every unit and,
inside a loop, when ``every_seconds`` have passed since the last save (0: at every tick).
A checkpoint written for another spec is ignored with a message, never used: the spec a job
gives, the version of rose's code that runs it (rose.provenance.code_version: a job killed
before an edit of the library starts again) and the device it runs on (generator states are
device-specific). A corrupt one raises CorruptCheckpointError and is left in place.

What a unit returns and what a loop saves must be plain data: tensors, numpy arrays, pandas
DataFrames, numpy generators' states, and dicts / lists / tuples of those and Python scalars.
Both are stored and handed back through the same conversion, so a resumed run continues from
exactly the values an uninterrupted one holds.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from rose.checkpoint import load_checkpoint, save_checkpoint
from rose.device import Device, resolve_device
from rose.provenance import code_version, stable_hash

RESUME_FILE = "resume.ckpt"


def to_plain(obj: Any) -> Any:
    """Values that torch.load(weights_only=True) restores: arrays and frames become tagged
    tensors / dicts, numpy scalars Python scalars."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, np.ndarray):
        if obj.dtype == object or obj.dtype.kind in "US":
            return {"__strings__": [str(v) for v in obj.tolist()], "shape": list(obj.shape)}
        return {"__ndarray__": torch.from_numpy(np.array(obj, copy=True, order="C"))}
    if isinstance(obj, pd.DataFrame):
        return {"__frame__": {str(c): to_plain(obj[c].to_numpy()) for c in obj.columns},
                "columns": [str(c) for c in obj.columns]}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        out = [to_plain(v) for v in obj]
        return out if isinstance(obj, list) else {"__tuple__": out}
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(f"cannot checkpoint a {type(obj).__name__}; hand plain data to the job")


def from_plain(obj: Any) -> Any:
    """The inverse of :func:`to_plain`."""
    if isinstance(obj, torch.Tensor):      # copies: the caller may change what it gets back
        return obj.clone()
    if isinstance(obj, dict):
        if "__ndarray__" in obj:
            return obj["__ndarray__"].numpy().copy()
        if "__strings__" in obj:
            return np.array(obj["__strings__"], dtype=object).reshape(obj["shape"])
        if "__frame__" in obj:
            return pd.DataFrame({c: from_plain(obj["__frame__"][c]) for c in obj["columns"]})
        if "__tuple__" in obj:
            return tuple(from_plain(v) for v in obj["__tuple__"])
        return {k: from_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_plain(v) for v in obj]
    return obj


def rng_states(*generators: torch.Generator | np.random.Generator) -> dict[str, Any]:
    """The global torch RNG and the given generators' states, for a loop's checkpoint."""
    out: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    out["generators"] = [g.get_state() if isinstance(g, torch.Generator)
                         else g.bit_generator.state for g in generators]
    return out


def set_rng_states(state: dict[str, Any], *generators: torch.Generator | np.random.Generator
                   ) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for g, s in zip(generators, state["generators"], strict=True):
        if isinstance(g, torch.Generator):
            g.set_state(s)
        else:
            g.bit_generator.state = s


def training_state(weights: torch.Tensor | list[torch.Tensor], optimizer: torch.optim.Optimizer,
                   generators: tuple = (), diverged_at: np.ndarray | None = None) -> dict:
    """What every stacked training loop checkpoints: its weights (one tensor or a list), its
    optimiser, the global and the given generators' RNG states, and its divergence record."""
    return {"weights": [w.detach() for w in weights] if isinstance(weights, list)
            else weights.detach(), "optimizer": optimizer.state_dict(),
            "rng": rng_states(*generators), "diverged_at": diverged_at}


@torch.no_grad()
def restore_training(state: dict, weights: torch.Tensor | list[torch.Tensor],
                     optimizer: torch.optim.Optimizer, generators: tuple = ()) -> None:
    """The inverse of :func:`training_state` (the divergence record is the caller's)."""
    if isinstance(weights, list):
        for w, v in zip(weights, state["weights"], strict=True):
            w.copy_(v)
    else:
        weights.copy_(state["weights"])
    optimizer.load_state_dict(state["optimizer"])
    set_rng_states(state["rng"], *generators)


class Job:
    """The resumable state of one direction job (see the module docstring)."""

    def __init__(self, out_dir: str | Path, spec: Any, every_seconds: float = 60.0,
                 device: Device = "cpu") -> None:
        self.path = Path(out_dir) / RESUME_FILE
        self.spec_hash = stable_hash({"spec": spec, "code": code_version(),
                                      "device": str(resolve_device(device))})
        self.every = float(every_seconds)
        self.units: dict[str, Any] = {}
        self.loop_unit: str | None = None
        self.loop_state: Any = None
        self.resumed = False
        self._last = time.monotonic()
        if self.path.exists():
            ck = load_checkpoint(self.path)               # raises if corrupt
            if ck["spec_hash"] != self.spec_hash:
                print(f"[rose] {self.path} belongs to another spec ({ck['spec_hash']} != "
                      f"{self.spec_hash}); starting from scratch", file=sys.stderr)
            else:
                self.units = ck["units"]
                self.loop_unit, self.loop_state = ck["loop_unit"], ck["loop_state"]
                self.resumed = True
                print(f"[rose] resuming from {self.path}: {len(self.units)} finished unit(s)"
                      + (f", the loop of {self.loop_unit!r} part-way" if self.loop_unit
                         else ""), file=sys.stderr)
        self._unit: str | None = None

    def unit(self, key: str, fn: Callable[[], Any]) -> Any:
        """The result of unit ``key``: stored if it finished before, else ``fn()`` (which may
        resume its loop through :meth:`resume` / :meth:`tick`), then saved."""
        if key not in self.units:
            self._unit = key
            self.units[key] = to_plain(fn())
            self._unit, self.loop_unit, self.loop_state = None, None, None
            self._save()
        return from_plain(self.units[key])

    def resume(self) -> Any:
        """The saved loop state of the running unit, or None to start its loop afresh."""
        if self._unit is not None and self.loop_unit == self._unit:
            return from_plain(self.loop_state)
        return None

    def tick(self, state: Callable[[], Any], force: bool = False) -> None:
        """Called once per loop iteration: saves ``state()`` when a checkpoint is due."""
        if self._unit is None:
            raise RuntimeError("Job.tick outside Job.unit")
        if force or time.monotonic() - self._last >= self.every:
            self.loop_unit, self.loop_state = self._unit, to_plain(state())
            self._save()

    def finish(self) -> None:
        """The job's outputs are written: drop the resume file."""
        self.path.unlink(missing_ok=True)

    def _save(self) -> None:
        save_checkpoint({"spec_hash": self.spec_hash, "units": self.units,
                         "loop_unit": self.loop_unit, "loop_state": self.loop_state}, self.path)
        self._last = time.monotonic()


class NoJob(Job):
    """Runs units and loops without checkpoints (library calls and tests of mechanisms)."""

    def __init__(self) -> None:
        self.units, self.loop_unit, self.loop_state, self._unit = {}, None, None, None
        self.resumed = False

    def unit(self, key: str, fn: Callable[[], Any]) -> Any:
        return fn()

    def resume(self) -> Any:
        return None

    def tick(self, state: Callable[[], Any], force: bool = False) -> None:
        return None

    def finish(self) -> None:
        return None
