"""Colored MNIST in the IRM paper's construction (Arjovsky et al. 2019,
facebookresearch/InvariantRiskMinimization code/colored_mnist/main.py), built from any MNIST
array (the offline 5k subset, so numbers are not comparable with the 60k-image paper, or a
prepared MNIST / Fashion-MNIST: ``superposition.shortcut.dataset``, rose.data.images). On
Fashion-MNIST "digit" reads "class" (shape = class < 5) and the garment is what is coloured.

Per image: downsample 28x28 -> 14x14 ([::2, ::2]); shape = 1 if digit < 5; label y = shape
flipped with probability 0.25; colour = y XOR Bernoulli(e); two channels, the other colour's
channel zeroed. Training environments e = 0.2 and 0.1 (colour agrees with the label 80% / 90%),
test environment e = 0.9 (10%). Shape agrees with the label 75% everywhere.

``colour_of="shape"`` colours by the clean shape instead of the noisy label: with e = 0 the
training set then never shows a small digit in green or a large one in red, and the "swapped"
split (colour = 1 - shape) holds only combinations never seen together in training.
Groups are (label, colour): group = 2 y + colour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LABEL_NOISE = 0.25


@dataclass(frozen=True)
class Environment:
    x: np.ndarray        # [N, 2, 14, 14] float32
    y: np.ndarray        # noisy binary label (the target)
    shape: np.ndarray    # 1 if digit < 5 (the invariant concept)
    colour: np.ndarray   # 0 = red channel, 1 = green channel (the spurious concept)

    @property
    def group(self) -> np.ndarray:
        return 2 * self.y + self.colour

    def __len__(self) -> int:
        return len(self.y)


def colour_images(images28: np.ndarray, digits: np.ndarray, flip: float,
                  rng: np.random.Generator, colour_of: str = "label",
                  label_noise: float = LABEL_NOISE) -> Environment:
    """One environment. images28: [N, 28, 28] (or [N, 1, 28, 28]) in [0, 1]; ``flip`` = e."""
    img = images28.reshape(-1, 28, 28)[:, ::2, ::2].astype(np.float32)
    shape = (digits < 5).astype(np.int64)
    y = shape ^ (rng.random(len(shape)) < label_noise)
    base = {"label": y, "shape": shape}[colour_of]
    colour = (base ^ (rng.random(len(shape)) < flip)).astype(np.int64)
    x = np.zeros((len(img), 2, 14, 14), dtype=np.float32)
    x[np.arange(len(img)), colour] = img
    return Environment(x, y.astype(np.int64), shape, colour)


def recolour(env: Environment, colour: np.ndarray) -> Environment:
    """The same images and labels with the given colours (for counterfactual test splits)."""
    img = env.x.sum(1)
    x = np.zeros_like(env.x)
    x[np.arange(len(img)), colour] = img
    return Environment(x, env.y, env.shape, colour.astype(np.int64))


def correlations(env: Environment) -> dict[str, float]:
    """Measured agreement rates: P(colour = y), P(shape = y), P(colour = shape)."""
    return {"colour_label": float((env.colour == env.y).mean()),
            "shape_label": float((env.shape == env.y).mean()),
            "colour_shape": float((env.colour == env.shape).mean())}
