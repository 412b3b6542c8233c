"""Direction 1: exploring along the loss contours before descending, and the flat-minima
baselines. So far: SAM / ASAM (sam.py). The contour warm-up and the experiments are to come."""
