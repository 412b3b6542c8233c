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
