# Thin adapter: Snakemake job -> rose.train.train_from_file (the spec comes from config +
# wildcards via rose.baseline.run_spec; no config string ever reaches a shell).
from pathlib import Path

from rose.logs import redirect_to
from rose.train import train_from_file

with redirect_to(snakemake.log[0]):
    train_from_file(dict(snakemake.params.spec), snakemake.input.data,
                    Path(snakemake.output.metrics).parent, threads=snakemake.threads,
                    weights_path=snakemake.params.weights)
