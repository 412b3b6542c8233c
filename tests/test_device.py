import numpy as np
import pytest
import torch

import rose.device as dev
from rose.divergence import Divergence, chance_loss


def test_resolve_device_and_generator():
    assert dev.resolve_device("cpu") == torch.device("cpu")
    assert dev.resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="cuda"):
            dev.resolve_device("cuda")
    g1, g2 = dev.generator(3), dev.generator(3)
    assert torch.equal(torch.rand(4, generator=g1), torch.rand(4, generator=g2))
    t = dev.as_tensor(np.arange(3), "cpu", torch.float32)
    assert t.dtype == torch.float32 and t.device.type == "cpu"


def test_strict_device_catches_an_implicit_factory_in_rose_code_only():
    code = compile("import torch\ndef f():\n    return torch.zeros(2)\n"
                   "def g():\n    return torch.zeros(2, device='cpu')\n",
                   dev._ROSE + "/not_a_module.py", "exec")
    ns: dict = {}
    exec(code, ns)
    with dev.strict_device():
        with pytest.raises(dev.ImplicitDeviceError, match=r"not_a_module\.py:3"):
            ns["f"]()
        ns["g"]()
        torch.zeros(2)              # outside rose (this test file): not rose's business


def test_divergence_flags_nonfinite_and_huge_losses_once():
    d = Divergence(3, chance_loss(10))
    d.update(torch.tensor([1.0, float("nan"), 2.0]), step=4)
    d.update(torch.tensor([1e9, float("nan"), 2.0]), step=5)
    assert d.at_step.tolist() == [5, 4, -1] and d.status() == ["diverged", "diverged", "ok"]
    assert np.isnan(d.mask_rows(np.ones((3, 2)))[:2]).all()
    assert chance_loss(1) == pytest.approx(np.log(2))
