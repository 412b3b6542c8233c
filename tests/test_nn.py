"""The shared stacked network: each row of theta is exactly the single-model network, and the
per-instance operations (loss, gradient, HVP, per-instance learning rates) match per-model
autograd."""

import pytest
import torch
import torch.nn.functional as F

from rose.nn import StackedNet
from rose.nn.activations import hidden_activation
from rose.nn.optim import PerInstanceLR

from .conftest import quadratic_closure

ARCHS = [({"name": "mlp", "hidden": [12, 6]}, (1, 6, 6)), ({"name": "cnn", "width": 3}, (1, 8, 8))]


@pytest.mark.parametrize(("arch", "shape"), ARCHS)
def test_every_row_is_its_single_model(arch, shape):
    net = StackedNet(arch, shape, 5)
    theta = net.init([7, 8, 9])
    x, y = torch.randn(4, *shape), torch.randint(0, 5, (4,))
    losses, g = net.grad(theta, x, y, shared=True)
    xs = torch.randn(3, 4, *shape)
    out = net.logits(theta, xs)
    for i, s in enumerate([7, 8, 9]):
        torch.manual_seed(s)                       # the "torch" init = the template's default
        m = net.template()
        loss = F.cross_entropy(m(x), y)
        gi = net.flatten_module(torch.autograd.grad(loss, list(m.parameters())))
        assert losses[i].item() == pytest.approx(loss.item(), abs=1e-6)
        assert torch.allclose(g[i], gi, atol=1e-6)
        assert torch.allclose(out[i], m(xs[i]), atol=1e-5)


def test_init_depends_only_on_the_seed_and_xavier_has_zero_biases():
    net = StackedNet({"name": "mlp", "hidden": [8]}, (4,), 3)
    a, b = net.init([1, 2]), net.init([5, 2, 1])
    assert torch.equal(a[0], b[2]) and torch.equal(a[1], b[1]) and not torch.equal(a[0], a[1])
    xv = net.init([3], scheme="xavier")[0]
    mask = net.weight_mask()
    assert torch.all(xv[~mask] == 0)
    w1, _, w2, _ = net.views(xv[None])
    assert w1.shape == (1, 4, 8) and w2.shape == (1, 8, 3)          # stored [in, out]
    for w, (fan_out, fan_in) in ((w1, (8, 4)), (w2, (3, 8))):   # Xavier: U(+-sqrt(6/(in+out)))
        bound = (6 / (fan_in + fan_out)) ** 0.5
        assert w.abs().max() <= bound and w.abs().max() > 0.7 * bound
    with pytest.raises(ValueError):
        net.init([0], scheme="nope")


def test_hvp_of_every_row_equals_its_own_hessian():
    net = StackedNet({"name": "mlp", "hidden": [3], "activation": "tanh"}, (2,), 2)
    theta = net.init([0, 1], scheme="xavier") + 0.1
    x, y = torch.randn(5, 2), torch.tensor([0, 1, 1, 0, 1])
    v = torch.randn_like(theta)
    hv = net.hvp(theta, x, y, shared=True)(v)
    for i in range(2):
        H = torch.autograd.functional.hessian(
            lambda t, i=i: net.losses(t[None], x, y, shared=True)[0], theta[i])
        assert torch.allclose(hv[i], H @ v[i], atol=1e-5)


def test_filter_norm_is_the_norm_of_each_output_neuron_or_channel():
    mlp = StackedNet({"name": "mlp", "hidden": [3]}, (2,), 2)
    theta = mlp.init([0, 1])
    fn = mlp.filter_norm(theta)
    torch.manual_seed(1)
    m = mlp.template()
    w = m.net[1].weight                                   # [out=3, in=2]: neuron j = row j
    w1_norms = mlp.views(fn)[0][1]                        # instance 1, stored [in, out]
    assert torch.allclose(w1_norms, w.norm(dim=1).expand(2, 3))
    assert torch.all(mlp.views(fn)[1] == 1)               # biases: 1
    cnn = StackedNet({"name": "cnn", "width": 2}, (1, 4, 4), 2)
    th = cnn.init([0])
    k = cnn.views(th)[0][0]                               # [out=2, in=1, 3, 3]
    assert torch.allclose(cnn.views(cnn.filter_norm(th))[0][0, 1], k[1].norm().expand(1, 3, 3))


def test_evaluate_matches_the_forward():
    net = StackedNet({"name": "mlp", "hidden": [4]}, (3,), 3)
    theta = net.init([0, 1])
    X, y = torch.randn(10, 3), torch.randint(0, 3, (10,))
    loss, acc = net.evaluate(theta, X, y, chunk=3)
    out = net.logits(theta, X, shared=True)
    assert torch.allclose(acc, (out.argmax(-1) == y).float().mean(1))
    assert torch.allclose(loss, net.losses(theta, X, y, shared=True), atol=1e-6)


def test_hidden_taps_and_activations():
    net = StackedNet({"name": "mlp", "hidden": [6, 5], "activation": "topk", "k": 2}, (4,), 2)
    theta = net.init([0])
    _, hidden = net.forward(theta, torch.randn(7, 4), shared=True)
    assert [a.shape[-1] for _, a in hidden] == [6, 5]
    assert ((hidden[0][1] > 0).sum(-1) <= 2).all()
    z = torch.tensor([[1.0, -2.0, 3.0]])
    a = hidden_activation(z, "solu")
    assert torch.allclose(a.mean(-1), torch.zeros(1), atol=1e-6)   # LayerNorm, no gain
    with pytest.raises(ValueError):
        hidden_activation(z, "nope")


@pytest.mark.parametrize("make", [
    lambda p: torch.optim.SGD([p], lr=1.0, momentum=0.9, weight_decay=0.01, nesterov=True),
    lambda p: torch.optim.Adam([p], lr=1.0, weight_decay=0.01),
    lambda p: torch.optim.AdamW([p], lr=1.0, weight_decay=0.1),
])
def test_per_instance_learning_rates_equal_separate_optimisers(make):
    torch.manual_seed(0)
    lrs = torch.tensor([0.1, 0.01, 0.003])
    theta = torch.nn.Parameter(torch.randn(3, 4))
    rows = [torch.nn.Parameter(theta.detach()[i].clone()) for i in range(3)]
    stacked = PerInstanceLR(make(theta), theta, lrs)
    singles = []
    for i, r in enumerate(rows):
        o = make(r)
        o.param_groups[0]["lr"] = float(lrs[i])
        singles.append(o)
    for _ in range(5):
        grads = torch.randn(3, 4)
        theta.grad = grads.clone()
        stacked.step()
        for i, r in enumerate(rows):
            r.grad = grads[i].clone()
            singles[i].step()
    for i in range(3):
        assert torch.allclose(theta.detach()[i], rows[i].detach(), atol=1e-6)
    with pytest.raises(ValueError, match=r"^build the wrapped optimiser with lr=1\.0$"):
        PerInstanceLR(torch.optim.SGD([theta], lr=0.1), theta, lrs)


def test_per_instance_rates_for_sam_with_a_warm_up_equal_separate_optimisers():
    """SAM (rho per row via batched norms) over momentum SGD, each row with its own learning
    rate and its own linear warm-up length: the stacked step equals separate SAM optimisers
    whose lr follows torch's LambdaLR warm-up."""
    from rose.explore.sam import SAM

    A = torch.tensor([[2.0, 0.3, 0.0, 0.1], [0.3, 1.0, 0.2, 0.0], [0.0, 0.2, 3.0, 0.4],
                      [0.1, 0.0, 0.4, 0.5]])
    lrs, warm = torch.tensor([0.1, 0.02, 0.05]), torch.tensor([1.0, 3.0, 5.0])
    torch.manual_seed(0)
    theta = torch.nn.Parameter(torch.randn(3, 4))
    rows = [torch.nn.Parameter(theta.detach()[i].clone()) for i in range(3)]
    stacked = PerInstanceLR(SAM([theta], torch.optim.SGD, rho=0.05, batched=True, lr=1.0,
                                momentum=0.9), theta, lrs)
    singles, scheds = [], []
    for i, r in enumerate(rows):
        o = SAM([r], torch.optim.SGD, rho=0.05, lr=float(lrs[i]), momentum=0.9)
        singles.append(o)
        scheds.append(torch.optim.lr_scheduler.LambdaLR(
            o, lambda k, w=float(warm[i]): min(1.0, (k + 1) / w)))

    def closure(p):
        return quadratic_closure(p, A)
    for t in range(6):
        stacked.set_rates(lrs * torch.clamp((t + 1) / warm, max=1.0))
        stacked.step(closure(theta))
        for i, r in enumerate(rows):
            singles[i].step(closure(r))
            scheds[i].step()
    for i in range(3):
        assert torch.allclose(theta.detach()[i], rows[i].detach(), atol=1e-6)
    with pytest.raises(TypeError, match=r"^LBFGS's step is not linear in lr$"):
        PerInstanceLR(torch.optim.LBFGS([theta], lr=1.0), theta, lrs)


def test_per_instance_lr_passes_zero_grad_and_state_through():
    theta = torch.nn.Parameter(torch.randn(3, 4))
    opt = PerInstanceLR(torch.optim.SGD([theta], lr=1.0, momentum=0.9), theta,
                        torch.tensor([0.1, 0.2, 0.3]))
    theta.grad = torch.ones(3, 4)
    opt.step()
    opt.zero_grad(set_to_none=False)
    assert theta.grad is not None and torch.equal(theta.grad, torch.zeros(3, 4))
    opt.zero_grad()
    assert theta.grad is None
    state = opt.state_dict()
    fresh = PerInstanceLR(torch.optim.SGD([theta], lr=1.0, momentum=0.9), theta,
                          torch.tensor([0.1, 0.2, 0.3]))
    fresh.load_state_dict(state)
    assert torch.equal(fresh.optimizer.state[theta]["momentum_buffer"],
                       opt.optimizer.state[theta]["momentum_buffer"])


def test_parameters_alias_theta_and_train_like_theta():
    """An optimiser stepping the aliasing parameters moves theta itself, exactly as stepping
    theta as one leaf would."""
    net = StackedNet({"name": "mlp", "hidden": [5]}, (3,), 2)
    x, y = torch.randn(2, 6, 3), torch.randint(0, 2, (2, 6))
    theta = net.init([0, 1])
    params = net.parameters(theta)
    flat = torch.nn.Parameter(theta.clone())
    opt_p = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    opt_f = torch.optim.SGD([flat], lr=0.1, momentum=0.9)
    for _ in range(3):
        for opt, th in ((opt_p, params), (opt_f, flat)):
            opt.zero_grad()
            net.losses(th, x, y).sum().backward()
            opt.step()
    assert torch.allclose(theta, flat.detach(), atol=1e-6)
    assert not torch.equal(theta, net.init([0, 1]))
