# Direction 3b: a loss that discourages superposition (src/rose/superposition).
# Toy models (sparsity sweeps, phase diagram, penalties with a privileged basis), then the
# penalties on a Colored MNIST MLP; aggregation, figures and generated LaTeX.

SUP = config["superposition"]
SUP_FIGURES = ["geometry", "gram", "dimensionality", "phase", "frontier", "histograms",
               "shortcut"]
SUP_SHORTCUT_RUNS = expand(
    f"{RESULTS}superposition/shortcut/{{benchmark}}.csv", benchmark=SUP["shortcut"]["benchmarks"]
)
SUP_TOY_DIRS = {k: f"{RESULTS}superposition/toy/{k}" for k in SUP["toy"]}
SUP_CODE = ["superposition/toy_model.py", "superposition/penalties.py",
            "superposition/geometry.py", "superposition/monosemanticity.py",
            "superposition/experiments.py", *LAYER_CODE]


rule superposition_toy_sweep:
    input:
        code=rose_code(*SUP_CODE),
    output:
        instances=f"{RESULTS}superposition/toy/{{sweep}}/instances.csv",
        features=f"{RESULTS}superposition/toy/{{sweep}}/features.csv",
        weights=f"{RESULTS}superposition/toy/{{sweep}}/weights.npz",
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
        f"{LOGS}superposition/toy/{{sweep}}/run.log",
    benchmark:
        f"{LOGS}benchmarks/superposition_toy_sweep/{{sweep}}.tsv"
    script:
        "../scripts/superposition_toy_sweep.py"


rule superposition_phase:
    input:
        code=rose_code(*SUP_CODE, "superposition/phase_diagram.py"),
    output:
        f"{RESULTS}superposition/phase/phase.csv",
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
        f"{LOGS}superposition/phase/run.log",
    benchmark:
        f"{LOGS}benchmarks/superposition_phase/job.tsv"
    script:
        "../scripts/superposition_phase.py"


rule superposition_toy_penalty:
    input:
        code=rose_code(*SUP_CODE),
    output:
        instances=f"{RESULTS}superposition/toy_penalty/instances.csv",
        features=f"{RESULTS}superposition/toy_penalty/features.csv",
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
        f"{LOGS}superposition/toy_penalty/run.log",
    benchmark:
        f"{LOGS}benchmarks/superposition_toy_penalty/job.tsv"
    script:
        "../scripts/superposition_toy_penalty.py"


rule superposition_shortcut:
    input:
        code=rose_code(*SUP_CODE, "superposition/shortcut.py", "data/colored_mnist.py",
                       "data/bundled.py", "data/images.py", "data/splits.py"),
        # the prepared npz + manifest of a prepared shortcut dataset ([] for mnist5k)
        images=rose_images.prepared_files(SUP["shortcut"]["dataset"], PROCESSED),
    output:
        f"{RESULTS}superposition/shortcut/{{benchmark}}.csv",
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
        f"{LOGS}superposition/shortcut/{{benchmark}}.log",
    benchmark:
        f"{LOGS}benchmarks/superposition_shortcut/{{benchmark}}.tsv"
    script:
        "../scripts/superposition_shortcut.py"


rule aggregate_superposition:
    input:
        shortcut=SUP_SHORTCUT_RUNS,
        penalty=f"{RESULTS}superposition/toy_penalty/instances.csv",
        code=rose_code("superposition/summary.py", "superposition/frontier.py",
                       "superposition/monosemanticity.py", "superposition/report.py",
                       *STATS_CODE),
    output:
        runs=f"{RESULTS}superposition/shortcut_runs.csv",
        summary=f"{RESULTS}superposition/shortcut_summary.csv",
        selected=f"{RESULTS}superposition/shortcut_selected.csv",
        tuning=f"{RESULTS}superposition/shortcut_tuning.csv",
        primary=f"{RESULTS}superposition/primary.csv",
        paired=f"{RESULTS}superposition/shortcut_paired.csv",
        toy_runs=f"{RESULTS}superposition/toy_penalty_runs.csv",
        toy_summary=f"{RESULTS}superposition/toy_penalty_summary.csv",
        frontier=f"{RESULTS}superposition/toy_frontier.csv",
        matched=f"{RESULTS}superposition/toy_matched.csv",
        metrics=f"{RESULTS}superposition/metrics.json",
    params:
        primary=SUP["primary"],
    benchmark:
        f"{LOGS}benchmarks/aggregate_superposition/job.tsv"
    log:
        f"{LOGS}aggregate_superposition.log",
    script:
        "../scripts/aggregate_superposition.py"


rule superposition:
    input:
        rules.aggregate_superposition.output,
        expand(f"{RESULTS}superposition/toy/{{sweep}}/weights.npz", sweep=list(SUP["toy"])),
        f"{RESULTS}superposition/phase/phase.csv",


wildcard_constraints:
    sweep="|".join(SUP["toy"]),
    benchmark="|".join(SUP["shortcut"]["benchmarks"]),
