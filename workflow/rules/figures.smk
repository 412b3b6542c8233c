# Figures only read results tables: editing a plot never retrains anything.


rule figure_baseline_learning_curves:
    input:
        runs=f"{RESULTS}baseline/runs.csv",
        histories=f"{RESULTS}baseline/histories.csv",
        code=rose_code("plots/__init__.py", "plots/baseline.py", "pipeline.py"),
    output:
        report(
            f"{FIGURES}baseline/learning_curves.pdf",
            caption="../report/baseline_learning_curves.rst",
            category="Baseline",
        ),
    params:
        config_hash=CONFIG_HASH,
    benchmark:
        f"{LOGS}benchmarks/figure_baseline_learning_curves/job.tsv"
    log:
        f"{LOGS}figure_baseline_learning_curves.log",
    script:
        "../scripts/figure_baseline.py"


rule figures_superposition:
    input:
        toy=expand(
            f"{RESULTS}superposition/toy/{{sweep}}/{{f}}",
            sweep=list(SUP["toy"]),
            f=["instances.csv", "features.csv", "weights.npz"],
        ),
        phase=f"{RESULTS}superposition/phase/phase.csv",
        toy_penalty=f"{RESULTS}superposition/toy_penalty_runs.csv",
        toy_penalty_features=f"{RESULTS}superposition/toy_penalty/features.csv",
        shortcut=f"{RESULTS}superposition/shortcut_runs.csv",
        code=rose_code("plots/__init__.py", "plots/superposition.py",
                       "superposition/report.py"),
    output:
        **{
            name: report(
                f"{FIGURES}superposition/{name}.pdf",
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
        f"{LOGS}benchmarks/figures_superposition/job.tsv"
    log:
        f"{LOGS}figures_superposition.log",
    script:
        "../scripts/figures_superposition.py"


rule figures_active:
    input:
        al_runs=f"{RESULTS}active/al_runs.csv",
        al_summary=f"{RESULTS}active/al_summary.csv",
        composition=f"{RESULTS}active/composition.csv",
        curriculum_runs=f"{RESULTS}active/curriculum_runs.csv",
        code=rose_code("plots/__init__.py", "plots/active.py", "active/report.py"),
    output:
        **{
            name: report(
                f"{FIGURES}active/{name}.pdf",
                caption=f"../report/active_{name}.rst",
                category="Active and curriculum learning",
            )
            for name in ACT_FIGURES
        },
    params:
        config_hash=CONFIG_HASH,
    benchmark:
        f"{LOGS}benchmarks/figures_active/job.tsv"
    log:
        f"{LOGS}figures_active.log",
    script:
        "../scripts/figures_active.py"


rule figures_continual:
    input:
        runs=expand(f"{RESULTS}continual/{{stream}}/runs.csv", stream=CONT_STREAMS),
        matrix=expand(f"{RESULTS}continual/{{stream}}/matrix.csv", stream=CONT_STREAMS),
        anytime=expand(f"{RESULTS}continual/{{stream}}/anytime.csv", stream=CONT_STREAMS),
        trace=expand(f"{RESULTS}continual/{{stream}}/trace.csv", stream=CONT_STREAMS),
        code=rose_code("plots/__init__.py", "plots/continual.py", "continual/report.py"),
    output:
        **{
            name: report(
                f"{FIGURES}continual/{name}.pdf",
                caption=f"../report/continual_{name}.rst",
                category="Continual learning",
            )
            for name in CONT_FIGURES
        },
    params:
        config_hash=CONFIG_HASH,
    benchmark:
        f"{LOGS}benchmarks/figures_continual/job.tsv"
    log:
        f"{LOGS}figures_continual.log",
    script:
        "../scripts/figures_continual.py"


rule figures_explore:
    input:
        aggregate=rules.aggregate_explore.output,
        surface=expand(f"{RESULTS}explore/{{setting}}/surface.csv", setting=EXPL_SETTINGS),
        walk=expand(f"{RESULTS}explore/{{setting}}/walk.csv", setting=EXPL_SETTINGS),
        trajectory=expand(f"{RESULTS}explore/{{setting}}/trajectory.csv", setting=EXPL_SETTINGS),
        spectrum=expand(f"{RESULTS}explore/{{setting}}/spectrum.csv", setting=EXPL_SETTINGS),
        curves=expand(f"{RESULTS}explore/{{setting}}/curves.csv", setting=EXPL_SETTINGS),
        code=rose_code("plots/__init__.py", "plots/explore.py", "explore/report.py"),
    output:
        **{
            name: report(
                f"{FIGURES}explore/{name}.pdf",
                caption=f"../report/explore_{name}.rst",
                category="Contour warm-up",
            )
            for name in EXPL_FIGURES
        },
    params:
        config_hash=CONFIG_HASH,
        names=EXPL_FIGURES,
    benchmark:
        f"{LOGS}benchmarks/figures_explore/job.tsv"
    log:
        f"{LOGS}figures_explore.log",
    script:
        "../scripts/figures_explore.py"


rule figures:
    input:
        rules.figure_baseline_learning_curves.output,
        rules.figures_superposition.output,
        rules.figures_active.output,
        rules.figures_continual.output,
        rules.figures_explore.output,
