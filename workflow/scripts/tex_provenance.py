# Thin adapter: Snakemake job -> rose.pipeline.tex_provenance.
from rose.logs import redirect_to
from rose.pipeline import tex_provenance

with redirect_to(snakemake.log[0]):
    tex_provenance(snakemake.params.config_name, snakemake.params.config_hash,
                   snakemake.output[0], snakemake.input.lock, snakemake.input.timings)
