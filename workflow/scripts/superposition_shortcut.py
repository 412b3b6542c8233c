# Thin adapter: Snakemake job -> rose.superposition.experiments.shortcut.
from rose.data.images import processed_dir_of
from rose.logs import redirect_to
from rose.superposition.experiments import shortcut

with redirect_to(snakemake.log[0]):
    shortcut(dict(snakemake.params.shortcut), snakemake.wildcards.benchmark,
             list(snakemake.params.seeds), snakemake.output[0],
             threads=snakemake.threads, device=snakemake.params.device,
             checkpoint_seconds=snakemake.params.checkpoint_seconds,
             processed_dir=processed_dir_of(snakemake.input.images))
