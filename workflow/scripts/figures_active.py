# Thin adapter: Snakemake job -> rose.active.report.figures.
from pathlib import Path

from rose.active.report import figures
from rose.logs import redirect_to

with redirect_to(snakemake.log[0]):
    figures(Path(snakemake.input.al_runs).parent, dict(snakemake.output.items()),
            rule=snakemake.rule, config_hash=snakemake.params.config_hash)
