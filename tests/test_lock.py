"""The locked environment (requirements.lock): current with pyproject.toml, pinning every
declared requirement within its range, installed as pinned, and a stale lock stops
`make install` with a message that says how to update it."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"


def _pins() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_the_lock_is_made_from_this_pyproject():
    header = [line for line in LOCK.read_text().splitlines()
              if line.startswith("# pyproject-sha256: ")]
    assert header == [f"# pyproject-sha256: "
                      f"{hashlib.sha256((ROOT / 'pyproject.toml').read_bytes()).hexdigest()}"]


def test_every_declared_requirement_is_pinned_within_its_range():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _pins()
    for spec in [*project["dependencies"], *project["optional-dependencies"]["dev"]]:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in requirements.lock"
        assert req.specifier.contains(Version(pins[name]), prereleases=True), (spec, pins[name])
    assert pins["torch"] == "2.13.0+cpu"                     # the CPU build
    assert "torchvision" not in pins and "rose" not in pins


def test_the_environment_is_installed_as_locked():
    pins = _pins()
    wrong = {}
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        if name in pins and dist.version != pins[name]:
            wrong[name] = (dist.version, pins[name])
    assert not wrong, f"installed != locked: {wrong}"


def test_a_stale_lock_stops_the_install_saying_how_to_update(tmp_path):
    for name in ("Makefile", "pyproject.toml", "requirements.lock"):
        shutil.copy(ROOT / name, tmp_path / name)
    ok = subprocess.run(["make", "-s", "check-lock"], cwd=tmp_path, capture_output=True,
                        text=True)
    assert ok.returncode == 0, ok.stderr
    with open(tmp_path / "pyproject.toml", "a") as f:
        f.write("\n# an edit\n")
    r = subprocess.run(["make", "-s", "check-lock"], cwd=tmp_path, capture_output=True,
                       text=True)
    assert r.returncode != 0
    assert "requirements.lock was made from another pyproject.toml" in r.stderr
    assert "make lock" in r.stderr
