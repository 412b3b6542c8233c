"""`make mutation`'s runner: bad input is refused, results are counted per module, and the
equivalent mutants of tests/MUTATION.md are left out of the score."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

from .conftest import ROOT

RUNNER = ROOT / "tests" / "mutation" / "run.py"


def _runner():
    spec = importlib.util.spec_from_file_location("mutation_run", RUNNER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_module_that_does_not_exist_is_refused():
    r = subprocess.run([sys.executable, str(RUNNER), "src/rose/no_such_module.py"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "no such module: src/rose/no_such_module.py" in r.stderr


def test_a_module_without_listed_tests_is_refused():
    r = subprocess.run([sys.executable, str(RUNNER), "src/rose/cli.py"], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "no covering tests listed" in r.stderr


def test_every_listed_module_and_test_file_exists():
    mod = _runner()
    for module, tests in mod.MODULES.items():
        assert (ROOT / module).is_file(), module
        for t in tests:        # a test file, or one test in it (path::name)
            path, _, name = t.partition("::")
            assert (ROOT / path).is_file(), t
            assert not name or f"def {name}(" in (ROOT / path).read_text(), t


def test_results_are_counted_per_module_with_equivalents_left_out(tmp_path, monkeypatch):
    mod = _runner()
    monkeypatch.setattr(mod, "WORK", tmp_path)
    eq = tmp_path / "MUTATION.md"
    eq.write_text("| mutant | why |\n|---|---|\n| `rose.x.x_f__mutmut_3` | same value |\n")
    monkeypatch.setattr(mod, "EQUIVALENTS", eq)
    meta = tmp_path / "mutants" / "src" / "rose" / "x.py.meta"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"exit_code_by_key": {
        "rose.x.x_f__mutmut_1": 1, "rose.x.x_f__mutmut_2": 0, "rose.x.x_f__mutmut_3": 0,
        "rose.x.x_f__mutmut_4": 36, "rose.x.x_f__mutmut_5": 33}}))
    s = mod.statuses(["src/rose/x.py"])["src/rose/x.py"]
    assert s == {"rose.x.x_f__mutmut_1": "killed", "rose.x.x_f__mutmut_2": "survived",
                 "rose.x.x_f__mutmut_3": "equivalent", "rose.x.x_f__mutmut_4": "timeout",
                 "rose.x.x_f__mutmut_5": "survived"}
    assert mod.equivalents() == {"rose.x.x_f__mutmut_3": "same value"}
