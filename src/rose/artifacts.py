"""Push and pull the DVC-versioned artifacts, keeping Snakemake's view of them consistent.

Snakemake executes, DVC stores. ``push`` records the current outputs of the DVC stages in
``dvc.lock`` (``dvc commit``) and uploads them to the default remote. ``pull`` downloads them in a
clean clone and then runs ``snakemake --touch --forceall``: ``dvc pull`` writes files in an
arbitrary order, so without the touch Snakemake would see inputs newer than outputs and retrain
(see shared/research/pipeline.md, section 5). Touching marks outputs as up to date, which is only
honest when the pulled files are exactly what ``dvc.lock`` describes and the code is exactly the
committed code, so ``pull`` refuses unless both ``git status`` and ``dvc status`` are clean.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml


class ArtifactError(RuntimeError):
    """A push or pull was refused; nothing was changed."""


def _run(cmd: list[str], cwd: Path, capture: bool = False) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, text=True, capture_output=capture)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip()[-2000:] if capture else ""
        raise ArtifactError(f"`{' '.join(cmd)}` failed (exit {result.returncode}). {detail}")
    return result


def dvc_configfile(root: Path) -> str:
    """The Snakemake config the DVC stages use (``configfile`` in params.yaml)."""
    return yaml.safe_load((root / "params.yaml").read_text())["configfile"]


def planned_jobs(root: Path, configfile: str, targets: tuple[str, ...] = ()) -> dict[str, int]:
    """Rule -> number of jobs ``snakemake -n`` would run (empty: everything is up to date)."""
    out = _run(["snakemake", "-n", "--configfile", configfile, *targets], root, capture=True)
    text = out.stdout + out.stderr
    jobs: dict[str, int] = {}
    in_table = False
    for line in text.splitlines():
        if line.startswith("Job stats:"):
            in_table = True
            continue
        if in_table:
            m = re.match(r"^(\w+)\s+(\d+)\s*$", line)
            if m and m.group(1) != "total":
                jobs[m.group(1)] = int(m.group(2))
            elif line.startswith("total"):
                break
    return jobs


def git_is_clean(root: Path) -> bool:
    out = _run(["git", "status", "--porcelain"], root, capture=True).stdout
    return out.strip() == ""


def dvc_is_clean(root: Path) -> bool:
    out = _run(["dvc", "status", "--json"], root, capture=True).stdout
    return json.loads(out or "{}") == {}


def push(root: Path) -> None:
    root = Path(root)
    cfg = dvc_configfile(root)
    stale = planned_jobs(root, cfg)
    if stale:
        raise ArtifactError(
            f"refusing to push: snakemake would still run {stale} for {cfg}, so the outputs "
            f"are incomplete or stale. Run `make reproduce` (or snakemake) first.")
    _run(["dvc", "commit", "--force", "--quiet"], root)
    _run(["dvc", "push"], root)
    print("Pushed. Record what was pushed in git: git add dvc.lock && git commit", file=sys.stderr)


def pull(root: Path) -> dict[str, int]:
    """Download the artifacts of the current commit; return the jobs still planned afterwards."""
    root = Path(root)
    if not git_is_clean(root):
        raise ArtifactError(
            "refusing to pull: the git work tree has changes (git status), so the pulled "
            "outputs could not be trusted to match the code. Commit or stash them first.")
    cfg = dvc_configfile(root)
    _run(["dvc", "pull"], root)
    if not dvc_is_clean(root):
        raise ArtifactError(
            "refusing to mark outputs up to date: after the pull `dvc status` is not clean, so "
            "the artifacts in dvc.lock do not match this code or config. Run `make reproduce`.")
    _run(["snakemake", "--configfile", cfg, "--touch", "--forceall", "--quiet", "all"], root)
    return planned_jobs(root, cfg)
