"""Fixtures that run the real workflow on config/tiny.yaml in temporary copies of the repo."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ..conftest import ROOT


def sh(cmd: list[str], cwd: Path, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command; on unexpected failure show its output in the assertion."""
    r = subprocess.run(cmd, cwd=cwd, env=env, text=True, capture_output=True,
                       stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} -> {r.returncode}\n{r.stdout[-4000:]}\n"
                             f"{r.stderr[-4000:]}")
    return r


def point_dvc_at_tiny(repo: Path) -> None:
    """params.yaml versions only config/tiny.yaml (on the shared remote), and dvc.yaml's
    top-level metrics and plots name tiny's files instead of quick's."""
    (repo / "params.yaml").write_text(
        "configs:\n  tiny: {file: config/tiny.yaml, store: shared}\n")
    dvc = repo / "dvc.yaml"
    dvc.write_text(dvc.read_text().replace("results/quick/", "results/tiny/"))


def copy_repo(dest: Path, env: dict) -> Path:
    """The repository's files (tracked and new, not ignored) as a fresh git repo at ``dest``,
    with DVC pointed at config/tiny.yaml (:func:`point_dvc_at_tiny`)."""
    files = sh(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
               ROOT, env).stdout.split("\0")
    for f in filter(None, files):
        src = ROOT / f
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the work tree
        target = dest / f
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            target.symlink_to(src.readlink())
        else:
            shutil.copy2(src, target)
    point_dvc_at_tiny(dest)
    sh(["git", "init", "-q", "-b", "main"], dest, env)
    sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A"], dest, env)
    sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"], dest, env)
    return dest


@pytest.fixture(scope="session")
def built(tmp_path_factory, tool_env) -> Path:
    """A copy of the repo on which `snakemake --configfile config/tiny.yaml` has run."""
    repo = copy_repo(tmp_path_factory.mktemp("built") / "repo", tool_env)
    sh(["snakemake", "--configfile", "config/tiny.yaml"], repo, tool_env)
    return repo
