# Thin adapter: Snakemake job -> rose.active.experiments.active_learning_run.
from rose.active.experiments import active_learning_run
from rose.data.images import processed_dir_of
from rose.logs import redirect_to

with redirect_to(snakemake.log[0]):
    active_learning_run(dict(snakemake.params.active), snakemake.wildcards.bench,
                        list(snakemake.params.seeds), snakemake.output.rounds,
                        snakemake.output.composition, threads=snakemake.threads,
                        device=snakemake.params.device,
                        checkpoint_seconds=snakemake.params.checkpoint_seconds,
                        processed_dir=processed_dir_of(snakemake.input.images))
