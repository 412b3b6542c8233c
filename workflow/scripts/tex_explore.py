# Thin adapter: Snakemake job -> rose.explore.report.tex.
from pathlib import Path

from rose.explore.report import tex
from rose.logs import redirect_to

with redirect_to(snakemake.log[0]):
    tex(Path(snakemake.input.aggregate[0]).parent, snakemake.output.table,
        snakemake.output.macros, snakemake.params.contour_arm, snakemake.params.equal_budget_arm,
        dict(snakemake.params.explore))
