# Direction 3a: choosing the training data against spurious correlations (src/rose/active).
# Per benchmark with known groups: the pool-based active-learning loop (all acquisitions and
# seeds batched in one job) and the curriculum / group-robust runs on the whole pool; then
# aggregation, figures and generated LaTeX.

ACT = config["active"]
ACT_BENCHMARKS = list(ACT["benchmarks"])
ACT_FIGURES = ["budget", "budget_all", "composition", "minority", "curriculum"]
ACT_DATA_CODE = ["data/group_benchmarks.py", "data/bundled.py", "active/experiments.py",
                 "active/learner.py", *LAYER_CODE]


rule active_learning:
    input:
        code=rose_code(*ACT_DATA_CODE, "active/loop.py", "active/acquisitions.py",
                       "active/alvin.py", "active/analogy.py"),
    output:
        rounds="results/active/al/{bench}.csv",
        composition="results/active/al/{bench}_composition.csv",
    params:
        device=DEVICE,
        checkpoint_seconds=CHECKPOINT_SECONDS,
        active=ACT,
        seeds=SEEDS,
    threads: 1
    resources:
        mem_mb=3000,
        runtime=retry_runtime(120),
        gpu=GPU,
    log:
        "logs/active/al/{bench}.log",
    benchmark:
        "logs/benchmarks/active_learning/{bench}.tsv"
    script:
        "../scripts/active_learning.py"


rule active_curriculum:
    input:
        code=rose_code(*ACT_DATA_CODE, "active/curriculum.py", "active/rho_loss.py",
                       "active/group_robust.py"),
    output:
        "results/active/curriculum/{bench}.csv",
        "results/active/curriculum/{bench}_tuning.csv",
    params:
        device=DEVICE,
        checkpoint_seconds=CHECKPOINT_SECONDS,
        active=ACT,
        seeds=SEEDS,
    threads: 1
    resources:
        mem_mb=3000,
        runtime=retry_runtime(120),
        gpu=GPU,
    log:
        "logs/active/curriculum/{bench}.log",
    benchmark:
        "logs/benchmarks/active_curriculum/{bench}.tsv"
    script:
        "../scripts/active_curriculum.py"


rule aggregate_active:
    input:
        rounds=expand("results/active/al/{bench}.csv", bench=ACT_BENCHMARKS),
        composition=expand("results/active/al/{bench}_composition.csv", bench=ACT_BENCHMARKS),
        curriculum=expand("results/active/curriculum/{bench}.csv", bench=ACT_BENCHMARKS),
        curriculum_tuning=expand("results/active/curriculum/{bench}_tuning.csv",
                                 bench=ACT_BENCHMARKS),
        code=rose_code("active/summary.py", "active/report.py", *STATS_CODE),
    output:
        al_runs="results/active/al_runs.csv",
        al_summary="results/active/al_summary.csv",
        al_paired="results/active/al_paired.csv",
        composition="results/active/composition.csv",
        curriculum_runs="results/active/curriculum_runs.csv",
        curriculum_summary="results/active/curriculum_summary.csv",
        curriculum_paired="results/active/curriculum_paired.csv",
        curriculum_tuning="results/active/curriculum_tuning.csv",
        primary="results/active/primary.csv",
        metrics="results/active/metrics.json",
    params:
        primary=ACT["primary"],
    benchmark:
        "logs/benchmarks/aggregate_active/job.tsv"
    log:
        "logs/aggregate_active.log",
    script:
        "../scripts/aggregate_active.py"


rule active:
    input:
        rules.aggregate_active.output,


wildcard_constraints:
    bench="|".join(ACT_BENCHMARKS),
