"""The tiny DAG end to end: outputs, provenance, generated numbers, report, lint, bad configs."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
import yaml
from pypdf import PdfReader

from ..conftest import kill_after_checkpoint
from .conftest import copy_repo, sh

pytestmark = pytest.mark.workflow


def test_tiny_dag_builds_every_output(built, tool_env):
    cfg = yaml.safe_load((built / "config/tiny.yaml").read_text())
    for ds in cfg["data"]["datasets"]:
        manifest = json.loads((built / f"data/processed/tiny/{ds}.manifest.json").read_text())
        assert manifest["name"] == ds
    runs = pd.read_csv(built / "results/tiny/baseline/runs.csv")
    n = len(cfg["baseline"]["datasets"]) * len(cfg["baseline"]["methods"]) * len(cfg["seeds"])
    assert len(runs) == n and set(runs["status"]) == {"ok"}
    assert (built / "figures/tiny/baseline/learning_curves.pdf").stat().st_size > 1000
    sup = cfg["superposition"]
    shortcut = pd.read_csv(built / "results/tiny/superposition/shortcut_runs.csv")
    grids = sup["shortcut"]["grids"]                   # a variant without a grid: lambda = 0
    per_variant = {v: len(grids[v]["lam"]) if v in grids else 1
                   for v in sup["shortcut"]["variants"]}
    assert len(shortcut) == len(cfg["seeds"]) * len(sup["shortcut"]["benchmarks"]) * sum(
        per_variant.values())
    for direction in ("superposition", "active", "continual", "explore"):
        family = pd.read_csv(built / f"results/tiny/{direction}/primary.csv")
        assert len(family) == len(cfg[direction]["primary"])
        assert (family.p_holm >= family.p_value - 1e-12).all()
    assert not list((built / "results/tiny").rglob("resume.ckpt"))   # finished jobs leave none
    for name in ("geometry", "gram", "dimensionality", "phase", "frontier", "histograms",
                 "shortcut"):
        meta = PdfReader(built / f"figures/tiny/superposition/{name}.pdf").metadata
        assert "rule=figures_superposition" in meta["/Keywords"]
    act = cfg["active"]
    al = pd.read_csv(built / "results/tiny/active/al_runs.csv")
    from rose.active.experiments import acquisitions

    assert len(acquisitions(act)) == len(act["acquisitions"]) + 1      # one ALVIN sweep point
    assert len(al) == (len(act["benchmarks"]) * len(acquisitions(act)) * len(cfg["seeds"])
                       * (act["loop"]["rounds"] + 1))
    assert al.n_labels.max() == act["loop"]["initial"] + act["loop"]["rounds"] * \
        act["loop"]["round_size"]
    cur = pd.read_csv(built / "results/tiny/active/curriculum_runs.csv")
    assert set(cur.method) == set(act["curriculum"]["methods"])
    for name in ("budget", "composition", "minority", "curriculum"):
        meta = PdfReader(built / f"figures/tiny/active/{name}.pdf").metadata
        assert "rule=figures_active" in meta["/Keywords"]
    con = cfg["continual"]
    cruns = pd.read_csv(built / "results/tiny/continual/runs.csv")
    from rose.continual.experiments import arms_from_config

    # every arm plus ball_best (the ball arm selected on the validation stream), per seed
    assert len(cruns) == (len(con["streams"]) * len(cfg["seeds"])
                          * (len(arms_from_config(con)) + 1))
    ctuning = pd.read_csv(built / "results/tiny/continual/tuning.csv")
    assert ctuning.groupby(["stream", "arm"]).selected.sum().eq(1).all()
    trace = pd.read_csv(built / "results/tiny/continual/split/trace.csv")
    assert (trace.distance <= trace.radius * (1 + 1e-4) + 1e-9).all()   # the ball held
    for name in ("matrices", "anytime", "frontier", "radius"):
        meta = PdfReader(built / f"figures/tiny/continual/{name}.pdf").metadata
        assert "rule=figures_continual" in meta["/Keywords"]
    exp = cfg["explore"]
    eruns = pd.read_csv(built / "results/tiny/explore/runs.csv")
    n_main = sum(len(spec.get("arms", exp["arms"])) for spec in exp["settings"].values())
    n_ablation = 1 + len(exp["ablation"]["variants"])
    assert len(eruns) == len(cfg["seeds"]) * (n_main + n_ablation)
    assert set(eruns.status) == {"ok"}
    walked = eruns[(eruns.method == "contour") & (eruns.arm != "isotropic")]
    assert (walked.walk_level_error < 1e-3).all()        # the walk stayed on its level set
    for name in ("accuracy", "sharpness", "curves", "spectrum", "surfaces", "trajectories",
                 "ablation"):
        meta = PdfReader(built / f"figures/tiny/explore/{name}.pdf").metadata
        assert "rule=figures_explore" in meta["/Keywords"]
    assert len(PdfReader(built / "paper/tiny/main.pdf").pages) >= 3
    again = sh(["snakemake", "-n", "--configfile", "config/tiny.yaml"], built, tool_env)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_main_text_fits_twelve_pages_and_its_figures_half_a_page(built):
    """The paper as a reader meets it: the references start by page 13; every figure prints
    within the text width (save_figure checked its fonts when it was made); the main text's
    figures are at most half the text height."""
    from rose.plots.style import TEXT_HEIGHT, TEXT_WIDTH

    pages = [p.extract_text() for p in PdfReader(built / "paper/tiny/main.pdf").pages]
    refs = next(i for i, t in enumerate(pages) if re.search(r"^\s*References\s*$", t, re.M))
    assert refs <= 12, f"the main text runs to page {refs + 1}"
    assert len(pages) > refs + 1                          # an appendix follows
    for f in sorted((built / "figures/tiny").rglob("*.pdf")):
        box = PdfReader(f).pages[0].mediabox
        assert float(box.width) / 72 <= TEXT_WIDTH + 0.01, f
    main = re.findall(r"\\includegraphics(?:\[[^]]*\])?\{([^}]*)\}",
                      " ".join(t.read_text() for t in (built / "paper/sections").glob("*.tex")))
    assert len(main) == 4                                  # one per direction
    for name in main:
        box = PdfReader(built / "figures/tiny" / name).pages[0].mediabox
        assert float(box.height) / 72 <= TEXT_HEIGHT / 2 + 0.01, name


def test_figure_metadata_records_rule_commit_and_config_hash(built, tool_env):
    meta = PdfReader(built / "figures/tiny/baseline/learning_curves.pdf").metadata
    fields = dict(kv.split("=", 1) for kv in meta["/Keywords"].split("; "))
    head = sh(["git", "rev-parse", "--short=12", "HEAD"], built, tool_env).stdout.strip()
    assert fields["rule"] == "figure_baseline_learning_curves"
    assert fields["git_commit"] == head
    provenance = (built / "paper/generated/tiny/provenance.tex").read_text()
    assert f"\\newcommand{{\\RoseConfigHash}}{{{fields['config_hash']}}}" in provenance


def test_paper_quotes_the_generated_numbers(built):
    summary = pd.read_csv(built / "results/tiny/baseline/summary.csv")
    macros = (built / "paper/generated/tiny/baseline_macros.tex").read_text()
    head = summary[(summary["dataset"] == "mnist5k") & (summary["method"] == "sgd")
                   & (summary["metric"] == "final.test_acc")].iloc[0]
    value = f"{100 * head['mean']:.1f}"
    assert f"\\newcommand{{\\BaselineHeadTestAccMean}}{{{value}}}" in macros
    text = " ".join(p.extract_text() for p in PdfReader(built / "paper/tiny/main.pdf").pages)
    assert re.search(rf"accuracy is\s+{re.escape(value)}%", text)
    # direction 3b: the unpenalised Colored MNIST accuracy, from the runs to the PDF
    runs = pd.read_csv(built / "results/tiny/superposition/shortcut_runs.csv")
    erm = runs[(runs["benchmark"] == "irm") & (runs["variant"] == "erm")]["test_acc"].mean()
    assert re.search(rf"{100 * erm:.1f}\s*\[[0-9.]+, [0-9.]+\]%\s*test-\s*environment", text)
    # direction 3a: ERM's worst-group accuracy on the whole pool, from the runs to the PDF
    cur = pd.read_csv(built / "results/tiny/active/curriculum_runs.csv")
    wg = cur[(cur["benchmark"] == "cmnist") & (cur["method"] == "erm")]
    assert re.search(rf"{100 * wg.test_worst_group_acc.mean():.1f}\s*\[[0-9.]+, [0-9.]+\]%\s*"
                     r"worst-\s*group", text)
    # direction 2: fine-tuning's final accuracy on the split stream, from the runs to the PDF
    cr = pd.read_csv(built / "results/tiny/continual/runs.csv")
    ft = cr[(cr["stream"] == "split") & (cr["arm"] == "finetune")].final_acc.mean()
    assert re.search(rf"fine-\s*tuning ends at\s+{100 * ft:.1f}", text)
    # direction 1: the primary contrast (tuned contour minus tuned SGD), from the runs to the PDF
    er = pd.read_csv(built / "results/tiny/explore/runs.csv")
    main = er[er.setting != "ablation"].set_index("seed")
    diff = (main[main.arm == "contour"].early_test_acc
            - main[main.arm == "sgd"].early_test_acc).mean()
    prim = pd.read_csv(built / "results/tiny/explore/primary.csv").iloc[0]
    assert abs(prim.mean_difference - diff) < 1e-9
    # the main text's primary table row (arm - reference, metric, difference)
    assert re.search(r"contour\s*[\u2212-]\s*sgd\s+early-\s*stopped\s+test\s+accuracy\s+"
                     + re.escape(f"{100 * diff:+.1f}"), text)


def test_report_contains_every_figure_with_its_caption(built, tool_env):
    sh(["snakemake", "--configfile", "config/tiny.yaml", "--report", "report.html"], built,
       tool_env)
    html = (built / "report.html").read_text()
    assert "learning_curves.pdf" in html
    assert "percentile-bootstrap confidence intervals" in html
    assert "superposition/phase.pdf" in html and "antipodal superposition" in html
    assert "active/budget.pdf" in html and "Label-budget curves" in html
    assert "continual/frontier.pdf" in html and "plasticity vs forgetting" in html
    assert "explore/surfaces.pdf" in html and "Filter-normalised 2-D loss surfaces" in html


def _set(path: str, value):
    """A config edit: set the value at a dotted path (list indices as numbers)."""
    def edit(cfg: dict) -> None:
        *head, last = path.split(".")
        node = cfg
        for k in head:
            node = node[int(k)] if k.isdigit() else node[k]
        node[int(last) if last.isdigit() else last] = value
    return edit


@pytest.mark.parametrize("edit,key", [
    (_set("baseline.methods.sgd.lr", -1.0), "config key baseline.methods.sgd.lr:"),
    (_set("device", "tpu"), "config key device:"),
    (_set("baseline.datasets", ["synthetic", "cifar10"]), "baseline.datasets"),
    # the experiment layer's bad inputs: a tuning grid with an unknown key, an empty grid, a
    # primary contrast naming an unknown arm or metric, a family of zero contrasts
    (_set("superposition.shortcut.grids.bimodal_split", {"lr": [0.1]}),
     "superposition.shortcut.grids.bimodal_split.lr"),
    (_set("superposition.shortcut.grids.bimodal_split", {}),
     "config key superposition.shortcut.grids.bimodal_split:"),
    (_set("superposition.penalty.lams", [0.1]), "config key superposition.penalty.lams:"),
    (_set("superposition.penalty.variants.bimodal_split.tau", -1.0),
     "config key superposition.penalty.variants.bimodal_split.tau:"),
    (_set("explore.primary.0.arm", "lookahead"), "explore.primary[0].arm"),
    (_set("continual.primary.0.metric", "peak_acc"), "continual.primary[0].metric"),
    (_set("active.primary", []), "config key active.primary:"),
], ids=["negative_lr", "device", "dataset", "grid_key", "empty_grid", "pareto_grid_of_one",
        "negative_temperature", "contrast_arm", "contrast_metric", "empty_family"])
def test_bad_config_fails_before_any_job(tmp_path, tool_env, built, edit, key):
    cfg = yaml.safe_load((built / "config/tiny.yaml").read_text())
    edit(cfg)
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
    outputs = sorted(p for p in (built / "results/tiny").rglob("*") if p.is_file())
    before = [p.stat().st_mtime_ns for p in outputs]
    r = sh(["snakemake", "--configfile", str(tmp_path / "bad.yaml"), "--forceall"], built,
           tool_env, check=False)
    assert r.returncode != 0
    assert key in r.stdout + r.stderr
    assert "Building DAG of jobs" not in r.stdout + r.stderr  # failed while parsing the config
    assert "Failed validating" not in r.stdout + r.stderr     # one line, not the sub-schema
    assert [p.stat().st_mtime_ns for p in outputs] == before  # --forceall lost nothing


def test_cluster_generic_executor_runs_the_dag(tmp_path, tool_env):
    """The cluster path without a cluster: every job goes through a submit command (a local
    stand-in for sbatch), as with --profile workflow/profiles/slurm on a real cluster."""
    repo = copy_repo(tmp_path / "repo", tool_env)
    target = "results/tiny/baseline/digits/sgd/seed0/metrics.json"
    sh(["snakemake", "--configfile", "config/tiny.yaml", "--executor", "cluster-generic",
        "--cluster-generic-submit-cmd", "bash tests/workflow/local_submit.sh",
        "--jobs", "2", "--latency-wait", "30", target], repo, tool_env)
    assert json.loads((repo / target).read_text())["status"] == "ok"
    submitted = (repo / ".snakemake/submitted_jobs.txt").read_text().split()
    assert len(submitted) == 2  # prepare_data(digits) and train_baseline, each submitted


def test_killed_snakemake_run_resumes_from_its_checkpoint(tmp_path, tool_env):
    """SIGKILL the whole Snakemake process group mid-training, unlock, rerun: the job resumes
    from resume.ckpt (which Snakemake does not delete) and ends with the numbers of an
    uninterrupted run of the same spec."""
    from rose import data
    from rose.train import train

    repo = copy_repo(tmp_path / "repo", tool_env)
    cfg = yaml.safe_load((repo / "config/tiny.yaml").read_text())
    cfg["baseline"].update(epochs=60, checkpoint_every=5)
    (repo / "config/long.yaml").write_text(yaml.safe_dump(cfg))
    run_dir = repo / "results/tiny/baseline/digits/sgd/seed0"
    cmd = ["snakemake", "--configfile", "config/long.yaml", "--cores", "1",
           str(run_dir.relative_to(repo) / "metrics.json")]
    kill_after_checkpoint(cmd, repo, tool_env, run_dir / "resume.ckpt", min_step=100)
    assert not (run_dir / "metrics.json").exists()
    sh(["snakemake", "--configfile", "config/long.yaml", "--unlock"], repo, tool_env)
    sh(cmd, repo, tool_env)
    resumed = json.loads((run_dir / "metrics.json").read_text())
    log = (repo / "logs/tiny/baseline/digits/sgd/seed0/train.log").read_text()
    timing = json.loads(log.split("timing: ")[-1].splitlines()[0])   # not in metrics.json
    assert timing["resumed_from_step"] >= 100
    fresh = train(resumed["spec"], data.load(repo / "data/processed/tiny/digits.npz"),
                  tmp_path / "fresh", threads=1, progress=False)
    drop = ("timing", "env")
    assert {k: v for k, v in resumed.items() if k not in drop} == \
        {k: v for k, v in fresh.items() if k not in drop}


def test_planned_jobs_in_a_fresh_copy_counts_every_job(tmp_path, tool_env):
    """Before anything ran, rose plan counts each rule's jobs: the same counts rose.cost's work
    models give for the tiny config (two independent countings of the DAG)."""
    from rose import cost
    from rose.artifacts import planned_jobs

    repo = copy_repo(tmp_path / "repo", tool_env)
    cfg = cost.load_config(repo / "config/tiny.yaml",
                           repo / "workflow/schemas/config.schema.yaml")
    planned = planned_jobs(repo, "config/tiny.yaml")
    assert planned == {r: cost.work(r, cfg)[0] for r in cost.WORK}
    assert planned["prepare_data"] == 3 and planned["train_baseline"] == 4


@pytest.mark.parametrize("module,expected", [
    ("plots/baseline.py", {"figure_baseline_learning_curves", "paper"}),
    ("stats.py", {"aggregate_baseline", "figure_baseline_learning_curves", "tex_baseline",
                  "aggregate_superposition", "figures_superposition", "tex_superposition",
                  "aggregate_active", "figures_active", "tex_active", "aggregate_continual",
                  "tex_continual", "aggregate_explore", "figures_explore", "tex_explore",
                  "tex_summary", "paper"}),   # continual figures read per-stream runs
    ("continual/ball.py", {"continual_stream", "aggregate_continual", "figures_continual",
                           "tex_continual", "tex_summary", "paper"}),
    ("plots/continual.py", {"figures_continual", "paper"}),
    ("explore/contour.py", {"explore_setting", "aggregate_explore", "figures_explore",
                            "tex_explore", "tex_summary", "paper"}),
    ("plots/explore.py", {"figures_explore", "paper"}),
    ("plots/active.py", {"figures_active", "paper"}),
    ("active/acquisitions.py", {"active_learning", "aggregate_active", "figures_active",
                                "tex_active", "tex_summary", "paper"}),
    ("active/rho_loss.py", {"active_curriculum", "aggregate_active", "figures_active",
                            "tex_active", "tex_summary", "paper"}),
    ("plots/superposition.py", {"figures_superposition", "paper"}),
    ("superposition/toy_model.py", {"superposition_toy_sweep", "superposition_phase",
                                    "superposition_toy_penalty", "superposition_shortcut",
                                    "aggregate_superposition", "figures_superposition",
                                    "tex_superposition", "tex_summary", "paper"}),
    ("train.py", {"train_baseline", "aggregate_baseline", "figure_baseline_learning_curves",
                  "tex_baseline", "paper"}),
    ("pipeline.py", {"aggregate_baseline", "figure_baseline_learning_curves", "tex_baseline",
                     "tex_provenance", "paper"}),
])
def test_editing_library_code_reruns_exactly_what_depends_on_it(built, tool_env, module,
                                                                 expected):
    """Editing a plot never retrains; editing the training loop does."""
    import os

    from rose.artifacts import planned_jobs

    path = built / "src/rose" / module
    original, st = path.read_bytes(), path.stat()
    path.write_bytes(original + b"\n# an edit\n")  # content matters: small inputs are checksummed
    try:
        planned = planned_jobs(built, "config/tiny.yaml")
    finally:
        path.write_bytes(original)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert set(planned) == expected
