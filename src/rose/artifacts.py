"""Push and pull the DVC-versioned artifacts, keeping Snakemake's view of them consistent.

Snakemake executes, DVC stores. Every config of params.yaml has its own DVC stages
(``STAGE@NAME``, outputs under NAME: rose.layout) and a ``store``: ``repo`` keeps its small
outputs in dvc-store/, a DVC remote committed inside the repository (a fresh clone pulls them
with no network), ``shared`` in the configurable shared remote; checkpoints always go to the
shared remote.

``push`` records the current outputs of a config's stages in ``dvc.lock`` (``dvc commit``) and
uploads them, refused while Snakemake would still run a job for them. ``pull`` downloads the
small outputs in a clean clone, rebuilds the prepared data from the raw files (seconds, and
checked against ``dvc.lock`` like every pulled file), and then runs ``snakemake --touch
--forceall``: ``dvc pull`` writes files in an arbitrary order, so without the touch Snakemake
would see inputs newer than outputs and retrain (see shared/research/pipeline.md, section 5).
Touching marks outputs as up to date, which is only honest when the files are exactly what
``dvc.lock`` describes and the code is exactly the committed code, so ``pull`` refuses unless
``git status`` is clean and ``dvc status`` reports nothing but the checkpoints left on the
shared remote.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import yaml

from rose import layout

STORES = ("repo", "shared")


class ArtifactError(RuntimeError):
    """A push or pull was refused; nothing was changed."""


def _run(cmd: list[str], cwd: Path, capture: bool = False) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, text=True, capture_output=capture)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip()[-2000:] if capture else ""
        raise ArtifactError(f"`{' '.join(cmd)}` failed (exit {result.returncode}). {detail}")
    return result


def dvc_configs(root: Path) -> dict[str, dict[str, str]]:
    """The configs DVC versions (params.yaml ``configs``): name -> {file, store}. Each name
    must be its file's ``name:`` (the outputs live under it) and each store one of STORES."""
    configs = yaml.safe_load((Path(root) / "params.yaml").read_text())["configs"]
    for name, entry in configs.items():
        if entry.get("store") not in STORES:
            raise ArtifactError(f"params.yaml configs.{name}.store: {entry.get('store')!r} is "
                                f"not one of {STORES}")
        path = Path(root) / entry["file"]
        if path.exists() and yaml.safe_load(path.read_text()).get("name") != name:
            raise ArtifactError(f"params.yaml configs.{name}: {entry['file']} has another "
                                f"`name:`; the entry's key must be the config's name")
    return configs


def dvc_configfile(root: Path, name: str | None = None) -> str:
    """The config file of ``name`` (default: the first config of params.yaml)."""
    configs = dvc_configs(root)
    name = name or next(iter(configs))
    if name not in configs:
        raise ArtifactError(f"config {name!r} is not in params.yaml (known: {sorted(configs)})")
    return configs[name]["file"]


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


def stage_targets(root: Path) -> list[str]:
    """The Snakemake targets that dvc.yaml's stages wrap (a stage is named after its target)."""
    return list(yaml.safe_load((Path(root) / "dvc.yaml").read_text())["stages"])


def snakemake_target(root: Path, stage: str, name: str) -> str:
    """The Snakemake target a stage's command builds for config ``name`` (the word after
    ``snakemake``; the paper stage names its PDF, whose rule has a benchmark file that a rule
    named as a target would have to have)."""
    cmd = yaml.safe_load((Path(root) / "dvc.yaml").read_text())["stages"][stage]["do"]["cmd"]
    return cmd.split()[1].replace("${key}", name)


def locked_outs(root: Path, name: str) -> dict[str, list[str]]:
    """Target -> the out paths dvc.lock records for config ``name``'s stage of it."""
    lock = Path(root) / "dvc.lock"
    stages = yaml.safe_load(lock.read_text()).get("stages", {}) if lock.exists() else {}
    return {stage.rsplit("@", 1)[0]: [o["path"] for o in entry.get("outs", [])]
            for stage, entry in stages.items() if stage.endswith(f"@{name}")}


def stale_entries(status: dict, allowed_missing: set[str], rebuilt: set[str]) -> dict:
    """What ``dvc status --json`` reports beyond outs in ``allowed_missing`` that are absent
    (checkpoints not pulled) and outs in ``rebuilt`` whose bytes equal the record but are not
    in this clone's DVC cache (prepared data rebuilt from the raw files): changed code, params
    or outputs, i.e. a stale record."""
    def fine(kind: str, path: str, change: str) -> bool:
        return kind == "changed outs" and (
            (path in allowed_missing and change in ("deleted", "not in cache"))
            or (path in rebuilt and change == "not in cache"))

    stale = {}
    for stage, entries in status.items():
        for e in entries:
            if not isinstance(e, dict):
                stale.setdefault(stage, []).append(e)
                continue
            for kind, changes in e.items():
                left = {p: c for p, c in changes.items() if not fine(kind, p, c)}
                if left:
                    stale.setdefault(stage, []).append({kind: left})
    return stale


def push(root: Path, name: str | None = None, targets: tuple[str, ...] = ()) -> None:
    """Commit and upload config ``name``'s stages for ``targets`` (default: all of them)."""
    root = Path(root)
    configs = dvc_configs(root)
    name = name or next(iter(configs))
    cfg = dvc_configfile(root, name)
    targets = tuple(targets) or tuple(stage_targets(root))
    unknown = sorted(set(targets) - set(stage_targets(root)))
    if unknown:
        raise ArtifactError(f"no DVC stage for {unknown}; stages: {stage_targets(root)}")
    stale = planned_jobs(root, cfg, tuple(snakemake_target(root, t, name) for t in targets))
    if stale:
        raise ArtifactError(
            f"refusing to push: snakemake would still run {stale} for {cfg}, so the outputs "
            f"are incomplete or stale. Run `make reproduce` (or snakemake) first.")
    stages = [f"{t}@{name}" for t in targets]
    _run(["dvc", "commit", "--force", "--quiet", *stages], root)
    _run(["dvc", "push", *stages], root)
    keep = "dvc.lock dvc-store" if configs[name]["store"] == "repo" else "dvc.lock"
    print(f"Pushed. Record what was pushed in git: git add {keep} && git commit",
          file=sys.stderr)


REMOTE_HELP = (
    "\nEither point the remote at the shared storage that holds the artifacts "
    "(`dvc remote modify --local <name> url <path-or-URL>`, see the README), or compute "
    "everything here with `make reproduce`.")


def remote_problem(root: Path, remote: str | None = None) -> str | None:
    """Why a DVC remote (default: the default remote) cannot serve a pull, if that can be told
    before trying: a local remote (a path, DVC resolves it from .dvc/) that does not exist or
    holds no data."""
    name = remote or subprocess.run(["dvc", "remote", "default"], cwd=root, text=True,
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
    if not any(p.name != "README.md" for p in path.iterdir()):
        return f"The DVC remote {name!r} ({path}) is empty: nobody has pushed artifacts to it."
    return None


def pull(root: Path, name: str | None = None, checkpoints: bool = False) -> dict[str, int]:
    """Download config ``name``'s artifacts of the current commit (checkpoints only when asked:
    they live on the shared remote), rebuild its prepared data, check everything against
    ``dvc.lock`` and mark it up to date; return the jobs still planned afterwards."""
    root = Path(root)
    if not git_is_clean(root):
        raise ArtifactError(
            "refusing to pull: the git work tree has changes (git status), so the pulled "
            "outputs could not be trusted to match the code. Commit or stash them first.")
    configs = dvc_configs(root)
    name = name or next(iter(configs))
    cfg = dvc_configfile(root, name)
    outs = locked_outs(root, name)
    if not outs:
        raise ArtifactError(f"dvc.lock records no outputs of config {name!r}: nobody has "
                            f"pushed them. Compute them with `make reproduce CONFIG={name}`.")
    data_dir = layout.processed(name)
    ckpt_dir = layout.checkpoints(name)
    small = [p for ps in outs.values() for p in ps
             if not p.startswith((data_dir, ckpt_dir))]
    ckpts = [p for ps in outs.values() for p in ps if p.startswith(ckpt_dir)]
    problem = remote_problem(root, configs[name]["store"])
    if problem:
        raise ArtifactError(problem + REMOTE_HELP)
    try:
        _run(["dvc", "pull", *small, *(ckpts if checkpoints else [])], root, capture=True)
    except ArtifactError as e:
        raise ArtifactError(f"{e}\n{REMOTE_HELP.strip()}") from None
    if "data" in outs:     # prepared data: rebuilt from the raw files, checked below
        _run(["snakemake", "data", "--configfile", cfg, "--quiet", "--cores", "1"], root,
             capture=True)
    stages = [f"{t}@{name}" for t in outs]
    status = json.loads(_run(["dvc", "status", "--json", *stages], root,
                             capture=True).stdout or "{}")
    rebuilt = {p for ps in outs.values() for p in ps if p.startswith(data_dir)}
    stale = stale_entries(status, set() if checkpoints else set(ckpts), rebuilt)
    if stale:
        raise ArtifactError(
            "refusing to mark outputs up to date: after the pull `dvc status` is not clean, so "
            "the artifacts in dvc.lock do not match this code or config "
            f"({json.dumps(stale)[:600]}). Run `make reproduce CONFIG={name}`.")
    targets = tuple(snakemake_target(root, t, name) for t in outs)
    _run(["snakemake", *targets, "--configfile", cfg, "--touch", "--forceall", "--quiet"], root)
    return planned_jobs(root, cfg, targets)
