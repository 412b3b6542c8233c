"""The resumable job: units are not recomputed, loops resume from their state, and a resumed
run returns exactly what an uninterrupted one does."""

import numpy as np
import pandas as pd
import pytest
import torch

from rose.checkpoint import CorruptCheckpointError
from rose.engine import Job, from_plain, rng_states, set_rng_states, to_plain


def test_plain_round_trip_keeps_types_and_values():
    obj = {"a": np.arange(3.0), "f": pd.DataFrame({"x": [1, 2], "s": ["u", "v"]}),
           "t": torch.ones(2), "n": np.float64(0.5), "tup": (1, "b"), "l": [None, True]}
    back = from_plain(to_plain(obj))
    assert np.array_equal(back["a"], obj["a"]) and back["a"].dtype == obj["a"].dtype
    pd.testing.assert_frame_equal(back["f"], obj["f"])
    assert torch.equal(back["t"], obj["t"]) and back["n"] == 0.5 and isinstance(back["n"], float)
    assert back["tup"] == (1, "b") and back["l"] == [None, True]
    with pytest.raises(TypeError):
        to_plain(object())


def _loop(job: Job, steps: int, stop_at: int | None = None) -> list[float]:
    """A toy training loop: a seeded random walk with a generator and the global RNG."""
    state = job.resume()
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(1)
    x, out, start = torch.zeros(3), [], 0
    if state is not None:
        x, out, start = state["x"], state["out"], state["step"]
        set_rng_states(state["rng"], g)

    def snapshot():
        return {"x": x, "out": out, "step": step + 1, "rng": rng_states(g)}
    for step in range(start, steps):
        if step == stop_at:
            raise KeyboardInterrupt   # a kill between two ticks
        x = x + torch.randn(3, generator=g) + torch.rand(3)
        out.append(float(x.sum()))
        job.tick(snapshot)
    return out


def test_a_killed_job_resumes_to_the_uninterrupted_result(tmp_path):
    spec = {"direction": "t"}
    full = Job(tmp_path / "a", spec, every_seconds=0)
    ref = [full.unit("u1", lambda: _loop(full, 20)), full.unit("u2", lambda: _loop(full, 5))]

    job = Job(tmp_path / "b", spec, every_seconds=0)
    job.unit("u1", lambda: _loop(job, 20))
    with pytest.raises(KeyboardInterrupt):
        job.unit("u2", lambda: _loop(job, 5, stop_at=3))
    calls = []
    again = Job(tmp_path / "b", spec, every_seconds=0)
    assert again.resumed

    def u1():
        calls.append("u1")
        return _loop(again, 20)
    res = [again.unit("u1", u1), again.unit("u2", lambda: _loop(again, 5))]
    assert calls == []                     # the finished unit was not recomputed
    assert res == ref
    again.finish()
    assert not (tmp_path / "b" / "resume.ckpt").exists()


def test_another_spec_starts_afresh_and_a_corrupt_file_is_refused(tmp_path, capsys):
    job = Job(tmp_path, {"a": 1}, every_seconds=0)
    job.unit("u", lambda: 1)
    other = Job(tmp_path, {"a": 2})
    assert not other.resumed and "another spec" in capsys.readouterr().err
    (tmp_path / "resume.ckpt").write_bytes(b"ROSECKP1" + b"0" * 40)
    with pytest.raises(CorruptCheckpointError):
        Job(tmp_path, {"a": 1})


def test_a_checkpoint_of_other_code_or_another_device_is_not_resumed(tmp_path, monkeypatch):
    import rose.engine as engine

    job = Job(tmp_path, {"a": 1}, every_seconds=0)
    job.unit("u", lambda: 1)
    assert Job(tmp_path, {"a": 1}).resumed
    assert not Job(tmp_path, {"a": 1}, device="meta").resumed
    monkeypatch.setattr(engine, "code_version", lambda: "edited")
    assert not Job(tmp_path, {"a": 1}).resumed


def test_resumed_values_are_copies(tmp_path):
    job = Job(tmp_path, {"a": 1}, every_seconds=0)
    first = job.unit("u", lambda: {"x": np.zeros(3), "t": torch.zeros(2)})
    first["x"][:] = 5
    first["t"] += 5
    again = job.unit("u", lambda: None)
    assert again["x"].sum() == 0 and again["t"].sum() == 0
