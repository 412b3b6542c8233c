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
    r = sh([str(bindir / "bash"), "workflow/scripts/build_paper.sh", "tiny"], ROOT, env,
           check=False)
    assert r.returncode == 1
    assert "latexmk not found" in r.stderr and "snakemake figures" in r.stderr


def test_a_macro_used_but_not_generated_fails_the_build_with_its_name(tmp_path, tool_env):
    """The build checks the sources before LaTeX runs: a result macro no rule wrote, or a
    number typed into the main text, stops it with the name and the file."""
    if shutil.which("latexmk", path=tool_env.get("PATH")) is None:
        bindir = tmp_path / "bin"   # the check runs after the latexmk probe: give it one
        bindir.mkdir()
        (bindir / "latexmk").write_text("#!/bin/sh\nexit 0\n")
        (bindir / "latexmk").chmod(0o755)
        tool_env = dict(tool_env, PATH=f"{bindir}{os.pathsep}{tool_env['PATH']}")
    paper = tmp_path / "paper"
    (paper / "generated" / "tiny").mkdir(parents=True)
    (paper / "sections").mkdir()
    (paper / "generated" / "tiny" / "active_macros.tex").write_text(
        "\\newcommand{\\ActSeeds}{5}\n")
    (paper / "main.tex").write_text("\\input{sections/active}\n")
    (paper / "sections" / "active.tex").write_text(
        "With \\ActSeeds{} seeds the answer is \\ActAnswer{}; it took 12 minutes.\n")
    r = sh(["bash", str(ROOT / "workflow/scripts/build_paper.sh"), "tiny"], tmp_path, tool_env,
           check=False)
    assert r.returncode != 0
    assert "sections/active.tex: \\ActAnswer is used but not generated" in r.stderr
    assert "numbers typed by hand in the main text (use a generated macro): 12" in r.stderr


def test_the_build_takes_only_a_config_name(tool_env):
    """The one argument names folders (paper/generated/NAME, figures/NAME, paper/NAME): a
    value outside the schema's name pattern is refused before anything runs."""
    for bad in ["", "../x", "a b", "x;rm"]:
        r = sh(["bash", "workflow/scripts/build_paper.sh", bad], ROOT, tool_env, check=False)
        assert r.returncode == 2 and "usage: build_paper.sh NAME" in r.stderr, bad
