# The first baseline: an MLP trained with SGD on each dataset, one job per (method, seed).

BASELINE_RUNS = expand(
    f"{RESULTS}baseline/{{dataset}}/{{method}}/seed{{seed}}",
    dataset=config["baseline"]["datasets"],
    method=list(config["baseline"]["methods"]),
    seed=SEEDS,
)


rule train_baseline:
    input:
        data=f"{PROCESSED}{{dataset}}.npz",
        manifest=f"{PROCESSED}{{dataset}}.manifest.json",
        code=rose_code("train.py", "models.py", "checkpoint.py", "data/splits.py"),
    output:
        metrics=f"{RESULTS}baseline/{{dataset}}/{{method}}/seed{{seed}}/metrics.json",
        history=f"{RESULTS}baseline/{{dataset}}/{{method}}/seed{{seed}}/history.csv",
    params:
        spec=baseline_spec,
        # the final weights: beside the results, not among the rule's outputs, so a clone that
        # pulls only the small results (the in-repository store) plans no training job; DVC
        # keeps them on the shared remote (dvc.yaml)
        weights=f"{CHECKPOINTS}baseline/{{dataset}}/{{method}}/seed{{seed}}/model.ckpt",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=retry_runtime(60),
        gpu=GPU,
    log:
        f"{LOGS}baseline/{{dataset}}/{{method}}/seed{{seed}}/train.log",
    benchmark:
        f"{LOGS}benchmarks/train_baseline/{{dataset}}-{{method}}-{{seed}}.tsv"
    script:
        "../scripts/train.py"


rule aggregate_baseline:
    input:
        metrics=[f"{d}/metrics.json" for d in BASELINE_RUNS],
        history=[f"{d}/history.csv" for d in BASELINE_RUNS],
        code=rose_code("results.py", "stats.py", "baseline.py", "pipeline.py"),
    output:
        runs=f"{RESULTS}baseline/runs.csv",
        histories=f"{RESULTS}baseline/histories.csv",
        summary=f"{RESULTS}baseline/summary.csv",
        metrics=f"{RESULTS}baseline/metrics.json",
        curves=expand(
            f"{RESULTS}baseline/curves/{{dataset}}_{{method}}.csv",
            dataset=config["baseline"]["datasets"],
            method=list(config["baseline"]["methods"]),
        ),
    benchmark:
        f"{LOGS}benchmarks/aggregate_baseline/job.tsv"
    log:
        f"{LOGS}aggregate_baseline.log",
    script:
        "../scripts/aggregate_baseline.py"


rule baseline:
    input:
        rules.aggregate_baseline.output,
