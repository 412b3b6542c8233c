# Thin adapter: Snakemake job -> rose.active.experiments.curriculum_run.
from rose.active.experiments import curriculum_run
from rose.data.images import processed_dir_of
from rose.logs import redirect_to

with redirect_to(snakemake.log[0]):
    curriculum_run(dict(snakemake.params.active), snakemake.wildcards.bench,
                   list(snakemake.params.seeds), snakemake.output[0], snakemake.output[1],
                   threads=snakemake.threads,
                   device=snakemake.params.device,
                   checkpoint_seconds=snakemake.params.checkpoint_seconds,
                   processed_dir=processed_dir_of(snakemake.input.images))
