# Thin adapter: Snakemake job -> rose.superposition.report.aggregate.
from pathlib import Path

from rose.logs import redirect_to
from rose.superposition.report import aggregate

with redirect_to(snakemake.log[0]):
    aggregate(snakemake.input.shortcut, snakemake.input.penalty,
              Path(snakemake.output.runs).parent, list(snakemake.params.primary))
