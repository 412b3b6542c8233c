import json
import math
import subprocess
import sys

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from rose.checkpoint import CorruptCheckpointError, load_checkpoint, save_checkpoint
from rose.device import resolve_device
from rose.models import build_model
from rose.train import lr_factor, standard_step, train

from .conftest import kill_after_checkpoint


def _numbers(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in ("timing",)}


def _weights(path) -> dict:
    return load_checkpoint(path)["model"]


def test_device_auto_resolves_to_what_torch_sees():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu").type == "cpu"


def test_loop_equals_a_hand_written_reference_loop(spec, digits, tmp_path):
    """The shared loop is plain minibatch SGD: same seed, same batch order -> same weights."""
    spec["checkpoint_every"] = 0
    metrics = train(spec, digits, tmp_path, progress=False)
    torch.manual_seed(spec["seed"])
    model = build_model(spec["model"], digits.input_shape, digits.n_classes)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    gen = torch.Generator().manual_seed(spec["seed"])
    X, Y = digits.X["train"], digits.y["train"]
    for _ in range(spec["epochs"]):
        perm = torch.randperm(len(Y), generator=gen)
        for i in range(0, len(Y), spec["batch_size"]):
            idx = perm[i:i + spec["batch_size"]]
            opt.zero_grad()
            F.cross_entropy(model(X[idx]), Y[idx]).backward()
            opt.step()
    got = _weights(tmp_path / "model.ckpt")
    for k, v in model.state_dict().items():
        assert torch.equal(got[k], v), k
    with torch.no_grad():
        correct = (model(digits.X["test"]).argmax(1) == digits.y["test"]).sum().item()
    acc = correct / len(digits.y["test"])
    assert metrics["final"]["test_acc"] == pytest.approx(acc, abs=1e-12)
    assert metrics["grad_evals"] == metrics["steps"] == spec["epochs"] * math.ceil(len(Y) / 64)


def test_bitwise_determinism_and_seed_sensitivity(spec, digits, tmp_path):
    a = train(spec, digits, tmp_path / "a", progress=False)
    b = train(spec, digits, tmp_path / "b", progress=False)
    assert _numbers(a) == _numbers(b)
    wa, wb = _weights(tmp_path / "a/model.ckpt"), _weights(tmp_path / "b/model.ckpt")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    spec["seed"] = 1
    c = train(spec, digits, tmp_path / "c", progress=False)
    assert c["final"]["test_loss"] != a["final"]["test_loss"]


def test_outputs_written(spec, digits, tmp_path):
    m = train(spec, digits, tmp_path, progress=False)
    hist = pd.read_csv(tmp_path / "history.csv")
    assert len(hist) == spec["epochs"] and hist["epoch"].tolist() == [1, 2, 3]
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["status"] == "ok" and on_disk["spec"] == spec
    assert on_disk["final"]["test_acc"] == hist["test_acc"].iloc[-1]
    best = hist.loc[hist["val_acc"].idxmax()]
    assert on_disk["early_stopped"]["test_acc"] == best["test_acc"]
    assert m["final"]["generalisation_gap"] == pytest.approx(
        hist["train_acc"].iloc[-1] - hist["test_acc"].iloc[-1])
    assert not (tmp_path / "resume.ckpt").exists()


class Killed(Exception):
    pass


def _killing_step(after: int):
    calls = {"n": 0}

    def step(model, x, y, opt):
        calls["n"] += 1
        if calls["n"] > after:
            raise Killed
        return standard_step(model, x, y, opt)

    return step


@pytest.mark.parametrize("kill_after", [9, 17, 21])  # mid-epoch, and just past a boundary
def test_resume_after_interruption_equals_uninterrupted(spec, digits, tmp_path, kill_after):
    spec["model"]["dropout"] = 0.2  # resume must restore the global RNG too
    ref = train(spec, digits, tmp_path / "ref", progress=False)
    with pytest.raises(Killed):
        train(spec, digits, tmp_path / "run", progress=False, step_fn=_killing_step(kill_after))
    ck = load_checkpoint(tmp_path / "run/resume.ckpt")
    assert ck["step"] == (kill_after // 7) * 7  # the last checkpoint before the kill
    resumed = train(spec, digits, tmp_path / "run", progress=False)
    assert resumed["timing"]["resumed_from_step"] == ck["step"]
    assert _numbers(resumed) == _numbers(ref)
    wa, wb = _weights(tmp_path / "ref/model.ckpt"), _weights(tmp_path / "run/model.ckpt")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_after_sigkill_of_a_real_process(spec, digits_npz, tmp_path, tool_env):
    """`rose run` killed with SIGKILL mid-run, then rerun: same final metrics as one clean run."""
    spec.update(dataset="digits", epochs=40, checkpoint_every=5)
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    cmd = [sys.executable, "-m", "rose.cli", "run", str(tmp_path / "spec.json"),
           "--data", str(digits_npz), "--threads", "1", "--no-progress"]
    subprocess.run([*cmd, "--out", str(tmp_path / "ref")], check=True, env=tool_env,
                   capture_output=True)
    kill_after_checkpoint([*cmd, "--out", str(tmp_path / "run")], None, tool_env,
                          tmp_path / "run" / "resume.ckpt", min_step=60)
    assert not (tmp_path / "run" / "metrics.json").exists()
    resumed = subprocess.run([*cmd, "--out", str(tmp_path / "run")], check=True,
                             env=tool_env, capture_output=True, text=True)
    timing = json.loads(resumed.stderr.split("timing: ")[-1].splitlines()[0])
    assert timing["resumed_from_step"] is not None
    # byte-identical: metrics.json holds no timing (it goes to the log)
    assert (tmp_path / "run/metrics.json").read_bytes() == \
        (tmp_path / "ref/metrics.json").read_bytes()


def test_corrupt_resume_checkpoint_is_reported_not_used(spec, digits, tmp_path):
    with pytest.raises(Killed):
        train(spec, digits, tmp_path, progress=False, step_fn=_killing_step(10))
    path = tmp_path / "resume.ckpt"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CorruptCheckpointError):
        train(spec, digits, tmp_path, progress=False)
    assert path.exists()


def test_checkpoint_of_another_spec_is_ignored(spec, digits, tmp_path):
    ref = train(spec, digits, tmp_path / "ref", progress=False)
    save_checkpoint({"spec_hash": "not-this-one"}, tmp_path / "run" / "resume.ckpt")
    run = train(spec, digits, tmp_path / "run", progress=False)
    assert run["timing"]["resumed_from_step"] is None and _numbers(run) == _numbers(ref)


@pytest.mark.parametrize("lr", [1e4, 1e30])  # loss explodes / becomes NaN
def test_divergence_is_recorded_not_reported_as_a_number(spec, digits, tmp_path, lr):
    spec["optimizer"].update(lr=lr, momentum=0.0)
    m = train(spec, digits, tmp_path, progress=False)
    assert m["status"] == "diverged" and m["diverged_at_step"] >= 1
    assert all(v is None for v in m["final"].values())
    text = (tmp_path / "metrics.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text)["status"] == "diverged"


def test_lr_schedules_closed_forms():
    warm = {"name": "linear_warmup", "warmup_steps": 4}
    assert [lr_factor(warm, s, 100) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    cos = {"name": "cosine", "warmup_steps": 0}
    assert lr_factor(cos, 0, 100) == 1.0
    assert lr_factor(cos, 50, 100) == pytest.approx(0.5)
    assert lr_factor(cos, 100, 100) == pytest.approx(0.0)
    assert lr_factor({"name": "constant"}, 7, 10) == 1.0


def test_incomplete_spec_is_rejected_naming_the_keys(spec, digits, tmp_path):
    del spec["epochs"], spec["optimizer"]
    with pytest.raises(ValueError, match=r"\['epochs', 'optimizer'\]"):
        train(spec, digits, tmp_path, progress=False)
    assert not any(tmp_path.iterdir())
