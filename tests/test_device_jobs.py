"""Each direction's smallest job runs with an explicit device, inside rose.device.strict_device:
any tensor factory called from rose's code without ``device=`` (a tensor that would land on the
CPU while the configured device is a GPU) fails the test, naming its file and line (the check
itself is tested in tests/test_device.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rose.device import strict_device

from .test_resume import tiny


@pytest.fixture(scope="module")
def cfg() -> dict:
    return tiny()


def test_superposition_jobs_on_an_explicit_device(tmp_path, cfg):
    from rose.superposition import experiments as ex

    sup = cfg["superposition"]
    with strict_device():
        ex.toy_sweep(sup["toy"]["intro"], tmp_path / "toy", device="cpu")
        ex.phase(sup["phase"], tmp_path / "phase.csv", device="cpu")
        ex.toy_penalty(sup["penalty"], tmp_path / "pen", device="cpu")
        ex.shortcut(sup["shortcut"], "irm", [0], tmp_path / "irm.csv", device="cpu")
    assert (tmp_path / "irm.csv").exists()


def test_active_jobs_on_an_explicit_device(tmp_path, cfg):
    from rose.active import experiments as ex

    with strict_device():
        ex.active_learning_run(cfg["active"], "cmnist", [0], tmp_path / "r.csv",
                               tmp_path / "c.csv", device="cpu")
        ex.curriculum_run(cfg["active"], "cmnist", [0], tmp_path / "cur.csv",
                              tmp_path / "cur_tuning.csv", device="cpu")
    assert (tmp_path / "cur.csv").exists()


def test_continual_job_on_an_explicit_device(tmp_path, cfg):
    from rose.continual.experiments import stream_run

    with strict_device():
        stream_run(cfg["continual"], "split", [0], tmp_path, device="cpu")
    assert (tmp_path / "runs.csv").exists()


def test_explore_job_on_an_explicit_device(tmp_path, cfg):
    from rose.data.splits import prepare_to_files
    from rose.explore.experiments import setting_run

    d = tmp_path / "processed"
    d.mkdir()
    prepare_to_files("digits", cfg["data"], d / "digits.npz", d / "digits.manifest.json")
    with strict_device():
        setting_run(cfg["explore"], "digits_noisy", [0], d, tmp_path / "out", device="cpu")
    assert Path(tmp_path / "out" / "runs.csv").exists()
