"""Provenance: stable hashes of configs and run specs, and the git commit that made an artifact.

A run is a value: its spec (direction, method, dataset, seed, hyperparameters) hashes to a
short id that is written next to every output, into figure metadata and into the paper.
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal strings."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def stable_hash(obj: Any, length: int = 12) -> str:
    """sha256 of the canonical JSON of ``obj``, truncated to ``length`` hex digits."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


@functools.lru_cache(maxsize=1)
def code_version(length: int = 12) -> str:
    """sha256 of every source file of the installed rose package (its .py files, in path order):
    what a job's results depend on, whether or not the tree is a git checkout."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:length]


def git_commit(cwd: str | Path = ".") -> str:
    """The commit of the working tree at ``cwd``, suffixed ``-dirty`` if it has changes.

    Returns ``"unknown"`` outside a git repository (e.g. an exported tarball).
    """
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=cwd, capture_output=True, text=True, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha
