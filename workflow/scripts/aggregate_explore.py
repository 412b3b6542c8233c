# Thin adapter: Snakemake job -> rose.explore.report.aggregate.
from pathlib import Path

from rose.explore.report import aggregate
from rose.logs import redirect_to

with redirect_to(snakemake.log[0]):
    aggregate(snakemake.input.runs, Path(snakemake.output.runs).parent,
              snakemake.params.ablation_base, list(snakemake.params.primary),
              snakemake.input.tuning, snakemake.input.sweep,
              batch_gap=snakemake.params.batch_gap)
