# Thin adapter: Snakemake job -> rose.continual.report.figures.
from rose.continual.report import figures
from rose.logs import redirect_to

with redirect_to(snakemake.log[0]):
    figures(snakemake.input.runs, snakemake.input.matrix, snakemake.input.anytime,
            snakemake.input.trace, dict(snakemake.output.items()), rule=snakemake.rule,
            config_hash=snakemake.params.config_hash)
