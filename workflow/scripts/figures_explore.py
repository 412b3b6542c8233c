# Thin adapter: Snakemake job -> rose.explore.report.figures.
from pathlib import Path

from rose.explore.report import figures
from rose.logs import redirect_to

with redirect_to(snakemake.log[0]):
    figures(Path(snakemake.input.aggregate[0]).parent,
            {"surface": snakemake.input.surface, "walk": snakemake.input.walk,
             "trajectory": snakemake.input.trajectory, "spectrum": snakemake.input.spectrum,
             "curves": snakemake.input.curves},
            {k: snakemake.output[k] for k in snakemake.params.names}, rule=snakemake.rule,
            config_hash=snakemake.params.config_hash)
