# Thin adapter: Snakemake job -> rose.continual.experiments.stream_run.
from pathlib import Path

from rose.continual.experiments import stream_run
from rose.data.images import processed_dir_of
from rose.logs import redirect_to

with redirect_to(snakemake.log[0]):
    stream_run(dict(snakemake.params.continual), snakemake.wildcards.stream,
               list(snakemake.params.seeds), Path(snakemake.output[0]).parent,
               threads=snakemake.threads, device=snakemake.params.device,
               checkpoint_seconds=snakemake.params.checkpoint_seconds,
               processed_dir=processed_dir_of(snakemake.input.images))
