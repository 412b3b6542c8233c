# Figures only read results tables: editing a plot never retrains anything.


rule figure_baseline_learning_curves:
    input:
        runs="results/baseline/runs.csv",
        histories="results/baseline/histories.csv",
        code=rose_code("plots/__init__.py", "plots/baseline.py", "pipeline.py"),
    output:
        report(
            "figures/baseline/learning_curves.pdf",
            caption="../report/baseline_learning_curves.rst",
            category="Baseline",
        ),
    params:
        config_hash=CONFIG_HASH,
    benchmark:
        "logs/benchmarks/figure_baseline_learning_curves/job.tsv"
    log:
        "logs/figure_baseline_learning_curves.log",
    script:
        "../scripts/figure_baseline.py"


rule figures_superposition:
    input:
        toy=expand(
            "results/superposition/toy/{sweep}/{f}",
            sweep=list(SUP["toy"]),
            f=["instances.csv", "features.csv", "weights.npz"],
        ),
        phase="results/superposition/phase/phase.csv",
        toy_penalty="results/superposition/toy_penalty_runs.csv",
        toy_penalty_features="results/superposition/toy_penalty/features.csv",
        shortcut="results/superposition/shortcut_runs.csv",
        code=rose_code("plots/__init__.py", "plots/superposition.py",
                       "superposition/report.py"),
    output:
        **{
            name: report(
                f"figures/superposition/{name}.pdf",
                caption=f"../report/superposition_{name}.rst",
                category="Superposition",
            )
            for name in SUP_FIGURES
        },
    params:
        config_hash=CONFIG_HASH,
        toy_dirs=SUP_TOY_DIRS,
        uniform_m=SUP["toy"]["uniform"]["m"],
    benchmark:
        "logs/benchmarks/figures_superposition/job.tsv"
    log:
        "logs/figures_superposition.log",
    script:
        "../scripts/figures_superposition.py"


rule figures_active:
    input:
        al_runs="results/active/al_runs.csv",
        al_summary="results/active/al_summary.csv",
        composition="results/active/composition.csv",
        curriculum_runs="results/active/curriculum_runs.csv",
        code=rose_code("plots/__init__.py", "plots/active.py", "active/report.py"),
    output:
        **{
            name: report(
                f"figures/active/{name}.pdf",
                caption=f"../report/active_{name}.rst",
                category="Active and curriculum learning",
            )
            for name in ACT_FIGURES
        },
    params:
        config_hash=CONFIG_HASH,
    benchmark:
        "logs/benchmarks/figures_active/job.tsv"
    log:
        "logs/figures_active.log",
    script:
        "../scripts/figures_active.py"


rule figures_continual:
    input:
        runs=expand("results/continual/{stream}/runs.csv", stream=CONT_STREAMS),
        matrix=expand("results/continual/{stream}/matrix.csv", stream=CONT_STREAMS),
        anytime=expand("results/continual/{stream}/anytime.csv", stream=CONT_STREAMS),
        trace=expand("results/continual/{stream}/trace.csv", stream=CONT_STREAMS),
        code=rose_code("plots/__init__.py", "plots/continual.py", "continual/report.py"),
    output:
        **{
            name: report(
                f"figures/continual/{name}.pdf",
                caption=f"../report/continual_{name}.rst",
                category="Continual learning",
            )
            for name in CONT_FIGURES
        },
    params:
        config_hash=CONFIG_HASH,
    benchmark:
        "logs/benchmarks/figures_continual/job.tsv"
    log:
        "logs/figures_continual.log",
    script:
        "../scripts/figures_continual.py"


rule figures_explore:
    input:
        aggregate=rules.aggregate_explore.output,
        surface=expand("results/explore/{setting}/surface.csv", setting=EXPL_SETTINGS),
        walk=expand("results/explore/{setting}/walk.csv", setting=EXPL_SETTINGS),
        trajectory=expand("results/explore/{setting}/trajectory.csv", setting=EXPL_SETTINGS),
        spectrum=expand("results/explore/{setting}/spectrum.csv", setting=EXPL_SETTINGS),
        curves=expand("results/explore/{setting}/curves.csv", setting=EXPL_SETTINGS),
        code=rose_code("plots/__init__.py", "plots/explore.py", "explore/report.py"),
    output:
        **{
            name: report(
                f"figures/explore/{name}.pdf",
                caption=f"../report/explore_{name}.rst",
                category="Contour warm-up",
            )
            for name in EXPL_FIGURES
        },
    params:
        config_hash=CONFIG_HASH,
        names=EXPL_FIGURES,
    benchmark:
        "logs/benchmarks/figures_explore/job.tsv"
    log:
        "logs/figures_explore.log",
    script:
        "../scripts/figures_explore.py"


rule figures:
    input:
        rules.figure_baseline_learning_curves.output,
        rules.figures_superposition.output,
        rules.figures_active.output,
        rules.figures_continual.output,
        rules.figures_explore.output,
