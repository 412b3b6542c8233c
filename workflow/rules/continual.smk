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
                       "data/bundled.py", "data/images.py", "data/splits.py", *LAYER_CODE),
        # the prepared npz + manifest of a prepared continual.dataset ([] for mnist5k, digits)
        images=rose_images.prepared_files(CONT["dataset"], PROCESSED),
    output:
        expand(f"{RESULTS}continual/{{{{stream}}}}/{{table}}.csv", table=CONT_TABLES),
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
        f"{LOGS}continual/{{stream}}/run.log",
    benchmark:
        f"{LOGS}benchmarks/continual_stream/{{stream}}.tsv"
    script:
        "../scripts/continual_stream.py"


rule aggregate_continual:
    input:
        runs=expand(f"{RESULTS}continual/{{stream}}/runs.csv", stream=CONT_STREAMS),
        traces=expand(f"{RESULTS}continual/{{stream}}/trace.csv", stream=CONT_STREAMS),
        code=rose_code("continual/report.py", *STATS_CODE),
    output:
        runs=f"{RESULTS}continual/runs.csv",
        summary=f"{RESULTS}continual/summary.csv",
        paired=f"{RESULTS}continual/paired.csv",
        primary=f"{RESULTS}continual/primary.csv",
        metrics=f"{RESULTS}continual/metrics.json",
        trace=f"{RESULTS}continual/trace.csv",
        tuning=f"{RESULTS}continual/tuning.csv",
    params:
        primary=CONT["primary"],
    benchmark:
        f"{LOGS}benchmarks/aggregate_continual/job.tsv"
    log:
        f"{LOGS}aggregate_continual.log",
    script:
        "../scripts/aggregate_continual.py"


rule continual:
    input:
        rules.aggregate_continual.output,


wildcard_constraints:
    stream="|".join(CONT_STREAMS),
