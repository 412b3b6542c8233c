# Generated LaTeX (tables, number macros, provenance) and the paper PDF.


rule tex_baseline:
    input:
        summary="results/baseline/summary.csv",
        code=rose_code("paper.py", "baseline.py", "pipeline.py"),
    output:
        table="paper/generated/baseline_table.tex",
        macros="paper/generated/baseline_macros.tex",
    params:
        # the paper's prose quotes the first dataset and method of the config
        headline=[config["baseline"]["datasets"][0], next(iter(config["baseline"]["methods"]))],
    benchmark:
        "logs/benchmarks/tex_baseline/job.tsv"
    log:
        "logs/tex_baseline.log",
    script:
        "../scripts/tex_baseline.py"


rule tex_superposition:
    input:
        toy=expand("results/superposition/toy/{sweep}/{f}", sweep=list(SUP["toy"]),
                   f=["instances.csv", "features.csv"]),
        phase="results/superposition/phase/phase.csv",
        aggregate=rules.aggregate_superposition.output,
        code=rose_code("paper.py", "superposition/report.py", "superposition/summary.py",
                       "contrasts.py"),
    output:
        table="paper/generated/superposition_table.tex",
        macros="paper/generated/superposition_macros.tex",
    params:
        toy_dirs=SUP_TOY_DIRS,
    benchmark:
        "logs/benchmarks/tex_superposition/job.tsv"
    log:
        "logs/tex_superposition.log",
    script:
        "../scripts/tex_superposition.py"


rule tex_active:
    input:
        aggregate=rules.aggregate_active.output,
        code=rose_code("paper.py", "active/report.py", "active/summary.py", "contrasts.py"),
    output:
        table="paper/generated/active_table.tex",
        macros="paper/generated/active_macros.tex",
    benchmark:
        "logs/benchmarks/tex_active/job.tsv"
    log:
        "logs/tex_active.log",
    script:
        "../scripts/tex_active.py"


rule tex_continual:
    input:
        aggregate=rules.aggregate_continual.output,
        code=rose_code("paper.py", "continual/report.py", "contrasts.py"),
    output:
        table="paper/generated/continual_table.tex",
        macros="paper/generated/continual_macros.tex",
    benchmark:
        "logs/benchmarks/tex_continual/job.tsv"
    log:
        "logs/tex_continual.log",
    script:
        "../scripts/tex_continual.py"


rule tex_explore:
    input:
        aggregate=rules.aggregate_explore.output,
        code=rose_code("paper.py", "explore/report.py", "contrasts.py"),
    output:
        table="paper/generated/explore_table.tex",
        macros="paper/generated/explore_macros.tex",
    params:
        contour_arm=EXPL["ablation"]["base"],
        equal_budget_arm="contour_eq",
        explore=EXPL,
    benchmark:
        "logs/benchmarks/tex_explore/job.tsv"
    log:
        "logs/tex_explore.log",
    script:
        "../scripts/tex_explore.py"


rule tex_summary:
    input:
        primary=expand("results/{d}/primary.csv",
                       d=["explore", "continual", "active", "superposition"]),
        tuning=["results/explore/tuning.csv", "results/continual/tuning.csv",
                "results/active/curriculum_tuning.csv",
                "results/superposition/shortcut_tuning.csv"],
        code=rose_code("paper.py", "writeup.py", "contrasts.py"),
    output:
        tables=expand("paper/generated/primary_{d}.tex",
                      d=["explore", "continual", "active", "superposition"]),
        answers="paper/generated/answers.tex",
        seeds="paper/generated/appendix_seeds.tex",
        tuning="paper/generated/appendix_tuning.tex",
    benchmark:
        "logs/benchmarks/tex_summary/job.tsv"
    log:
        "logs/tex_summary.log",
    script:
        "../scripts/tex_summary.py"


rule tex_provenance:
    input:
        code=rose_code("paper.py", "pipeline.py"),
        lock="requirements.lock",
        timings="benchmarks/quick_timings.csv",
    output:
        "paper/generated/provenance.tex",
    params:
        config_name=CONFIG_NAME,
        config_hash=CONFIG_HASH,
    benchmark:
        "logs/benchmarks/tex_provenance/job.tsv"
    log:
        "logs/tex_provenance.log",
    script:
        "../scripts/tex_provenance.py"


rule paper:
    input:
        main="paper/main.tex",
        sections=expand(
            "paper/sections/{name}.tex",
            name=glob_wildcards("paper/sections/{name}.tex").name,
        ),
        appendix=expand(
            "paper/appendix/{name}.tex",
            name=glob_wildcards("paper/appendix/{name}.tex").name,
        ),
        bib="paper/references.bib",
        generated=rules.tex_baseline.output + rules.tex_superposition.output
        + rules.tex_active.output + rules.tex_continual.output + rules.tex_explore.output
        + rules.tex_provenance.output + rules.tex_summary.output,
        figures=rules.figures.input,
    output:
        "paper/main.pdf",
    benchmark:
        "logs/benchmarks/paper/job.tsv"
    log:
        "logs/paper.log",
    shell:
        "bash workflow/scripts/build_paper.sh > {log} 2>&1"
