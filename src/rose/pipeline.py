"""Post-processing entry points the cheap rules call (through ``workflow/scripts``): results
tables, figures and generated LaTeX. Each takes file paths and plain values, reads its inputs,
calls the library and writes its outputs; no experiment logic, no Snakemake import.

The expensive steps have their file-level entry points next to their code
(:func:`rose.data.splits.prepare_to_files`, :func:`rose.train.train_from_file`), so each rule's
inputs list exactly the modules it runs and an edit here never retrains anything.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

# Library imports live inside the functions: every job is a fresh process that should load only
# what it uses (scipy, seaborn and matplotlib cost ~2 s).


def aggregate_baseline(run_dirs: Sequence[str | Path], runs_csv: str | Path,
                       histories_csv: str | Path, summary_csv: str | Path,
                       metrics_json: str | Path, curves_dir: str | Path) -> None:
    from rose import baseline
    from rose.results import read_results

    runs, hist = read_results(run_dirs, baseline.RUN_KEYS)
    summary = baseline.summarise_runs(runs)
    runs.to_csv(runs_csv, index=False)
    hist.to_csv(histories_csv, index=False)
    summary.to_csv(summary_csv, index=False)
    Path(metrics_json).write_text(json.dumps(baseline.dvc_metrics(summary), indent=2) + "\n")
    ok = hist.merge(runs.loc[runs["status"] == "ok", list(baseline.RUN_KEYS)])
    curves = (ok.groupby(["dataset", "method", "epoch"], as_index=False)
              [["test_acc", "val_acc", "train_loss"]].mean())
    curves_dir = Path(curves_dir)
    curves_dir.mkdir(parents=True, exist_ok=True)
    for ds, method in runs[["dataset", "method"]].drop_duplicates().itertuples(index=False):
        # one DVC plot series each; header only when every seed of the series diverged
        series = curves[(curves["dataset"] == ds) & (curves["method"] == method)]
        series.to_csv(curves_dir / f"{ds}_{method}.csv", index=False)


def figure_baseline(runs_csv: str | Path, histories_csv: str | Path, out_pdf: str | Path,
                    rule: str, config_hash: str) -> None:
    import pandas as pd

    from rose.plots import save_figure
    from rose.plots.baseline import learning_curves
    from rose.provenance import git_commit

    fig = learning_curves(pd.read_csv(histories_csv), pd.read_csv(runs_csv))
    save_figure(fig, out_pdf, "Baseline learning curves",
                {"rule": rule, "git_commit": git_commit(), "config_hash": config_hash})


def tex_baseline(summary_csv: str | Path, table_tex: str | Path, macros_tex: str | Path,
                 headline: tuple[str, str]) -> None:
    """Table and macros of the baseline. ``headline`` = (dataset, method) whose numbers the
    paper's prose quotes through config-independent ``\\BaselineHead...`` macros."""
    import pandas as pd

    from rose import baseline, paper
    from rose.stats import interval_words

    summary = pd.read_csv(summary_csv)
    seeds = int((summary.n + summary.n_diverged).max())
    Path(table_tex).write_text(paper.summary_table(
        summary, baseline.REPORTED,
        caption="Baseline: MLP trained with SGD. Mean over seeds with its "
                f"{paper.latex_escape(interval_words(seeds))}, in percent.",
        label="tab:baseline"))
    values = {}
    for r in summary.itertuples(index=False):
        stem = ("baseline", r.dataset, r.method, r.metric.replace("final.", "")
                .replace("early_stopped.", "es_"))
        values[paper.macro_name(*stem, "mean")] = paper.fmt_percent(r.mean)
        values[paper.macro_name(*stem, "low")] = paper.fmt_percent(r.ci_low)
        values[paper.macro_name(*stem, "high")] = paper.fmt_percent(r.ci_high)
        values[paper.macro_name(*stem, "seeds")] = str(int(r.n))
        if (r.dataset, r.method) == tuple(headline):
            head = ("baseline", "head", stem[-1])
            values[paper.macro_name(*head, "mean")] = paper.fmt_percent(r.mean)
            values[paper.macro_name(*head, "low")] = paper.fmt_percent(r.ci_low)
            values[paper.macro_name(*head, "high")] = paper.fmt_percent(r.ci_high)
            values[paper.macro_name(*head, "seeds")] = str(int(r.n))
            values[paper.macro_name(*head, "diverged")] = str(int(r.n_diverged))
    values["BaselineHeadDataset"] = paper.latex_escape(headline[0])
    values["BaselineHeadMethod"] = paper.latex_escape(headline[1])
    Path(macros_tex).write_text(paper.macros(values))


SOFTWARE = ("python", "torch", "numpy", "scipy", "pandas", "matplotlib", "seaborn", "snakemake",
            "dvc")


def tex_provenance(config_name: str, config_hash: str, out: str | Path,
                   lock: str | Path | None = None, timings: str | Path | None = None) -> None:
    """The build's provenance macros: commit, config name and hash, the first 12 hex digits
    of the environment lock's sha256 (requirements.lock), the locked versions of the main
    packages, this machine's processor and core count, and the measured cost of the recorded
    quick run (benchmarks/quick_timings.csv: core-seconds summed over its jobs)."""
    import hashlib
    import os
    import platform
    import sys

    import pandas as pd

    from rose import paper
    from rose.provenance import git_commit
    from rose.stats import ALPHA, CONFIDENCE, POWER

    lock_hash = hashlib.sha256(Path(lock).read_bytes()).hexdigest()[:12] if lock else "none"
    pins = {}
    if lock:
        for line in Path(lock).read_text().splitlines():
            name, _, version = line.partition("==")
            if version:
                pins[name.strip().lower()] = version.strip()
    pins["python"] = platform.python_version() if "python" not in pins else pins["python"]
    software = ", ".join(f"{p} {pins[p]}" for p in SOFTWARE if p in pins)
    cpu = platform.processor() or platform.machine()
    ram = ""
    try:
        kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
        ram = f", {kb / 2 ** 20:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    values = {
        "RoseGitCommit": paper.latex_escape(git_commit()),
        "RoseConfigHash": config_hash,
        "RoseConfigName": paper.latex_escape(config_name),
        "RoseLockHash": lock_hash,
        "RoseSoftware": paper.latex_escape(software),
        "RoseHardware": paper.latex_escape(f"{cpu}, {os.cpu_count()} cores{ram}, "
                                           f"{platform.system()} {platform.machine()}"),
        "RosePython": paper.latex_escape(sys.version.split()[0]),
        "RoseConfidencePercent": f"{100 * CONFIDENCE:g}",
        "RosePowerPercent": f"{100 * POWER:g}",
        "RoseAlpha": f"{ALPHA:g}",
    }
    if timings and Path(timings).exists():
        t = pd.read_csv(timings)
        values["RoseRecordedConfig"] = paper.latex_escape(str(t.config.iloc[0]))
        values["RoseRecordedJobs"] = str(int(t.jobs.sum()))
        values["RoseRecordedCoreSeconds"] = f"{t.core_seconds.sum():.0f}"
        values["RoseRecordedTwoCoreMinutes"] = f"{t.core_seconds.sum() / 2 / 60:.1f}"
    Path(out).write_text(paper.macros(values))


def retry_runtime(minutes: int):
    """A rule's runtime in minutes that grows with each retry (the slurm profile sets
    `retries`): Snakemake calls it with the job's attempt, 1 on the first submission."""
    return lambda wildcards, attempt: minutes * attempt
