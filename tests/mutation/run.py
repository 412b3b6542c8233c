"""`make mutation`: mutation testing (mutmut 3) of the mechanism modules, one table per run.

    python tests/mutation/run.py                          # every module listed below
    python tests/mutation/run.py src/rose/continual/ball.py src/rose/stats.py
    python tests/mutation/run.py --report                 # the last run's table again

Each module is mutated by mutmut (operators, constants, comparisons, calls, returns ...), and
every mutant is run against the fast unit tests that cover the mutated function (mutmut records
which tests call which function first; the kill-and-resume, device and DAG tests and the tests
marked ``sanity`` (published behaviours, end-to-end runs) are not used).
A mutant is *killed* when a test fails, *survived* when all pass, *timed out* when the tests
run 15x longer than unmutated (an endless loop: counted as detected). Mutants that cannot change
behaviour are listed, with the reason, in tests/MUTATION.md and left out of the score.

Prints killed / survived / timed out / equivalent / score per module; exits 1 when a module
scores below 80%, 2 when a module path does not exist. Work happens in .mutation/ (a copy of
the repository, made afresh every run; ROSE_MUTATION_DIR chooses another place).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = Path(os.environ.get("ROSE_MUTATION_DIR", ROOT / ".mutation"))
EQUIVALENTS = ROOT / "tests" / "MUTATION.md"
GOAL = 0.80

# mechanism module -> the fast unit tests that exercise it
ACTIVE_TESTS = ["tests/test_active.py", "tests/test_active_mechanisms.py"]
TOY_TESTS = ["tests/test_superposition.py", "tests/test_superposition_mechanisms.py",
             "tests/test_superposition_metrics.py"]
SHARED_TESTS = "tests/test_shared_mechanisms.py"
CONTINUAL_TESTS = ["tests/test_continual.py", "tests/test_continual_protocol.py"]
# the stream tests only: every learner test builds streams, and running them all per mutant
# took about 30 s each (321 mutants)
STREAM_TESTS = [
    "tests/test_continual.py::test_split_stream_is_class_incremental_and_each_sample_arrives_once",
    "tests/test_continual.py::test_permutations_are_fixed_per_task_and_differ_between_tasks",
    "tests/test_continual.py::test_rotated_first_task_is_unrotated",
    "tests/test_continual.py::test_streams_from_digits",
    "tests/test_continual_protocol.py::test_the_validation_stream_holds_no_test_image_and_no_test_task",
    "tests/test_continual_protocol.py::test_rotated_validation_angles_sit_between_the_test_angles",
    "tests/test_continual_protocol.py::test_a_validation_stream_overlapping_the_test_stream_is_refused",
    "tests/test_continual_protocol.py::test_a_validation_pool_too_small_for_the_stream_is_refused_naming_the_key",
]
MODULES = {
    "src/rose/continual/ball.py": ["tests/test_continual.py"],
    "src/rose/continual/distances.py": CONTINUAL_TESTS,
    "src/rose/continual/radius.py": CONTINUAL_TESTS,
    "src/rose/continual/streams.py": STREAM_TESTS,
    "src/rose/continual/metrics.py": ["tests/test_continual.py"],
    "src/rose/continual/penalties.py": ["tests/test_continual.py"],
    "src/rose/explore/contour.py": ["tests/test_explore.py", "tests/test_explore_mechanisms.py",
                                    "tests/test_explore_tuning.py"],
    "src/rose/explore/sam.py": ["tests/test_explore.py", "tests/test_explore_mechanisms.py",
                                "tests/test_explore_tuning.py"],
    "src/rose/explore/tuned.py": ["tests/test_explore_tuning.py",
                                  "tests/test_explore_paper_scale.py"],
    "src/rose/explore/gam.py": ["tests/test_explore.py", "tests/test_explore_mechanisms.py"],
    "src/rose/explore/entropy_sgd.py": ["tests/test_explore.py",
                                        "tests/test_explore_mechanisms.py"],
    "src/rose/measure/hessian.py": ["tests/test_explore.py", "tests/test_explore_tools.py",
                                    "tests/test_measure_mechanisms.py"],
    "src/rose/measure/sharpness.py": ["tests/test_explore.py", "tests/test_measure_mechanisms.py"],
    "src/rose/measure/landscape.py": ["tests/test_explore.py", "tests/test_measure_mechanisms.py",
                                      "tests/test_explore_tuning.py"],
    "src/rose/nn/optim.py": ["tests/test_nn.py", "tests/test_tuning.py"],
    "src/rose/active/acquisitions.py": ACTIVE_TESTS,
    "src/rose/active/alvin.py": ACTIVE_TESTS,
    "src/rose/active/analogy.py": ACTIVE_TESTS,
    "src/rose/active/group_robust.py": ACTIVE_TESTS,
    "src/rose/active/rho_loss.py": ACTIVE_TESTS,
    "src/rose/active/learner.py": ACTIVE_TESTS,
    "src/rose/active/alfa_mix.py": ACTIVE_TESTS,
    "src/rose/active/curriculum.py": ACTIVE_TESTS,
    "src/rose/superposition/toy_model.py": TOY_TESTS,
    "src/rose/superposition/penalties.py": TOY_TESTS,
    "src/rose/superposition/geometry.py": [*TOY_TESTS, "tests/test_superposition_shortcut.py"],
    "src/rose/superposition/monosemanticity.py": ["tests/test_superposition_metrics.py"],
    "src/rose/superposition/frontier.py": ["tests/test_superposition_metrics.py"],
    "src/rose/superposition/phase_diagram.py": ["tests/test_superposition.py"],
    "src/rose/cost.py": ["tests/test_cost.py", "tests/test_cifar_config.py"],
    "src/rose/superposition/shortcut.py": ["tests/test_superposition_shortcut.py",
                                           "tests/test_superposition.py"],
    "src/rose/sampling.py": ["tests/test_sampling.py", SHARED_TESTS],
    "src/rose/tuning.py": ["tests/test_tuning.py", "tests/test_tuning_extension.py",
                           SHARED_TESTS],
    "src/rose/stats.py": ["tests/test_stats.py", SHARED_TESTS],
    "src/rose/power.py": ["tests/test_power.py", "tests/test_explore_paper_scale.py"],
    "src/rose/data/idx.py": ["tests/test_fashion_mnist.py", "tests/test_data.py"],
    "src/rose/contrasts.py": ["tests/test_contrasts.py", SHARED_TESTS],
    "src/rose/divergence.py": ["tests/test_device.py", SHARED_TESTS],
}
# tests failed (3: pytest internal error; negative: the test process crashed on a signal,
# e.g. SIGABRT from ARPACK given a malformed start vector)
KILLED = {1, 3, -4, -6, -7, -8, -11}
TIMEOUT = {36, -24, 24, 152, 255}
COPY = ["src", "tests", "config", "workflow", "Snakefile", "benchmarks/quick_timings.csv",
        "pyproject.toml"]


def equivalents() -> dict[str, str]:
    """mutant name -> reason, from the table in tests/MUTATION.md."""
    if not EQUIVALENTS.exists():
        return {}
    out = {}
    for line in EQUIVALENTS.read_text().splitlines():
        m = re.match(r"^\|\s*`([\w.]+__mutmut_\d+)`\s*\|\s*(.+?)\s*\|$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def prepare(modules: list[str]) -> None:
    """A fresh copy of the repository in .mutation/ with mutmut configured for ``modules``."""
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir()
    for item in COPY:
        src, dst = ROOT / item, WORK / item
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    tests = sorted({t for m in modules for t in MODULES[m]})
    config = "\n".join([
        "", "[tool.mutmut]",
        'source_paths = ["src"]',
        f"only_mutate = {json.dumps(modules)}",
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}",
        'pytest_add_cli_args = ["-q", "-p", "no:cacheprovider", "-W", "ignore", "-m", '
        '"not sanity and not workflow"]',
        'also_copy = ["config", "workflow", "Snakefile", "benchmarks"]', ""])
    with open(WORK / "pyproject.toml", "a") as f:
        f.write(config)


def statuses(modules: list[str]) -> dict[str, dict[str, str]]:
    """module -> {mutant: killed | timeout | equivalent | survived} from the last run in WORK
    (survived also covers no covering test, suspicious and not checked)."""
    eq = equivalents()
    out: dict[str, dict[str, str]] = {}
    for m in modules:
        meta = WORK / "mutants" / f"{m}.meta"
        codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
        out[m] = {k: "killed" if c in KILLED else "timeout" if c in TIMEOUT
                  else "equivalent" if k in eq else "survived" for k, c in codes.items()}
    return out


def main(argv: list[str]) -> int:
    report_only = "--report" in argv       # reprint the table of the last run in WORK
    argv = [a for a in argv if a != "--report"]
    modules = argv or list(MODULES)
    unknown = [m for m in modules if not (ROOT / m).is_file()]
    if unknown:
        print(f"make mutation: no such module: {', '.join(unknown)}", file=sys.stderr)
        return 2
    unlisted = [m for m in modules if m not in MODULES]
    if unlisted:
        print(f"make mutation: {', '.join(unlisted)} has no covering tests listed in "
              f"{Path(__file__).relative_to(ROOT)}; add it to MODULES", file=sys.stderr)
        return 2
    if report_only:
        return report(modules)
    prepare(modules)
    mutmut = Path(sys.executable).parent / "mutmut"
    # one thread per mutant process: mutmut runs one process per core, and OpenMP threads that
    # spin while waiting would be counted against each mutant's CPU-time limit
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    jobs = str(os.cpu_count() or 2)
    r = subprocess.run([str(mutmut), "run", "--max-children", jobs], cwd=WORK, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode not in (0, 1):
        print(r.stderr[-3000:], file=sys.stderr)
        return r.returncode
    return report(modules)


def report(modules: list[str]) -> int:
    status = statuses(modules)
    counts = {m: Counter(status[m].values()) for m in modules}
    width = max(len(m) for m in modules)
    print(f"{'module':<{width}}  mutants  killed  survived  timeout  equivalent  score")
    failing = []
    for m in modules:
        c = counts[m]
        total = sum(c.values())
        scored = total - c["equivalent"]
        score = (c["killed"] + c["timeout"]) / scored if scored else 1.0
        if score < GOAL:
            failing.append(m)
        print(f"{m:<{width}}  {total:>7}  {c['killed']:>6}  {c['survived']:>8}  "
              f"{c['timeout']:>7}  {c['equivalent']:>10}  {100 * score:5.1f}%"
              + ("" if score >= GOAL else "  < 80%"))
    survivors = [k for m in modules for k, v in status[m].items() if v == "survived"]
    if survivors:
        print(f"\n{len(survivors)} surviving mutants not listed in tests/MUTATION.md (see one "
              f"with: cd {WORK} && mutmut show NAME):")
        for k in survivors:
            print(f"  {k}")
    eq = equivalents()
    stale = [k for m in modules for k, v in status[m].items()
             if k in eq and v in ("killed", "timeout")]
    if stale:
        print(f"\n{len(stale)} rows of tests/MUTATION.md name mutants that the tests now kill "
              "(remove them):")
        for k in stale:
            print(f"  {k}")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
