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
from collections import Counter
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
    """Rule -> number of jobs Snakemake would run (empty: everything is up to date): the
    distinct job ids of each rule in ``snakemake -n``'s per-job records ("rule NAME:" ...
    "jobid: N"). Rules without outputs (``all`` and the direction targets) run nothing and are
    not counted. (``snakemake --summary`` cannot tell jobs apart: its log column comes from
    Snakemake's run records, "-" for a job that never ran; Snakemake 9 has no API that lists
    the planned jobs.)"""
    out = _run(["snakemake", *targets, "--configfile", configfile, "-n"], root, capture=True)
    jobs: set[tuple[str, int]] = set()
    rule, has_output = None, False
    for line in (out.stdout + out.stderr).splitlines():
        line = line.strip()
        if m := re.fullmatch(r"(?:local)?rule (\w+):", line):
            rule, has_output = m.group(1), False
        elif rule and line.startswith("output:"):
            has_output = True
        elif rule and (m := re.fullmatch(r"jobid: (\d+)", line)):
            if has_output:
                jobs.add((rule, int(m.group(1))))
            rule = None
    return dict(sorted(Counter(r for r, _ in jobs).items()))


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


REMOTE_HELP = (
    "\nEither point the remote at the shared storage that holds the artifacts "
    "(`dvc remote modify --local <name> url <path-or-URL>`, see the README), or compute "
    "everything here with `make reproduce`.")


def remote_problem(root: Path) -> str | None:
    """Why the default DVC remote cannot serve a pull, if that can be told before trying: a
    local remote (a path, DVC resolves it from .dvc/) that does not exist or holds nothing."""
    name = subprocess.run(["dvc", "remote", "default"], cwd=root, text=True,
                          capture_output=True).stdout.strip()
    if not name:
        return "No default DVC remote is configured, so there is nothing to pull from."
    url = subprocess.run(["dvc", "config", f"remote.{name}.url"], cwd=root, text=True,
                         capture_output=True).stdout.strip()
    if not url or re.match(r"^[a-z][a-z0-9+.-]*://", url):
        return None                    # a remote service: only `dvc pull` can tell
    path = Path(url) if Path(url).is_absolute() else (root / ".dvc" / url).resolve()
    if not path.is_dir():
        return f"The DVC remote {name!r} is {path}, which does not exist on this machine."
    if not any(path.iterdir()):
        return f"The DVC remote {name!r} ({path}) is empty: nobody has pushed artifacts to it."
    return None


def pull(root: Path) -> dict[str, int]:
    """Download the artifacts of the current commit; return the jobs still planned afterwards."""
    root = Path(root)
    if not git_is_clean(root):
        raise ArtifactError(
            "refusing to pull: the git work tree has changes (git status), so the pulled "
            "outputs could not be trusted to match the code. Commit or stash them first.")
    cfg = dvc_configfile(root)
    problem = remote_problem(root)
    if problem:
        raise ArtifactError(problem + REMOTE_HELP)
    try:
        _run(["dvc", "pull"], root, capture=True)
    except ArtifactError as e:
        raise ArtifactError(f"{e}\n{REMOTE_HELP.strip()}") from None
    if not dvc_is_clean(root):
        raise ArtifactError(
            "refusing to mark outputs up to date: after the pull `dvc status` is not clean, so "
            "the artifacts in dvc.lock do not match this code or config. Run `make reproduce`.")
    _run(["snakemake", "--configfile", cfg, "--touch", "--forceall", "--quiet", "all"], root)
    return planned_jobs(root, cfg)
