# Thin adapter: Snakemake job -> rose.superposition.experiments.toy_penalty.
from pathlib import Path

from rose.logs import redirect_to
from rose.superposition.experiments import toy_penalty

with redirect_to(snakemake.log[0]):
    toy_penalty(dict(snakemake.params.penalty), Path(snakemake.output.instances).parent,
                threads=snakemake.threads, device=snakemake.params.device,
                checkpoint_seconds=snakemake.params.checkpoint_seconds)
