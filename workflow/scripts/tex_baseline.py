# Thin adapter: Snakemake job -> rose.pipeline.tex_baseline.
from rose.logs import redirect_to
from rose.pipeline import tex_baseline

with redirect_to(snakemake.log[0]):
    tex_baseline(snakemake.input.summary, snakemake.output.table, snakemake.output.macros,
                 headline=tuple(snakemake.params.headline))
