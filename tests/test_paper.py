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
    # two finished seeds: below 10 seeds the seeds' range, 80 to 90 (a Student-t interval,
    # 85 +- t(0.975, 1) 0.0707 = [21.5, 148.5], would leave the accuracy's range)
    assert row.startswith("d & m\\_1 & 3 & 85.0 [80.0, 90.0] (1 div.)")
    assert "\\toprule" in tex and "\\label{tab:x}" in tex


# -------------------------------------------------------------- checks of the LaTeX sources

def test_numbers_typed_by_hand_are_found_in_running_text_only():
    tex = ("An IRMv1 and L2-SP run, $r_0 + 0.5$, \\ref{fig:2}, \\citep{sagawa2020}, "
           "\\includegraphics{a/b2.pdf}, \\texttt{x2} % a comment with 7\n"
           "took 3 seeds and 95\\% of \\[ x^2 \\] the time, \\ExpSeeds{} seeds.")
    assert paper.hand_typed_numbers(tex) == ["3", "95"]


def test_undefined_generated_macros_are_named_with_their_file(tmp_path):
    (tmp_path / "generated" / "paper").mkdir(parents=True)
    (tmp_path / "generated" / "quick").mkdir()
    (tmp_path / "sections").mkdir()
    (tmp_path / "generated" / "paper" / "m.tex").write_text("\\newcommand{\\ActSeeds}{5}\n")
    (tmp_path / "main.tex").write_text("\\input{sections/a}\\textbf{x}")
    (tmp_path / "sections" / "a.tex").write_text(
        "\\ActSeeds{} seeds; \\ActNoSuchNumber{} % \\SupCommentedOut\n\\emph{fine}")
    assert paper.undefined_macros(tmp_path, "paper") == [("ActNoSuchNumber", "sections/a.tex")]
    problems = paper.check_sources(tmp_path, "paper")
    assert problems == ["sections/a.tex: \\ActNoSuchNumber is used but not generated "
                        "(no \\newcommand in paper/generated/paper)"]
    # each config's build reads only its own generated folder (quick's is empty here)
    assert ("ActSeeds", "sections/a.tex") in paper.undefined_macros(tmp_path, "quick")


def test_the_papers_main_text_types_no_number_by_hand():
    """Every number in paper/sections comes from a generated macro (the build refuses
    otherwise, naming the file)."""
    from .conftest import ROOT

    for f in sorted((ROOT / "paper" / "sections").glob("*.tex")):
        assert paper.hand_typed_numbers(f.read_text()) == [], f.name


def test_primary_table_traces_every_row_to_its_results_file():
    fam = pd.DataFrame([{"contrast": "a - b, m (s1)", "stream": "s1", "arm": "a", "reference": "b",
                         "metric": "m", "seeds": "0,1", "n": 2, "mean_difference": 0.0123,
                         "ci_low": -0.01, "ci_high": 0.035, "sd": 0.01, "p_value": 0.2,
                         "p_holm": 0.4, "detectable": 0.05, "verdict": "not detected"}])
    tex = paper.primary_table(fam, {"m": "metric words"}, "cap", "tab:x", "results/x.csv")
    row = next(line for line in tex.splitlines() if line.startswith("s1 &"))
    assert "\\texttt{a} $-$ \\texttt{b} & metric words & +1.2 [-1.0, +3.5] & 0.4 & 5.0 & " \
        "not detected \\\\ % results/x.csv: contrast a - b, m (s1)" in row


def test_primary_table_puts_several_references_side_by_side():
    def row(ref, metric, d, verdict):
        return {"contrast": f"a - {ref}, {metric} (s1)", "stream": "s1", "arm": "a",
                "reference": ref, "metric": metric, "seeds": "0,1", "n": 2,
                "mean_difference": d, "ci_low": d - 0.01, "ci_high": d + 0.01, "sd": 0.01,
                "p_value": 0.01, "p_holm": 0.02 if verdict != "not detected" else 0.3,
                "detectable": 0.05, "verdict": verdict}
    fam = pd.DataFrame([row("b", "m", 0.1, "above"), row("c", "m", 0.0, "not detected"),
                        row("b", "f", -0.2, "below"), row("c", "f", -0.1, "below")])
    tex = paper.primary_table(fam, {}, "cap", "tab:x", "results/x.csv")
    body = [line for line in tex.splitlines() if line.startswith("s1 &")]
    assert len(body) == 2                                   # one row per (arm, metric)
    assert body[0].startswith("s1 & \\texttt{a} & m & \\textbf{+10.0 [+9.0, +11.0]} & 0.02 & "
                              "5.0 & +0.0 [-1.0, +1.0] & 0.3 & 5.0 \\\\")
    assert body[0].endswith("% results/x.csv: contrasts a - b, m (s1); a - c, m (s1)")
    assert " &  &  & \\multicolumn{3}{c}{minus \\texttt{b}} & \\multicolumn{3}{c}{minus " \
        "\\texttt{c}}" in tex and "\\cmidrule(lr){4-6}\\cmidrule(lr){7-9}" in tex


def test_primary_table_prints_the_sde_beside_the_declared_target():
    """A contrast that declares its target shows the achieved SDE and the target side by side
    (both in points); one without keeps the plain SDE."""
    rows = [{"contrast": f"a - b, m ({s})", "stream": s, "arm": "a", "reference": "b",
             "metric": "m", "seeds": "0,1", "n": 2, "mean_difference": 0.0123,
             "ci_low": -0.01, "ci_high": 0.035, "sd": 0.01, "p_value": 0.2, "p_holm": 0.4,
             "detectable": 0.0023, "target": t, "verdict": "not detected"}
            for s, t in (("s1", 0.0025), ("s2", float("nan")))]
    tex = paper.primary_table(pd.DataFrame(rows), {}, "cap", "tab:x", "results/x.csv")
    assert "SDE (target)" in tex
    body = [line for line in tex.splitlines() if line.startswith(("s1 &", "s2 &"))]
    assert " & 0.23 (0.25) & " in body[0]
    assert " & 0.2 & " in body[1]
