# The first baseline: an MLP trained with SGD on each dataset, one job per (method, seed).

BASELINE_RUNS = expand(
    RESULTS + "/baseline/{dataset}/{method}/seed{seed}",
    dataset=config["baseline"]["datasets"],
    method=list(config["baseline"]["methods"]),
    seed=SEEDS,
)


rule train_baseline:
    input:
        data=PROCESSED + "/{dataset}.npz",
        manifest=PROCESSED + "/{dataset}.manifest.json",
        code=rose_code("train.py", "models.py", "checkpoint.py", "data/splits.py"),
    output:
        metrics=RESULTS + "/baseline/{dataset}/{method}/seed{seed}/metrics.json",
        history=RESULTS + "/baseline/{dataset}/{method}/seed{seed}/history.csv",
    params:
        spec=baseline_spec,
        # the final weights: beside the results, not among the rule's outputs, so a clone that
        # pulls only the small results (the in-repository store) plans no training job; DVC
        # keeps them on the shared remote (dvc.yaml)
        weights=CHECKPOINTS + "/baseline/{dataset}/{method}/seed{seed}/model.ckpt",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=retry_runtime(60),
        gpu=GPU,
    log:
        LOGS + "/baseline/{dataset}/{method}/seed{seed}/train.log",
    benchmark:
        LOGS + "/benchmarks/train_baseline/{dataset}-{method}-{seed}.tsv"
    script:
        "../scripts/train.py"


rule aggregate_baseline:
    input:
        metrics=[f"{d}/metrics.json" for d in BASELINE_RUNS],
        history=[f"{d}/history.csv" for d in BASELINE_RUNS],
        code=rose_code("results.py", "stats.py", "baseline.py", "pipeline.py"),
    output:
        runs=RESULTS + "/baseline/runs.csv",
        histories=RESULTS + "/baseline/histories.csv",
        summary=RESULTS + "/baseline/summary.csv",
        metrics=RESULTS + "/baseline/metrics.json",
        curves=expand(
            RESULTS + "/baseline/curves/{dataset}_{method}.csv",
            dataset=config["baseline"]["datasets"],
            method=list(config["baseline"]["methods"]),
        ),
    benchmark:
        LOGS + "/benchmarks/aggregate_baseline/job.tsv"
    log:
        LOGS + "/aggregate_baseline.log",
    script:
        "../scripts/aggregate_baseline.py"


rule baseline:
    input:
        rules.aggregate_baseline.output,
