# The first baseline: an MLP trained with SGD on each dataset, one job per (method, seed).

BASELINE_RUNS = expand(
    "results/baseline/{dataset}/{method}/seed{seed}",
    dataset=config["baseline"]["datasets"],
    method=list(config["baseline"]["methods"]),
    seed=SEEDS,
)


rule train_baseline:
    input:
        data="data/processed/{dataset}.npz",
        manifest="data/processed/{dataset}.manifest.json",
        code=rose_code("train.py", "models.py", "checkpoint.py", "data/splits.py"),
    output:
        metrics="results/baseline/{dataset}/{method}/seed{seed}/metrics.json",
        history="results/baseline/{dataset}/{method}/seed{seed}/history.csv",
        model="results/baseline/{dataset}/{method}/seed{seed}/model.ckpt",
    params:
        spec=baseline_spec,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=retry_runtime(60),
        gpu=GPU,
    log:
        "logs/baseline/{dataset}/{method}/seed{seed}/train.log",
    benchmark:
        "logs/benchmarks/train_baseline/{dataset}-{method}-{seed}.tsv"
    script:
        "../scripts/train.py"


rule aggregate_baseline:
    input:
        metrics=[f"{d}/metrics.json" for d in BASELINE_RUNS],
        history=[f"{d}/history.csv" for d in BASELINE_RUNS],
        code=rose_code("results.py", "stats.py", "baseline.py", "pipeline.py"),
    output:
        runs="results/baseline/runs.csv",
        histories="results/baseline/histories.csv",
        summary="results/baseline/summary.csv",
        metrics="results/baseline/metrics.json",
        curves=expand(
            "results/baseline/curves/{dataset}_{method}.csv",
            dataset=config["baseline"]["datasets"],
            method=list(config["baseline"]["methods"]),
        ),
    benchmark:
        "logs/benchmarks/aggregate_baseline/job.tsv"
    log:
        "logs/aggregate_baseline.log",
    script:
        "../scripts/aggregate_baseline.py"


rule baseline:
    input:
        rules.aggregate_baseline.output,
