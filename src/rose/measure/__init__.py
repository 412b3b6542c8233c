"""Measurements of the loss landscape (direction 1): Hessian-vector products and spectra."""
