# Thin adapter: Snakemake job -> rose.writeup.write.
from pathlib import Path

from rose.logs import redirect_to
from rose.writeup import write

with redirect_to(snakemake.log[0]):
    write(Path(snakemake.input.primary[0]).parents[1], Path(snakemake.output.answers).parent)
