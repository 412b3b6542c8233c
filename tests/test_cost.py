"""rose.cost and `rose plan --cost`: every rule has a benchmark file and a work model, the
measured config scales to exactly its measurement, counts scale the work they multiply, FLOPs
are counted as by hand, rules with parts (the baseline's MLP and CNN) are measured and scaled
per part, and a rule without a timing is named, not guessed."""

from __future__ import annotations

import copy
import re

import pytest

from rose import cost
from rose.cli import main as rose_main

from .conftest import ROOT

SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


def _rules_with_outputs() -> dict[str, str]:
    """rule name -> its block of text, for every rule in the workflow that makes files."""
    rules = {}
    for f in [*sorted((ROOT / "workflow/rules").glob("*.smk")), ROOT / "Snakefile"]:
        for block in re.split(r"(?m)^(?=(?:local)?rule )", f.read_text()):
            m = re.match(r"(?:local)?rule (\w+):", block)
            if m and "output:" in block:
                rules[m.group(1)] = block
    return rules


@pytest.fixture(scope="module")
def quick():
    return cost.load_config(ROOT / "config/quick.yaml", SCHEMA)


@pytest.fixture(scope="module")
def paper_like(quick):
    """quick.yaml at paper.yaml's data and baseline (the full Fashion-MNIST, official test set;
    an MLP and a CNN method), explore pointed at it as paper.yaml does; built here so it does
    not depend on paper.yaml's direction blocks."""
    cfg = copy.deepcopy(quick)
    cfg["name"] = "paper"
    cfg["data"] = {"datasets": ["fashion_mnist"], "allow_download": False,
                   "split": {"seed": 0, "val": 0.1, "test": "official"}}
    cfg["baseline"] = {
        "datasets": ["fashion_mnist"], "model": {"name": "mlp", "hidden": [256, 256]},
        "methods": {"mlp": {"name": "sgd", "lr": 0.05},
                    "cnn": {"name": "sgd", "lr": 0.05, "model": {"name": "cnn", "width": 16}}},
        "epochs": 15, "batch_size": 128, "checkpoint_every": 500}
    for setting in cfg["explore"]["settings"].values():     # explore reads the prepared data
        setting["dataset"] = "fashion_mnist"
    return cfg


# one example through rose.models, counted by hand: torch's flop counter counts 2 M N K per
# matmul (bias adds and elementwise work not counted) and 2 x the multiply-adds of a convolution
MLP_FORWARD = 2 * (784 * 256 + 256 * 256 + 256 * 10)                    # 537,600
# training step: the forward, every weight gradient (the forward's multiply-adds again) and
# the input gradient of every layer but the first (the image needs none)
MLP_STEP = 2 * MLP_FORWARD + 2 * (256 * 256 + 256 * 10)                   # 1,211,392
CONV1, CONV2 = 28 * 28 * 16 * 1 * 3 * 3, 14 * 14 * 32 * 16 * 3 * 3      # H_out W_out C_out C_in k k
HEAD = 7 * 7 * 32 * 10
CNN_FORWARD = 2 * (CONV1 + CONV2 + HEAD)                                 # 2,063,488
CNN_STEP = CNN_FORWARD + 2 * (CONV1 + CONV2 + HEAD) + 2 * (CONV2 + HEAD)  # 5,964,672


def test_every_rule_has_a_benchmark_file_in_logs_and_a_work_model():
    rules = _rules_with_outputs()
    assert set(rules) == set(cost.WORK)
    for name, block in rules.items():
        m = re.search(r'benchmark:\n\s+f"\{LOGS\}([^"]+)"', block)
        assert m and m.group(1).startswith(f"benchmarks/{name}/"), name
    assert str(cost.benchmarks_dir("paper")) == "logs/paper/benchmarks"


@pytest.mark.parametrize("cfg", ["quick", "paper_like"])
def test_the_measured_config_scales_to_its_measurement(cfg, request):
    cfg = request.getfixturevalue(cfg)
    timings = {cost.label(r, p): cost.Measured(r, jobs, 100.0, w, p)
               for r in cost.WORK for p, (jobs, w) in cost.work_parts(r, cfg).items()}
    est = cost.estimate(cfg, timings, list(cost.WORK))
    assert all(e.core_hours == pytest.approx(100 / 3600) for e in est)
    assert {e.key for e in est} == set(timings)


def test_counts_scale_the_work_they_multiply(quick):
    more = copy.deepcopy(quick)
    more["seeds"] = quick["seeds"] * 2
    more["superposition"]["toy"]["main"]["steps"] *= 3
    more["explore"]["epochs"] *= 2
    more["superposition"]["toy"]["intro"]["seeds"] = 4
    for rule, factor in [("train_baseline", 2), ("active_curriculum", 2), ("continual_stream", 2),
                         ("explore_setting", 4), ("superposition_shortcut", 2)]:
        assert cost.work(rule, more)[1] == pytest.approx(factor * cost.work(rule, quick)[1]), rule
    toy = {k: cost._toy(b) * len(b["sparsities"]) for k, b in quick["superposition"]["toy"].items()}
    want = sum(toy.values()) + 2 * toy["main"] + 3 * toy["intro"]   # main x3 steps, intro x4 seeds
    assert cost.work("superposition_toy_sweep", more)[1] == pytest.approx(want)
    assert cost.work("train_baseline", more)[0] == 2 * cost.work("train_baseline", quick)[0]


def test_measure_sums_each_rules_benchmark_files(tmp_path, quick):
    """One file per job of the config: summed; a rule with another number of files (another
    config's run, renamed jobs) is left out rather than mis-scaled."""
    jobs = cost.work("train_baseline", quick)[0]
    bench = tmp_path / cost.benchmarks_dir("quick")
    d = bench / "train_baseline"
    d.mkdir(parents=True)
    for i in range(jobs):
        seed, method = i % 5, ("sgd", "sgd_momentum")[i // 5]
        (d / f"mnist5k-{method}-{seed}.tsv").write_text(
            f"s\th:m:s\tmax_rss\n{1.5 + i}\t0:00:01\t10\n")
    short = bench / "prepare_data"
    short.mkdir()
    (short / "mnist5k.tsv").write_text("s\th:m:s\n2.0\t0:00:02\n")   # quick has 3 datasets
    (m,) = cost.measure(tmp_path, quick, config="config/quick.yaml")
    assert (m.rule, m.part, m.jobs, m.name) == ("train_baseline", "mlp", jobs, "quick")
    assert m.core_seconds == pytest.approx(sum(1.5 + i for i in range(jobs)))
    assert m.work == cost.work("train_baseline", quick)[1]


def test_measure_keeps_the_complete_parts_of_a_rule(tmp_path, paper_like):
    """The paper baseline's five CNN jobs are done, two of its MLP jobs: the CNN part is
    measured alone (a run still going), and a file of no job of the config is ignored."""
    d = tmp_path / cost.benchmarks_dir("paper") / "train_baseline"
    d.mkdir(parents=True)
    for seed in range(5):
        (d / f"fashion_mnist-cnn-{seed}.tsv").write_text(f"s\th:m:s\n{300 + seed}\t0:05:00\n")
    for seed in range(2):
        (d / f"fashion_mnist-mlp-{seed}.tsv").write_text("s\th:m:s\n40\t0:00:40\n")
    (d / "fashion_mnist-mlp-x.tsv").write_text("s\th:m:s\n40\t0:00:40\n")
    (m,) = cost.measure(tmp_path, paper_like)
    assert (m.key, m.jobs, m.core_seconds) == ("train_baseline[cnn]", 5, 1510.0)
    assert m.work == cost.work_parts("train_baseline", paper_like)["cnn"][1]


def test_wall_time_is_a_lower_bound_from_total_and_longest_mean_job():
    est = [cost.Estimate("a", "x", 2, 4.0), cost.Estimate("b", "x", 1, 3.0)]
    assert cost.wall_hours(est, 100) == 3.0          # the longest job
    assert cost.wall_hours(est, 2) == 3.5            # total / cores


def test_a_rule_without_a_timing_is_named(tmp_path, capsys):
    rows = (ROOT / cost.TIMINGS).read_text().splitlines()
    assert rows[0] == ",".join(cost.COLUMNS)
    kept = [r for r in rows if not r.startswith("superposition_phase,")]
    assert len(kept) == len(rows) - 1
    (tmp_path / "t.csv").write_text("\n".join(kept) + "\n")
    code = rose_main(["plan", "--root", str(ROOT), "--cost", str(ROOT / "config/full.yaml"),
                      "--timings", str(tmp_path / "t.csv")])
    assert code == 2 and "superposition_phase" in capsys.readouterr().err


def test_rose_plan_cost_prints_every_direction_for_full_yaml(capsys):
    """The committed timings cover every rule; full.yaml costs more than quick.yaml."""
    assert rose_main(["plan", "--root", str(ROOT), "--cost", str(ROOT / "config/full.yaml")]) == 0
    text = capsys.readouterr().out
    for d in ("baseline", "explore", "continual", "active", "superposition"):
        assert re.search(rf"direction {d}\s+\d+\.\d\d", text), d
    timings = cost.read_timings(ROOT / cost.TIMINGS)
    full = cost.load_config(ROOT / "config/full.yaml", SCHEMA)
    quick_h = sum(m.core_seconds for m in timings.values()) / 3600
    full_h = sum(e.core_hours for e in cost.estimate(full, timings, list(cost.WORK)))
    assert full_h > 10 * quick_h


def test_rose_plan_cost_of_paper_yaml_states_what_each_rule_is_scaled_from(capsys):
    """paper.yaml: core-hours per rule part and direction; its CNN scaled from quick's MLP
    jobs and said so; its direction blocks said to be quick's designs."""
    assert rose_main(["plan", "--root", str(ROOT), "--cost", str(ROOT / "config/paper.yaml"),
                      "--timings", str(ROOT / cost.TIMINGS)]) == 0
    text = capsys.readouterr().out
    assert re.search(r"train_baseline\[mlp\]\s+5\s+\d+\.\d{3}\s+\d+\.\d{3}  quick\n", text)
    assert re.search(r"train_baseline\[cnn\]\s+5\s+\d+\.\d{3}\s+\d+\.\d{3}  quick "
                     r"train_baseline\[mlp\]\n", text)
    for d in ("data", "baseline", "explore", "continual", "active", "superposition"):
        assert re.search(rf"direction {d}\s+\d+\.\d{{3}}", text), d
    assert f"note: {cost.PROVISIONAL['paper']}" in text
    assert "note: train_baseline[cnn]: no timing of its own" in text


def test_the_slurm_profile_gives_every_rule_twice_its_estimated_mean_job():
    """full.yaml's runtimes in workflow/profiles/slurm (attempt 1) against rose.cost's estimate:
    each at least twice the rule's mean job, so a rule's largest job fits."""
    import yaml

    profile = yaml.safe_load((ROOT / "workflow/profiles/slurm/config.yaml").read_text())
    rules = _rules_with_outputs()
    full = cost.load_config(ROOT / "config/full.yaml", SCHEMA)
    est = cost.estimate(full, cost.read_timings(ROOT / cost.TIMINGS), list(cost.WORK))
    short = []
    for e in est:
        runtime = profile.get("set-resources", {}).get(e.rule, {}).get("runtime")
        if runtime is None:
            m = re.search(r"runtime=retry_runtime\((\d+)\)", rules[e.rule])
            runtime = m.group(1) if m else profile["default-resources"]["runtime"]
        minutes = float(re.fullmatch(r"\s*(\d+)(\s*\*\s*attempt)?\s*", str(runtime)).group(1))
        if minutes < 2 * 60 * e.job_hours:
            short.append((e.rule, minutes, round(60 * e.job_hours)))
    assert short == []


def test_model_flops_by_hand():
    """The baseline's MLP and SmallCNN, and a CNN of another width on 3 x 32 x 32 images."""
    assert cost.model_flops({"name": "mlp", "hidden": [256, 256]}, (1, 28, 28), 10) == \
        cost.ModelFlops(MLP_FORWARD, MLP_STEP)
    assert cost.model_flops({"name": "cnn", "width": 16}, (1, 28, 28), 10) == \
        cost.ModelFlops(CNN_FORWARD, CNN_STEP)
    c1, c2, head = 32 * 32 * 8 * 3 * 9, 16 * 16 * 16 * 8 * 9, 8 * 8 * 16 * 10
    f = cost.model_flops({"name": "cnn", "width": 8}, (3, 32, 32), 10)
    assert f == cost.ModelFlops(2 * (c1 + c2 + head), 4 * (c1 + c2 + head) + 2 * (c2 + head))
    assert cost.model_flops({"name": "mlp", "hidden": [32]}, (20,), 4).forward == \
        2 * (20 * 32 + 32 * 4)


def test_split_sizes_with_fractions_and_the_official_test_set(quick, paper_like):
    assert cost.split_sizes(quick, "mnist5k") == pytest.approx(
        {"train": 3500, "val": 500, "test": 1000})
    # fashion_mnist: 60,000 official training images, 10% of them validation; 10,000 test
    assert cost.split_sizes(paper_like, "fashion_mnist") == pytest.approx(
        {"train": 54_000, "val": 6000, "test": 10_000})
    with pytest.raises(cost.CostError, match="no official test set"):
        cost.split_sizes(paper_like, "mnist5k")


def _job(start_values: int, epochs: int, train: int, every: int, step: int, forward: int,
         kind: str, batch: int) -> float:
    """One baseline job in reference FLOPs, written out: start, load, epochs x (training steps
    + forward passes over every split), each weighted by its kind's measured cost."""
    return (cost.JOB_START + cost.LOAD_PER_VALUE * start_values
            + epochs * (train * step * cost.TRAIN_COST[kind][batch]
                        + every * forward * cost.EVAL_COST[kind]))


def test_baseline_work_by_hand(paper_like):
    """Each kind's part: seeds x one job (rose.cost.baseline_job_work)."""
    mlp = _job(70_000 * 784, 15, 54_000, 70_000, MLP_STEP, MLP_FORWARD, "mlp", 128)
    cnn = _job(70_000 * 784, 15, 54_000, 70_000, CNN_STEP, CNN_FORWARD, "cnn", 128)
    parts = cost.work_parts("train_baseline", paper_like)
    assert parts["mlp"] == (5, pytest.approx(5 * mlp))
    assert parts["cnn"] == (5, pytest.approx(5 * cnn))
    assert cost.work("train_baseline", paper_like) == (10, pytest.approx(5 * (mlp + cnn)))
    assert cost.work("prepare_data", paper_like) == (
        1, pytest.approx(cost.JOB_START + cost.PREPARE_PER_VALUE * 70_000 * 784))
    assert cost.train_cost("mlp", 100) == cost.TRAIN_COST["mlp"][128]   # the nearest batch
    with pytest.raises(cost.CostError, match="transformer"):
        cost.train_cost("transformer", 128)


def test_a_kind_without_its_own_timing_is_scaled_from_another_kinds(quick, paper_like):
    """Quick measured only MLP jobs: paper's CNN part is scaled from them by the work ratio
    (its FLOPs weighted by the measured costs) and says so; a CNN timing of its own wins."""
    mlp = cost.Measured("train_baseline", 10, 40.0, cost.work("train_baseline", quick)[1],
                        "mlp", "config/quick.yaml", "quick")
    est = {e.key: e for e in cost.estimate(paper_like, {mlp.key: mlp}, ["train_baseline"])}
    w = cost.work_parts("train_baseline", paper_like)
    assert est["train_baseline[cnn]"].core_hours == pytest.approx(40 * w["cnn"][1] / mlp.work
                                                                  / 3600)
    assert est["train_baseline[mlp]"].core_hours == pytest.approx(40 * w["mlp"][1] / mlp.work
                                                                  / 3600)
    notes = cost.provenance(list(est.values()))
    assert any(n.startswith("train_baseline[cnn]: no timing of its own") for n in notes)
    own = cost.Measured("train_baseline", 5, 1500.0, w["cnn"][1], "cnn", "config/paper.yaml",
                        "paper")
    (e,) = [e for e in cost.estimate(paper_like, {mlp.key: mlp, own.key: own},
                                     ["train_baseline"]) if e.part == "cnn"]
    assert e.core_hours == pytest.approx(1500 / 3600) and e.basis == own


def test_timings_of_the_estimated_config_come_first_then_the_files_in_order(tmp_path):
    q = [cost.Measured("a", 1, 10.0, 1.0, "", "config/quick.yaml", "quick"),
         cost.Measured("b", 1, 20.0, 1.0, "", "config/quick.yaml", "quick")]
    p = [cost.Measured("a", 1, 99.0, 1.0, "", "config/paper.yaml", "paper")]
    cost.write_timings(q, tmp_path / "q.csv")
    cost.write_timings(p, tmp_path / "p.csv")
    for order in ([tmp_path / "q.csv", tmp_path / "p.csv"],
                  [tmp_path / "p.csv", tmp_path / "q.csv"]):
        got = cost.combine_timings(order, "paper")
        assert (got["a"].core_seconds, got["b"].core_seconds) == (99.0, 20.0)
    assert cost.combine_timings([tmp_path / "q.csv", tmp_path / "p.csv"], "full")["a"] == q[0]
    assert cost.combine_timings([tmp_path / "p.csv", tmp_path / "q.csv"], "full")["a"] == p[0]


def test_work_models_by_hand(quick):
    """Known answers on quick.yaml, written out."""
    q = quick
    job = _job(5000 * 784, 15, 3500, 5000, MLP_STEP, MLP_FORWARD, "mlp", 64)
    assert cost.work("train_baseline", q) == (10, pytest.approx(10 * job))
    values = 5000 * 784 + 1797 * 64 + 2000 * 20           # mnist5k, digits, synthetic
    assert cost.work("prepare_data", q) == (
        3, pytest.approx(3 * cost.JOB_START + cost.PREPARE_PER_VALUE * values))
    # Colored MNIST: irm and cooccurrence run 5 penalties x 3 lambdas + erm, top-k and SoLU;
    # grayscale only erm
    sc = 2 * 14 * 14 * 64 + 64 * 64 + 64
    assert cost.work("superposition_shortcut", q) == (
        3, float((18 + 18 + 1) * 5 * 300 * 256 * sc))
    assert cost.work("superposition_phase", q) == (1, float(7 * 7 * 2 * 3 * 3000 * 512 * 2))
    # 5 penalised variants x 5 lambdas + 4 unpenalised, 2 sparsities, 5 seeds
    assert cost.work("superposition_toy_penalty", q) == (
        1, float((5 * 5 + 4) * 2 * 5 * 3000 * 128 * 20 * 5))
    sweeps = (6 * 20000 * 1024 * 5 * 2 + 7 * 7000 * 1024 * 20 * 5 + 11 * 5000 * 512 * 60 * 6)
    assert cost.work("superposition_toy_sweep", q) == (3, float(sweeps))
    al = 2 * 14 * 14 * 64 + 64 * 10
    per_run = 7 * 200 * 64 * al + 7 * 5000 * al * 10
    n_acq, n_methods = len(q["active"]["acquisitions"]), len(q["active"]["curriculum"]["methods"])
    assert cost.work("active_learning", q) == (3, float(3 * n_acq * 5 * per_run))
    # every method's grid of 4 points x 5 seeds
    assert cost.work("active_curriculum", q) == (
        3, float(3 * n_methods * 4 * 5 * 800 * 64 * 10 * al))
    assert cost.work("aggregate_active", q) == (1, 5.0) and cost.work("paper", q) == (1, 1.0)
    with pytest.raises(cost.CostError, match="no_such_rule"):
        cost.work("no_such_rule", q)


def test_timings_round_trip(tmp_path):
    ms = [cost.Measured("a", 2, 1.25, 3e12, "", "config/quick.yaml", "quick"),
          cost.Measured("b", 1, 0.5, 7.0, "cnn", "config/paper.yaml", "paper")]
    cost.write_timings(ms, tmp_path / "sub" / "t.csv")
    read = cost.read_timings(tmp_path / "sub" / "t.csv")
    assert read == {"a": ms[0], "b[cnn]": ms[1]}
    assert read["a"].source == str(tmp_path / "sub" / "t.csv")
    assert (tmp_path / "sub" / "t.csv").read_text().splitlines()[0] == \
        "rule,part,jobs,core_seconds,work,config,name"
    # a file of the earlier format (no part, no name): the name from the config's file name
    (tmp_path / "old.csv").write_text("rule,jobs,core_seconds,work,config\n"
                                      "a,2,1.25,3000000000000.0,config/quick.yaml\n")
    assert cost.read_timings(tmp_path / "old.csv") == {"a": ms[0]}


def test_report_lists_rules_directions_and_the_total():
    est = [cost.Estimate("train_baseline", "baseline", 4, 2.0),
           cost.Estimate("explore_setting", "explore", 2, 6.0)]
    text = cost.report(est, 4)
    assert re.search(r"train_baseline\s+4\s+2\.000\s+0\.500", text)
    assert text.splitlines()[0].endswith("scaled from")
    assert re.search(r"direction explore\s+6\.000", text)
    assert re.search(r"total\s+6\s+8\.000", text)
    assert "wall time on 4 cores: at least 3.00 h" in text


def _checkout(tmp_path):
    """A root with the schema, quick.yaml and a params.yaml naming it (rose.artifacts)."""
    import shutil

    (tmp_path / "workflow/schemas").mkdir(parents=True)
    shutil.copy(SCHEMA, tmp_path / "workflow/schemas")
    (tmp_path / "config").mkdir()
    shutil.copy(ROOT / "config/quick.yaml", tmp_path / "config")
    (tmp_path / "params.yaml").write_text(
        "configs:\n  quick: {file: config/quick.yaml, store: shared}\n")
    return tmp_path


def test_config_core_hours_prefers_this_checkouts_fresh_timings(tmp_path, quick):
    """With no logs it scales the committed timings; with benchmark files of a rule it scales
    those (here 3600 s for the measured config itself: exactly one core-hour)."""
    root = _checkout(tmp_path)
    w = cost.work("superposition_phase", quick)[1]
    cost.write_timings([cost.Measured("superposition_phase", 1, 7200.0, w)], root / cost.TIMINGS)
    rules = ["superposition_phase"]
    assert cost.config_core_hours(root / "config/quick.yaml", rules, root) == 2.0
    d = root / cost.benchmarks_dir("quick") / "superposition_phase"
    d.mkdir(parents=True)
    (d / "job.tsv").write_text("s\th:m:s\n3600\t1:00:00\n")
    assert cost.config_core_hours(root / "config/quick.yaml", rules, root) == 1.0
    other = root / cost.benchmarks_dir("quick") / "paper"
    other.mkdir()
    (other / "job.tsv").write_text("s\th:m:s\n1\t0:00:01\n")
    assert cost.config_core_hours(root / "config/quick.yaml", [*rules, "paper"],
                                  root) > 0        # paper has no committed timing: fresh


def test_record_timings_writes_the_named_configs_file_and_cost_combines_files(tmp_path, quick,
                                                                               capsys):
    """`--record-timings --config quick` writes benchmarks/quick_timings.csv from
    logs/quick/benchmarks; `--cost --timings A B` reads both, naming what it scaled from."""
    root = _checkout(tmp_path)
    d = root / cost.benchmarks_dir("quick") / "superposition_phase"
    d.mkdir(parents=True)
    (d / "job.tsv").write_text("s\th:m:s\n36\t0:00:36\n")
    assert rose_main(["plan", "--root", str(root), "--record-timings", "--config", "quick"]) == 0
    written = cost.read_timings(root / "benchmarks/quick_timings.csv")
    assert written["superposition_phase"] == cost.Measured(
        "superposition_phase", 1, 36.0, cost.work("superposition_phase", quick)[1], "",
        "config/quick.yaml", "quick")
    rows = (ROOT / cost.TIMINGS).read_text().splitlines()
    (tmp_path / "rest.csv").write_text("\n".join(rows) + "\n")
    capsys.readouterr()
    assert rose_main(["plan", "--root", str(root), "--cost", str(root / "config/quick.yaml"),
                      "--timings", str(root / "benchmarks/quick_timings.csv"),
                      str(tmp_path / "rest.csv"), "--cores", "2"]) == 0
    text = capsys.readouterr().out
    assert re.search(r"superposition_phase\s+1\s+0\.010\s+0\.010  quick", text)
    assert re.search(rf"scaled from quick \({re.escape(str(root))}/benchmarks/quick_timings"
                     rf"\.csv, config/quick\.yaml\): superposition_phase\n", text)
    assert rose_main(["plan", "--root", str(root), "--record-timings", "--config", "nope"]) == 2


def test_design_notes_say_what_the_directions_estimate_stands_for(quick):
    cfg = copy.deepcopy(quick)
    cfg["name"] = "paper"
    cfg["continual"]["k"] = quick["continual"]["k"] + 1
    notes = cost.design_notes(cfg, ROOT)
    assert notes[0] == cost.PROVISIONAL["paper"]
    assert notes[1] == ("direction block(s) identical to config/quick.yaml's: explore, active, "
                        "superposition (quick's design at this config's seeds)")
    assert cost.design_notes(quick, ROOT) == []


def test_direction_ones_work_by_hand():
    """rose.cost's work of direction 1 written out for a small block: rows = grid points x the
    tuning seeds + every seed of the setting for the selected point (untuned arms and the
    ablation: every seed once), per row epochs x (training examples x gradient evaluations per
    step x a step's FLOPs x its kind's cost at the batch + evaluated examples x a forward's
    FLOPs x the evaluation cost); the direction's own seeds, a setting's own seeds, the
    training sample and SAM's two evaluations per step at an equal-steps budget."""
    cfg = cost.load_config(ROOT / "config/paper.yaml", SCHEMA)
    cfg["seeds"] = [0, 1]
    model = cfg["explore"]["settings"]["fashion_standard"]["model"] | {"hidden": [8]}
    walk = {"steps": 2, "probe": 10}
    cfg["explore"] = {
        **cfg["explore"], "seeds": [0, 1, 2, 3, 4, 5], "tune_seeds": 2, "train_eval": 1000,
        "epochs": 3, "batch_size": 128,
        "settings": {
            "a": {"dataset": "fashion_mnist", "model": model, "label_noise": 0.0,
                  "arms": ["sgd", "sam", "walk"]},
            "b": {"dataset": "fashion_mnist", "model": model, "label_noise": 0.0,
                  "batch_size": 64, "seeds": [0, 1, 2], "arms": ["sgd"]}},
        "arms": {"sgd": {"method": "sgd", "grid": {"lr": [0.1, 0.2]}},
                 "sam": {"method": "sam", "budget": "steps", "rho": 0.05,
                         "grid": {"lr": [0.1, 0.2], "rho": [0.05, 0.1]}},
                 "walk": {"method": "contour", "budget": "grad_evals", "contour": walk,
                          "grid": {"lr": [0.1, 0.2]}}},
        "ablation": {"setting": "a", "base": "walk",
                     "variants": {"v": {"contour": {"direction": "random"}}}}}
    f = cost.model_flops(model, (1, 28, 28), 10)
    evaluated = 1000 + 6000 + 10000
    step_a, step_b = f.step * cost.TRAIN_COST["mlp"][128], f.step * cost.TRAIN_COST["mlp"][64]

    def per_row(evals, step):
        return 3 * (54000 * evals * step + evaluated * f.forward * cost.EVAL_COST["mlp"])
    want = (10 * per_row(1, step_a) + 14 * per_row(2, step_a) + 10 * per_row(1, step_a)
            + 7 * per_row(1, step_b) + 2 * 6 * per_row(1, step_a))
    jobs, work = cost.work("explore_setting", cfg)
    assert jobs == 3
    assert work == pytest.approx(want, rel=1e-14, abs=0)
    # without the training sample every training image is evaluated
    del cfg["explore"]["train_eval"]
    evaluated = 54000 + 6000 + 10000
    want = (10 * per_row(1, step_a) + 14 * per_row(2, step_a) + 10 * per_row(1, step_a)
            + 7 * per_row(1, step_b) + 2 * 6 * per_row(1, step_a))
    assert cost.work("explore_setting", cfg)[1] == pytest.approx(want, rel=1e-14, abs=0)
