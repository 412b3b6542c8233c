"""Checkpoints that are atomic, self-verifying and safe to load.

File layout: ``MAGIC`` (8 bytes) + sha256 of the payload (32 bytes) + payload, where the
payload is an ordinary ``torch.save`` archive. Writing goes to a temporary file that is renamed
into place, so a kill mid-write leaves the previous checkpoint intact. Reading verifies the
magic and digest before ``torch.load(..., weights_only=True)``, so a truncated, bit-flipped or
foreign file raises :class:`CorruptCheckpointError` instead of being used.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import torch

MAGIC = b"ROSECKP1"
_HEADER = len(MAGIC) + 32


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be trusted."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(state, buf)
    payload = buf.getvalue()
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(MAGIC + hashlib.sha256(payload).digest() + payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    raw = path.read_bytes()
    if len(raw) < _HEADER or raw[: len(MAGIC)] != MAGIC:
        raise CorruptCheckpointError(
            f"{path} is not a rose checkpoint (bad header; {len(raw)} bytes). It was left as it "
            f"is: delete it to start that run from scratch."
        )
    digest, payload = raw[len(MAGIC):_HEADER], raw[_HEADER:]
    if hashlib.sha256(payload).digest() != digest:
        raise CorruptCheckpointError(
            f"{path} fails its sha256 check (truncated or corrupted). It was left as it is: "
            f"delete it to start that run from scratch."
        )
    try:
        return torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except Exception as err:  # a valid digest over an unloadable payload
        raise CorruptCheckpointError(f"{path}: checksum ok but torch.load failed: {err}") from err
