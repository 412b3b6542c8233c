# Thin adapter: Snakemake job -> rose.pipeline.figure_baseline.
from rose.logs import redirect_to
from rose.pipeline import figure_baseline

with redirect_to(snakemake.log[0]):
    figure_baseline(snakemake.input.runs, snakemake.input.histories, snakemake.output[0],
                    rule=snakemake.rule, config_hash=snakemake.params.config_hash)
