# Direction 1: the contour warm-up against the flat-minima methods (src/rose/explore).
# One job per setting runs every arm and seed (the seeds stacked as rose.nn.StackedNet rows), and
# one job runs the ablations; then aggregation, figures and generated LaTeX.

EXPL = config["explore"]
EXPL_SEEDS = EXPL.get("seeds", SEEDS)       # direction 1's own seeds where its power plan asks
try:                                         # a setting's own seeds are among them (refused now)
    for _setting in EXPL["settings"]:
        rose_explore.setting_seeds(EXPL, _setting, EXPL_SEEDS)
except ValueError as e:
    raise WorkflowError(str(e)) from None
EXPL_SETTINGS = list(EXPL["settings"]) + ["ablation"]
EXPL_FIGURES = ["accuracy", "sharpness", "curves", "spectrum", "surfaces", "trajectories",
                "ablation", "sweep"]
EXPL_TABLES = ["runs", "history", "walk", "curves", "surface", "trajectory", "spectrum",
               "tuning", "sweep"]



rule explore_setting:
    input:
        data=explore_dataset,
        tuned=explore_tuned,
        code=rose_code("explore/trainer.py", "explore/contour.py", "explore/tuned.py",
                       "tuning.py",
                       "explore/sam.py", "explore/gam.py", "explore/entropy_sgd.py",
                       "explore/experiments.py", "measure/hessian.py", "measure/sharpness.py",
                       "measure/landscape.py", "data/splits.py", *LAYER_CODE),
    output:
        expand(f"{RESULTS}explore/{{{{setting}}}}/{{table}}.csv", table=EXPL_TABLES),
    params:
        device=DEVICE,
        checkpoint_seconds=CHECKPOINT_SECONDS,
        explore=EXPL,
        seeds=EXPL_SEEDS,
    threads: 1
    resources:
        mem_mb=3000,
        runtime=retry_runtime(120),
        gpu=GPU,
    log:
        f"{LOGS}explore/{{setting}}/run.log",
    benchmark:
        f"{LOGS}benchmarks/explore_setting/{{setting}}.tsv"
    script:
        "../scripts/explore_setting.py"


rule aggregate_explore:
    input:
        runs=expand(f"{RESULTS}explore/{{setting}}/runs.csv", setting=EXPL_SETTINGS),
        tuning=expand(f"{RESULTS}explore/{{setting}}/tuning.csv", setting=EXPL_SETTINGS),
        sweep=expand(f"{RESULTS}explore/{{setting}}/sweep.csv", setting=EXPL_SETTINGS),
        code=rose_code("explore/report.py", *STATS_CODE),
    output:
        runs=f"{RESULTS}explore/runs.csv",
        summary=f"{RESULTS}explore/summary.csv",
        paired=f"{RESULTS}explore/paired.csv",
        correlation=f"{RESULTS}explore/correlation.csv",
        primary=f"{RESULTS}explore/primary.csv",
        metrics=f"{RESULTS}explore/metrics.json",
        tuning=f"{RESULTS}explore/tuning.csv",
        sweep=f"{RESULTS}explore/sweep.csv",
        batch_gap=f"{RESULTS}explore/batch_gap.csv",
    params:
        ablation_base=EXPL["ablation"]["base"],
        batch_gap=EXPL.get("batch_gap"),
        primary=EXPL["primary"],
    benchmark:
        f"{LOGS}benchmarks/aggregate_explore/job.tsv"
    log:
        f"{LOGS}aggregate_explore.log",
    script:
        "../scripts/aggregate_explore.py"


rule explore:
    input:
        rules.aggregate_explore.output,


wildcard_constraints:
    setting="|".join(EXPL_SETTINGS),
