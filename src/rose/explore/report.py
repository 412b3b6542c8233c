"""Seed aggregation, figures and generated LaTeX of direction 1, from the run tables on disk.

Comparisons are paired by seed (same initial weights, same label noise, same minibatch order).
The primary contrasts are declared in the config (``explore.primary``) and evaluated as one Holm
family (rose.contrasts); everything else is exploratory (Student-t intervals, no verdict): every
arm against ``sgd`` on its setting, and every ablation variant against the contour arm it
modifies. The number of seeds is printed next to every interval. Sharpness measures are related
to test accuracy by Kendall's tau over all runs of a setting (scipy.stats.kendalltau), as in
Jiang et al. 2020.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from rose import contrasts, paper
from rose.explore.experiments import ABLATION
from rose.stats import interval_words, paired_against, summarize_frame

METRICS = {"early_test_acc": "early-stopped", "final_test_acc": "final",
           "gen_gap": "gap", "lambda_max": "$\\lambda_{\\max}$", "trace": "tr$H$",
           "sigma_prime": "$\\sigma'$", "adaptive_sharpness": "adapt.~sharp.",
           "distance": "$\\lVert\\theta_T-\\theta_0\\rVert$"}
EXTRA = ("final_train_acc", "final_train_clean_acc", "path_length", "epochs_equiv",
         "early_val_acc")
PAIRED = ("early_test_acc", "final_test_acc", "gen_gap", "lambda_max", "sigma_prime")
SHARPNESS = ("lambda_max", "trace", "sigma_prime", "adaptive_sharpness")
METRIC_WORDS = {"early_test_acc": "early-stopped test accuracy",
                "final_test_acc": "final test accuracy", "gen_gap": "the generalisation gap"}
REFERENCE = "sgd"


def _paired(runs: pd.DataFrame, reference: str) -> pd.DataFrame:
    return paired_against(runs, "arm", reference, PAIRED, group="setting")


def aggregate(run_csvs: Sequence[str | Path], out_dir: str | Path, ablation_base: str,
              primary: list[dict], tuning_csvs: Sequence[str | Path] = (),
              sweep_csvs: Sequence[str | Path] = (), batch_gap: dict | None = None) -> None:
    """runs.csv, summary.csv, paired.csv (vs sgd; ablation variants vs their base),
    primary.csv (the declared family), correlation.csv (Kendall tau of each sharpness measure
    with test accuracy), batch_gap.csv (:func:`batch_gaps` of ``batch_gap``, the config's
    ``explore.batch_gap``; empty without it), metrics.json (with the fraction of seeds whose
    walk moved, per contour arm and setting); tuning.csv and sweep.csv gathered over
    settings."""
    out = Path(out_dir)
    runs = pd.concat([pd.read_csv(p) for p in run_csvs], ignore_index=True)
    runs.to_csv(out / "runs.csv", index=False)
    for name, paths in (("tuning", tuning_csvs), ("sweep", sweep_csvs)):
        frames = [pd.read_csv(p) for p in paths if Path(p).stat().st_size > 1]
        (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()).to_csv(
            out / f"{name}.csv", index=False)
    parts = [summarize_frame(runs, ["setting", "arm"], m).assign(metric=m)
             for m in [*METRICS, *EXTRA] if m in runs]
    pd.concat(parts, ignore_index=True).to_csv(out / "summary.csv", index=False)
    main = runs[runs.setting != ABLATION]
    paired = pd.concat([_paired(main, REFERENCE),
                        _paired(runs[runs.setting == ABLATION], ablation_base)],
                       ignore_index=True)
    paired.to_csv(out / "paired.csv", index=False)
    contrasts.evaluate(runs, primary).to_csv(out / "primary.csv", index=False)
    # a pool's rows repeat its selected member's: count each run once
    own = main[main.pool_member.isna()] if "pool_member" in main else main
    correlation(own).to_csv(out / "correlation.csv", index=False)
    gaps = batch_gaps(runs, **batch_gap) if batch_gap else pd.DataFrame()
    gaps.to_csv(out / "batch_gap.csv", index=False)
    m = {f"{s}/{a}/{k}": _num(g[k].mean()) for (s, a), g in runs.groupby(["setting", "arm"])
         for k in ("early_test_acc", "final_test_acc", "lambda_max")}
    m.update({f"{r.setting}/{r.arm}/walk_moved": r.moved for r in walk_moved(runs).itertuples()})
    m.update({f"batch_gap/{r.arm}/{r.metric}": _num(r.difference) for r in gaps.itertuples()})
    (out / "metrics.json").write_text(json.dumps(m, indent=2, sort_keys=True) + "\n")


def walk_moved(runs: pd.DataFrame) -> pd.DataFrame:
    """Per setting and walking arm (own runs, not pool copies): the fraction of seeds whose
    selected candidate is not the walk's start point (``walk_chosen_step`` > 0), and the seed
    count. A diverged seed counts as not moved."""
    cols = ["setting", "arm", "moved", "seeds"]
    if "walk_chosen_step" not in runs:
        return pd.DataFrame(columns=cols)
    own = runs[runs.pool_member.isna()] if "pool_member" in runs else runs
    walked = own[own.method == "contour"]
    return pd.DataFrame([{"setting": s, "arm": a,
                          "moved": float((g.walk_chosen_step.fillna(0) > 0).mean()),
                          "seeds": len(g)}
                         for (s, a), g in walked.groupby(["setting", "arm"], sort=False)],
                        columns=cols)


def batch_gaps(runs: pd.DataFrame, small: str, large: str,
               metrics: Sequence[str] = ("final_test_acc", "early_test_acc")) -> pd.DataFrame:
    """The small- vs large-batch gap (Keskar et al. 2017), exploratory: for every arm that runs
    on both settings, large minus small per seed (the seeds share initial weights; each
    setting's arm tuned on its own grid), with its Student-t interval (rose.stats)
    and no verdict."""
    from rose.stats import paired_contrast

    rows = []
    a, b = runs[runs.setting == small], runs[runs.setting == large]
    for arm in [x for x in b.arm.unique() if x in set(a.arm)]:
        x = a[a.arm == arm].set_index("seed")
        y = b[b.arm == arm].set_index("seed")
        seeds = sorted(set(x.index) & set(y.index))
        for m in metrics:
            c = paired_contrast(y.loc[seeds, m].to_numpy(float), x.loc[seeds, m].to_numpy(float))
            rows.append({"arm": arm, "metric": m, "small": small, "large": large,
                         "small_mean": float(x.loc[seeds, m].mean()),
                         "large_mean": float(y.loc[seeds, m].mean()),
                         "difference": c.mean_difference, "ci_low": c.ci_low,
                         "ci_high": c.ci_high, "n": c.n})
    return pd.DataFrame(rows, columns=["arm", "metric", "small", "large", "small_mean",
                                       "large_mean", "difference", "ci_low", "ci_high", "n"])


def _num(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def correlation(runs: pd.DataFrame) -> pd.DataFrame:
    """Kendall tau between each sharpness measure and final test accuracy, per setting, over
    every (arm, seed) run. A flatness measure predicts generalisation if tau < 0 for the
    sharpness measures and tau > 0 for sigma' (larger sigma' = flatter)."""
    rows = []
    for s, g in runs.groupby("setting"):
        for m in SHARPNESS:
            ok = g[[m, "final_test_acc"]].dropna()
            if len(ok) < 3:
                continue
            tau, p = sps.kendalltau(ok[m], ok["final_test_acc"])
            rows.append({"setting": s, "measure": m, "tau": tau, "p_value": p, "n": len(ok)})
    return pd.DataFrame(rows)


def figures(agg_dir: str | Path, tables: dict[str, Sequence[str]], out: dict[str, str],
            rule: str, config_hash: str) -> None:
    from rose.plots import explore as plots
    from rose.plots import save_figure
    from rose.provenance import git_commit

    prov = {"rule": rule, "git_commit": git_commit(), "config_hash": config_hash}

    def cat(paths):
        frames = [pd.read_csv(p) for p in paths if Path(p).stat().st_size > 1]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    runs = pd.read_csv(Path(agg_dir) / "runs.csv")
    paired = pd.read_csv(Path(agg_dir) / "paired.csv")
    save_figure(plots.accuracy(runs[runs.setting != ABLATION]), out["accuracy"],
                "Test accuracy by method", prov)
    save_figure(plots.sharpness(runs[runs.setting != ABLATION]), out["sharpness"],
                "Sharpness vs test accuracy", prov)
    main_curves = cat(tables["curves"])
    save_figure(plots.curves(main_curves[main_curves.setting != ABLATION]), out["curves"],
                "1-D loss curves", prov)
    save_figure(plots.spectrum(cat(tables["spectrum"])), out["spectrum"],
                "Hessian spectral density", prov)
    save_figure(plots.surfaces(cat(tables["surface"]), cat(tables["walk"])), out["surfaces"],
                "Loss surface before and after the warm-up", prov)
    save_figure(plots.trajectories(cat(tables["trajectory"])), out["trajectories"],
                "Trajectory projections", prov)
    save_figure(plots.ablation(paired[paired.setting == ABLATION]), out["ablation"],
                "Ablations of the contour warm-up", prov)
    sweep = pd.read_csv(Path(agg_dir) / "sweep.csv")
    save_figure(plots.lr_sweep(sweep[sweep.setting != ABLATION]), out["sweep"],
                "Learning-rate sweep", prov)


_cell = paper.seed_cell
_tt = paper.tt


def _pts(row) -> str:
    return paper.paired_points(row.difference, row.ci_low, row.ci_high)


def _pair(paired: pd.DataFrame, setting: str, arm: str, metric: str) -> str:
    r = paired[(paired.setting == setting) & (paired.arm == arm) & (paired.metric == metric)]
    return _pts(r.iloc[0]) if len(r) else "n/a"


def walk_sentence(runs: pd.DataFrame, arm: str) -> str:
    """What the walk did on each setting: how many seeds descended from the start point (the
    walk then changed nothing but the budget), the level error, and, over the seeds that moved,
    the distance to the selected point, where the selection stopped, and lambda_max / trace
    before and after."""
    parts = []
    for s, g in runs[(runs.arm == arm) & (runs.setting != ABLATION)].groupby("setting",
                                                                              sort=False):
        moved = g[g.walk_chosen_step > 0]
        text = (f"on {_tt(s)} the walk kept $|L_P-c|\\le$ {_sci(g.walk_level_error.max())}; "
                f"{len(g) - len(moved)} of {len(g)} seeds selected the start point")
        if len(moved):
            m = moved.mean(numeric_only=True)
            text += (f", and the {len(moved)} that moved went {m.walk_chosen_distance:.2f} in "
                     f"weight space (step {m.walk_chosen_step:.0f} on average), taking "
                     f"$\\lambda_{{\\max}}$ from {m.walk_start_lambda_max:.3g} to "
                     f"{m.walk_end_lambda_max:.3g} and tr$H$ from {m.walk_start_trace:.3g} to "
                     f"{m.walk_end_trace:.3g}")
        parts.append(text)
    return _capital("; ".join(parts) + ".") if parts else ""


def moved_sentence(runs: pd.DataFrame) -> str:
    """Per setting and walking arm, on how many seeds the walk moved (selected a point other
    than its start); where it kept its start on most seeds the sentence says the walk did not
    move, so its contrasts are about a shortened descent, not about walking (issue 28)."""
    parts = []
    for r in walk_moved(runs[runs.setting != ABLATION]).itertuples():
        n = round(r.moved * r.seeds)
        text = f"{_tt(r.arm)} on {_tt(r.setting)}: moved on {n} of {r.seeds} seeds"
        if r.moved < 0.5:
            text += (" (the walk did not move on most seeds: its contrasts compare a shortened "
                     "descent, not a walk)")
        parts.append(text)
    return _capital("; ".join(parts) + ".") if parts else ""


def batch_gap_sentence(gaps: pd.DataFrame) -> str:
    """The small- vs large-batch gap in final test accuracy per arm (exploratory, no
    verdict word)."""
    g = gaps[gaps.metric == "final_test_acc"] if len(gaps) else gaps
    if g.empty:
        return ""
    r0 = g.iloc[0]
    items = ", ".join(f"{_tt(r.arm)} {paper.paired_points(r.difference, r.ci_low, r.ci_high)} "
                      f"({100 * r.small_mean:.2f}\\% to {100 * r.large_mean:.2f}\\%, "
                      f"{r.n} seeds)" for r in g.itertuples())
    return (f"Final test accuracy at {_tt(r0.large)} minus {_tt(r0.small)}, paired by seed "
            f"(exploratory): {items}.")


def correlation_sentence(corr: pd.DataFrame) -> str:
    parts = []
    for s, g in corr.groupby("setting", sort=False):
        parts.append(f"{_tt(s)}: " + ", ".join(
            f"{_tt(r.measure)} $\\tau={r.tau:+.2f}$ ($p={r.p_value:.2g}$)"
            for r in g.itertuples()))
    return ("Kendall $\\tau$ with final test accuracy over every run of a setting: "
            + "; ".join(parts) + ".") if parts else ""


def budget_sentence(runs: pd.DataFrame) -> str:
    g = runs[runs.setting != ABLATION].groupby("arm").epochs_equiv.mean()
    return ", ".join(f"{_tt(a)} {v:.1f}" for a, v in g.items())


def descent_sentence(runs: pd.DataFrame, arm: str) -> str:
    """How much of its reference's descent the equal-budget contour arm keeps once the walk's
    gradient evaluations are charged to it, and how many seeds kept the walk's start point."""
    parts = []
    main = runs[runs.setting != ABLATION]
    for s, g in main.groupby("setting", sort=False):
        mine = g[g.arm == arm]
        ref = g[g.arm == "sgd_or_warmup"] if (g.arm == "sgd_or_warmup").any() else \
            g[g.arm == REFERENCE]
        if mine.empty or ref.empty:
            continue
        text = (f"on {_tt(s)} it descends for {mine.steps.mean():.0f} of the reference's "
                f"{ref.steps.mean():.0f} steps")
        if "walk_chosen_step" in mine:
            stayed = int((mine.walk_chosen_step.fillna(0) == 0).sum())
            text += f" and {stayed} of {len(mine)} seeds kept the walk's start point"
        parts.append(text)
    if not parts:
        return ""
    return (f"Charged for its walk, {_tt(arm)} " + "; ".join(parts) + ", so the contrast "
            "weighs the walk's benefit against its cost.")


def sanity_sentence(runs: pd.DataFrame) -> str:
    """Label-noise sanity: how much of the noisy training labels SGD fits, and whether its test
    accuracy changes between the early-stopping point and the end (paired by seed)."""
    from rose.stats import paired_contrast

    parts = []
    for s, g in runs[(runs.arm == REFERENCE) & (runs.setting != ABLATION)].groupby(
            "setting", sort=False):
        c = paired_contrast(g.final_test_acc.to_numpy(), g.early_test_acc.to_numpy())
        change = paper.paired_points(c.mean_difference, c.ci_low, c.ci_high)
        parts.append(f"on {_tt(s)}, {_tt(REFERENCE)} ends fitting {_cell(g.final_train_acc)}\\% "
                     f"of the training labels as given; final minus early-stopped test "
                     f"accuracy is {change}")
    return _capital("; ".join(parts) + ".") if parts else ""


def tuning_sentence(tuning: pd.DataFrame) -> str:
    """Per setting, each tuned arm's grid size and selected point (chosen on validation); a
    selected value at the edge of its grid is flagged."""
    parts = []
    for s, g in tuning[tuning.setting != ABLATION].groupby("setting", sort=False):
        items = []
        for r in g[g.selected].to_dict("records"):
            arm = g[g.arm == r["arm"]]
            edge = [k[3:] for k in arm.columns if k.startswith("hp.") and arm[k].nunique() > 2
                    and r[k] in (arm[k].min(), arm[k].max())]
            items.append(f"{_tt(r['arm'])} {_point(r['point'])} (of {r['grid_size']}"
                         + (f"; {', '.join(paper.latex_escape(e) for e in edge)} at the edge of "
                            "its grid" if edge else "") + ")")
        parts.append(f"on {_tt(s)}, " + ", ".join(items))
    return _capital("; ".join(parts) + ".") if parts else ""


def _point(point: str) -> str:
    p = json.loads(point)
    return "at " + ", ".join(f"{paper.latex_escape(k)} {v:g}" for k, v in p.items()) if p \
        else "untuned"


def regime_sentence(sweep: pd.DataFrame, reference: str = REFERENCE,
                    warmup: str = "warmup") -> str:
    """Where SGD without warm-up stops working in each setting's sweep: the largest rate with
    its early-stopped validation accuracy within 2 points of its best, the next rate's
    accuracy, and the warm-up arm's best accuracy at that next rate (a diverged seed counts as
    0)."""
    parts = []
    if "hp.lr" not in sweep:
        return ""
    sw = sweep[(sweep.setting != ABLATION) & sweep["hp.lr"].notna()]
    for s, g in sw.groupby("setting", sort=False):
        val = g.assign(v=g.early_val_acc.fillna(0.0)).groupby(["arm", "point", "hp.lr"]).v \
            .mean().groupby(["arm", "hp.lr"]).max()
        if reference not in val.index.get_level_values(0):
            continue
        ref = val[reference]
        ok = ref[ref >= ref.max() - 0.02]
        above = ref[ref.index > ok.index.max()]
        if above.empty:
            parts.append(f"on {_tt(s)} {_tt(reference)} stays within 2 points of its best up "
                         f"to the largest rate tried ({ok.index.max():g})")
            continue
        lr = above.index.min()
        text = (rf"on {_tt(s)} {_tt(reference)} reaches {100 * ref.max():.1f}\% validation "
                rf"accuracy at best and {100 * above[lr]:.1f}\% at learning rate {lr:g}")
        if warmup in val.index.get_level_values(0) and lr in val[warmup].index:
            text += rf", where {_tt(warmup)} reaches {100 * val[warmup][lr]:.1f}\%"
        parts.append(text)
    return _capital("; ".join(parts) + ".") if parts else ""


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _sci(x: float) -> str:
    """x as $m\times10^{e}$ (one significant digit) for the running text."""
    if not np.isfinite(x) or x == 0:
        return f"${x:g}$"
    e = int(np.floor(np.log10(abs(x))))
    return f"${x / 10 ** e:.0f}\\times10^{{{e}}}$"


def radam_rectifier(t: int, beta2: float = 0.999) -> float:
    """RAdam's variance rectification r_t (Liu et al. 2020; torch.optim.RAdam docs):
    rho_inf = 2 / (1 - b2) - 1, rho_t = rho_inf - 2 t b2^t / (1 - b2^t),
    r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t)) when
    rho_t > 5; before that RAdam takes un-adapted momentum steps (r_t reported as 0)."""
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * t * beta2 ** t / (1 - beta2 ** t)
    if rho_t <= 5:
        return 0.0
    return float(np.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                         / ((rho_inf - 4) * (rho_inf - 2) * rho_t)))


def radam_sentence(runs: pd.DataFrame) -> str:
    """How far RAdam's implicit warm-up got within each setting's budget."""
    g = runs[(runs.method == "radam") & (runs.setting != ABLATION)].groupby(
        "setting", sort=False).steps.max()
    if g.empty:
        return ""
    return ("RAdam's rectification $r_t$ (1 = fully adapted) reaches " + "; ".join(
        f"{radam_rectifier(int(t)):.2f} after the {int(t)} steps of {_tt(s)}"
        for s, t in g.items()) + ".")


def tex(agg_dir: str | Path, table_tex: str | Path, macros_tex: str | Path,
        contour_arm: str, equal_budget_arm: str, block: dict | None = None) -> None:
    agg = Path(agg_dir)
    runs = pd.read_csv(agg / "runs.csv")
    paired = pd.read_csv(agg / "paired.csv")
    corr = pd.read_csv(agg / "correlation.csv")
    tuning = _read(agg / "tuning.csv")
    sweep = _read(agg / "sweep.csv")
    settings = [s for s in dict.fromkeys(runs.setting) if s != ABLATION]
    others = sorted(set(runs[runs.setting != ABLATION].arm) - {REFERENCE})
    variants = sorted(set(runs[runs.setting == ABLATION].arm) - {contour_arm})
    diverged = runs[runs.status == "diverged"].groupby(["setting", "arm"]).size()
    main_arms = arm_names(runs)
    v = {"ExpSeeds": str(runs.seed.nunique()),
         "ExpSettings": ", ".join(_tt(s) for s in settings),
         "ExpArms": ", ".join(_tt(a) for a in main_arms),
         "ExpContourArm": _tt(contour_arm),
         "ExpPrimary": paper.primary_sentences(pd.read_csv(agg / "primary.csv"), METRIC_WORDS),
         "ExpExploratoryEarly": paper.exploratory(
             paired[paired.setting.isin(settings)], "arm", others, "early_test_acc",
             "Early-stopped test accuracy", REFERENCE, "setting"),
         "ExpExploratoryFinal": paper.exploratory(
             paired[paired.setting.isin(settings)], "arm", others, "final_test_acc",
             "Final test accuracy", REFERENCE, "setting"),
         "ExpExploratoryAblation": paper.exploratory(
             paired[paired.setting == ABLATION], "arm", variants, "final_test_acc",
             "Final test accuracy", contour_arm, "setting"),
         "ExpExploratoryAblationEarly": paper.exploratory(
             paired[paired.setting == ABLATION], "arm", variants, "early_test_acc",
             "Early-stopped test accuracy", contour_arm, "setting"),
         "ExpContourFinal": "; ".join(f"{_tt(s)} {_pair(paired, s, contour_arm, 'final_test_acc')}"
                                      for s in settings),
         "ExpContourEqFinal": "; ".join(
             f"{_tt(s)} {_pair(paired, s, equal_budget_arm, 'final_test_acc')}"
             for s in settings if (runs[runs.setting == s].arm == equal_budget_arm).any())
         or "not run",
         "ExpWalkSentence": walk_sentence(runs, contour_arm),
         "ExpMovedSentence": moved_sentence(runs),
         "ExpBatchGapSentence": batch_gap_sentence(_read(agg / "batch_gap.csv"))
         if (agg / "batch_gap.csv").exists() else "",
         "ExpCorrelationSentence": correlation_sentence(corr),
         "ExpBudgetSentence": budget_sentence(runs),
         "ExpDescentSentence": descent_sentence(runs, equal_budget_arm),
         "ExpDiverged": (", ".join(f"{_tt(a)} on {_tt(s)} ({n})" for (s, a), n in
                                   diverged.items()) or "none"),
         "ExpSanitySentence": sanity_sentence(runs),
         "ExpRadamSentence": radam_sentence(runs),
         "ExpTuningSentence": tuning_sentence(tuning) if len(tuning) else "",
         "ExpRegimeSentence": regime_sentence(sweep) if len(sweep) else ""}
    if block is not None:
        c = block["arms"][contour_arm]["contour"]
        v.update({"ExpEpochs": str(block["epochs"]), "ExpBatch": str(block["batch_size"]),
                  "ExpWalkSteps": str(c.get("steps", 100)),
                  "ExpWalkProbe": str(c.get("probe", 100)),
                  "ExpWalkStepSize": f"{c.get('step_size', 0.01):g}",
                  "ExpWalkKeep": str(c.get("keep_every", 10)),
                  "ExpWalkDirection": _tt(c.get("direction", "flat")),
                  "ExpWalkSelect": _tt(c.get("select", "perturbation")),
                  "ExpLr": f"{block['lr']:g}"})
    Path(macros_tex).write_text(paper.macros(v))
    Path(table_tex).write_text("".join(setting_table(runs[runs.setting == s], s)
                                       for s in [*settings, ABLATION]
                                       if (runs.setting == s).any()))


def arm_names(runs: pd.DataFrame) -> list[str]:
    """The arms that ran on the main settings, in order; a pool (the better of SGD and
    warm-up, of SAM and SWA: rows carrying ``pool_member``) is a choice among them, not an arm."""
    pools = set(runs.arm[runs.pool_member.notna()]) if "pool_member" in runs else set()
    return [a for a in dict.fromkeys(runs[runs.setting != ABLATION].arm)
            if a not in pools | {"sgd_or_warmup"}]


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.stat().st_size > 1 else pd.DataFrame()


def setting_table(runs: pd.DataFrame, setting: str) -> str:
    lines = ["% Generated by rose; do not edit by hand.", "\\begin{table}[t]", "\\centering",
             "\\scriptsize",
             f"\\caption{{Setting \\texttt{{{paper.latex_escape(setting)}}}: mean over "
             f"{runs.seed.nunique()} seeds "
             f"[{paper.latex_escape(interval_words(runs.seed.nunique()))}]; accuracies and gap "
             "in percent "
             "(gap: clean-label train minus test accuracy). Early-stopped: test accuracy at "
             "the evaluation with the best (noisy) validation accuracy. Sharpness on a fixed "
             "probe batch with the labels trained on, means (their CIs are in "
             "results/explore/summary.csv); $\\sigma'$: larger is flatter. "
             "Ep.: budget in epochs of minibatch gradient evaluations.}",
             f"\\label{{tab:explore-{setting.replace('_', '-')}}}",
             "\\begin{tabular}{l" + " c" * len(METRICS) + " r}", "\\toprule",
             "Arm & " + " & ".join(METRICS.values()) + " & ep. \\\\", "\\midrule"]
    pct = {"early_test_acc", "final_test_acc", "gen_gap"}
    for arm, g in runs.groupby("arm", sort=False):
        cells = [_cell(g[m]) if m in pct else _num_cell(g[m]) for m in METRICS]
        lines.append(" & ".join([paper.latex_escape(arm), *cells,
                                 f"{g.epochs_equiv.mean():.1f}"]) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def _num_cell(values: pd.Series) -> str:
    x = values.dropna().to_numpy(float)
    return f"{np.mean(x):.3g}" if x.size else "--"
