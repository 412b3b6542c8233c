"""`make lint`: ruff on all Python, and Snakemake's linter on the workflow."""

import re

from ..conftest import ROOT
from .conftest import sh


def test_ruff_is_clean(tool_env):
    sh(["ruff", "check", "src", "tests", "benchmarks", "workflow/scripts"], ROOT, tool_env)


def test_snakemake_lint_has_only_the_conda_notice(tool_env):
    lint = sh(["snakemake", "--lint", "--configfile", "config/tiny.yaml"], ROOT, tool_env,
              check=False)
    found = set(re.findall(r"^\s+\* (.+?):?$", lint.stdout + lint.stderr, re.MULTILINE))
    assert found, "the linter printed nothing we could read"
    # conda is deliberately not mandatory: the venv made by `make install` is the environment
    assert found == {"Specify a conda environment or container for each rule."}, found
