import numpy as np
import pandas as pd
from pypdf import PdfReader

from rose.plots import save_figure
from rose.plots.baseline import learning_curves


def _tables():
    rows, runs = [], []
    for seed in range(3):
        epochs = 4 if seed < 2 else 2  # seed 2 diverged after epoch 2
        for e in range(1, epochs + 1):
            rows.append({"dataset": "d", "method": "sgd", "seed": seed, "epoch": e,
                         "test_acc": 0.5 + 0.1 * e, "train_loss": 1.0 / e})
        runs.append({"dataset": "d", "method": "sgd", "seed": seed,
                     "status": "ok" if seed < 2 else "diverged"})
    return pd.DataFrame(rows), pd.DataFrame(runs)


def test_learning_curves_leave_out_and_mark_diverged_runs():
    hist, runs = _tables()
    fig = learning_curves(hist, runs)
    top = fig.axes[0]
    assert "1 diverged run(s) left out" in top.get_title()
    # the mean line uses the two ok seeds only (identical values -> the curve itself)
    line = top.get_lines()[0]
    assert np.allclose(line.get_ydata(), [0.6, 0.7, 0.8, 0.9])
    crosses = [ln for ln in top.get_lines() if ln.get_marker() == "x"]
    assert len(crosses) == 1 and crosses[0].get_xdata()[0] == 2


def test_figure_pdf_is_reproducible_and_carries_provenance(tmp_path):
    prov = {"rule": "r", "git_commit": "abc", "config_hash": "123"}
    for name in ("a.pdf", "b.pdf"):
        save_figure(learning_curves(*_tables()), tmp_path / name, "t", prov)
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()
    meta = PdfReader(tmp_path / "a.pdf").metadata
    assert meta["/Keywords"] == "config_hash=123; git_commit=abc; rule=r"
    assert meta["/Title"] == "t"


# ----------------------------------------------------------------------- the figure style

def test_a_figure_with_text_below_7pt_is_refused_naming_it(tmp_path):
    import matplotlib.pyplot as plt
    import pytest

    from rose.plots import style

    fig, axes = style.subplots(1, 1, height=2.0)
    ax = axes[0, 0]
    ax.plot([0, 1], [0, 1])
    ax.set_title("readable")
    ax.set_xlabel("too small", fontsize=6)
    with pytest.raises(style.FigureStyleError, match=r"figure x/small: text 'too small' prints "
                                                     r"at 6 pt, below 7 pt"):
        save_figure(fig, tmp_path / "x" / "small.pdf", "t", {"rule": "r"})
    assert not (tmp_path / "x" / "small.pdf").exists()        # nothing half-written
    plt.close("all")


def test_a_figure_wider_than_the_text_or_too_tall_is_refused(tmp_path):
    import matplotlib.pyplot as plt
    import pytest

    from rose.plots import style

    fig, _ = plt.subplots(figsize=(8.0, 2.0))
    with pytest.raises(style.FigureStyleError, match=r"figure y/wide: 8\.\d+ in wide, the text "
                                                     r"is 6\.5 in"):
        save_figure(fig, tmp_path / "y" / "wide.pdf", "t", {"rule": "r"})
    fig, _ = style.subplots(1, 1, height=5.0)
    w, h = style.check(fig, "ok")                      # within the text: its printed size
    assert w <= style.TEXT_WIDTH and 4.9 < h < 5.4
    with pytest.raises(style.FigureStyleError, match=r"figure main: .* tall, at most 4\.5"):
        style.check(fig, "main", max_height=style.TEXT_HEIGHT / 2)
    plt.close("all")


def test_style_helpers_size_the_printed_figure_and_fix_arm_colours():
    import matplotlib.pyplot as plt

    from rose.plots import style

    fig, axes = style.subplots(2, 3)
    w, _h = style.printed_size(fig)
    assert style.TEXT_WIDTH - 0.2 < w <= style.TEXT_WIDTH and axes.shape == (2, 3)
    assert style.colour("random") == style.colour("random") == style.ARM_COLOURS["random"]
    assert style.colour("some_new_arm") == style.colour("some_new_arm")     # stable by name
    assert style.grid(7, 3) == (3, 3) and style.grid(2, 3) == (1, 2)
    # a legend with many long entries gets as many columns as fit the text width
    ax = axes[0, 0]
    for i in range(12):
        ax.plot([0, 1], [i, i], label=f"a rather long arm name {i}")
    leg = style.legend_below(fig, ax, max_cols=12)
    fig.canvas.draw()
    assert leg.get_window_extent().width / fig.dpi <= style.TEXT_WIDTH
    assert ax.get_legend() is None
    plt.close("all")


def test_explore_accuracy_plots_paired_differences_against_the_settings_reference(tmp_path):
    """The pool of tuned SGD and warm-up where it ran, else SGD (the tiny config has no
    warm-up); a setting with neither still draws an empty panel."""
    from rose.plots.explore import accuracy

    rows = []
    for setting, arms in (("a", ["sgd", "sgd_or_warmup", "contour"]), ("b", ["sgd", "contour"]),
                          ("c", ["x"])):
        for arm in arms:
            for seed in (0, 1, 2):
                bump = 0.02 if arm == "contour" else 0.0
                rows.append({"setting": setting, "arm": arm, "seed": seed,
                             "early_test_acc": 0.5 + 0.01 * seed + bump,
                             "final_test_acc": 0.6 + bump})
    fig = accuracy(pd.DataFrame(rows))
    labels = [ax.get_xlabel() for ax in fig.axes[:3]]
    assert labels == ["test accuracy minus sgd_or_warmup (points)",
                      "test accuracy minus sgd (points)", "test accuracy minus reference (points)"]
    ticks = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert ticks == ["contour"]
    save_figure(fig, tmp_path / "acc.pdf", "t", {"rule": "r"})
