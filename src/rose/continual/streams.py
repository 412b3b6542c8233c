"""Online continual-learning streams from MNIST 5k, digits, or a prepared Fashion-MNIST / MNIST
(``continual.dataset``, rose.data.images; any [N, 1, H, W] images with 10 classes): each sample
arrives once, in small batches, tasks one after another. The learner is never told where a
task ends; only the baselines that need boundaries (EWC, LwF, L2-SP, the LDIFS penalty, the
task-start anchor) and the evaluation read ``task_of_batch``.

split     class-incremental: task t holds classes {2t, 2t+1} (5 tasks on 10 digits), one
          shared 10-way head (no task labels at test time)
permuted  domain-incremental: task t applies its own fixed pixel permutation to every image
rotated   domain-incremental: task t rotates every image by its own fixed angle,
          evenly spaced in [0, max_angle)

The validation stream (``role="validation"``) on which every arm is tuned follows the same
protocol on held-out tasks and held-out images: it is built from the test stream's training
images only (split again 80/20, stratified), with its own permutations (drawn from another
seeded generator), angles shifted by ``angle_offset`` of the spacing (midway between the test
stream's with 0.5), or class pairs shifted by ``class_shift`` ({1, 2}, {3, 4}, ..., {9, 0} with
1): no test image and no test task enters a choice.

Permutations and angles are drawn once per seed from a seeded generator, never per batch
(research notes, pitfall 3). Train and test images are disjoint (a stratified 80/20 split made
once per seed); each task's training samples are a class-stratified random sample of the
training images (rose.sampling); each task's test set is every test image of its classes
(split) or all test images transformed by the task's permutation / rotation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from rose.sampling import stratified_partition, stratified_sample

STREAMS = ("split", "permuted", "rotated")
ROLES = ("test", "validation")


@dataclass(frozen=True)
class Stream:
    x: np.ndarray              # [batches, batch_size, d] float32, in arrival order
    y: np.ndarray              # [batches, batch_size]
    task_of_batch: np.ndarray  # [batches]
    test_x: list[np.ndarray]   # per task [n_j, d]
    test_y: list[np.ndarray]
    n_classes: int

    @property
    def n_tasks(self) -> int:
        return len(self.test_x)

    @property
    def n_batches(self) -> int:
        return len(self.y)


def _train_test(y: np.ndarray, seed: int, test_frac: float = 0.2
                ) -> tuple[np.ndarray, np.ndarray]:
    """A stratified split (rose.sampling): test_frac of every class; both parts shuffled."""
    parts = stratified_partition(y, {"test": test_frac, "train": -1}, [seed, 1],
                                 name="continual.split")
    return parts["train"], parts["test"]


def _rotate(images: np.ndarray, angle: float) -> np.ndarray:
    """Rotate [N, H, W] images about their centre (bilinear, zero fill)."""
    return ndimage.rotate(images, angle, axes=(1, 2), reshape=False, order=1, mode="constant")


def overlaps(kind: str, angle_offset: float, class_shift: int) -> str | None:
    """Why a validation stream with these settings would repeat test tasks (None if not)."""
    if kind == "rotated" and not 0.25 <= angle_offset % 1 <= 0.75:
        return ("angle_offset: validation angles within a quarter spacing of the test angles "
                "(give a fraction in [0.25, 0.75]; 0.5 is midway)")
    if kind == "split" and class_shift % 2 == 0:
        return "class_shift: an even shift gives the test stream's class pairs"
    return None


def make_stream(kind: str, images: np.ndarray, labels: np.ndarray, seed: int, tasks: int,
                samples_per_task: int, batch_size: int, max_angle: float = 180.0,
                role: str = "test", angle_offset: float = 0.5, class_shift: int = 1
                ) -> Stream:
    """images [N, 1, H, W] in [0, 1]. Each task gets ``samples_per_task`` training samples
    (fewer if its classes have fewer; whole batches only)."""
    if kind not in STREAMS:
        raise ValueError(f"unknown stream {kind!r}; expected one of {STREAMS}")
    if role not in ROLES:
        raise ValueError(f"unknown stream role {role!r}; expected one of {ROLES}")
    rng = np.random.default_rng(seed if role == "test" else [seed, 4])
    img = images.reshape(len(images), images.shape[-2], images.shape[-1]).astype(np.float32)
    d = img.shape[1] * img.shape[2]
    train, test = _train_test(labels, seed)
    n_classes = int(labels.max()) + 1
    offset, shift = 0.0, 0
    if role == "validation":
        why = overlaps(kind, angle_offset, class_shift)
        if why:
            raise ValueError(f"validation stream overlaps the test stream: {why}")
        parts = stratified_partition(labels[train], {"eval": 0.2, "train": -1}, [seed, 3],
                                     name="continual.validation_split")
        train, test = train[parts["train"]], train[parts["eval"]]
        offset, shift = angle_offset, class_shift
    xs, ys, tx, ty = [], [], [], []
    if kind == "split":
        if tasks * 2 > n_classes:
            raise ValueError(f"split stream: {tasks} tasks of 2 classes need {2 * tasks} "
                             f"classes, data has {n_classes}")
        for t in range(tasks):
            cls = ((2 * t + shift) % n_classes, (2 * t + 1 + shift) % n_classes)
            mine = train[np.isin(labels[train], cls)]
            tr = stratified_sample(labels, min(samples_per_task, len(mine)), [seed, 2, t],
                                   name="continual.task_samples", within=mine)
            te = test[np.isin(labels[test], cls)]
            xs.append(img[tr].reshape(len(tr), d))
            ys.append(labels[tr])
            tx.append(img[te].reshape(len(te), d))
            ty.append(labels[te])
    else:
        angles = (np.arange(tasks) + offset) * max_angle / tasks
        for t in range(tasks):
            tr = stratified_sample(labels, min(samples_per_task, len(train)), [seed, 2, t],
                                   name="continual.task_samples", within=train)
            if kind == "permuted":
                perm = rng.permutation(d)
                xs.append(img[tr].reshape(len(tr), d)[:, perm])
                tx.append(img[test].reshape(len(test), d)[:, perm])
            else:
                xs.append(_rotate(img[tr], angles[t]).reshape(len(tr), d))
                tx.append(_rotate(img[test], angles[t]).reshape(len(test), d))
            ys.append(labels[tr])
            ty.append(labels[test])
    bx, by, bt = [], [], []
    for t, (x, y) in enumerate(zip(xs, ys, strict=True)):
        n = len(y) // batch_size * batch_size
        bx.append(x[:n].reshape(-1, batch_size, d))
        by.append(y[:n].reshape(-1, batch_size))
        bt.append(np.full(n // batch_size, t))
    return Stream(np.concatenate(bx).astype(np.float32), np.concatenate(by).astype(np.int64),
                  np.concatenate(bt), [x.astype(np.float32) for x in tx],
                  [y.astype(np.int64) for y in ty], n_classes)
