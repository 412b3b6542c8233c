# Thin adapter: Snakemake job -> rose.pipeline.run_training (the spec comes from config +
# wildcards via rose.baseline.run_spec; no config string ever reaches a shell).
from pathlib import Path

from rose.logs import redirect_to
from rose.pipeline import run_training

with redirect_to(snakemake.log[0]):
    run_training(dict(snakemake.params.spec), snakemake.input.data,
                 Path(snakemake.output.metrics).parent, threads=snakemake.threads)
