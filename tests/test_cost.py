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
    for rule, factor in [("train_baseline", 2), ("active_curriculum", 2), ("continual_stream", 2),
                         ("explore_setting", 4), ("superposition_shortcut", 2)]:
        assert cost.work(rule, more)[1] == pytest.approx(factor * cost.work(rule, quick)[1]), rule
    toy = {k: cost._toy(b) * len(b["sparsities"]) for k, b in quick["superposition"]["toy"].items()}
    want = sum(toy.values()) + 2 * toy["main"]
    assert cost.work("superposition_toy_sweep", more)[1] == pytest.approx(want)
    assert cost.work("train_baseline", more)[0] == 2 * cost.work("train_baseline", quick)[0]


def test_measure_sums_each_rules_benchmark_files(tmp_path, quick):
    d = tmp_path / cost.BENCHMARKS / "train_baseline"
    d.mkdir(parents=True)
    for i, s in enumerate([1.5, 2.5]):
        (d / f"job{i}.tsv").write_text(f"s\th:m:s\tmax_rss\n{s}\t0:00:0{i}\t10\n")
    (m,) = cost.measure(tmp_path, quick)
    assert (m.rule, m.jobs, m.core_seconds) == ("train_baseline", 2, 4.0)
    assert m.work == cost.work("train_baseline", quick)[1]


def test_wall_time_is_grahams_bound():
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
