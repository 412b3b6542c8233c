import collections
import io

import pytest
import torch

from rose.checkpoint import MAGIC, CorruptCheckpointError, load_checkpoint, save_checkpoint


def test_roundtrip_preserves_tensors_and_rng_state(tmp_path):
    state = {"w": torch.randn(3, 4), "rng": torch.get_rng_state(), "step": 7, "hist": [{"a": 1.0}]}
    save_checkpoint(state, tmp_path / "c.ckpt")
    back = load_checkpoint(tmp_path / "c.ckpt")
    assert torch.equal(back["w"], state["w"]) and torch.equal(back["rng"], state["rng"])
    assert back["step"] == 7 and back["hist"] == [{"a": 1.0}]
    assert not (tmp_path / "c.ckpt.tmp").exists()


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "plain_torch_file"])
def test_damaged_checkpoint_is_detected_and_left_in_place(tmp_path, damage):
    path = tmp_path / "c.ckpt"
    save_checkpoint({"w": torch.arange(1000.0)}, path)
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "flip":
        i = len(raw) - 100
        path.write_bytes(raw[:i] + bytes([raw[i] ^ 0xFF]) + raw[i + 1:])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        torch.save({"w": torch.zeros(2)}, path)
    before = path.read_bytes()
    with pytest.raises(CorruptCheckpointError, match=r"delete it|torch\.load"):
        load_checkpoint(path)
    assert path.read_bytes() == before  # detection loses nothing


class NotAllowed:
    pass


def test_loading_uses_weights_only(tmp_path):
    """A payload with an arbitrary pickled object and a *valid* digest is still refused:
    torch.load(weights_only=True) will not unpickle it."""
    buf = io.BytesIO()
    torch.save({"obj": NotAllowed()}, buf)
    import hashlib

    payload = buf.getvalue()
    (tmp_path / "evil.ckpt").write_bytes(MAGIC + hashlib.sha256(payload).digest() + payload)
    with pytest.raises(CorruptCheckpointError, match=r"torch\.load failed"):
        load_checkpoint(tmp_path / "evil.ckpt")
    # an OrderedDict of tensors (a state_dict) is allowed
    save_checkpoint(collections.OrderedDict(a=torch.ones(1)), tmp_path / "ok.ckpt")
    assert torch.equal(load_checkpoint(tmp_path / "ok.ckpt")["a"], torch.ones(1))
