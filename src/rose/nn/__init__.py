"""Networks shared by every direction: many instances of one small architecture trained as one
model (rose.nn.stacked), the activations they use (rose.nn.activations), and per-instance
optimiser helpers (rose.nn.optim)."""

from rose.nn.stacked import StackedNet

__all__ = ["StackedNet"]
