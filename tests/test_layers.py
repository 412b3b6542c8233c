"""The import graph: layers import downwards only. No direction package imports another, and
the shared layers (measure, nn, stats, sampling, tuning, engine, ...) import no direction."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rose"
DIRECTIONS = ("explore", "continual", "active", "superposition")
SHARED = ("measure", "nn", "data", "stats", "sampling", "tuning", "engine", "device",
          "divergence", "contrasts", "checkpoint", "models", "train", "provenance")


def _imports(path: Path) -> set[str]:
    """rose.<top> names a module imports (absolute imports, anywhere in the file)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for n in names:
            parts = n.split(".")
            if parts[0] == "rose" and len(parts) > 1:
                out.add(parts[1])
    return out


def _files(top: str) -> list[Path]:
    p = SRC / top
    return sorted(p.rglob("*.py")) if p.is_dir() else [SRC / f"{top}.py"]


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_no_direction_imports_another(direction):
    for f in _files(direction):
        bad = _imports(f) & (set(DIRECTIONS) - {direction})
        assert not bad, f"{f.relative_to(SRC)} imports direction(s) {sorted(bad)}"


@pytest.mark.parametrize("layer", SHARED)
def test_shared_layers_import_no_direction(layer):
    for f in _files(layer):
        bad = _imports(f) & set(DIRECTIONS)
        assert not bad, f"{f.relative_to(SRC)} imports direction(s) {sorted(bad)}"


def test_the_checker_sees_an_import(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from rose.active.summary import per_run\n    import rose.nn\n")
    assert _imports(f) == {"active", "nn"}
