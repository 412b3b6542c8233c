"""The paper's cross-direction pieces, generated from the results (``rule tex_summary``):

  primary_<direction>.tex   the direction's primary contrasts as one compact main-text table
  answers.tex               one macro per direction, ``<Prefix>Answer``: the answer to its
                            question in a sentence or two, from the primary contrasts only
  appendix_seeds.tex        the per-seed values behind every primary contrast
  appendix_tuning.tex       every tuned arm's grid and the selected point

Every row and macro carries a LaTeX comment naming the results file (and contrast) it comes
from. This module sits above the directions (like rose.pipeline): it reads their results and
their metric words, and no direction imports it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from rose import paper
from rose.contrasts import group_columns

# direction -> (macro prefix, what the answer is about)
DIRECTIONS = {
    "explore": ("Exp", "the contour warm-up"),
    "continual": ("Cont", "several steps inside the ball"),
    "active": ("Act", "the proposed acquisitions"),
    "superposition": ("Sup", "the switching penalties"),
}
LOWER_IS_BETTER = {"forgetting", "poly_at_matched_loss", "gen_gap"}


def metric_words() -> dict[str, dict[str, str]]:
    """Each direction's words for its metrics (from its report module)."""
    from rose.active.report import METRIC_WORDS as act
    from rose.continual.report import METRIC_WORDS as cont
    from rose.explore.report import METRIC_WORDS as expl
    from rose.superposition import frontier, summary

    return {"explore": expl, "continual": cont, "active": act,
            "superposition": {**summary.SHORTCUT_METRICS, **frontier.TOY_PRIMARY_METRICS}}


def _improves(r: dict) -> bool:
    """A detected contrast's direction is an improvement (lower is better for some metrics)."""
    return (r["verdict"] == "below") == (r["metric"] in LOWER_IS_BETTER)


def answer(direction: str, family: pd.DataFrame, words: dict[str, str], source: str) -> str:
    """The direction's answer from its primary contrasts alone: how many of the declared
    contrasts detected a difference in the hoped-for direction, against it, or none (with the
    range of smallest detectable effects), naming the detected ones."""
    what = DIRECTIONS[direction][1]
    n = len(family)
    labels = group_columns(family)
    good, bad = [], []
    for r in family.to_dict("records"):
        if r["verdict"] not in ("above", "below"):
            continue
        where = ", ".join(str(r[c]) for c in labels)
        item = (f"{paper.tt(r['arm'])} against {paper.tt(r['reference'])} on "
                f"{paper.latex_escape(words.get(r['metric'], r['metric']))}"
                + (f" ({paper.latex_escape(where)})" if where else "") + ", "
                + paper.paired_points(r["mean_difference"], r["ci_low"], r["ci_high"])
                + f", Holm $p$ {paper.holm_cell(r['p_holm'])}")
        (good if _improves(r) else bad).append(item)
    none = family[~family.verdict.isin(["above", "below"])]
    det = none.detectable.dropna() * 100
    parts = [f"Of {n} pre-declared contrasts for {what}, {len(good)} "
             f"{'detects' if len(good) == 1 else 'detect'} an improvement"]
    if good:
        parts[-1] += ": " + "; ".join(good)
    if bad:
        parts.append(f"{len(bad)} {'detects' if len(bad) == 1 else 'detect'} a difference "
                     "against it: " + "; ".join(bad))
    if len(none):
        rng = (f"{det.min():.1f}" if len(det) and det.min() == det.max() else
               f"{det.min():.1f} to {det.max():.1f}") if len(det) else "not estimable"
        # the intervals, not the SDE, bound the effect: the largest improvement any of them
        # leaves open (upper end for higher-is-better metrics, lower end for lower-is-better)
        best = [(-r["ci_low"] if r["metric"] in LOWER_IS_BETTER else r["ci_high"]) * 100
                for r in none.to_dict("records")]
        best = [b for b in best if math.isfinite(b)]
        bound = (f"; their 95\\% intervals leave open improvements of at most "
                 f"{max(best):.1f} points" if best and max(best) > 0 else
                 "; their 95\\% intervals exclude any improvement" if best else "")
        parts.append(f"{len(none)} {'detects' if len(none) == 1 else 'detect'} no difference "
                     f"at the Holm level (the design could detect effects of {rng} points"
                     f"{bound})")
    return "% source: " + source + "\n" + "; ".join(parts) + "."


def short(direction: str, family: pd.DataFrame, source: str) -> str:
    """One clause for the conclusion: how many of the direction's contrasts detected an
    improvement, a difference against the method, or nothing."""
    what = DIRECTIONS[direction][1]
    detected = [r for r in family.to_dict("records") if r["verdict"] in ("above", "below")]
    better = sum(_improves(r) for r in detected)
    worse = len(detected) - better
    n = len(family)
    text = (f"{what} detected an improvement in {better} of {n} pre-declared contrasts"
            if better else f"{what} detected no improvement in any of {n} pre-declared "
            "contrasts")
    if worse:
        text += f" and a difference against it in {worse}"
    return "% source: " + source + "\n" + text


def seeds_table(direction: str, family: pd.DataFrame, source: str) -> str:
    """The per-seed values (percent) behind each primary contrast: arm, reference and their
    difference per matched seed."""
    lines = [f"\\paragraph{{{paper.latex_escape(direction)}}} "
             f"(\\texttt{{{paper.latex_escape(source)}}})", "",
             "{\\scriptsize\\begin{longtable}{p{0.42\\linewidth}lrrr}", "\\toprule",
             "Contrast & Seed & Arm & Reference & Difference \\\\", "\\midrule", "\\endhead"]
    for r in family.to_dict("records"):
        seeds = str(r.get("matched_seeds", "")).split(";")
        a = [float(v) for v in str(r.get("arm_values", "")).split(";") if v]
        b = [float(v) for v in str(r.get("reference_values", "")).split(";") if v]
        for i, (s, x, y) in enumerate(zip(seeds, a, b, strict=False)):
            name = paper.latex_escape(r["contrast"]) if i == 0 else ""
            cells = [f"{100 * v:.1f}" if math.isfinite(v) else "diverged" for v in (x, y)]
            diff = f"{100 * (x - y):+.1f}" if math.isfinite(x - y) else "--"
            lines.append(f"{name} & {s} & {cells[0]} & {cells[1]} & {diff} \\\\"
                         f" % {source}: {r['contrast']}, seed {s}")
        lines.append("\\midrule")
    lines[-1] = "\\bottomrule"
    lines += ["\\end{longtable}}", ""]
    return "\n".join(lines)


GROUPS = ("setting", "stream", "benchmark", "selection", "rule")


def tuning_table(direction: str, tuning: pd.DataFrame, source: str) -> str:
    """Every tuned arm's grid (the values of each hyperparameter) and the selected point with
    its mean validation score."""
    hps = [c for c in tuning.columns if c.startswith("hp.")]
    keys = [c for c in GROUPS if c in tuning] + ["arm"]
    lines = [f"\\paragraph{{{paper.latex_escape(direction)}}} "
             f"(\\texttt{{{paper.latex_escape(source)}}})", "",
             "{\\scriptsize\\begin{longtable}{" + "l" * len(keys) + "p{0.3\\linewidth}p{0.22"
             "\\linewidth}r}", "\\toprule",
             " & ".join([*(paper.latex_escape(k) for k in keys), "grid", "selected",
                         "val."]) + " \\\\", "\\midrule", "\\endhead"]
    for key, g in tuning.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        grid = "; ".join(f"{h[3:]}: " + ", ".join(f"{v:g}" for v in sorted(g[h].dropna().unique()))
                         for h in hps if g[h].notna().any())
        sel = g[g.selected.astype(bool)]
        point = json.loads(sel.point.iloc[0]) if len(sel) else {}
        chosen = ", ".join(f"{k}={v:g}" if isinstance(v, float | int) else f"{k}={v}"
                           for k, v in point.items())
        val = f"{sel.val_mean.iloc[0]:.3f}" if len(sel) else "--"
        lines.append(" & ".join([*(paper.latex_escape(str(k)) for k in key),
                                 paper.latex_escape(grid), paper.latex_escape(chosen), val])
                     + " \\\\")
    lines += ["\\bottomrule", "\\end{longtable}}", ""]
    note = extension_note(tuning, keys)
    return "\n".join(lines + ([note, ""] if note else []))


def extension_note(tuning: pd.DataFrame, keys: list[str]) -> str:
    """The count of grid extensions (values added beyond a declared grid's edge) and the
    selections left at a bound, naming the latter (rose.tuning.tune_extending); "" for a
    tuning table without the ``extended`` / ``at_bound`` columns."""
    if "extended" not in tuning or "at_bound" not in tuning:
        return ""
    hps = [c for c in tuning.columns if c.startswith("hp.")]
    added, left = 0, []
    for key, g in tuning.groupby(keys, sort=False):
        ext = g.extended.astype(bool)
        added += sum(len(set(g.loc[ext, h].dropna()) - set(g.loc[~ext, h].dropna()))
                     for h in hps)
        cell = g.loc[g.selected.astype(bool), "at_bound"].fillna("").astype(str)
        for b in (x for c in cell for x in c.split(";") if x):
            name = ", ".join(map(str, key if isinstance(key, tuple) else (key,)))
            axis, side, why = b.rsplit(":", 2)
            left.append(f"{name}: {axis} {side}"
                        + (" (hard bound)" if why == "bound" else " (extensions used up)"))
    text = (f"Grid extensions: {added} value{'s' * (added != 1)} added beyond a declared "
            f"grid's edge; {len(left)} selection{'s' * (len(left) != 1)} left at a bound")
    return paper.latex_escape(text + (": " + "; ".join(left) if left else "") + ".")


TUNING_FILES = {"explore": "tuning.csv", "continual": "tuning.csv",
                "active": "curriculum_tuning.csv", "superposition": "shortcut_tuning.csv"}


def write(results: str | Path, out: str | Path) -> None:
    """Every generated file above, from ``results`` (results/<config>/, one folder per
    direction) into ``out`` (paper/generated/<config>)."""
    results, out = Path(results), Path(out)
    words = metric_words()
    macros, seeds, tune = {}, ["% Generated by rose; do not edit by hand."], \
        ["% Generated by rose; do not edit by hand."]
    for d, (prefix, _what) in DIRECTIONS.items():
        src = (results / d / "primary.csv").as_posix()
        family = pd.read_csv(results / d / "primary.csv")
        (out / f"primary_{d}.tex").write_text(paper.primary_table(
            family, words[d], f"Primary contrasts ({d}): pre-declared in the configuration; "
            "paired differences over seeds with unadjusted Student-t 95\\% intervals; the "
            "verdict comes from the Holm-adjusted $p$ within the direction, so an interval that "
            "excludes zero can still read not detected; SDE: the smallest effect the design "
            "detects with 80\\% power at the Holm level (from the observed spread).",
            f"tab:primary-{d}", src))
        macros[f"{prefix}Answer"] = answer(d, family, words[d], src)
        macros[f"{prefix}Short"] = short(d, family, src)
        seeds.append(seeds_table(d, family, src))
        tpath = results / d / TUNING_FILES[d]
        if tpath.exists():
            tune.append(tuning_table(d, pd.read_csv(tpath), tpath.as_posix()))
    (out / "answers.tex").write_text(paper.macros(macros))
    (out / "appendix_seeds.tex").write_text("\n".join(seeds) + "\n")
    (out / "appendix_tuning.tex").write_text("\n".join(tune) + "\n")
