"""Tables, figures and generated LaTeX of direction 3a, from the run tables on disk. Each
function takes paths and plain values (the rules call them through workflow/scripts)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rose import contrasts, paper
from rose.active import summary
from rose.stats import interval_words, paired_against, paired_contrast

UNCERTAINTY = ("entropy", "margin", "least_confidence", "bald")
METRIC_WORDS = {"auc_test_worst_group_acc": "worst-group accuracy averaged over the budget",
                "auc_test_conflicting_acc": "bias-conflicting accuracy averaged over the budget",
                "auc_test_acc": "test-environment accuracy averaged over the budget",
                "test_worst_group_acc": "worst-group accuracy",
                "test_conflicting_acc": "bias-conflicting accuracy",
                "test_acc": "test-environment accuracy"}
PROPOSED = ("alvin", "analogy")


def aggregate(round_csvs: Sequence[str | Path], composition_csvs: Sequence[str | Path],
              curriculum_csvs: Sequence[str | Path], out_dir: str | Path,
              primary: list[dict], tuning_csvs: Sequence[str | Path] = ()) -> None:
    """Tables over seeds, exploratory comparisons against random / ERM, and the primary
    contrasts (config ``active.primary``, one Holm family) on the per-run table."""
    out = Path(out_dir)
    rounds = pd.concat([pd.read_csv(p) for p in round_csvs], ignore_index=True)
    rounds.to_csv(out / "al_runs.csv", index=False)
    summary.summarise(rounds, ["benchmark", "acquisition", "round", "n_labels"],
                      summary.AL_METRICS).to_csv(out / "al_summary.csv", index=False)
    runs = summary.per_run(rounds)
    metrics = list(summary.PAIRED_AL) + [f"auc_{m}" for m in summary.PAIRED_AL]
    paired_against(runs, "acquisition", "random", metrics).to_csv(
        out / "al_paired.csv", index=False)
    comp = pd.concat([pd.read_csv(p) for p in composition_csvs], ignore_index=True)
    comp.groupby(["benchmark", "acquisition", "round", "n_labels", "group", "label", "attr",
                  "aligned"], as_index=False)["count"].mean().to_csv(
        out / "composition.csv", index=False)
    cur = pd.concat([pd.read_csv(p) for p in curriculum_csvs], ignore_index=True)
    cur.to_csv(out / "curriculum_runs.csv", index=False)
    if tuning_csvs:
        pd.concat([pd.read_csv(p) for p in tuning_csvs], ignore_index=True).to_csv(
            out / "curriculum_tuning.csv", index=False)
    summary.summarise(cur, ["benchmark", "method", "selection"],
                      summary.CURRICULUM_METRICS).to_csv(out / "curriculum_summary.csv",
                                                         index=False)
    pd.concat([paired_against(g, "method", "erm", summary.PAIRED_CURRICULUM).assign(
        selection=rule) for rule, g in cur.groupby("selection")], ignore_index=True).to_csv(
        out / "curriculum_paired.csv", index=False)
    # primary contrasts between curriculum methods read the rule without group labels
    arms = pd.concat([runs.assign(arm=runs.acquisition),
                      no_group_labels(cur).assign(arm=lambda d: d.method)], ignore_index=True)
    contrasts.evaluate(arms, primary).to_csv(out / "primary.csv", index=False)
    final = runs.groupby(["benchmark", "acquisition"])
    m = {"active_learning": {f"{b}/{a}/final/{k}": _num(g[k].mean())
                             for (b, a), g in final for k in summary.PAIRED_AL},
         "curriculum": {f"{b}/{meth}/{sel}/{k}": _num(g[k].mean())
                        for (b, meth, sel), g in cur.groupby(["benchmark", "method",
                                                              "selection"])
                        for k in ("test_acc", "test_worst_group_acc")}}
    (out / "metrics.json").write_text(json.dumps(m, indent=2, sort_keys=True) + "\n")


def no_group_labels(cur: pd.DataFrame) -> pd.DataFrame:
    """The curriculum rows selected without group labels (training-domain validation): what
    the paper's sentences and comparisons read; ``group_val`` rows are the labelled bound."""
    return cur[cur.selection == "train_domain_val"]


def alvin_sweep_sentence(runs: pd.DataFrame) -> str:
    """ALVIN's alpha x K sweep (config ``alvin_sweep``), if run: the mean over seeds of
    bias-conflicting accuracy averaged over the budget, per benchmark and point."""
    sub = runs[runs.acquisition.str.startswith("alvin_a")]
    if sub.empty:
        return ("ALVIN's $\\alpha$ and $K$ are swept only in the full configuration "
                "(\\texttt{alvin\\_sweep}).")
    parts = []
    for b, g in sub.groupby("benchmark"):
        m = g.groupby("acquisition").auc_test_conflicting_acc.mean()
        parts.append(f"on {_tt(b)} " + ", ".join(f"{_tt(a)} {paper.fmt_percent(v)}\\%"
                                                   for a, v in m.items()))
    return ("ALVIN's sweep over $\\alpha$ and $K$ (exploratory; bias-conflicting accuracy "
            "averaged over the budget, mean over seeds): " + "; ".join(parts) + ".")


def selection_sentence(cur: pd.DataFrame) -> str:
    """Exploratory: worst-group accuracy with group-labelled selection minus training-domain
    selection, per benchmark for each method, seed by seed (paired t-interval, no Holm)."""
    parts = []
    for b, g in cur.groupby("benchmark"):
        items = []
        for m, d in g.groupby("method", sort=False):
            wide = d.pivot(index="seed", columns="selection", values="test_worst_group_acc")
            if set(wide) != {"train_domain_val", "group_val"}:
                continue
            c = paired_contrast(wide.group_val.to_numpy(), wide.train_domain_val.to_numpy())
            items.append(f"{_tt(m)} " + paper.paired_points(c.mean_difference, c.ci_low,
                                                            c.ci_high))
        if items:
            parts.append(f"on {_tt(b)} " + ", ".join(items))
    if not parts:
        return ""
    return ("Choosing the grid point and the early-stopping checkpoint with group labels on "
            "validation instead of training-domain validation accuracy changes worst-group "
            "test accuracy by (mean [95\\% CI] over seeds, exploratory): "
            + "; ".join(parts) + ".")


def versus_sentence(runs: pd.DataFrame, arm: str, reference: str, metric: str, what: str
                    ) -> str:
    """Exploratory: ``arm`` minus ``reference`` on ``metric`` per benchmark, seed by seed
    (paired t-interval, no Holm), or "" when either did not run."""
    parts = []
    for b, g in runs.groupby("benchmark"):
        wide = g.pivot(index="seed", columns="acquisition", values=metric)
        if arm not in wide or reference not in wide:
            continue
        c = paired_contrast(wide[arm].to_numpy(), wide[reference].to_numpy())
        parts.append(f"{paper.paired_points(c.mean_difference, c.ci_low, c.ci_high)} on "
                     f"{_tt(b)}")
    if not parts:
        return ""
    return f"{what}, {_tt(arm)} minus {_tt(reference)} (exploratory): " + "; ".join(parts) + "."


def _num(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def figures(agg_dir: str | Path, out: dict[str, str], rule: str, config_hash: str) -> None:
    from rose.plots import active as plots
    from rose.plots import save_figure
    from rose.provenance import git_commit

    agg = Path(agg_dir)
    prov = {"rule": rule, "git_commit": git_commit(), "config_hash": config_hash}
    al_summary = pd.read_csv(agg / "al_summary.csv")
    save_figure(plots.budget_curves(al_summary, plots.MAIN), out["budget"],
                "Label-budget curves", prov)
    save_figure(plots.budget_curves(al_summary), out["budget_all"],
                "Label-budget curves, every acquisition", prov)
    save_figure(plots.composition(al_summary, pd.read_csv(agg / "composition.csv")),
                out["composition"], "What each acquisition labels", prov)
    save_figure(plots.minority_vs_worst_group(pd.read_csv(agg / "al_runs.csv")),
                out["minority"], "Minority labels vs worst-group accuracy", prov)
    save_figure(plots.curriculum(pd.read_csv(agg / "curriculum_runs.csv")), out["curriculum"],
                "RHO-LOSS and group-robust baselines", prov)


_cell = paper.seed_cell
_tt = paper.tt


def tex(agg_dir: str | Path, table_tex: str | Path, macros_tex: str | Path) -> None:
    agg = Path(agg_dir)
    rounds = pd.read_csv(agg / "al_runs.csv")
    runs = summary.per_run(rounds)
    al_paired = pd.read_csv(agg / "al_paired.csv")
    cur_all = pd.read_csv(agg / "curriculum_runs.csv")
    cur = no_group_labels(cur_all)
    cur_paired = pd.read_csv(agg / "curriculum_paired.csv")
    cur_paired = cur_paired[cur_paired.selection == "train_domain_val"]
    acqs = list(dict.fromkeys(rounds.acquisition))
    v: dict[str, str] = {
        "ActSeeds": str(rounds.seed.nunique()),
        "ActInitial": str(int(rounds.n_labels.min())),
        "ActBudget": str(int(rounds.n_labels.max())),
        "ActRounds": str(int(rounds["round"].max())),
        "ActSelection": paper.latex_escape(str(rounds.selection.iloc[0]).replace("_", " ")),
        "ActRetrain": paper.latex_escape(str(rounds.retrain.iloc[0])),
        "ActBenchmarks": ", ".join(_tt(b) for b in dict.fromkeys(rounds.benchmark)),
        "ActAcquisitions": ", ".join(_tt(a) for a in acqs),
        "ActCurriculumMethods": ", ".join(_tt(m) for m in dict.fromkeys(cur.method)),
        "ActErmSentence": erm_sentence(cur),
        "ActPrimary": paper.primary_sentences(pd.read_csv(agg / "primary.csv"), METRIC_WORDS),
        "ActExploratoryUncertainty": paper.exploratory(
            al_paired, "acquisition", UNCERTAINTY, "auc_test_worst_group_acc",
            "Worst-group accuracy averaged over the budget", "random", "benchmark"),
        "ActExploratoryMinority": paper.exploratory(
            al_paired, "acquisition", [a for a in acqs if a != "random"],
            "labelled_conflicting_frac", "The final share of bias-conflicting labels",
            "random", "benchmark"),
        "ActExploratoryCurriculum": paper.exploratory(
            cur_paired, "method", [m for m in dict.fromkeys(cur.method) if m != "erm"],
            "test_worst_group_acc", "Worst-group accuracy", "erm", "benchmark")
        or "Only ERM was run.",
        "ActAnalogyAblations": paper.exploratory(
            al_paired, "acquisition", [a for a in acqs if a.startswith("analogy")],
            "auc_test_conflicting_acc",
            "Bias-conflicting accuracy averaged over the budget, the analogy rule and its "
            "ablations", "random", "benchmark") or "The analogy ablations were not run.",
        "ActProposedVsUncertainty": proposed_vs_uncertainty(runs),
        "ActRhoSentence": rho_sentence(cur),
        "ActFallbackSentence": fallback_sentence(rounds),
        "ActMinoritySplitSentence": minority_split_sentence(rounds),
        "ActSelectionSentence": selection_sentence(cur_all),
        "ActAlfaMixSentence": versus_sentence(
            runs, "alvin", "alfa_mix", "auc_test_conflicting_acc",
            "Bias-conflicting accuracy averaged over the budget") or
        "ALFA-Mix was not run beside ALVIN.",
        "ActAlvinSweepSentence": alvin_sweep_sentence(runs),
        "ActAnalogyVsAlfaMix": versus_sentence(
            runs, "analogy", "alfa_mix", "auc_test_conflicting_acc",
            "Bias-conflicting accuracy averaged over the budget") or
        "ALFA-Mix was not run beside the analogy rule.",
    }
    Path(macros_tex).write_text(paper.macros(v))
    Path(table_tex).write_text(budget_table(rounds, runs) + curriculum_table(cur_all))


def erm_sentence(cur: pd.DataFrame) -> str:
    """ERM's accuracies per benchmark next to the model that cannot see the attribute."""
    parts = []
    for b, g in cur.groupby("benchmark"):
        e = g[g.method == "erm"]
        if e.empty:
            continue
        s = (f"on {_tt(b)} ERM reaches {_cell(e.train_acc)}\\% training, "
             f"{_cell(e.test_acc)}\\% test-environment and {_cell(e.test_worst_group_acc)}\\% "
             "worst-group accuracy")
        ns = g[g.method == "erm_no_shortcut"]
        if len(ns):
            s += (f", against {_cell(ns.test_acc)}\\% test-environment accuracy without the "
                  "attribute in the input")
        parts.append(s)
    return ("; ".join(parts) + ".") if parts else ""


def proposed_vs_uncertainty(runs: pd.DataFrame) -> str:
    """Best proposed rule vs best uncertainty rule by mean AUC of worst-group accuracy."""
    parts = []
    for b, g in runs.groupby("benchmark"):
        auc = g.groupby("acquisition")["auc_test_worst_group_acc"].mean()
        prop = auc[auc.index.isin(PROPOSED)]
        unc = auc[auc.index.isin(UNCERTAINTY)]
        if prop.empty or unc.empty:
            continue
        p, u = prop.idxmax(), unc.idxmax()
        parts.append(f"on {_tt(b)} {paper.fmt_percent(prop.max())}\\% for the better of ALVIN "
                     f"and analogy ({_tt(p)}) and {paper.fmt_percent(unc.max())}\\% for the "
                     f"best uncertainty rule ({_tt(u)})")
    if not parts:
        return ""
    return ("Mean worst-group accuracy over the budget (exploratory, no interval): "
            + "; ".join(parts) + ".")


def rho_sentence(cur: pd.DataFrame) -> str:
    """The RHO-LOSS holdout ablation per benchmark (pitfall 1 of the research notes)."""
    parts = []
    for b, g in cur.groupby("benchmark"):
        got = {m: g[g.method == m] for m in ("rho_correlated", "rho_resampled",
                                             "rho_interventional", "rho_loss_only")
               if (g.method == m).any()}
        if not got:
            continue
        parts.append(f"on {_tt(b)} worst-group accuracy is " + ", ".join(
            f"{_cell(d.test_worst_group_acc)}\\% with {_tt(m)} "
            f"({int(d['labels'].mean()) if 'labels' in d else 'n/a'} labels)"
            for m, d in got.items()))
    if not parts:
        return "RHO-LOSS was not run."
    fwd = cur[cur.method.str.startswith("rho_")].forward_examples
    erm = cur[cur.method == "erm"].forward_examples
    ratio = (f" RHO-LOSS passes {fwd.mean() / erm.mean():.1f}$\\times$ as many examples "
             "forward as ERM at the same number of gradient steps."
             if len(fwd) and len(erm) else "")
    return "; ".join(parts) + "." + ratio


def minority_split_sentence(rounds: pd.DataFrame) -> str:
    """How well the training-dynamics split recovers the true minority of the labelled set
    (mean [95% CI] over seeds of the per-seed mean over rounds; ALVIN's rounds)."""
    if "minority_precision" not in rounds:
        return ""
    sub = rounds[rounds.acquisition == ("alvin" if (rounds.acquisition == "alvin").any()
                                        else "analogy")].dropna(subset=["minority_precision"])
    parts = []
    for b, g in sub.groupby("benchmark"):
        per_seed = g.groupby("seed")[["minority_precision", "minority_recall"]].mean()
        parts.append(f"{_cell(per_seed.minority_precision)}\\% precision and "
                     f"{_cell(per_seed.minority_recall)}\\% recall on {_tt(b)}")
    if not parts:
        return ""
    return ("Against the true groups (used only for this check), the training-dynamics split "
            "finds the labelled minority with " + "; ".join(parts) + ".")


def fallback_sentence(rounds: pd.DataFrame) -> str:
    sub = rounds[rounds.acquisition.isin(PROPOSED)].dropna(subset=["fallback"])
    if sub.empty:
        return ""
    parts = []
    for a, g in sub.groupby("acquisition"):
        acquired = (g.n_labels.max() - g.n_labels.min()) * g.seed.nunique() * \
            g.benchmark.nunique()
        parts.append(f"{_tt(a)} filled {int(g.fallback.sum())} of {int(acquired)} acquired "
                     "labels at random for lack of targets")
    return "Across benchmarks and seeds, " + "; ".join(parts) + "."


def budget_table(rounds: pd.DataFrame, runs: pd.DataFrame) -> str:
    """Fixed budgets: the final one (test env, worst group, bias-conflicting accuracy, minority
    share of labels; ``runs`` = summary.per_run(rounds)) and worst-group accuracy at the middle
    round's budget."""
    mid_round = int(rounds["round"].max()) // 2
    mid = rounds[rounds["round"] == mid_round]
    n_mid = int(mid.n_labels.iloc[0])
    n_final = int(rounds.n_labels.max())
    cols = {"test_acc": "test env", "test_worst_group_acc": "worst group",
            "test_conflicting_acc": "conflicting", "labelled_conflicting_frac": "minority labels"}
    lines = ["% Generated by rose; do not edit by hand.", "\\begin{table}[t]", "\\centering",
             "\\scriptsize",
             f"\\caption{{Active learning at fixed label budgets: worst-group accuracy at "
             f"{n_mid} labels, and at the final {n_final} labels the test-environment, "
             "worst-group and bias-conflicting accuracy and the minority share of the labels. "
             f"Mean over seeds [{paper.latex_escape(interval_words(rounds.seed.nunique()))}], "
             "percent; model selection: "
             + paper.latex_escape(str(rounds.selection.iloc[0])) + ".}",
             "\\label{tab:active}", "\\begin{tabular}{ll c" + " c" * len(cols) + "}",
             "\\toprule",
             f" & & {n_mid} labels & \\multicolumn{{{len(cols)}}}{{c}}{{{n_final} labels}} "
             "\\\\",
             "Benchmark & Acquisition & worst group & " + " & ".join(cols.values()) + " \\\\",
             "\\midrule"]
    for (b, a), g in runs.groupby(["benchmark", "acquisition"], sort=True):
        m = mid[(mid.benchmark == b) & (mid.acquisition == a)]
        lines.append(" & ".join([paper.latex_escape(b), paper.latex_escape(a),
                                 _cell(m.test_worst_group_acc), *(_cell(g[c]) for c in cols)])
                     + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def curriculum_table(cur: pd.DataFrame) -> str:
    """Per method: accuracies of the point and checkpoint chosen on training-domain validation,
    and worst-group accuracy when chosen with group labels (the labelled upper bound)."""
    cols = {"train_acc": "train", "test_acc": "test env",
            "test_worst_group_acc": "worst group"}
    lines = ["\\begin{table}[t]", "\\centering", "\\scriptsize",
             "\\caption{Training on the whole pool: ERM, group-robust baselines (GroupDRO with "
             "group-balanced batches, JTT, IRMv1, V-REx) and RHO-LOSS with three "
             "irreducible-loss holdouts (\\texttt{rho\\_interventional}: an interventional "
             "oracle), each tuned on an equal grid with early stopping. Columns 3--5: the grid "
             "point and checkpoint chosen on training-domain validation accuracy; column 6: "
             "worst-group accuracy when they are chosen with group labels on validation. Mean "
             f"over seeds [{paper.latex_escape(interval_words(cur.seed.nunique()))}], percent; "
             "gradient steps, examples passed forward and "
             "labels read per run (RHO-LOSS: pool plus holdout).}",
             "\\label{tab:curriculum}",
             "\\begin{tabular}{ll" + " c" * (len(cols) + 1) + " rrr}", "\\toprule",
             "Benchmark & Method & " + " & ".join(cols.values())
             + " & worst group (group val) & steps & forward & labels \\\\", "\\midrule"]
    ours = no_group_labels(cur)
    for (b, m), g in ours.groupby(["benchmark", "method"], sort=True):
        gv = cur[(cur.benchmark == b) & (cur.method == m) & (cur.selection == "group_val")]
        lines.append(" & ".join([paper.latex_escape(b), paper.latex_escape(m),
                                 *(_cell(g[c]) for c in cols),
                                 _cell(gv.test_worst_group_acc) if len(gv) else "--",
                                 str(int(g.gradient_steps.iloc[0])),
                                 f"{int(g.forward_examples.iloc[0]):,}".replace(",", "\\,"),
                                 str(int(g["labels"].iloc[0])) if "labels" in g else "--"])
                     + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"
