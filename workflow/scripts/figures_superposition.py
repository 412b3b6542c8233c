# Thin adapter: Snakemake job -> rose.superposition.report.figures.
from rose.logs import redirect_to
from rose.superposition.report import figures

with redirect_to(snakemake.log[0]):
    figures(dict(snakemake.params.toy_dirs), snakemake.input.phase, snakemake.input.toy_penalty,
            snakemake.input.toy_penalty_features,
            snakemake.input.shortcut, dict(snakemake.output.items()), rule=snakemake.rule,
            config_hash=snakemake.params.config_hash, uniform_m=snakemake.params.uniform_m)
