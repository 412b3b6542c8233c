# Direction 3b: a loss that discourages superposition (src/rose/superposition).
# Toy models (sparsity sweeps, phase diagram, penalties with a privileged basis), then the
# penalties on a Colored MNIST MLP; aggregation, figures and generated LaTeX.

SUP = config["superposition"]
SUP_FIGURES = ["geometry", "gram", "dimensionality", "phase", "frontier", "histograms",
               "shortcut"]
SUP_SHORTCUT_RUNS = expand(
    "results/superposition/shortcut/{benchmark}.csv", benchmark=SUP["shortcut"]["benchmarks"]
)
SUP_TOY_DIRS = {k: f"results/superposition/toy/{k}" for k in SUP["toy"]}
SUP_CODE = ["superposition/toy_model.py", "superposition/penalties.py",
            "superposition/geometry.py", "superposition/monosemanticity.py",
            "superposition/experiments.py", *LAYER_CODE]


rule superposition_toy_sweep:
    input:
        code=rose_code(*SUP_CODE),
    output:
        instances="results/superposition/toy/{sweep}/instances.csv",
        features="results/superposition/toy/{sweep}/features.csv",
        weights="results/superposition/toy/{sweep}/weights.npz",
    params:
        device=DEVICE,
        checkpoint_seconds=CHECKPOINT_SECONDS,
        sweep=lambda w: SUP["toy"][w.sweep],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=retry_runtime(120),
        gpu=GPU,
    log:
        "logs/superposition/toy/{sweep}/run.log",
    benchmark:
        "logs/benchmarks/superposition_toy_sweep/{sweep}.tsv"
    script:
        "../scripts/superposition_toy_sweep.py"


rule superposition_phase:
    input:
        code=rose_code(*SUP_CODE, "superposition/phase_diagram.py"),
    output:
        "results/superposition/phase/phase.csv",
    params:
        device=DEVICE,
        checkpoint_seconds=CHECKPOINT_SECONDS,
        phase=SUP["phase"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=retry_runtime(120),
        gpu=GPU,
    log:
        "logs/superposition/phase/run.log",
    benchmark:
        "logs/benchmarks/superposition_phase/job.tsv"
    script:
        "../scripts/superposition_phase.py"


rule superposition_toy_penalty:
    input:
        code=rose_code(*SUP_CODE),
    output:
        instances="results/superposition/toy_penalty/instances.csv",
        features="results/superposition/toy_penalty/features.csv",
    params:
        device=DEVICE,
        checkpoint_seconds=CHECKPOINT_SECONDS,
        penalty=SUP["penalty"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=retry_runtime(120),
        gpu=GPU,
    log:
        "logs/superposition/toy_penalty/run.log",
    benchmark:
        "logs/benchmarks/superposition_toy_penalty/job.tsv"
    script:
        "../scripts/superposition_toy_penalty.py"


rule superposition_shortcut:
    input:
        code=rose_code(*SUP_CODE, "superposition/shortcut.py", "data/colored_mnist.py",
                       "data/bundled.py"),
    output:
        "results/superposition/shortcut/{benchmark}.csv",
    params:
        device=DEVICE,
        checkpoint_seconds=CHECKPOINT_SECONDS,
        shortcut=SUP["shortcut"],
        seeds=SEEDS,
    threads: 1
    resources:
        mem_mb=3000,
        runtime=retry_runtime(120),
        gpu=GPU,
    log:
        "logs/superposition/shortcut/{benchmark}.log",
    benchmark:
        "logs/benchmarks/superposition_shortcut/{benchmark}.tsv"
    script:
        "../scripts/superposition_shortcut.py"


rule aggregate_superposition:
    input:
        shortcut=SUP_SHORTCUT_RUNS,
        penalty="results/superposition/toy_penalty/instances.csv",
        code=rose_code("superposition/summary.py", "superposition/frontier.py",
                       "superposition/monosemanticity.py", "superposition/report.py",
                       *STATS_CODE),
    output:
        runs="results/superposition/shortcut_runs.csv",
        summary="results/superposition/shortcut_summary.csv",
        selected="results/superposition/shortcut_selected.csv",
        tuning="results/superposition/shortcut_tuning.csv",
        primary="results/superposition/primary.csv",
        paired="results/superposition/shortcut_paired.csv",
        toy_runs="results/superposition/toy_penalty_runs.csv",
        toy_summary="results/superposition/toy_penalty_summary.csv",
        frontier="results/superposition/toy_frontier.csv",
        matched="results/superposition/toy_matched.csv",
        metrics="results/superposition/metrics.json",
    params:
        primary=SUP["primary"],
    benchmark:
        "logs/benchmarks/aggregate_superposition/job.tsv"
    log:
        "logs/aggregate_superposition.log",
    script:
        "../scripts/aggregate_superposition.py"


rule superposition:
    input:
        rules.aggregate_superposition.output,
        expand("results/superposition/toy/{sweep}/weights.npz", sweep=list(SUP["toy"])),
        "results/superposition/phase/phase.csv",


wildcard_constraints:
    sweep="|".join(SUP["toy"]),
    benchmark="|".join(SUP["shortcut"]["benchmarks"]),
