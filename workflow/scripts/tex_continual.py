# Thin adapter: Snakemake job -> rose.continual.report.tex.
from pathlib import Path

from rose.continual.report import tex
from rose.logs import redirect_to

with redirect_to(snakemake.log[0]):
    tex(Path(snakemake.input.aggregate[0]).parent, snakemake.output.table,
        snakemake.output.macros)
