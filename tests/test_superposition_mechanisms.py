"""Mechanism tests of the toy model of superposition, its penalties and geometry, each against
a hand computation or a written-out reference: the batched trainer equals one AdamW run per
instance written with plain tensors (Elhage et al. 2022's model and loss), the data sampler
equals its formula, every penalty and geometry measure equals its equation on a small case.
Many were found by `make mutation` (tests/MUTATION.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rose.divergence import Divergence
from rose.superposition import geometry, penalties
from rose.superposition.toy_model import (
    ToyModel,
    importance,
    reconstruction_loss,
    sample_features,
    train_toy,
)

# ------------------------------------------------------------------------ the toy model


def test_importance_is_decay_to_the_power_i():
    assert importance(4, 0.5).tolist() == [1.0, 0.5, 0.25, 0.125]
    assert importance(3, 1.0).tolist() == [1.0, 1.0, 1.0]


def test_sample_features_is_u_over_p_below_p_and_shares_draws_within_a_seed():
    density = torch.tensor([[0.5, 0.2, 1.0], [0.5, 0.2, 1.0], [0.3, 0.3, 0.3]])
    x = sample_features(density, 7, torch.Generator().manual_seed(4))
    u = torch.rand(3, 7, 3, generator=torch.Generator().manual_seed(4))
    p = density[:, None, :]
    torch.testing.assert_close(x, torch.where(u < p, u / p, torch.zeros(())))
    rows = torch.tensor([1, 0, 1])                      # instances 0 and 2 share seed 1
    x = sample_features(density, 7, torch.Generator().manual_seed(4), rows)
    u = torch.rand(2, 7, 3, generator=torch.Generator().manual_seed(4))[rows]
    torch.testing.assert_close(x, torch.where(u < p, u / p, torch.zeros(())))


def test_init_is_xavier_normal_from_each_seed_alone():
    m = ToyModel.init([3, 5, 3], 6, 2)
    std = math.sqrt(2 / (6 + 2))
    for k, s in enumerate([3, 5, 3]):
        torch.testing.assert_close(m.W[k], torch.randn(6, 2,
                                   generator=torch.Generator().manual_seed(s)) * std)
    assert torch.equal(m.b, torch.zeros(3, 6)) and m.c is None
    assert m.W.requires_grad and m.b.requires_grad
    p = ToyModel.init([1], 6, 2, privileged=True, activation="topk", topk=1)
    assert torch.equal(p.c, torch.zeros(1, 2)) and p.c.requires_grad
    assert p.privileged and p.activation == "topk" and len(p.parameters()) == 3
    assert len(m.parameters()) == 2


def _by_hand(W, b, x, readout="relu", c=None):
    """x' for one instance: ReLU(W^T W x + b), or with a privileged basis
    ReLU(W^T ReLU(W x + c) + b)."""
    if c is None:
        out = x @ W @ W.T + b
        z = h = None
    else:
        z = x @ W + c
        h = torch.relu(z)
        out = h @ W.T + b
    return (torch.relu(out) if readout == "relu" else out), z, h


@pytest.mark.parametrize("readout", ["relu", "linear"])
@pytest.mark.parametrize("privileged", [False, True])
def test_forward_is_the_papers_model(readout, privileged):
    g = torch.Generator().manual_seed(0)
    m = ToyModel.init([0, 1], 5, 2, readout=readout, privileged=privileged)
    with torch.no_grad():
        m.b.copy_(torch.randn(2, 5, generator=g))
        if privileged:
            m.c.copy_(torch.randn(2, 2, generator=g))
    x = torch.rand(2, 4, 5, generator=g)
    out, z, h = m.forward(x)
    for k in range(2):
        want, wz, wh = _by_hand(m.W[k], m.b[k], x[k], readout, m.c[k] if privileged else None)
        torch.testing.assert_close(out[k], want)
        if privileged:
            torch.testing.assert_close(z[k], wz)
            torch.testing.assert_close(h[k], wh)
    if not privileged:
        assert z.numel() == 0 and h.numel() == 0


def test_unknown_readout_and_penalty_without_a_neuron_basis_are_refused():
    m = ToyModel.init([0], 4, 2, readout="tanh")
    with pytest.raises(ValueError) as e:
        m.forward(torch.zeros(1, 1, 4))
    assert str(e.value) == "unknown readout 'tanh'; expected relu or linear"
    with pytest.raises(ValueError) as e:
        train_toy(ToyModel.init([0], 4, 2), importance(4, 1.0)[None], torch.ones(1, 4), 2, 4,
                  1e-3, torch.Generator().manual_seed(0), penalty="l1")
    assert str(e.value) == ("a per-unit activation penalty needs the privileged-basis model: "
                            "the plain toy model's loss is invariant to rotating W")


def test_reconstruction_loss_by_hand():
    x = torch.tensor([[[1.0, 0.0], [0.5, 0.5]]])
    out = torch.tensor([[[0.0, 0.0], [0.5, 1.5]]])
    imp = torch.tensor([[1.0, 0.5]])
    # squared errors weighted: (1, 0), (0, 0.5) -> mean 1.5 / 4
    assert reconstruction_loss(x, out, imp).tolist() == [pytest.approx(0.375)]


def _reference_toy(seeds, n, m, imp, density, steps, batch, lr, seed, penalty="none", lam=None,
                   tau=1.0, level=1.0, anneal_frac=0.0, tail_frac=0.1, privileged=False):
    """One AdamW per instance on plain tensors, the notebook's loop; the data drawn as
    sample_features draws it (one uniform per entry). Returns params, per-step losses and
    penalties [steps, instances]."""
    start = ToyModel.init(seeds, n, m, privileged=privileged)
    params = [[t[k].detach().clone().requires_grad_() for t in start.parameters()]
              for k in range(len(seeds))]
    opts = [torch.optim.AdamW(p, lr=lr) for p in params]
    g = torch.Generator().manual_seed(seed)
    losses, pens = [], []
    for step in range(steps):
        u = torch.rand(len(seeds), batch, n, generator=g)
        x = torch.where(u < density[:, None], u / density[:, None], torch.zeros(()))
        step_l, step_p = [], []
        for k, p in enumerate(params):
            W, b = p[0], p[1]
            out, z, h = _by_hand(W, b, x[k], "relu", p[2] if privileged else None)
            recon = (imp[k] * (x[k] - out) ** 2).mean()
            if penalty == "bimodal_sigmoid":
                rms = z.detach().pow(2).mean(0).sqrt().clamp_min(1e-6)
                s = torch.sigmoid(z / (tau * rms))
                pen = (s * (1 - s)).mean()
            elif penalty == "bimodal_nearest":
                pen = torch.minimum(h.abs(), (h - level).abs()).pow(2).mean()
            elif penalty == "l1":
                pen = h.abs().mean()
            else:
                pen = torch.zeros(())
            ramp = 1.0 if anneal_frac <= 0 else min(1.0, step / (anneal_frac * steps))
            opts[k].zero_grad()
            (recon + lam[k] * ramp * pen if lam is not None else recon).backward()
            opts[k].step()
            step_l.append(recon.item())
            step_p.append(pen.item())
        losses.append(step_l)
        pens.append(step_p)
    return params, torch.tensor(losses), torch.tensor(pens)


@pytest.mark.parametrize("penalty", ["bimodal_sigmoid", "bimodal_nearest", "l1"])
def test_batched_training_equals_one_adamw_run_per_instance(penalty):
    imp = importance(6, 0.8).expand(2, 6)
    density = torch.tensor([[0.3] * 6, [0.6] * 6])
    lam = torch.tensor([0.5, 2.0])
    kw = dict(penalty=penalty, lam=lam, tau=0.5, level=0.7, anneal_frac=0.5, tail_frac=0.4)
    model = ToyModel.init([1, 2], 6, 3, privileged=True)
    res = train_toy(model, imp, density, 10, 16, 1e-2, torch.Generator().manual_seed(9), **kw)
    params, losses, pens = _reference_toy([1, 2], 6, 3, imp, density, 10, 16, 1e-2, 9,
                                          privileged=True, **kw)
    for k in range(2):
        for got, want in zip(model.parameters(), params[k], strict=True):
            torch.testing.assert_close(got[k], want.detach(), atol=1e-5, rtol=1e-5)
    # tail: the last max(1, int(0.4 * 10)) = 4 steps
    torch.testing.assert_close(res.loss, losses[-4:].mean(0), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(res.penalty, pens[-4:].mean(0), atol=1e-6, rtol=1e-5)
    assert res.diverged_at.tolist() == [-1, -1]
    assert not any(p.requires_grad for p in model.parameters())


def test_plain_model_trains_as_the_notebook_with_a_one_step_tail():
    imp = importance(5, 0.9).expand(3, 5)
    density = torch.full((3, 5), 0.25)
    model = ToyModel.init([0, 1, 2], 5, 2)
    res = train_toy(model, imp, density, 8, 32, 1e-2, torch.Generator().manual_seed(2),
                    tail_frac=0.01)
    params, losses, _ = _reference_toy([0, 1, 2], 5, 2, imp, density, 8, 32, 1e-2, 2)
    for k in range(3):
        torch.testing.assert_close(model.W[k], params[k][0].detach(), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(model.b[k], params[k][1].detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(res.loss, losses[-1], atol=1e-6, rtol=1e-5)
    assert torch.equal(res.penalty, torch.zeros(3))


def test_divergence_is_flagged_against_the_zero_predictors_loss():
    imp = importance(5, 1.0).expand(2, 5)
    density = torch.full((2, 5), 0.5)
    kw = dict(tail_frac=0.1)
    model = ToyModel.init([0, 1], 5, 2)
    res = train_toy(model, imp, density, 15, 32, 30.0, torch.Generator().manual_seed(2), **kw)
    _, losses, _ = _reference_toy([0, 1], 5, 2, imp, density, 15, 32, 30.0, 2)
    limit = Divergence(2, (imp * density).mean(1).numpy() / 3).limit
    assert limit.tolist() == pytest.approx([100 * 0.5 / 3] * 2)
    bad = ~torch.isfinite(losses) | (losses > torch.as_tensor(limit))
    want = [int(bad[:, k].int().argmax()) if bad[:, k].any() else -1 for k in range(2)]
    assert any(w >= 0 for w in want)                    # the case is what it claims
    assert res.diverged_at.tolist() == want


# ---------------------------------------------------------------------------- penalties

def test_bimodal_sigmoid_uses_each_units_rms_over_the_batch():
    z = torch.tensor([[[1.0, 0.0], [-3.0, 2.0]]])       # unit rms: sqrt(5), sqrt(2)
    rms = torch.tensor([5.0, 2.0]).sqrt()
    s = torch.sigmoid(z / (0.5 * rms))
    assert penalties.bimodal_sigmoid(z, 0.5).item() == pytest.approx((s * (1 - s)).mean().item())
    zero = penalties.bimodal_sigmoid(torch.zeros(1, 3, 2), 1.0)   # dead units: clamp, 1/4
    assert zero.item() == pytest.approx(0.25)
    # the scale is held constant: no gradient flows through rms
    zg = z.clone().requires_grad_()
    penalties.bimodal_sigmoid(zg, 0.5).sum().backward()
    sg = torch.sigmoid(z / (0.5 * rms))
    want = (1 - 2 * sg) * sg * (1 - sg) / (0.5 * rms) / 4
    torch.testing.assert_close(zg.grad, want)


def test_each_penalty_is_its_equation_per_instance():
    a = torch.tensor([[[0.2, -1.5], [0.9, 0.4]], [[2.0, 0.0], [0.5, 0.6]]])
    assert penalties.l1_activation(a).tolist() == pytest.approx([3.0 / 4, 3.1 / 4])
    # nearest of {0, 1}: 0.2, 1.5, 0.1, 0.4 | 1.0, 0, 0.5, 0.4
    near = penalties.bimodal_nearest(a, 1.0)
    assert near.tolist() == pytest.approx([(0.04 + 2.25 + 0.01 + 0.16) / 4,
                                           (1.0 + 0 + 0.25 + 0.16) / 4])
    z = a - 0.3
    assert torch.equal(penalties.activation_penalty("none", z, a), torch.zeros(2))
    assert torch.equal(penalties.activation_penalty("l1", z, a), penalties.l1_activation(a))
    assert torch.equal(penalties.activation_penalty("bimodal_nearest", z, a, level=1.0), near)
    assert torch.equal(penalties.activation_penalty("bimodal_nearest", z, a),
                       penalties.bimodal_nearest(a, 1.0))              # default level 1
    assert torch.equal(penalties.activation_penalty("bimodal_sigmoid", z, a, tau=0.3),
                       penalties.bimodal_sigmoid(z, 0.3))
    assert torch.equal(penalties.activation_penalty("bimodal_sigmoid", z, a),
                       penalties.bimodal_sigmoid(z, 1.0))              # default tau 1
    with pytest.raises(ValueError) as e:
        penalties.activation_penalty("l2", z, a)
    assert str(e.value) == f"unknown penalty 'l2'; expected one of {penalties.PENALTIES}"


def test_penalty_weight_ramp_endpoints():
    lam = torch.tensor([2.0, 4.0])
    assert penalties.penalty_weight(lam, 0, 100, 0.5).tolist() == [0.0, 0.0]
    assert penalties.penalty_weight(lam, 10, 100, 0.5).tolist() == pytest.approx([0.4, 0.8])
    assert penalties.penalty_weight(lam, 50, 100, 0.5).tolist() == [2.0, 4.0]
    assert penalties.penalty_weight(lam, 99, 100, 0.5).tolist() == [2.0, 4.0]
    assert penalties.penalty_weight(lam, 0, 100, -1.0) is lam


# ----------------------------------------------------------------------------- geometry

def test_superposition_and_dimensionality_by_hand():
    W = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 0.0], [0.0, -2.0]])
    # Gram: W0.W1 = 0.6, W0.W3 = 0, W1.W3 = -1.6; norms^2 1, 1, 0, 4
    sup = geometry.superposition(W)
    torch.testing.assert_close(sup, torch.tensor([0.36, 0.36 + 2.56, 0.0, 2.56 / 4]))
    dim = geometry.dimensionality(W)
    torch.testing.assert_close(dim, torch.tensor([1 / (1 + 0.36), 1 / (1 + 0.36 + 2.56), 0.0,
                                                  16 / (16 + 2.56)]))
    torch.testing.assert_close(geometry.feature_norms(W), torch.tensor([1.0, 1.0, 0.0, 2.0]))
    assert geometry.features_per_dimension(W).item() == pytest.approx(6.0 / 2)
    batched = torch.stack([W, 2 * W])
    torch.testing.assert_close(geometry.dimensionality(batched)[1], dim)
    torch.testing.assert_close(geometry.superposition(batched)[1], 4 * sup)
    torch.testing.assert_close(geometry.features_per_dimension(batched),
                               torch.tensor([3.0, 12.0]))


def test_neuron_polysemanticity_by_hand():
    W = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    # unit 0 reads features 0 and 1 equally; unit 1 one feature; unit 2 none
    torch.testing.assert_close(geometry.neuron_polysemanticity(W),
                               torch.tensor([0.5, 0.0, 0.0]))
    W2 = torch.tensor([[3.0], [1.0]])
    torch.testing.assert_close(geometry.neuron_polysemanticity(W2), torch.tensor([0.1]))


# ------------------------------------------------------------- found by make mutation (2)

def test_sample_features_draws_one_u_per_seed_and_no_more():
    # the generator is the training stream: drawing extra rows would shift every later batch
    density = torch.tensor([[0.5, 0.2, 1.0], [0.4, 0.3, 0.9], [0.3, 0.3, 0.3]])
    rows = torch.tensor([1, 0, 1])
    g = torch.Generator().manual_seed(4)
    sample_features(density, 7, g, rows)
    second = sample_features(density, 7, g, rows)
    ref = torch.Generator().manual_seed(4)
    torch.rand(2, 7, 3, generator=ref)
    u = torch.rand(2, 7, 3, generator=ref)[rows]
    p = density[:, None, :]
    torch.testing.assert_close(second, torch.where(u < p, u / p, torch.zeros(())))


def test_topk_model_keeps_its_k():
    from rose.nn.activations import hidden_activation
    m = ToyModel.init([0, 1], 6, 4, privileged=True, activation="topk", topk=2)
    with torch.no_grad():
        m.c.normal_()
    x = torch.rand(2, 9, 6)
    z, h = m.hidden(x)
    torch.testing.assert_close(h, hidden_activation(z, "topk", 2))
    assert ((h > 0).sum(-1) <= 2).all() and ((h > 0).sum(-1) == 2).any()


def test_train_toy_defaults():
    imp, density = importance(5, 0.9).expand(2, 5), torch.full((2, 5), 0.3)
    lam = torch.full((2,), 0.1)

    def run(penalty, **kw):
        model = ToyModel.init([0, 1], 5, 3, privileged=True)
        res = train_toy(model, imp, density, 20, 16, 1e-2, torch.Generator().manual_seed(1),
                        penalty=penalty, lam=lam, **kw)
        return torch.cat([res.model.W.flatten(), res.loss, res.penalty])

    explicit = dict(tau=1.0, level=1.0, anneal_frac=0.0, tail_frac=0.1)
    for penalty in ("bimodal_sigmoid", "bimodal_nearest"):
        torch.testing.assert_close(run(penalty), run(penalty, **explicit), rtol=0, atol=0)


def test_divergence_reference_is_the_zero_predictors_loss_per_instance(monkeypatch):
    import rose.superposition.toy_model as tm
    seen = []

    class Spy(Divergence):
        def __init__(self, instances, reference_loss, *a, **kw):
            seen.append(np.asarray(reference_loss))
            super().__init__(instances, reference_loss, *a, **kw)

    monkeypatch.setattr(tm, "Divergence", Spy)
    imp = torch.tensor([[1.0, 0.5, 0.25], [1.0, 1.0, 1.0]])
    density = torch.tensor([[0.1, 0.2, 0.3], [0.5, 0.5, 0.5]])
    train_toy(ToyModel.init([0, 1], 3, 2), imp, density, 2, 4, 1e-3, torch.Generator())
    want = [(0.1 + 0.1 + 0.075) / 3 / 3, 0.5 / 3]           # mean_i I_i p_i E[x^2 | present]
    np.testing.assert_allclose(seen[0], want, rtol=1e-6)


class _Interrupt(Exception):
    pass


def test_train_toy_resumes_exactly_where_it_stopped():
    from rose.engine import NoJob, from_plain, to_plain

    class StopAt(NoJob):
        def __init__(self, k):
            super().__init__()
            self.k, self.n, self.saved = k, 0, None

        def tick(self, state, force=False):
            self.n += 1
            if self.n == self.k:
                self.saved = to_plain(state())
                raise _Interrupt

    class ResumeFrom(NoJob):
        def __init__(self, saved):
            super().__init__()
            self.saved = saved

        def resume(self):
            return from_plain(self.saved)

    imp, density = importance(5, 0.9).expand(2, 5), torch.full((2, 5), 0.3)
    kw = dict(penalty="l1", lam=torch.full((2,), 0.05), tail_frac=0.5, rows=torch.tensor([0, 0]))

    def fresh():
        return ToyModel.init([0, 1], 5, 3, privileged=True)

    full = train_toy(fresh(), imp, density, 12, 16, 1e-2, torch.Generator().manual_seed(5), **kw)
    stop = StopAt(9)                                      # after step 8: inside the tail
    with pytest.raises(_Interrupt):
        train_toy(fresh(), imp, density, 12, 16, 1e-2, torch.Generator().manual_seed(5),
                  job=stop, **kw)
    again = train_toy(fresh(), imp, density, 12, 16, 1e-2, torch.Generator().manual_seed(99),
                      job=ResumeFrom(stop.saved), **kw)
    for a, b in ((again.model.W, full.model.W), (again.model.b, full.model.b),
                 (again.model.c, full.model.c), (again.loss, full.loss),
                 (again.penalty, full.penalty)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert again.diverged_at.tolist() == full.diverged_at.tolist()


def test_unit_concept_information_by_hand():
    acts = np.arange(8.0)[:, None]                         # one unit, quartile bins
    concept = np.array([0, 0, 1, 1, 2, 2, 3, 3])            # determined by the quartile
    assert geometry.unit_concept_information(acts, concept, bins=4) == pytest.approx([1.0])
    halves = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    assert geometry.unit_concept_information(acts, halves, bins=4) == pytest.approx([1.0])
    # bins of two values each, and the concept alternates inside every bin: I = 0
    mixed = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    assert geometry.unit_concept_information(acts, mixed, bins=4) == pytest.approx([0.0])


def test_concept_selectivity_by_hand():
    # alive units: 2 carry a only, 1 b only, 3 both, 4 neither (two of them exactly at the
    # threshold on one concept count as carrying it); one dead unit carries both
    info_a = np.array([0.3, 0.2, 0.0, 0.5, 0.2, 0.9, 0.1, 0.0, 0.19, 0.0, 0.8])
    info_b = np.array([0.0, 0.1, 0.2, 0.5, 0.3, 0.2, 0.1, 0.0, 0.0, 0.19, 0.8])
    alive = np.array([True] * 10 + [False])
    f = geometry.concept_selectivity(info_a, info_b, alive, 0.2, ("c", "s"))
    assert f == {"frac_only_c": 0.2, "frac_only_s": 0.1, "frac_both": 0.3, "frac_neither": 0.4,
                 "frac_alive": pytest.approx(10 / 11)}
    one = geometry.concept_selectivity(info_a, info_b, np.eye(11, dtype=bool)[3], 0.2)
    assert one["frac_both"] == 1.0 and one["frac_only_a"] == 0.0


def test_instances_of_one_seed_see_the_same_batches():
    imp, density = importance(5, 0.9).expand(2, 5), torch.full((2, 5), 0.3)

    def run(rows):
        model = ToyModel.init([0, 0], 5, 2)                    # the same start twice
        return train_toy(model, imp, density, 5, 8, 1e-2, torch.Generator().manual_seed(1),
                         rows=rows).model.W

    shared = run(torch.tensor([0, 0]))
    assert torch.equal(shared[0], shared[1])
    apart = run(None)
    assert not torch.equal(apart[0], apart[1])


def test_geometry_on_a_batch_of_instances_is_per_instance():
    W = torch.randn(3, 5, 2, generator=torch.Generator().manual_seed(0))     # [I, n, m]
    for f in (geometry.feature_norms, geometry.superposition, geometry.dimensionality):
        batched = f(W)
        assert batched.shape == (3, 5)
        for i in range(3):
            torch.testing.assert_close(batched[i], f(W[i]))


def test_present_features_lie_in_zero_one():
    # u < p, not u <= p: float32 uniforms hit p = 0.5 exactly about once in 2^24 draws
    x = sample_features(torch.tensor([[0.5]]), 2 ** 20, torch.Generator().manual_seed(7))
    assert (x >= 0).all() and (x < 1).all()


def test_importance_is_float_for_an_integer_decay():
    assert importance(3, 1).dtype == torch.float32
