"""Seed aggregation, figures and generated LaTeX of direction 2, from the run tables on disk.

Comparisons are paired by seed (same stream, same initial weights). The primary contrasts are
declared in the config (``continual.primary``) and evaluated as one Holm family
(rose.contrasts); everything else is exploratory (rose.stats.paired_against, Student-t
intervals, no verdict): every arm against ``finetune_k`` (the same K steps per batch, no
constraint: matched gradient steps), and the adaptive controllers against the fixed radius they
start from. The number of seeds is printed next to every interval.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rose import contrasts, paper
from rose.stats import interval_words, paired_against, summarize_frame

METRICS = {"final_acc": "final acc.", "forgetting": "forgetting", "learning_acc": "learning acc.",
           "aaa": "anytime acc.", "noisy_acc": "noisy acc."}
EXTRA = ("bwt", "curve_auc", "samples_to_threshold", "threshold_reached", "constraint_active",
         "steps_per_sample")
REFERENCE = "finetune"      # tuned K = 1: the strongest simple alternative (PROTOCOL.md 2)
METRIC_WORDS = {"final_acc": "final accuracy", "forgetting": "forgetting",
                "learning_acc": "learning accuracy", "aaa": "average anytime accuracy",
                "noisy_acc": "noisy-input accuracy"}
PAIRED = ("final_acc", "forgetting", "learning_acc", "aaa")


def _paired(runs: pd.DataFrame, reference: str) -> pd.DataFrame:
    return paired_against(runs, "arm", reference, PAIRED, group="stream")


def aggregate(run_csvs: Sequence[str | Path], out_dir: str | Path, primary: list[dict]) -> None:
    """runs.csv, summary.csv, paired.csv, primary.csv, metrics.json, trace.csv (the
    adaptive controllers' r along the stream) and tuning.csv (every arm's grid on the
    validation stream); the per-stream trace.csv and tuning.csv files sit beside runs.csv."""
    out = Path(out_dir)
    runs = pd.concat([pd.read_csv(p) for p in run_csvs], ignore_index=True)
    runs.to_csv(out / "runs.csv", index=False)
    traces = pd.concat([pd.read_csv(Path(p).parent / "trace.csv") for p in run_csvs],
                       ignore_index=True)
    controller_arms = runs[runs.group == "controller"].arm.unique()
    traces[traces.arm.isin(controller_arms)].to_csv(out / "trace.csv", index=False)
    pd.concat([pd.read_csv(Path(p).parent / "tuning.csv") for p in run_csvs],
              ignore_index=True).to_csv(out / "tuning.csv", index=False)
    parts = [summarize_frame(runs, ["stream", "group", "arm"], m).assign(metric=m)
             for m in [*METRICS, *EXTRA]]
    pd.concat(parts, ignore_index=True).to_csv(out / "summary.csv", index=False)
    ref = REFERENCE if (runs.arm == REFERENCE).any() else "finetune_k"
    _paired(runs, ref).to_csv(out / "paired.csv", index=False)
    contrasts.evaluate(runs, primary).to_csv(out / "primary.csv", index=False)
    m = {f"{s}/{a}/{k}": _num(g[k].mean()) for (s, a), g in runs.groupby(["stream", "arm"])
         for k in ("final_acc", "forgetting", "aaa")}
    (out / "metrics.json").write_text(json.dumps(m, indent=2, sort_keys=True) + "\n")


def _num(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def figures(run_csvs, matrix_csvs, anytime_csvs, trace_csvs, out: dict[str, str], rule: str,
            config_hash: str) -> None:
    from rose.plots import continual as plots
    from rose.plots import save_figure
    from rose.provenance import git_commit

    prov = {"rule": rule, "git_commit": git_commit(), "config_hash": config_hash}

    def cat(paths):
        return pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    runs = cat(run_csvs)
    save_figure(plots.matrices(cat(matrix_csvs)), out["matrices"], "Accuracy matrices", prov)
    save_figure(plots.anytime(cat(anytime_csvs)), out["anytime"], "Anytime accuracy", prov)
    save_figure(plots.frontier(runs), out["frontier"], "Plasticity vs forgetting", prov)
    save_figure(plots.radius_traces(cat(trace_csvs)), out["radius"], "Radius along the stream",
                prov)


_cell = paper.seed_cell
_tt = paper.tt


def frontier_sentence(runs: pd.DataFrame) -> str:
    """Per stream and K: the best fixed radius by final accuracy against no constraint."""
    f = runs[runs.group == "frontier"]
    parts = []
    for s, g in f.groupby("stream"):
        bits = []
        for k, gk in g.groupby("k"):
            means = gk.groupby("radius").final_acc.mean()
            free = means.get(float("inf"))
            best_r = means.drop(float("inf"), errors="ignore").idxmax()
            bits.append(f"$K={k}$: {paper.fmt_percent(means[best_r])}\\% at $r={best_r:g}$ vs "
                        f"{paper.fmt_percent(free)}\\% unconstrained")
        parts.append(f"on {_tt(s)}, " + ", ".join(bits))
    return ("Best fixed radius by mean final test accuracy, an oracle choice made on test data "
            "and so an upper bound, not a selected arm (the whole grid is in "
            "Figure~\\ref{fig:cont-frontier}): " + "; ".join(parts) + ".") if parts else ""


def controller_sentence(trace: pd.DataFrame, runs: pd.DataFrame) -> str:
    """Where each adaptive controller kept r: mean r / r0 over the stream and the share of
    batches at the lower clip (r0 / r_range) or upper clip, per stream."""
    ctl_runs = runs[runs.group == "controller"]
    if ctl_runs.empty:
        return ""
    parts = []
    for (s, arm), g in trace[trace.arm.isin(ctl_runs.arm)].groupby(["stream", "arm"]):
        spec = ctl_runs[ctl_runs.arm == arm].iloc[0]
        if spec.controller == "dual":   # r is fixed; the multiplier adapts
            parts.append(f"{_tt(arm)} on {_tt(s)}: $r$ fixed, mean $\\lambda$ = "
                         f"{g.lam.mean():.3g}")
            continue
        rel = g.radius / spec.radius
        parts.append(f"{_tt(arm)} on {_tt(s)}: mean $r/r_0$ = {rel.mean():.2f}, "
                     f"{100 * (rel <= rel.min() * 1.0001).mean():.0f}\\% of batches at its "
                     "lowest value")
    return "Where the controllers kept the radius: " + "; ".join(parts) + "."


def sanity_sentence(runs: pd.DataFrame) -> str:
    split = runs[runs.stream == "split"]
    if split.empty:
        return ""
    ft = split[split.arm == "finetune"]
    s = (f"On the class-incremental \\texttt{{split}} stream, fine-tuning ends at "
         f"{_cell(ft.final_acc)}\\% final accuracy (published on five-task split "
         "MNIST: about 20\\%, the last task only)")
    rep = split[split.kind == "replay"].groupby("arm").final_acc
    ewc = split[split.arm == "ewc"]
    if len(rep) and len(ewc):
        best = rep.mean().idxmax()
        s += (f"; replay ({_tt(best)}) reaches {_cell(split[split.arm == best].final_acc)}\\% "
              f"and online EWC {_cell(ewc.final_acc)}\\%")
    return s + "."


def controller_pairs(runs: pd.DataFrame) -> pd.DataFrame:
    """Each controller arm ``<distance>_<controller>`` minus ``ball_<distance>`` (paired)."""
    ctl = runs[runs.group == "controller"]
    parts = []
    for dist, g in ctl.groupby("distance"):
        fixed = f"ball_{dist}"
        if (runs.arm == fixed).any():
            parts.append(_paired(runs[runs.arm.isin([*g.arm.unique(), fixed])], fixed)
                         .assign(reference=fixed))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def selection_sentence(runs: pd.DataFrame, tuning: pd.DataFrame) -> str:
    """Per stream: the ball arm selected on the validation stream, and the tuned values of
    the references."""
    parts = []
    for s, g in runs[runs.arm == "ball_best"].groupby("stream", sort=False):
        t = tuning[(tuning.stream == s) & tuning.selected]
        point = {a: json.loads(p) for a, p in zip(t.arm, t.point, strict=True)}
        picked = g.selected_arm.iloc[0]
        bits = [f"{_tt(picked)} ({_point(point.get(picked, {}))}, validation final accuracy "
                f"{paper.fmt_percent(g.val_score.iloc[0])}\\%)"]
        for ref in ("finetune", "finetune_k"):
            if ref in point:
                bits.append(f"{_tt(ref)} at {_point(point[ref])}")
        parts.append(f"on {_tt(s)}, " + "; ".join(bits))
    return ("Selected on the validation stream: " + "; ".join(parts) + ".") if parts else ""


def budget_sentence(runs: pd.DataFrame, tuning: pd.DataFrame) -> str:
    """The selection's advantage, stated: ball_best is the best of every ball configuration
    (arms x grid points) on validation, each reference the best of its own grid; the
    validation-minus-test drop of each (mean over seeds, points) shows the optimism that
    choosing among more configurations buys (the streams differ, so compare the drops, not
    the levels)."""
    balls = tuning[tuning.group.isin(["distance", "controller"])]
    if balls.empty:
        return ""
    per_stream = balls.groupby("stream").size()
    n_ball = int(per_stream.max())
    n_ref = int(tuning[tuning.arm == "finetune"].groupby("stream").size().max()) \
        if (tuning.arm == "finetune").any() else 0
    parts = []
    for s, g in runs.groupby("stream", sort=False):
        drops = []
        for arm in ("ball_best", "finetune", "finetune_k"):
            a = g[g.arm == arm]
            if len(a):
                drops.append(f"{_tt(arm)} {100 * (a.val_score.iloc[0] - a.final_acc.mean()):+.1f}")
        parts.append(f"on {_tt(s)}, " + ", ".join(drops))
    return (f"\\texttt{{ball\\_best}} is the best of {n_ball} ball configurations (arms "
            f"$\\times$ grid points) on the validation stream, each reference the best of "
            f"{n_ref}: a larger search, whose optimism shows in the drop from validation to "
            "test final accuracy (points; the streams hold different tasks, so compare the "
            "drops, not the levels): " + "; ".join(parts) + ".")


def grid_edges(tuning: pd.DataFrame) -> pd.DataFrame:
    """The selected points at an end of their grid (a hyperparameter at its smallest or
    largest declared value): where a wider grid might have chosen otherwise."""
    rows = []
    hps = [c for c in tuning.columns if c.startswith("hp.")]
    for (s, arm), g in tuning.groupby(["stream", "arm"], sort=False):
        sel = g[g.selected].iloc[0]
        for hp in hps:
            values = g[hp].dropna()
            bound = hp in ("hp.beta", "hp.gamma") and sel[hp] == 1.0    # the domain's end
            if values.nunique() > 1 and sel[hp] in (values.min(), values.max()) and not bound:
                rows.append({"stream": s, "arm": arm, "hyperparameter": hp[3:],
                             "value": sel[hp], "end": "low" if sel[hp] == values.min()
                             else "high"})
    return pd.DataFrame(rows, columns=["stream", "arm", "hyperparameter", "value", "end"])


def edge_sentence(tuning: pd.DataFrame) -> str:
    edges = grid_edges(tuning)
    n = tuning.groupby(["stream", "arm"]).ngroups
    if edges.empty:
        return f"No selected point lies at an end of its grid ({n} tuned arm-streams)."
    parts = []
    for s, g in edges.groupby("stream", sort=False):
        parts.append(f"on {_tt(s)}, " + ", ".join(
            f"{_tt(r.arm)} ({r.end})" for r in g.drop_duplicates("arm").itertuples()))
    return (f"{edges.groupby(['stream', 'arm']).ngroups} of {n} tuned arm-streams were "
            "selected at an end of their grid, where a wider grid might choose otherwise: "
            + "; ".join(parts) + ".")


def edge_count(tuning: pd.DataFrame) -> str:
    """The main text's short form of :func:`edge_sentence`: how many selections sit at an end
    of their grid (the appendix names them)."""
    n = tuning.groupby(["stream", "arm"]).ngroups
    k = grid_edges(tuning).groupby(["stream", "arm"]).ngroups if len(grid_edges(tuning)) else 0
    return (f"{k} of {n} tuned arm-streams were selected at an end of their grid, where a wider "
            "grid might choose otherwise (named in the appendix).")


def _point(p: dict) -> str:
    names = {"lr": "$\\eta$", "radius_scale": "$r/r_{\\mathrm{nom}}$", "lam": "$\\lambda$",
             "beta": "$\\beta$", "gamma": "$\\gamma$"}
    return ", ".join(f"{names.get(k, k)}={v:g}" for k, v in p.items())


def tex(agg_dir: str | Path, table_tex: str | Path, macros_tex: str | Path) -> None:
    agg = Path(agg_dir)
    runs = pd.read_csv(agg / "runs.csv")
    paired = pd.read_csv(agg / "paired.csv")
    trace = pd.read_csv(agg / "trace.csv")
    tuning = pd.read_csv(agg / "tuning.csv")
    ref = REFERENCE if (runs.arm == REFERENCE).any() else "finetune_k"
    dist_arms = sorted(runs[runs.group == "distance"].arm.unique())
    base_arms = sorted(set(runs[runs.group == "baseline"].arm) - {ref})
    ctl_paired = controller_pairs(runs)
    ctl_text = []
    for fixed, g in (ctl_paired.groupby("reference") if len(ctl_paired) else []):
        ctl_text.append(paper.exploratory(g, "arm", sorted(g.arm.unique()), "final_acc",
                                          "Final accuracy", fixed, "stream"))
    grid_sizes = tuning.groupby("arm").grid_size.first()
    v = {"ContSeeds": str(runs.seed.nunique()),
         "ContK": str(int(runs[runs.group == "distance"].k.max()) if len(dist_arms) else 1),
         "ContStreams": ", ".join(_tt(s) for s in dict.fromkeys(runs.stream)),
         "ContReference": _tt(ref),
         "ContGridSize": str(int(grid_sizes.max())) if len(grid_sizes) else "0",
         "ContTunedArms": str(len(grid_sizes)),
         "ContSelectionSentence": selection_sentence(runs, tuning),
         "ContGridEdgeSentence": edge_sentence(tuning),
         "ContGridEdgeCount": edge_count(tuning),
         "ContBudgetSentence": budget_sentence(runs, tuning),
         "ContBestLearning": paper.exploratory(
             paired, "arm", ["ball_best"], "learning_acc", "Learning accuracy", ref, "stream"),
         "ContSanitySentence": sanity_sentence(runs),
         "ContPrimary": paper.primary_sentences(pd.read_csv(agg / "primary.csv"),
                                                METRIC_WORDS),
         "ContExploratoryDistanceAcc": paper.exploratory(
             paired, "arm", dist_arms, "final_acc", "Final accuracy", ref, "stream"),
         "ContExploratoryDistanceForgetting": paper.exploratory(
             paired, "arm", dist_arms, "forgetting", "Forgetting", ref, "stream"),
         "ContExploratoryBaselines": paper.exploratory(
             paired, "arm", base_arms, "final_acc", "Final accuracy", ref, "stream"),
         "ContExploratoryControllers": " ".join(ctl_text) if ctl_text
         else "No adaptive controller was run.",
         "ContFrontierSentence": frontier_sentence(runs),
         "ContControllerSentence": controller_sentence(trace, runs)}
    Path(macros_tex).write_text(paper.macros(v))
    Path(table_tex).write_text("".join(stream_table(runs[runs.stream == s], s)
                                       for s in dict.fromkeys(runs.stream)))


def stream_table(runs: pd.DataFrame, stream: str) -> str:
    rows = runs[~runs.group.isin(["frontier", "selected"])]
    lines = ["% Generated by rose; do not edit by hand.", "\\begin{table}[t]", "\\centering",
             "\\scriptsize",
             f"\\caption{{Stream \\texttt{{{paper.latex_escape(stream)}}}: mean over "
             f"{runs.seed.nunique()} seeds "
             f"[{paper.latex_escape(interval_words(runs.seed.nunique()))}], percent. "
             "Forgetting: the drop "
             "from the best accuracy ever reached on a task (Chaudhry et al.). B: uses task "
             "boundaries. Steps: gradient steps per stream sample.}",
             f"\\label{{tab:continual-{stream}}}",
             "\\begin{tabular}{ll" + " c" * len(METRICS) + " cr}", "\\toprule",
             "Group & Arm & " + " & ".join(METRICS.values()) + " & B & steps \\\\",
             "\\midrule"]
    for (grp, arm), g in rows.groupby(["group", "arm"], sort=True):
        lines.append(" & ".join([grp, paper.latex_escape(arm),
                                 *(_cell(g[m]) for m in METRICS),
                                 "yes" if g.uses_boundaries.iloc[0] else "",
                                 f"{g.steps_per_sample.iloc[0]:g}"]) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"
