# Thin adapter: Snakemake job -> workflow/scripts/build_paper.sh NAME, the config's name passed
# as one argv word (no shell line is built from the config), output to the job's log.
import subprocess
import sys

with open(snakemake.log[0], "w") as log:
    done = subprocess.run(["bash", "workflow/scripts/build_paper.sh", snakemake.params.name],
                          stdout=log, stderr=subprocess.STDOUT)
if done.returncode != 0:
    sys.exit(f"the paper build failed (exit {done.returncode}); see {snakemake.log[0]}")
