# Direction 2: several steps per batch inside an adaptive ball (src/rose/continual).
# One job per stream tunes every arm on the validation stream and runs it on the test stream;
# then aggregation, figures and generated LaTeX.

CONT = config["continual"]
CONT_STREAMS = list(CONT["streams"])
CONT_FIGURES = ["matrices", "anytime", "frontier", "radius"]
CONT_TABLES = ["runs", "matrix", "anytime", "trace", "tuning"]


rule continual_stream:
    input:
        code=rose_code("continual/streams.py", "continual/learner.py", "continual/ball.py",
                       "continual/distances.py", "continual/radius.py",
                       "continual/metrics.py", "continual/experiments.py",
                       "continual/penalties.py", "tuning.py", "contrasts.py",
                       "data/bundled.py", *LAYER_CODE),
    output:
        expand("results/continual/{{stream}}/{table}.csv", table=CONT_TABLES),
    params:
        device=DEVICE,
        checkpoint_seconds=CHECKPOINT_SECONDS,
        continual=CONT,
        seeds=SEEDS,
    threads: 1
    resources:
        mem_mb=3000,
        runtime=retry_runtime(120),
        gpu=GPU,
    log:
        "logs/continual/{stream}/run.log",
    benchmark:
        "logs/benchmarks/continual_stream/{stream}.tsv"
    script:
        "../scripts/continual_stream.py"


rule aggregate_continual:
    input:
        runs=expand("results/continual/{stream}/runs.csv", stream=CONT_STREAMS),
        traces=expand("results/continual/{stream}/trace.csv", stream=CONT_STREAMS),
        code=rose_code("continual/report.py", *STATS_CODE),
    output:
        runs="results/continual/runs.csv",
        summary="results/continual/summary.csv",
        paired="results/continual/paired.csv",
        primary="results/continual/primary.csv",
        metrics="results/continual/metrics.json",
        trace="results/continual/trace.csv",
        tuning="results/continual/tuning.csv",
    params:
        primary=CONT["primary"],
    benchmark:
        "logs/benchmarks/aggregate_continual/job.tsv"
    log:
        "logs/aggregate_continual.log",
    script:
        "../scripts/aggregate_continual.py"


rule continual:
    input:
        rules.aggregate_continual.output,


wildcard_constraints:
    stream="|".join(CONT_STREAMS),
