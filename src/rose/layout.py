"""Where a config's outputs live: every config (tiny, quick, paper, full, yours) writes under its
own ``name``, so running one never overwrites another's results and DVC tracks each apart.

    data/processed/<name>/<dataset>.npz        prepared splits (+ .manifest.json)
    results/<name>/<direction>/...             per-seed tables, aggregates, metrics
    checkpoints/<name>/<direction>/...         model weights (DVC's shared remote, never git)
    figures/<name>/<direction>/*.pdf
    paper/generated/<name>/*.tex               generated tables and macros
    paper/<name>/main.pdf                      the paper built from that config
    logs/<name>/...                            job logs and Snakemake benchmark files

The rules (workflow/rules/common.smk), ``rose pull`` / ``rose push``, ``rose plan`` and the
paper build all take their paths from here.
"""

from __future__ import annotations

import re

NAME = re.compile(r"^[A-Za-z0-9_-]+$")   # the schema's pattern for `name`


def _checked(name: str) -> str:
    if not NAME.fullmatch(name):
        raise ValueError(f"config name {name!r} must match {NAME.pattern} (it names folders)")
    return name


def processed(name: str) -> str:
    return f"data/processed/{_checked(name)}"


def results(name: str) -> str:
    return f"results/{_checked(name)}"


def checkpoints(name: str) -> str:
    return f"checkpoints/{_checked(name)}"


def figures(name: str) -> str:
    return f"figures/{_checked(name)}"


def generated(name: str) -> str:
    return f"paper/generated/{_checked(name)}"


def paper_dir(name: str) -> str:
    return f"paper/{_checked(name)}"


def pdf(name: str) -> str:
    return f"{paper_dir(name)}/main.pdf"


def logs(name: str) -> str:
    return f"logs/{_checked(name)}"
