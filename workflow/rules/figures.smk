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
    log:
        "logs/figure_baseline_learning_curves.log",
    script:
        "../scripts/figure_baseline.py"


rule figures:
    input:
        rules.figure_baseline_learning_curves.output,
