# Thin adapter: Snakemake job -> rose.explore.experiments.setting_run.
from pathlib import Path

from rose.explore.experiments import setting_run
from rose.logs import redirect_to

with redirect_to(snakemake.log[0]):
    setting_run(dict(snakemake.params.explore), snakemake.wildcards.setting,
                list(snakemake.params.seeds), Path(snakemake.input.data).parent,
                Path(snakemake.output[0]).parent, threads=snakemake.threads,
                device=snakemake.params.device,
                checkpoint_seconds=snakemake.params.checkpoint_seconds,
                tuned=snakemake.input.tuned or None)
