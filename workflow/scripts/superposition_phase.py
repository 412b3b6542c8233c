# Thin adapter: Snakemake job -> rose.superposition.experiments.phase.
from rose.logs import redirect_to
from rose.superposition.experiments import phase

with redirect_to(snakemake.log[0]):
    phase(dict(snakemake.params.phase), snakemake.output[0], threads=snakemake.threads,
          device=snakemake.params.device, checkpoint_seconds=snakemake.params.checkpoint_seconds)
