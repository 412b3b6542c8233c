#!/usr/bin/env bash
# A local stand-in for sbatch/qsub, for the cluster-generic executor test: record the job script
# Snakemake hands us (last argument), run it in the background and print a job id, as a
# scheduler would.
jobscript="${@: -1}"
echo "$jobscript" >> .snakemake/submitted_jobs.txt
nohup bash "$jobscript" > /dev/null 2>&1 &
echo "$!"
