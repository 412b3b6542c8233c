import pandas as pd
import pytest

from rose import paper
from rose.baseline import REPORTED, summarise_runs


def test_macro_names_are_letters_only():
    assert paper.macro_name("mnist5k", "sgd_momentum", "test_acc") == "MnistFivekSgdMomentumTestAcc"
    assert paper.macro_name("baseline", "head", "es_test_acc", "low") == "BaselineHeadEsTestAccLow"
    with pytest.raises(ValueError):
        paper.macro_name("", "__")


def test_macros_and_cells():
    text = paper.macros({"B": "2", "A": "1.0"})
    assert text.splitlines()[1:] == ["\\newcommand{\\A}{1.0}", "\\newcommand{\\B}{2}"]
    assert paper.ci_cell(0.9123, 0.9, 0.92, 5, 0) == "91.2 [90.0, 92.0]"
    assert paper.ci_cell(0.9, 0.9, 0.9, 4, 1) == "90.0 [90.0, 90.0] (1 div.)"
    assert paper.ci_cell(float("nan"), float("nan"), float("nan"), 0, 3) == "diverged (3/3)"
    assert paper.latex_escape("a_b & 5%") == "a\\_b \\& 5\\%"


def test_summary_table_from_runs():
    runs = pd.DataFrame({
        "dataset": ["d"] * 3, "method": ["m_1"] * 3, "seed": [0, 1, 2],
        "final.test_acc": [0.8, 0.9, None], "early_stopped.test_acc": [0.8, 0.9, None],
        "final.generalisation_gap": [0.1, 0.1, None]})
    summary = summarise_runs(runs)
    tex = paper.summary_table(summary, REPORTED, "cap", "tab:x")
    row = next(line for line in tex.splitlines() if line.startswith("d &"))
    # two finished seeds: a Student-t interval, 85 +- t(0.975, 1) 0.0707 = 85 +- 63.5
    assert row.startswith("d & m\\_1 & 3 & 85.0 [21.5, 148.5] (1 div.)")
    assert "\\toprule" in tex and "\\label{tab:x}" in tex
