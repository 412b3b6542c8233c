# Datasets: bundled (offline) or downloaded behind data.allow_download; stratified splits with
# a manifest, written once to data/processed/<config name>/ (versioned by DVC).


rule prepare_data:
    input:
        code=rose_code("data/bundled.py", "data/download.py", "data/idx.py", "data/splits.py",
                       "sampling.py"),
    output:
        npz=f"{PROCESSED}{{dataset}}.npz",
        manifest=f"{PROCESSED}{{dataset}}.manifest.json",
    params:
        data_cfg=data_config_for,
    log:
        f"{LOGS}data/{{dataset}}.prepare.log",
    benchmark:
        f"{LOGS}benchmarks/prepare_data/{{dataset}}.tsv"
    resources:
        mem_mb=4000,
        runtime=retry_runtime(30),
    script:
        "../scripts/prepare_data.py"


rule data:
    input:
        expand(rules.prepare_data.output, dataset=config["data"]["datasets"]),
