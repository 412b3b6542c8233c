"""Continual-learning metrics from an accuracy matrix a[i, j] (accuracy on task j's test set
after training on task i; T tasks) and from anytime evaluations along the stream.

final average accuracy  ACC = (1/T) sum_j a[T-1, j]
learning accuracy       LA  = (1/T) sum_j a[j, j]                     (plasticity; Riemer 2019)
backward transfer       BWT = (1/(T-1)) sum_{j<T-1} (a[T-1, j] - a[j, j])   (GEM, Lopez-Paz &
                        Ranzato 2017; negative = forgetting)
forgetting              F = (1/(T-1)) sum_{j<T-1} (max_{l<T-1} a[l, j] - a[T-1, j])
                        (Chaudhry et al. 2018, the Mammoth definition: the drop from the best
                        accuracy ever reached on task j)
average anytime acc.    AAA = mean over evaluation points of the mean accuracy on the tasks
                        seen so far (Caccia et al. 2022; ocl_survey compute_AAA)
learning-curve AUC      mean over tasks j of the mean accuracy on task j over the evaluations
                        made while task j streams in (statistical efficiency: how fast each
                        task is learned from few samples)
samples to threshold    per task, the samples of that task seen until its accuracy first
                        reaches the threshold (NaN if never); reported as the mean over tasks
                        that reached it and the fraction that did
robust accuracy         final mean accuracy on test inputs with Gaussian noise added
"""

from __future__ import annotations

import numpy as np


def final_accuracy(a: np.ndarray) -> float:
    return float(a[-1].mean())


def learning_accuracy(a: np.ndarray) -> float:
    return float(np.diag(a).mean())


def backward_transfer(a: np.ndarray) -> float:
    T = len(a)
    return float(np.mean([a[-1, j] - a[j, j] for j in range(T - 1)])) if T > 1 else 0.0


def forgetting(a: np.ndarray) -> float:
    T = len(a)
    return float(np.mean([a[:T - 1, j].max() - a[-1, j] for j in range(T - 1)])) if T > 1 \
        else 0.0


def average_anytime_accuracy(anytime: np.ndarray, task_at_eval: np.ndarray) -> float:
    """anytime [evals, tasks]; task_at_eval [evals] = the task streaming at each evaluation."""
    return float(np.mean([anytime[e, :task_at_eval[e] + 1].mean()
                          for e in range(len(anytime))]))


def learning_curve_auc(anytime: np.ndarray, task_at_eval: np.ndarray) -> float:
    tasks = np.unique(task_at_eval)
    return float(np.mean([anytime[task_at_eval == j, j].mean() for j in tasks]))


def samples_to_threshold(anytime: np.ndarray, task_at_eval: np.ndarray,
                         samples_into_task: np.ndarray, threshold: float) -> np.ndarray:
    """Per task: samples of that task seen when its accuracy first reached ``threshold``."""
    out = []
    for j in np.unique(task_at_eval):
        e = np.flatnonzero(task_at_eval == j)
        hit = e[anytime[e, j] >= threshold]
        out.append(samples_into_task[hit[0]] if len(hit) else np.nan)
    return np.asarray(out, dtype=float)
