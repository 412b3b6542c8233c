"""Direction 3a: choosing the training data against spurious correlations (active learning,
curriculum, group-robust baselines)."""
