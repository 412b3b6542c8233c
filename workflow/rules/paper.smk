# Generated LaTeX (tables, number macros, provenance) and the paper PDF.


rule tex_baseline:
    input:
        summary=f"{RESULTS}baseline/summary.csv",
        code=rose_code("paper.py", "baseline.py", "pipeline.py"),
    output:
        table=f"{GENERATED}baseline_table.tex",
        macros=f"{GENERATED}baseline_macros.tex",
    params:
        # the paper's prose quotes the first dataset and method of the config
        headline=[config["baseline"]["datasets"][0], next(iter(config["baseline"]["methods"]))],
    benchmark:
        f"{LOGS}benchmarks/tex_baseline/job.tsv"
    log:
        f"{LOGS}tex_baseline.log",
    script:
        "../scripts/tex_baseline.py"


rule tex_superposition:
    input:
        toy=expand(f"{RESULTS}superposition/toy/{{sweep}}/{{f}}", sweep=list(SUP["toy"]),
                   f=["instances.csv", "features.csv"]),
        phase=f"{RESULTS}superposition/phase/phase.csv",
        aggregate=rules.aggregate_superposition.output,
        code=rose_code("paper.py", "superposition/report.py", "superposition/summary.py",
                       "contrasts.py"),
    output:
        table=f"{GENERATED}superposition_table.tex",
        macros=f"{GENERATED}superposition_macros.tex",
    params:
        toy_dirs=SUP_TOY_DIRS,
    benchmark:
        f"{LOGS}benchmarks/tex_superposition/job.tsv"
    log:
        f"{LOGS}tex_superposition.log",
    script:
        "../scripts/tex_superposition.py"


rule tex_active:
    input:
        aggregate=rules.aggregate_active.output,
        code=rose_code("paper.py", "active/report.py", "active/summary.py", "contrasts.py"),
    output:
        table=f"{GENERATED}active_table.tex",
        macros=f"{GENERATED}active_macros.tex",
    benchmark:
        f"{LOGS}benchmarks/tex_active/job.tsv"
    log:
        f"{LOGS}tex_active.log",
    script:
        "../scripts/tex_active.py"


rule tex_continual:
    input:
        aggregate=rules.aggregate_continual.output,
        code=rose_code("paper.py", "continual/report.py", "contrasts.py"),
    output:
        table=f"{GENERATED}continual_table.tex",
        macros=f"{GENERATED}continual_macros.tex",
    benchmark:
        f"{LOGS}benchmarks/tex_continual/job.tsv"
    log:
        f"{LOGS}tex_continual.log",
    script:
        "../scripts/tex_continual.py"


rule tex_explore:
    input:
        aggregate=rules.aggregate_explore.output,
        code=rose_code("paper.py", "explore/report.py", "contrasts.py"),
    output:
        table=f"{GENERATED}explore_table.tex",
        macros=f"{GENERATED}explore_macros.tex",
    params:
        contour_arm=EXPL["ablation"]["base"],
        equal_budget_arm="contour_eq",
        explore=EXPL,
    benchmark:
        f"{LOGS}benchmarks/tex_explore/job.tsv"
    log:
        f"{LOGS}tex_explore.log",
    script:
        "../scripts/tex_explore.py"


rule tex_summary:
    input:
        primary=expand(f"{RESULTS}{{d}}/primary.csv",
                       d=["explore", "continual", "active", "superposition"]),
        tuning=[f"{RESULTS}explore/tuning.csv", f"{RESULTS}continual/tuning.csv",
                f"{RESULTS}active/curriculum_tuning.csv",
                f"{RESULTS}superposition/shortcut_tuning.csv"],
        code=rose_code("paper.py", "writeup.py", "contrasts.py"),
    output:
        tables=expand(f"{GENERATED}primary_{{d}}.tex",
                      d=["explore", "continual", "active", "superposition"]),
        answers=f"{GENERATED}answers.tex",
        seeds=f"{GENERATED}appendix_seeds.tex",
        tuning=f"{GENERATED}appendix_tuning.tex",
    benchmark:
        f"{LOGS}benchmarks/tex_summary/job.tsv"
    log:
        f"{LOGS}tex_summary.log",
    script:
        "../scripts/tex_summary.py"


rule tex_provenance:
    input:
        code=rose_code("paper.py", "pipeline.py"),
        lock="requirements.lock",
        timings="benchmarks/quick_timings.csv",
    output:
        f"{GENERATED}provenance.tex",
    params:
        config_name=CONFIG_NAME,
        config_hash=CONFIG_HASH,
    benchmark:
        f"{LOGS}benchmarks/tex_provenance/job.tsv"
    log:
        f"{LOGS}tex_provenance.log",
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
        PDF,
    params:
        name=CONFIG_NAME,
    benchmark:
        f"{LOGS}benchmarks/paper/job.tsv"
    log:
        f"{LOGS}paper.log",
    script:
        "../scripts/build_paper.py"
