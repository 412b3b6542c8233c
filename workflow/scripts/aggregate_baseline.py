# Thin adapter: Snakemake job -> rose.pipeline.aggregate_baseline.
from pathlib import Path

from rose.logs import redirect_to
from rose.pipeline import aggregate_baseline

with redirect_to(snakemake.log[0]):
    out = snakemake.output
    aggregate_baseline([Path(p).parent for p in snakemake.input.metrics], out.runs,
                       out.histories, out.summary, out.metrics,
                       Path(out.curves[0]).parent)
