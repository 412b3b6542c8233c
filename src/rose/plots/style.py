"""One figure style for every direction: sizes in inches of the printed page, fonts in printed
points, a colour-blind palette and one colour per arm across all figures.

The paper includes every figure at its natural size (``\\includegraphics`` without a width), so
a point here is a point on paper. :func:`check` (called by :func:`rose.plots.save_figure`)
refuses, naming the figure, a figure wider than the text or with any text smaller than
:data:`MIN_PT`; a main-text figure may also not be taller than half the text height.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import matplotlib.pyplot as plt
import seaborn as sns
from matplotlib.text import Text

# paper/main.tex: letter paper, 11pt article, 1in margins (geometry)
TEXT_WIDTH = 6.5      # inches
TEXT_HEIGHT = 9.0
MIN_PT = 7.0          # the smallest printed text a reader can read (issue: legible figures)
BASE_PT = 8.0
PANEL_HEIGHT = 1.9    # one row of panels, inches

# fixed colours for the arms that recur across directions (references first), from seaborn's
# colour-blind palette; any other arm gets a stable colour from the same palette by its name
PALETTE = sns.color_palette("colorblind", 10)
ARM_COLOURS = {
    "random": PALETTE[7], "erm": PALETTE[7], "finetune": PALETTE[7], "sgd": PALETTE[7],
    "none": PALETTE[7], "finetune_k": PALETTE[5], "oracle": PALETTE[2],
    "alvin": PALETTE[0], "analogy": PALETTE[3], "ball_best": PALETTE[3], "contour": PALETTE[3],
    "groupdro": PALETTE[1], "sam": PALETTE[1], "replay_200": PALETTE[1],
    "bimodal_standardised": PALETTE[3], "bimodal_split": PALETTE[0],
    "badge": PALETTE[4], "alfa_mix": PALETTE[6], "entropy": PALETTE[9], "coreset": PALETTE[5],
    "bald": PALETTE[8], "margin": PALETTE[1], "least_confidence": PALETTE[2],
    "l1": PALETTE[1], "bimodal_nearest": PALETTE[2], "bimodal_sigmoid": PALETTE[4],
    "topk": PALETTE[5], "solu": PALETTE[6], "negative_bias": PALETTE[8], "erm_penalty": PALETTE[9],
}


def apply() -> None:
    """seaborn's paper context with fonts at the printed sizes (called on import of
    rose.plots)."""
    sns.set_theme(context="paper", style="ticks", palette=PALETTE, rc={
        "font.size": BASE_PT, "axes.titlesize": BASE_PT, "axes.labelsize": BASE_PT,
        "xtick.labelsize": MIN_PT, "ytick.labelsize": MIN_PT, "legend.fontsize": MIN_PT,
        "legend.title_fontsize": MIN_PT, "figure.titlesize": BASE_PT,
        "axes.spines.top": False, "axes.spines.right": False, "legend.frameon": False,
        "pdf.fonttype": 42, "figure.constrained_layout.use": True,
    })


def colour(arm: str):
    """The arm's colour in every figure."""
    if arm in ARM_COLOURS:
        return ARM_COLOURS[arm]
    return PALETTE[int(hashlib.sha1(arm.encode()).hexdigest(), 16) % len(PALETTE)]


def palette(arms: Iterable[str]) -> dict:
    """{arm: colour} for seaborn's ``palette=``."""
    return {a: colour(a) for a in arms}


PAD = 0.1             # savefig's pad_inches around the tight bounding box


def subplots(nrows: int = 1, ncols: int = 1, height: float | None = None,
             width: float = TEXT_WIDTH - 2 * PAD - 0.05, **kw):
    """plt.subplots that print at the text width (the saved PDF adds PAD on each side) or at
    ``width``, ``height`` inches (default: rows x PANEL_HEIGHT)."""
    h = nrows * PANEL_HEIGHT if height is None else height
    kw.setdefault("squeeze", False)
    return plt.subplots(nrows, ncols, figsize=(width, h), **kw)


def grid(n: int, max_cols: int) -> tuple[int, int]:
    """Rows and columns for n panels, at most ``max_cols`` per row."""
    cols = min(n, max_cols)
    return -(-n // cols), cols


class FigureStyleError(ValueError):
    pass


def printed_size(fig: plt.Figure) -> tuple[float, float]:
    """(width, height) in inches of the saved figure (``bbox_inches="tight"`` crops to the
    artists; the paper prints it at this size)."""
    fig.canvas.draw()
    bb = fig.get_tightbbox(fig.canvas.get_renderer()).padded(PAD)   # savefig's pad_inches
    return bb.width, bb.height


def text_sizes(fig: plt.Figure) -> list[tuple[float, str]]:
    """(font size in points, text) of every visible, non-empty text of the figure."""
    out = []
    for t in fig.findobj(Text):
        if t.get_visible() and t.get_text().strip() and t.get_figure() is not None:
            out.append((float(t.get_fontsize()), t.get_text()))
    return out


def check(fig: plt.Figure, name: str, max_height: float = TEXT_HEIGHT) -> tuple[float, float]:
    """Refuse, naming the figure: wider than the text, taller than ``max_height``, or any text
    below MIN_PT at printed size. Returns the printed (width, height)."""
    w, h = printed_size(fig)
    if w > TEXT_WIDTH + 0.05:
        raise FigureStyleError(f"figure {name}: {w:.2f} in wide, the text is {TEXT_WIDTH} in")
    if h > max_height + 0.05:
        raise FigureStyleError(f"figure {name}: {h:.2f} in tall, at most {max_height} in here")
    small = sorted((s, t) for s, t in text_sizes(fig) if s < MIN_PT - 1e-6)
    if small:
        s, t = small[0]
        raise FigureStyleError(f"figure {name}: text {t[:40]!r} prints at {s:g} pt, below "
                               f"{MIN_PT:g} pt ({len(small)} such texts)")
    return w, h


def legend_below(fig: plt.Figure, ax=None, handles=None, labels=None, max_cols: int = 6):
    """One legend for the figure, below its panels, with as many columns (at most
    ``max_cols``) as fit the text width. Takes ``ax``'s handles (and removes its legend)
    unless handles and labels are given."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if not handles:
        return None
    for ncol in range(min(max_cols, len(handles)), 0, -1):
        leg = fig.legend(handles, labels, loc="outside lower center", ncol=ncol)
        fig.canvas.draw()
        if leg.get_window_extent().width / fig.dpi <= TEXT_WIDTH - 2 * PAD - 0.1:
            return leg
        leg.remove()
    return fig.legend(handles, labels, loc="outside lower center", ncol=1)
