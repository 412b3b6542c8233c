"""Without TeX the paper rule fails with a message that says what to install and that
`snakemake figures` still works."""

import os
import shutil

from ..conftest import ROOT
from .conftest import sh


def test_missing_latexmk_gives_a_clear_message(tmp_path, tool_env):
    bindir = tmp_path / "bin"  # a PATH with bash but no latexmk
    bindir.mkdir()
    os.symlink(shutil.which("bash"), bindir / "bash")
    env = dict(tool_env, PATH=str(bindir))
    r = sh([str(bindir / "bash"), "workflow/scripts/build_paper.sh"], ROOT, env, check=False)
    assert r.returncode == 1
    assert "latexmk not found" in r.stderr and "snakemake figures" in r.stderr
