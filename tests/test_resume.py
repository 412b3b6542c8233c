"""Kill and resume, per direction: a direction job killed with SIGKILL part-way through a unit's
loop (after at least one checkpoint) and then run again ends with outputs byte-identical to an
uninterrupted run (rose.engine). Each job runs in its own process, as under Snakemake."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from rose.checkpoint import CorruptCheckpointError, load_checkpoint
from rose.engine import RESUME_FILE

from .conftest import ROOT

RUNNER = """
import json, sys, importlib, torch
spec = json.loads(sys.argv[1])
module, name = spec["func"].rsplit(".", 1)
getattr(importlib.import_module(module), name)(*spec["args"], **spec["kwargs"])
"""


def tiny() -> dict:
    cfg = yaml.safe_load((ROOT / "config/tiny.yaml").read_text())
    validate(cfg, str(ROOT / "workflow/schemas/config.schema.yaml"))   # fills the defaults
    return cfg


def _cmd(func: str, *args, **kwargs) -> list[str]:
    spec = {"func": func, "args": [str(a) if isinstance(a, Path) else a for a in args],
            "kwargs": {k: str(v) if isinstance(v, Path) else v for k, v in kwargs.items()}}
    return [sys.executable, "-c", RUNNER, json.dumps(spec)]


def _run(cmd: list[str]) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stderr


def _kill_part_way(cmd: list[str], resume: Path, min_units: int, timeout: float = 300) -> None:
    """Start the job and SIGKILL it once its checkpoint holds ``min_units`` finished units and
    a loop part-way."""
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and proc.poll() is None:
            try:
                ck = load_checkpoint(resume) if resume.exists() else None
            except (CorruptCheckpointError, OSError):
                ck = None        # caught mid-replace: look again
            if ck is not None and ck["loop_state"] is not None and \
                    len(ck["units"]) >= min_units:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the job ended before it could be killed"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _outputs(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file() and p.suffix in (".csv", ".npz")}


def _check(tmp_path: Path, func: str, make_args, resume_rel: str, min_units: int) -> None:
    """Run uninterrupted in a/, killed + rerun in b/; compare every output."""
    a, b = tmp_path / "a", tmp_path / "b"
    args_a, kwargs_a = make_args(a)
    args_b, kwargs_b = make_args(b)
    _run(_cmd(func, *args_a, **kwargs_a))
    cmd_b = _cmd(func, *args_b, **kwargs_b)
    _kill_part_way(cmd_b, b / resume_rel, min_units)
    assert (b / resume_rel).exists()
    log = _run(cmd_b)
    assert "[rose] resuming from" in log and "part-way" in log
    assert not (b / resume_rel).exists()               # finished: the resume file is gone
    out_a, out_b = _outputs(a), _outputs(b)
    assert out_a.keys() == out_b.keys() and out_a
    for k in out_a:
        assert out_a[k] == out_b[k], f"{k} differs after the resume"


def test_superposition_shortcut_job_resumes(tmp_path):
    sc = tiny()["superposition"]["shortcut"]
    sc = {**sc, "steps": 80}

    def args(d: Path):
        return [sc, "irm", [0, 1], d / "irm.csv"], {"threads": 1, "checkpoint_seconds": 0}
    _check(tmp_path, "rose.superposition.experiments.shortcut", args, "irm/" + RESUME_FILE,
           min_units=1)


def test_active_learning_job_resumes(tmp_path):
    block = tiny()["active"]
    block["loop"] = {**block["loop"], "rounds": 3}

    def args(d: Path):
        return ([block, "cmnist", [0, 1], d / "cmnist.csv", d / "cmnist_composition.csv"],
                {"threads": 1, "checkpoint_seconds": 0})
    _check(tmp_path, "rose.active.experiments.active_learning_run", args,
           "cmnist/" + RESUME_FILE, min_units=0)


def test_continual_stream_job_resumes(tmp_path):
    block = tiny()["continual"]

    def args(d: Path):
        return [block, "split", [0, 1], d], {"threads": 1, "checkpoint_seconds": 0}
    _check(tmp_path, "rose.continual.experiments.stream_run", args, RESUME_FILE, min_units=1)


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory) -> Path:
    from rose.data.splits import prepare_to_files

    d = tmp_path_factory.mktemp("processed")
    prepare_to_files("digits", tiny()["data"], d / "digits.npz", d / "digits.manifest.json")
    return d


def test_explore_setting_job_resumes(tmp_path, digits_dir):
    block = tiny()["explore"]

    def args(d: Path):
        return ([block, "digits_noisy", [0, 1], digits_dir, d],
                {"threads": 1, "checkpoint_seconds": 0})
    _check(tmp_path, "rose.explore.experiments.setting_run", args, RESUME_FILE, min_units=2)
