# Thin adapter: Snakemake job -> rose.pipeline.prepare_dataset.
from rose.logs import redirect_to
from rose.pipeline import prepare_dataset

with redirect_to(snakemake.log[0]):
    prepare_dataset(snakemake.wildcards.dataset, dict(snakemake.params.data_cfg),
                    snakemake.output.npz, snakemake.output.manifest)
