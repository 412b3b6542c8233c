import torch

from rose.models import MLP, build_model, count_parameters


def test_mlp_parameter_count_closed_form():
    m = build_model({"name": "mlp", "hidden": [256, 256]}, (1, 28, 28), 10)
    assert count_parameters(m) == (784 * 256 + 256) + (256 * 256 + 256) + (256 * 10 + 10)
    assert m(torch.zeros(5, 1, 28, 28)).shape == (5, 10)


def test_cnn_shapes_for_mnist_and_digits():
    for side in (28, 8):
        m = build_model({"name": "cnn", "width": 4}, (1, side, side), 10)
        assert m(torch.zeros(3, 1, side, side)).shape == (3, 10)


def test_mlp_dropout_only_in_training_mode():
    torch.manual_seed(0)
    m = MLP(4, [64], 2, dropout=0.5)
    x = torch.randn(8, 4)
    m.eval()
    assert torch.equal(m(x), m(x))
    m.train()
    assert not torch.equal(m(x), m(x))
