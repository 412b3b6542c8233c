# Thin adapter: Snakemake job -> rose.continual.report.aggregate.
from pathlib import Path

from rose.continual.report import aggregate
from rose.logs import redirect_to

with redirect_to(snakemake.log[0]):
    aggregate(snakemake.input.runs, Path(snakemake.output.runs).parent,
              list(snakemake.params.primary))
