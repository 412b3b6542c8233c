"""Figures: one module per direction, each figure a function of a results table.

:func:`save_figure` writes a PDF whose metadata records the rule, git commit and config hash
that made it (read it back with any PDF tool, e.g. ``pdfinfo`` or ``pypdf``).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import rose
from rose.plots import style

style.apply()


def save_figure(fig: plt.Figure, path: str | Path, title: str, provenance: dict[str, str]) -> None:
    """Save ``fig`` as a PDF with provenance in its metadata; no timestamps, so identical inputs
    give identical bytes. :func:`rose.plots.style.check` first: a figure too wide for the text
    or with text below 7 pt at printed size is refused, naming it."""
    path = Path(path)
    style.check(fig, f"{path.parent.name}/{path.stem}")
    path.parent.mkdir(parents=True, exist_ok=True)
    keywords = "; ".join(f"{k}={v}" for k, v in sorted(provenance.items()))
    fig.savefig(path, metadata={
        "Title": title,
        "Subject": f"rose figure made by rule {provenance.get('rule', '?')}",
        "Keywords": keywords,
        "Creator": f"rose {rose.__version__}",
        "CreationDate": None,
    }, bbox_inches="tight")
    plt.close(fig)
