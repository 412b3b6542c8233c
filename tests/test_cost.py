"""rose.cost and `rose plan --cost`: every rule has a benchmark file and a work model, the
measured config scales to exactly its measurement, counts scale the work they multiply, and a
rule without a timing is named, not guessed."""

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


def test_every_rule_has_a_benchmark_file_in_logs_and_a_work_model():
    rules = _rules_with_outputs()
    assert set(rules) == set(cost.WORK)
    for name, block in rules.items():
        m = re.search(r'benchmark:\n\s+"([^"]+)"', block)
        assert m and m.group(1).startswith(f"logs/benchmarks/{name}/"), name


def test_the_measured_config_scales_to_its_measurement(quick):
    timings = {r: cost.Measured(r, 1, 100.0, cost.work(r, quick)[1]) for r in cost.WORK}
    est = cost.estimate(quick, timings, list(cost.WORK))
    assert all(e.core_hours == pytest.approx(100 / 3600) for e in est)


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
    d = tmp_path / cost.BENCHMARKS / "train_baseline"
    d.mkdir(parents=True)
    for i in range(jobs):
        (d / f"job{i}.tsv").write_text(f"s\th:m:s\tmax_rss\n{1.5 + i}\t0:00:01\t10\n")
    short = tmp_path / cost.BENCHMARKS / "prepare_data"
    short.mkdir()
    (short / "mnist5k.tsv").write_text("s\th:m:s\n2.0\t0:00:02\n")   # quick has 3 datasets
    (m,) = cost.measure(tmp_path, quick)
    assert (m.rule, m.jobs) == ("train_baseline", jobs)
    assert m.core_seconds == pytest.approx(sum(1.5 + i for i in range(jobs)))
    assert m.work == cost.work("train_baseline", quick)[1]


def test_wall_time_is_a_lower_bound_from_total_and_longest_mean_job():
    est = [cost.Estimate("a", "x", 2, 4.0), cost.Estimate("b", "x", 1, 3.0)]
    assert cost.wall_hours(est, 100) == 3.0          # the longest job
    assert cost.wall_hours(est, 2) == 3.5            # total / cores


def test_a_rule_without_a_timing_is_named(tmp_path, capsys):
    rows = (ROOT / cost.TIMINGS).read_text().splitlines()
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


def test_work_models_by_hand(quick):
    """Known answers on quick.yaml, written out."""
    q = quick
    mlp = 784 * 256 + 256 * 256 + 256 * 10
    assert cost.work("train_baseline", q) == (10, 15 * 3500.0 * mlp * 2 * 5)
    assert cost.work("prepare_data", q) == (3, 3.0)
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
    ms = [cost.Measured("a", 2, 1.25, 3e12), cost.Measured("b", 1, 0.5, 7.0)]
    cost.write_timings(ms, tmp_path / "sub" / "t.csv", "config/quick.yaml")
    assert cost.read_timings(tmp_path / "sub" / "t.csv") == {m.rule: m for m in ms}
    assert (tmp_path / "sub" / "t.csv").read_text().splitlines()[0] == \
        "rule,jobs,core_seconds,work,config"


def test_report_lists_rules_directions_and_the_total():
    est = [cost.Estimate("train_baseline", "baseline", 4, 2.0),
           cost.Estimate("explore_setting", "explore", 2, 6.0)]
    text = cost.report(est, 4)
    assert re.search(r"train_baseline\s+4\s+2\.00\s+0\.50", text)
    assert re.search(r"direction explore\s+6\.00", text)
    assert re.search(r"total\s+6\s+8\.00", text)
    assert "wall time on 4 cores: at least 3.00 h" in text


def test_config_core_hours_prefers_this_checkouts_fresh_timings(tmp_path, quick):
    """With no logs it scales the committed timings; with benchmark files covering the rules
    it scales those (here 3600 s for the measured config itself: exactly one core-hour)."""
    import shutil

    (tmp_path / "workflow/schemas").mkdir(parents=True)
    shutil.copy(SCHEMA, tmp_path / "workflow/schemas")
    (tmp_path / "config").mkdir()
    shutil.copy(ROOT / "config/quick.yaml", tmp_path / "config")
    (tmp_path / "params.yaml").write_text("configfile: config/quick.yaml\n")
    w = cost.work("superposition_phase", quick)[1]
    cost.write_timings([cost.Measured("superposition_phase", 1, 7200.0, w)],
                       tmp_path / cost.TIMINGS, "config/quick.yaml")
    rules = ["superposition_phase"]
    assert cost.config_core_hours(tmp_path / "config/quick.yaml", rules, tmp_path) == 2.0
    d = tmp_path / cost.BENCHMARKS / "superposition_phase"
    d.mkdir(parents=True)
    (d / "job.tsv").write_text("s\th:m:s\n3600\t1:00:00\n")
    assert cost.config_core_hours(tmp_path / "config/quick.yaml", rules, tmp_path) == 1.0
    other = tmp_path / cost.BENCHMARKS / "paper"
    other.mkdir()
    (other / "job.tsv").write_text("s\th:m:s\n1\t0:00:01\n")
    assert cost.config_core_hours(tmp_path / "config/quick.yaml", [*rules, "paper"],
                                  tmp_path) > 0        # paper has no committed timing: fresh
