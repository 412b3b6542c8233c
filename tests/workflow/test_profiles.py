"""The README's cluster command carries the slurm profile's settings to every job (dry run: the
resources Snakemake would submit with). With ``--profile`` the default workflow profile's
default-resources replaced them; the README now says ``--workflow-profile``."""

from __future__ import annotations

import re
import shlex

import pytest

from ..conftest import ROOT
from .conftest import copy_repo, sh

pytestmark = pytest.mark.workflow


def readme_cluster_command() -> list[str]:
    lines = [ln for ln in (ROOT / "README.md").read_text().splitlines()
             if ln.startswith("snakemake ") and "profiles/slurm" in ln]
    assert len(lines) == 1, lines
    return shlex.split(lines[0].split("#")[0])


def test_the_readme_cluster_command_submits_with_the_profiles_resources(tmp_path, tool_env):
    repo = copy_repo(tmp_path / "repo", tool_env)
    profile = repo / "workflow/profiles/slurm/config.yaml"
    text = profile.read_text()
    text = text.replace('slurm_partition: ""', 'slurm_partition: "debugq"')
    text = text.replace('slurm_account: ""', 'slurm_account: "acct1"')
    profile.write_text(text)
    cmd = readme_cluster_command()
    cmd[cmd.index("--configfile") + 1] = "config/tiny.yaml"
    # the target before --configfile (which takes every following word), then a dry run
    r = sh([cmd[0], "data", *cmd[1:], "-n"], repo, tool_env)
    resources = re.findall(r"resources: (.*)", r.stdout + r.stderr)
    assert resources, r.stdout[-2000:]
    for line in resources:
        assert "slurm_partition=debugq" in line and "slurm_account=acct1" in line, line
        assert "cpus_per_task=" in line, line
