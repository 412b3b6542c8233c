"""Tables, figures and generated LaTeX of direction 3b, from the run tables on disk. Each
function takes paths and plain values (the rules call them through workflow/scripts)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rose import contrasts, paper
from rose.superposition import summary


def aggregate(shortcut_csvs: Sequence[str | Path], penalty_dirs: Sequence[str | Path],
              out_dir: str | Path, primary: list[dict]) -> None:
    """Concatenate the runs, summarise over seeds, select lambda on validation, evaluate the
    primary contrasts (one Holm family) and the exploratory comparisons with lambda = 0."""
    out = Path(out_dir)
    runs = pd.concat([pd.read_csv(p) for p in shortcut_csvs], ignore_index=True)
    runs.to_csv(out / "shortcut_runs.csv", index=False)
    summary.summarise(runs, ["benchmark", "variant", "lam"], summary.SHORTCUT_METRICS).to_csv(
        out / "shortcut_summary.csv", index=False)
    selected, tuning = summary.lambda_tuning(runs)
    selected.to_csv(out / "shortcut_selected.csv", index=False)
    tuning.to_csv(out / "shortcut_tuning.csv", index=False)
    contrasts.evaluate(summary.at_selected(runs, selected), primary).to_csv(
        out / "primary.csv", index=False)
    paired = summary.paired_against_unpenalised(runs, selected)
    paired.to_csv(out / "shortcut_paired.csv", index=False)
    toy = pd.concat([pd.read_csv(Path(d) / "instances.csv") for d in penalty_dirs],
                    ignore_index=True)
    toy.to_csv(out / "toy_penalty_runs.csv", index=False)
    summary.summarise(toy, ["variant", "sparsity", "lam"], summary.TOY_METRICS).to_csv(
        out / "toy_penalty_summary.csv", index=False)
    erm = runs[(runs.benchmark == "irm") & (runs.lam == 0)]
    metrics = {"shortcut": {f"{b}/{v}/lam={lam:g}/{m}": _num(g[m].mean())
                            for (b, v, lam), g in runs.groupby(["benchmark", "variant", "lam"])
                            for m in ("test_acc", "test_worst_group_acc", "swapped_acc")},
               "irm_erm_test_acc": _num(erm["test_acc"].mean()) if len(erm) else None}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")


def _num(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def figures(toy_dirs: dict[str, str | Path], phase_csv: str | Path,
            toy_penalty_csv: str | Path, shortcut_csv: str | Path, out: dict[str, str],
            rule: str, config_hash: str, uniform_m: int) -> None:
    from rose.plots import save_figure
    from rose.plots import superposition as plots
    from rose.provenance import git_commit

    prov = {"rule": rule, "git_commit": git_commit(), "config_hash": config_hash}
    intro = dict(np.load(Path(toy_dirs["intro"]) / "weights.npz"))
    main = dict(np.load(Path(toy_dirs["main"]) / "weights.npz"))
    uniform = Path(toy_dirs["uniform"])
    save_figure(plots.feature_geometry_2d(intro), out["geometry"], "Toy model geometry", prov)
    save_figure(plots.gram_heatmaps(main), out["gram"], "Toy model W W^T", prov)
    save_figure(plots.dimensionality_vs_sparsity(pd.read_csv(uniform / "instances.csv"),
                                                 pd.read_csv(uniform / "features.csv"),
                                                 uniform_m),
                out["dimensionality"], "Feature dimensionality", prov)
    save_figure(plots.phase_diagram_plot(pd.read_csv(phase_csv)), out["phase"],
                "Phase diagram", prov)
    save_figure(plots.toy_penalty_sweep(pd.read_csv(toy_penalty_csv)), out["toy_penalty"],
                "Penalties in the toy model", prov)
    save_figure(plots.shortcut_sweep(pd.read_csv(shortcut_csv)), out["shortcut"],
                "Penalties on Colored MNIST", prov)


def _sci(v: float) -> str:
    """3 significant digits; LaTeX scientific notation for small values (losses)."""
    if v == 0 or 1e-2 <= abs(v) < 1e4:
        return f"{v:.3g}"
    mant, exp = f"{v:.2e}".split("e")
    return f"{mant}\\times10^{{{int(exp)}}}"


def exploratory_sentence(paired: pd.DataFrame, metric: str, what: str) -> str:
    """Exploratory (no verdict words): every selected penalty minus lambda = 0 of the same
    variant on ``metric``, with its Student-t 95% interval."""
    rows = paired[paired.metric == metric]
    if rows.empty:
        return ""
    parts = [f"{paper.tt(v)} on {paper.tt(b)} {paper.paired_points(d, lo, hi)}"
             for b, v, d, lo, hi in rows[["benchmark", "variant", "difference", "ci_low",
                                          "ci_high"]].itertuples(index=False)]
    return f"{what}: " + "; ".join(parts) + "."


def tex(toy_dirs: dict[str, str | Path], phase_csv: str | Path, agg_dir: str | Path,
        table_tex: str | Path, macros_tex: str | Path) -> None:
    agg = Path(agg_dir)
    runs = pd.read_csv(agg / "shortcut_runs.csv")
    selected = pd.read_csv(agg / "shortcut_selected.csv")
    paired = pd.read_csv(agg / "shortcut_paired.csv")
    toy = pd.read_csv(agg / "toy_penalty_runs.csv")
    values: dict[str, str] = {}
    # toy model sanity: dense -> top-m only; sparsest -> pentagon
    feats = pd.read_csv(Path(toy_dirs["intro"]) / "features.csv")
    inst = pd.read_csv(Path(toy_dirs["intro"]) / "instances.csv")
    dense, sparse = inst.sparsity.min(), inst.sparsity.max()
    values["SupIntroDenseS"] = f"{dense:g}"
    values["SupIntroSparseS"] = f"{sparse:g}"
    values["SupIntroDenseRepresented"] = f"{inst[inst.sparsity == dense].n_represented.mean():g}"
    values["SupIntroSparseRepresented"] = \
        f"{inst[inst.sparsity == sparse].n_represented.mean():g}"
    fs = feats[feats.sparsity == sparse]
    values["SupIntroSparseMeanD"] = f"{fs.dimensionality.mean():.3f}"
    values["SupIntroSparseMeanNorm"] = f"{fs.norm.mean():.2f}"
    anti = inst.groupby("sparsity").apply(
        lambda g: bool(np.all(np.abs(feats[(feats.sparsity == g.name) & (feats.norm > 0.5)]
                                     .dimensionality - 0.5) < 0.06)), include_groups=False)
    anti_s = [s for s, ok in anti.items() if ok and s not in (dense, sparse)]
    values["SupIntroAntipodalS"] = ", ".join(f"{s:g}" for s in anti_s) or "none"
    ph = pd.read_csv(phase_csv)["phase"].value_counts()
    for p in ("not_represented", "dedicated", "superposition"):
        values[paper.macro_name("sup", "phase", p)] = str(int(ph.get(p, 0)))
    values["SupPhaseCells"] = str(int(ph.sum()))
    # toy penalties at the sparsest setting and the strongest lambda
    s_max, lam_max = toy.sparsity.max(), toy.lam.max()
    values["SupToyS"] = f"{s_max:g}"
    values["SupToyLamMax"] = f"{lam_max:g}"
    values["SupToyPenaltySummary"] = toy_penalty_summary(toy[toy.sparsity == s_max], lam_max)
    values["SupErmSummary"] = erm_summary(runs)
    values["SupShortcutSeeds"] = str(runs.seed.nunique())
    primary = pd.read_csv(agg / "primary.csv")
    values["SupPrimary"] = " ".join(contrasts.sentences(
        primary, {**summary.SHORTCUT_METRICS, "test_worst_group_acc": "worst-group accuracy",
                  "swapped_acc": "swapped-colour accuracy"}, paper.latex_escape))
    values["SupExploratory"] = " ".join(filter(None, [
        exploratory_sentence(paired, "test_worst_group_acc", "Worst-group test accuracy"),
        exploratory_sentence(paired, "swapped_acc", "swapped-colour accuracy"),
        exploratory_sentence(paired, "frac_both", "share of units carrying colour and shape")]))
    Path(macros_tex).write_text(paper.macros(values))
    Path(table_tex).write_text(shortcut_table(runs, selected))


def _cell(x: pd.Series, fmt) -> str:
    from rose.stats import summarize

    s = summarize(x.tolist())
    return f"{fmt(s.mean)} [{fmt(s.ci_low)}, {fmt(s.ci_high)}]"


def toy_penalty_summary(toy: pd.DataFrame, lam: float) -> str:
    """A generated itemize: per variant, lambda = 0 -> lambda = ``lam`` for mean D_i, neuron
    polysemanticity and reconstruction loss (mean [95% CI] over seeds)."""
    items = []
    for v, g in toy.groupby("variant"):
        zero, top = g[g.lam == 0], g[g.lam == lam]
        name = f"\\texttt{{{paper.latex_escape(v)}}}"
        if top.empty:
            items.append(f"\\item {name} (no penalty strength): mean $D_i$ "
                         f"{_cell(zero.mean_dimensionality, _sci)}, neuron polysemanticity "
                         f"{_cell(zero.neuron_polysemanticity, _sci)}, loss "
                         f"${_cell(zero.loss, _sci)}$.")
            continue
        items.append(
            f"\\item {name}: mean $D_i$ {_cell(zero.mean_dimensionality, _sci)} $\\to$ "
            f"{_cell(top.mean_dimensionality, _sci)}; neuron polysemanticity "
            f"{_cell(zero.neuron_polysemanticity, _sci)} $\\to$ "
            f"{_cell(top.neuron_polysemanticity, _sci)}; features per dimension "
            f"{_cell(zero.features_per_dimension, _sci)} $\\to$ "
            f"{_cell(top.features_per_dimension, _sci)}; loss ${_cell(zero.loss, _sci)}$ "
            f"$\\to$ ${_cell(top.loss, _sci)}$.")
    return "\\begin{itemize}\n" + "\n".join(items) + "\n\\end{itemize}"


def erm_summary(runs: pd.DataFrame) -> str:
    """A generated sentence per benchmark: the unpenalised model's accuracies with CIs."""
    parts = []
    for b, g in runs[runs.variant == "erm"].groupby("benchmark"):
        parts.append(f"on \\texttt{{{paper.latex_escape(b)}}} it reaches "
                     f"{_cell(g.train_acc, paper.fmt_percent)}\\% training, "
                     f"{_cell(g.test_acc, paper.fmt_percent)}\\% test-environment, "
                     f"{_cell(g.test_worst_group_acc, paper.fmt_percent)}\\% worst-group and "
                     f"{_cell(g.swapped_acc, paper.fmt_percent)}\\% swapped-colour accuracy")
    return "; ".join(parts) + "."


def shortcut_table(runs: pd.DataFrame, selected: pd.DataFrame) -> str:
    """One row per (benchmark, variant) at its selected lambda: mean [95% CI] in percent."""
    cols = ["test_acc", "test_worst_group_acc", "swapped_acc", "frac_both"]
    from rose.stats import summarize

    lines = ["% Generated by rose; do not edit by hand.", "\\begin{table}[t]", "\\centering",
             "\\scriptsize",
             "\\caption{Colored MNIST (5k images, IRM construction), MLP, at each variant's "
             "$\\lambda$ selected by training-domain validation accuracy. Mean over seeds "
             "[95\\% CI], percent.}", "\\label{tab:superposition}",
             "\\begin{tabular}{ll r" + " c" * len(cols) + "}", "\\toprule",
             "Benchmark & Variant & $\\lambda$ & " + " & ".join(
                 summary.SHORTCUT_METRICS[c] for c in cols) + " \\\\", "\\midrule"]
    for b, v, lam in selected.itertuples(index=False):
        sub = runs[(runs.benchmark == b) & (runs.variant == v) & (runs.lam == lam)]
        cells = []
        for c in cols:
            s = summarize(sub[c].tolist())
            cells.append(paper.ci_cell(s.mean, s.ci_low, s.ci_high, s.n, s.n_diverged))
        lines.append(" & ".join([paper.latex_escape(b), paper.latex_escape(v), f"{lam:g}",
                                 *cells]) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"
