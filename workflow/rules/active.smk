# Direction 3a: choosing the training data against spurious correlations (src/rose/active).
# Per benchmark with known groups: the pool-based active-learning loop (all acquisitions and
# seeds batched in one job) and the curriculum / group-robust runs on the whole pool; then
# aggregation, figures and generated LaTeX.

ACT = config["active"]
ACT_BENCHMARKS = list(ACT["benchmarks"])
ACT_FIGURES = ["budget", "budget_all", "composition", "minority", "curriculum"]
ACT_DATA_CODE = ["data/group_benchmarks.py", "data/bundled.py", "data/images.py",
                 "data/splits.py", "active/experiments.py", "active/learner.py", *LAYER_CODE]
# the prepared npz + manifest of a prepared active.dataset ([] for mnist5k)
ACT_IMAGES = rose_images.prepared_files(ACT["dataset"], PROCESSED)


rule active_learning:
    input:
        code=rose_code(*ACT_DATA_CODE, "active/loop.py", "active/acquisitions.py",
                       "active/alvin.py", "active/analogy.py"),
        images=ACT_IMAGES,
    output:
        rounds=f"{RESULTS}active/al/{{bench}}.csv",
        composition=f"{RESULTS}active/al/{{bench}}_composition.csv",
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
        f"{LOGS}active/al/{{bench}}.log",
    benchmark:
        f"{LOGS}benchmarks/active_learning/{{bench}}.tsv"
    script:
        "../scripts/active_learning.py"


rule active_curriculum:
    input:
        code=rose_code(*ACT_DATA_CODE, "active/curriculum.py", "active/rho_loss.py",
                       "active/group_robust.py"),
        images=ACT_IMAGES,
    output:
        f"{RESULTS}active/curriculum/{{bench}}.csv",
        f"{RESULTS}active/curriculum/{{bench}}_tuning.csv",
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
        f"{LOGS}active/curriculum/{{bench}}.log",
    benchmark:
        f"{LOGS}benchmarks/active_curriculum/{{bench}}.tsv"
    script:
        "../scripts/active_curriculum.py"


rule aggregate_active:
    input:
        rounds=expand(f"{RESULTS}active/al/{{bench}}.csv", bench=ACT_BENCHMARKS),
        composition=expand(f"{RESULTS}active/al/{{bench}}_composition.csv", bench=ACT_BENCHMARKS),
        curriculum=expand(f"{RESULTS}active/curriculum/{{bench}}.csv", bench=ACT_BENCHMARKS),
        curriculum_tuning=expand(f"{RESULTS}active/curriculum/{{bench}}_tuning.csv",
                                 bench=ACT_BENCHMARKS),
        code=rose_code("active/summary.py", "active/report.py", *STATS_CODE),
    output:
        al_runs=f"{RESULTS}active/al_runs.csv",
        al_summary=f"{RESULTS}active/al_summary.csv",
        al_paired=f"{RESULTS}active/al_paired.csv",
        composition=f"{RESULTS}active/composition.csv",
        curriculum_runs=f"{RESULTS}active/curriculum_runs.csv",
        curriculum_summary=f"{RESULTS}active/curriculum_summary.csv",
        curriculum_paired=f"{RESULTS}active/curriculum_paired.csv",
        curriculum_tuning=f"{RESULTS}active/curriculum_tuning.csv",
        primary=f"{RESULTS}active/primary.csv",
        metrics=f"{RESULTS}active/metrics.json",
    params:
        primary=ACT["primary"],
    benchmark:
        f"{LOGS}benchmarks/aggregate_active/job.tsv"
    log:
        f"{LOGS}aggregate_active.log",
    script:
        "../scripts/aggregate_active.py"


rule active:
    input:
        rules.aggregate_active.output,


wildcard_constraints:
    bench="|".join(ACT_BENCHMARKS),
