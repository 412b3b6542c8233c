# Thin adapter: Snakemake job -> rose.active.report.aggregate.
from pathlib import Path

from rose.active.report import aggregate
from rose.logs import redirect_to

with redirect_to(snakemake.log[0]):
    aggregate(snakemake.input.rounds, snakemake.input.composition, snakemake.input.curriculum,
              Path(snakemake.output.al_runs).parent, list(snakemake.params.primary),
              snakemake.input.curriculum_tuning)
