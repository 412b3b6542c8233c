"""The functions rules call, on real tiny runs: a fully diverged series keeps the DAG going."""

import json

import pandas as pd

from rose.pipeline import aggregate_baseline, figure_baseline, tex_baseline
from rose.train import train


def test_aggregate_with_a_fully_diverged_method(spec, digits, tmp_path):
    dirs = []
    for method, lr in [("ok", 0.1), ("bad", 1e4)]:
        for seed in (0, 1):
            s = dict(spec, method=method, seed=seed,
                     optimizer=dict(spec["optimizer"], lr=lr, momentum=0.0))
            train(s, digits, tmp_path / method / str(seed), progress=False)
            dirs.append(tmp_path / method / str(seed))
    out = tmp_path / "agg"
    out.mkdir()
    aggregate_baseline(dirs, out / "runs.csv", out / "hist.csv", out / "summary.csv",
                       out / "metrics.json", out / "curves")
    runs = pd.read_csv(out / "runs.csv")
    assert runs.groupby("method")["status"].agg(set).to_dict() == {"ok": {"ok"},
                                                                    "bad": {"diverged"}}
    assert len(pd.read_csv(out / "curves/digits_ok.csv")) == spec["epochs"]
    assert pd.read_csv(out / "curves/digits_bad.csv").empty  # written, so the rule completes
    metrics = json.loads((out / "metrics.json").read_text())
    bad = metrics["digits"]["bad"]["final.test_acc"]
    assert bad == {"mean": None, "ci_low": None, "ci_high": None, "n": 0, "n_diverged": 2}
    tex_baseline(out / "summary.csv", out / "table.tex", out / "macros.tex",
                 headline=("digits", "bad"))
    assert "diverged (2/2)" in (out / "table.tex").read_text()
    macros = (out / "macros.tex").read_text()
    assert "\\newcommand{\\BaselineHeadTestAccMean}{n/a}" in macros
    assert "\\newcommand{\\BaselineHeadTestAccDiverged}{2}" in macros
    figure_baseline(out / "runs.csv", out / "hist.csv", out / "fig.pdf", rule="r",
                    config_hash="h")
    assert (out / "fig.pdf").stat().st_size > 1000
