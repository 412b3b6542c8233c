# Thin adapter: Snakemake job -> rose.data.splits.prepare_to_files.
from rose.data.splits import prepare_to_files
from rose.logs import redirect_to

with redirect_to(snakemake.log[0]):
    prepare_to_files(snakemake.wildcards.dataset, dict(snakemake.params.data_cfg),
                     snakemake.output.npz, snakemake.output.manifest)
