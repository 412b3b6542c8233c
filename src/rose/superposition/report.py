"""Tables, figures and generated LaTeX of direction 3b, from the run tables on disk. Each
function takes paths and plain values (the rules call them through workflow/scripts)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rose import contrasts, paper
from rose.superposition import frontier, summary


def aggregate(shortcut_csvs: Sequence[str | Path], toy_penalty_csv: str | Path,
              out_dir: str | Path, primary: list[dict]) -> None:
    """Concatenate the runs, summarise over seeds, select lambda on validation (and, labelled
    as an upper bound, on test-environment validation), compute the toy frontier areas,
    evaluate the primary contrasts (one Holm family over the toy and Colored MNIST rows) and
    the exploratory paired comparisons."""
    out = Path(out_dir)
    runs = pd.concat([pd.read_csv(p) for p in shortcut_csvs], ignore_index=True)
    runs.to_csv(out / "shortcut_runs.csv", index=False)
    summary.summarise(runs, ["benchmark", "variant", "lam"], summary.SHORTCUT_METRICS).to_csv(
        out / "shortcut_summary.csv", index=False)
    selected, tuning = summary.lambda_tuning(runs)
    selected.to_csv(out / "shortcut_selected.csv", index=False)
    tuning.to_csv(out / "shortcut_tuning.csv", index=False)
    toy = pd.read_csv(toy_penalty_csv)
    toy.to_csv(out / "toy_penalty_runs.csv", index=False)
    summary.summarise(toy, ["variant", "sparsity", "lam"], frontier.TOY_METRICS).to_csv(
        out / "toy_penalty_summary.csv", index=False)
    frontier.areas(toy).to_csv(out / "toy_frontier.csv", index=False)
    frontier.matched(toy).to_csv(out / "toy_matched.csv", index=False)
    family = pd.concat([summary.at_selected(runs, selected), frontier.per_seed(toy)],
                       ignore_index=True)
    contrasts.evaluate(family, primary).to_csv(out / "primary.csv", index=False)
    paired = pd.concat([summary.paired_against_unpenalised(runs, selected)
                        .assign(reference="lambda = 0"),
                        summary.paired_against_reference(runs, selected)], ignore_index=True)
    paired.to_csv(out / "shortcut_paired.csv", index=False)
    erm = runs[(runs.benchmark == "irm") & (runs.lam == 0)]
    areas = frontier.per_seed(toy)
    metrics = {"shortcut": {f"{b}/{v}/lam={lam:g}/{m}": _num(g[m].mean())
                            for (b, v, lam), g in runs.groupby(["benchmark", "variant", "lam"])
                            for m in ("test_acc", "test_worst_group_acc", "swapped_acc")},
               "irm_erm_test_acc": _num(erm["test_acc"].mean()) if len(erm) else None,
               "toy_frontier_area": {v: _num(g.frontier_area.mean())
                                     for v, g in areas.groupby("arm")}}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")


def toy_frontier_paired(toy: pd.DataFrame, reference: str = "none") -> pd.DataFrame:
    """Exploratory: every toy variant's per-seed frontier area minus the reference's (paired
    by seed; Student-t interval, no verdict)."""
    from rose.stats import paired_contrast

    a = frontier.per_seed(toy).pivot(index="seed", columns="arm", values="frontier_area")
    rows = []
    for v in a.columns.drop(reference):
        c = paired_contrast(a[v].to_numpy(), a[reference].to_numpy())
        rows.append({"variant": v, "difference": c.mean_difference, "ci_low": c.ci_low,
                     "ci_high": c.ci_high, "n": c.n})
    return pd.DataFrame(rows)


def _num(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def figures(toy_dirs: dict[str, str | Path], phase_csv: str | Path,
            toy_penalty_csv: str | Path, toy_penalty_features_csv: str | Path,
            shortcut_csv: str | Path, out: dict[str, str],
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
    save_figure(plots.penalty_frontier(pd.read_csv(toy_penalty_csv)), out["frontier"],
                "Penalty frontiers in the toy model", prov)
    save_figure(plots.dimensionality_histograms(pd.read_csv(toy_penalty_features_csv)),
                out["histograms"], "D_i histograms with and without penalties", prov)
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
        lambda g: bool(np.all(np.abs(feats[(feats.sparsity == g.name) & feats.represented]
                                     .dimensionality - 0.5) < 0.06)), include_groups=False)
    anti_s = [s for s, ok in anti.items() if ok and s not in (dense, sparse)]
    values["SupIntroAntipodalS"] = ", ".join(f"{s:g}" for s in anti_s) or "none"
    phases = pd.read_csv(phase_csv)
    if "model" not in phases:
        phases = phases.assign(model="elhage")
    ph = phases[phases.model == "elhage"]["phase"].value_counts()
    for p in ("not_represented", "dedicated", "superposition"):
        values[paper.macro_name("sup", "phase", p)] = str(int(ph.get(p, 0)))
    values["SupPhaseCells"] = str(int(ph.sum()))
    values["SupPhasePenalised"] = penalised_phase_sentence(phases)
    # toy penalties at the sparsest setting and the strongest lambda
    s_max, lam_max = toy.sparsity.max(), toy.lam.max()
    values["SupToyS"] = f"{s_max:g}"
    values["SupToyLamMax"] = f"{lam_max:g}"
    values["SupToyLams"] = ", ".join(f"{v:g}" for v in sorted(toy.lam[toy.lam > 0].unique()))
    values["SupToySeeds"] = str(toy.seed.nunique())
    values["SupToyPenaltySummary"] = toy_penalty_summary(toy[toy.sparsity == s_max], lam_max)
    m = pd.read_csv(agg / "toy_matched.csv")
    values["SupToyMatched"] = "; ".join(
        f"{paper.tt(v)} at $S={s:g}$: $\\lambda={lam:g}$, loss {loss:.3g} for a target "
        f"{t:.3g}" for v, s, lam, loss, t in m[m.variant.str.startswith("bimodal_s")][
            ["variant", "sparsity", "lam", "loss", "target_loss"]].itertuples(index=False))
    fp = toy_frontier_paired(toy)
    values["SupToyFrontier"] = "; ".join(
        f"{paper.tt(v)} {paper.paired_points(d, lo, hi)}"
        for v, d, lo, hi in fp[["variant", "difference", "ci_low", "ci_high"]]
        .itertuples(index=False)) + "."
    values["SupErmSummary"] = erm_summary(runs)
    values["SupShortcutSeeds"] = str(runs.seed.nunique())
    primary = pd.read_csv(agg / "primary.csv")
    values["SupPrimary"] = " ".join(contrasts.sentences(
        primary, {**summary.SHORTCUT_METRICS, **frontier.TOY_PRIMARY_METRICS,
                  "test_worst_group_acc": "worst-group accuracy",
                  "swapped_acc": "swapped-colour accuracy"}, paper.latex_escape))
    by_lam0 = paired[paired.reference == "lambda = 0"]
    no_grid = {v for v, g in runs.groupby("variant") if (g.lam == 0).all()}
    by_erm = paired[(paired.reference == "erm") & paired.variant.isin(no_grid)]
    values["SupExploratoryErm"] = " ".join(filter(None, [
        exploratory_sentence(by_erm, "test_worst_group_acc", "Worst-group test accuracy"),
        exploratory_sentence(by_erm, "class_selectivity", "class selectivity")]))
    paired = by_lam0
    values["SupExploratory"] = " ".join(filter(None, [
        exploratory_sentence(paired, "test_worst_group_acc", "Worst-group test accuracy"),
        exploratory_sentence(paired, "swapped_acc", "swapped-colour accuracy"),
        exploratory_sentence(paired, "frac_both", "share of units carrying colour and shape")]))
    Path(macros_tex).write_text(paper.macros(values))
    Path(table_tex).write_text(shortcut_table(runs, selected))


def _cell(x: pd.Series, fmt) -> str:
    """mean [95% CI] over the seeds where ``x`` is defined; a metric undefined on some seeds
    (polysemanticity of a model with no alive unit) says on how many."""
    from rose.stats import summarize

    vals = np.asarray(x, dtype=float)
    ok = vals[np.isfinite(vals)]
    if len(ok) == 0:
        return f"undefined on all {len(vals)} seeds"
    s = summarize(ok.tolist())
    note = f" (undefined on {len(vals) - len(ok)} of {len(vals)} seeds)" if len(ok) < len(
        vals) else ""
    return f"{fmt(s.mean)} [{fmt(s.ci_low)}, {fmt(s.ci_high)}]{note}"


def penalised_phase_sentence(phases: pd.DataFrame) -> str:
    """How the neuron-basis phase diagram changes with the penalty: phase counts without and
    with it, and the number of cells whose phase differs."""
    priv = phases[phases.model.str.startswith("privileged")]
    if priv.empty:
        return "The penalised phase diagram was not run."
    models = list(dict.fromkeys(priv.model))
    counts = []
    for m in models:
        c = priv[priv.model == m]["phase"].value_counts()
        counts.append(f"{paper.tt(m)}: " + ", ".join(
            f"{int(c.get(p, 0))} {p.replace('_', ' ')}" for p in
            ("not_represented", "dedicated", "superposition", "other")))
    wide = priv.pivot_table(index=["importance", "density"], columns="model", values="phase",
                            aggfunc="first")
    changed = int((wide[models[0]] != wide[models[-1]]).sum()) if len(models) > 1 else 0
    norm = ""
    if "phase_norm" in phases:     # phases are read from the reconstruction gain
        off = int((phases.phase != phases.phase_norm).sum())
        norm = (f" Reading the phases from the weight norms instead of the reconstruction gain "
                f"would change {off} of all {len(phases)} cells.")
    return (f"With a neuron basis, of {len(wide)} cells ({'; '.join(counts)}), the penalty "
            f"changes the phase of {changed}.{norm}")


def toy_penalty_summary(toy: pd.DataFrame, lam: float) -> str:
    """A generated itemize: per variant at ``lam`` (or its only point), mean [95% CI] over
    seeds of the metrics that cannot be fooled: relative loss, features represented (by
    reconstruction gain), alive units, polysemanticity over alive units, and the share of
    hidden activations near a mode of their unit."""
    items = []
    for v, g in toy.groupby("variant", sort=False):
        top = g[g.lam == lam] if (g.lam == lam).any() else g[g.lam == g.lam.max()]
        name = f"\\texttt{{{paper.latex_escape(v)}}}"
        at = f" ($\\lambda={lam:g}$)" if top.lam.iloc[0] > 0 else ""
        items.append(
            f"\\item {name}{at}: loss {_cell(top.relative_loss, _sci)} of the zero "
            f"predictor's; {_cell(top.n_represented, _sci)} features represented; "
            f"{_cell(top.n_alive, _sci)} alive units; polysemanticity "
            f"{_cell(top.polysemanticity, _sci)}; near-mode share "
            f"{_cell(top.near_mode_share, _sci)}.")
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
    """One row per (benchmark, variant) at its lambda selected on training-domain validation,
    and, labelled as an upper bound, the lambda and worst-group accuracy the test-environment
    validation split would choose: mean [95% CI] in percent."""
    cols = ["test_acc", "test_worst_group_acc", "swapped_acc", "frac_both"]
    from rose.stats import interval_words, summarize

    def cell(sub: pd.DataFrame, c: str) -> str:
        s = summarize(sub[c].tolist())
        return paper.ci_cell(s.mean, s.ci_low, s.ci_high, s.n, s.n_diverged)

    oracle = selected[selected.rule == "test_env_oracle"].set_index(["benchmark", "variant"])
    lines = ["% Generated by rose; do not edit by hand.", "\\begin{table}[t]", "\\centering",
             "\\scriptsize",
             "\\caption{Colored MNIST (5k images, IRM construction), MLP, at each variant's "
             "$\\lambda$ selected by training-domain validation accuracy. Last two columns, an "
             "upper bound that no method may claim: the $\\lambda^*$ chosen on a held-out half of "
             "the test environment and its worst-group accuracy. Mean over seeds "
             f"[{paper.latex_escape(interval_words(runs.seed.nunique()))}], percent.}}",
             "\\label{tab:superposition}",
             "\\begin{tabular}{ll r" + " c" * len(cols) + " r c}", "\\toprule",
             "Benchmark & Variant & $\\lambda$ & " + " & ".join(
                 summary.SHORTCUT_METRICS[c] for c in cols) + " & $\\lambda^*$ & worst group$^*$"
             " \\\\", "\\midrule"]
    train = selected[selected.rule == "training_domain"]
    for b, v, lam in train[["benchmark", "variant", "lam"]].itertuples(index=False):
        sub = runs[(runs.benchmark == b) & (runs.variant == v) & (runs.lam == lam)]
        row = [paper.latex_escape(b), paper.latex_escape(v), f"{lam:g}",
               *(cell(sub, c) for c in cols)]
        if (b, v) in oracle.index:
            lam_o = float(oracle.loc[(b, v), "lam"])
            sub_o = runs[(runs.benchmark == b) & (runs.variant == v) & (runs.lam == lam_o)]
            row += [f"{lam_o:g}", cell(sub_o, "test_worst_group_acc")]
        else:
            row += ["--", "--"]
        lines.append(" & ".join(row) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"
