# Thin adapter: Snakemake job -> rose.superposition.report.tex.
from pathlib import Path

from rose.logs import redirect_to
from rose.superposition.report import tex

with redirect_to(snakemake.log[0]):
    tex(dict(snakemake.params.toy_dirs), snakemake.input.phase,
        Path(snakemake.input.aggregate[0]).parent, snakemake.output.table,
        snakemake.output.macros)
