# Bootstrap intervals of the selected model of every mixture data set and mask
# (em_lib.study.selected, em_lib.uncertainty): replicate chunks fanned out, then joined into
# per-condition netCDF files, tidy tables, a booktabs table and a classification figure.


rule bootstrap_chunk:
    input:
        data=PATHS["data"],
        mask=PATHS["mask"],
        results=PATHS["aggregate"],
    output:
        PATHS["bootstrap_chunk"],
    log:
        f"results/logs/bootstrap/{MASK}/chunk{{chunk}}.log",
    conda:
        "../envs/em_lib.yaml"
    params:
        config=get_bootstrap_config,
        criterion=config["sensitivity"]["criterion"],
    script:
        "../scripts/bootstrap_chunk.py"


rule bootstrap_summary:
    input:
        chunks=bootstrap_chunk_files(),
        data=[PATHS["data"].format(dataset=name) for name in BOOTSTRAP_DATASETS],
        masks=[mask_path("mask", job) for job in BOOTSTRAP_JOBS],
        results=PATHS["aggregate"],
    output:
        conditions=[
            PATHS["bootstrap"].format(**job.wildcards) for job in BOOTSTRAP_JOBS
        ],
        table=report(
            "results/tables/selected_model.csv",
            caption="../report/table_selected_model.rst",
            category="Tables",
        ),
        classification="results/tables/selected_classification.csv",
        latex=[
            f"results/tables/selected_model_{name}.tex" for name in BOOTSTRAP_DATASETS
        ],
        png=[
            report(
                f"results/figures/classification_{name}.png",
                caption="../report/figure_classification.rst",
                category="Figures",
                subcategory="PNG",
            )
            for name in BOOTSTRAP_DATASETS
        ],
        pdf=[
            f"results/figures/classification_{name}.pdf" for name in BOOTSTRAP_DATASETS
        ],
    log:
        "results/logs/bootstrap_summary.log",
    conda:
        "../envs/em_lib.yaml"
    params:
        config=get_bootstrap_config,
        jobs=[job.labels for job in BOOTSTRAP_JOBS],
        datasets=BOOTSTRAP_DATASETS,
        report_jobs={
            name: selected.report_job(config, name).labels
            for name in BOOTSTRAP_DATASETS
        },
        criterion=config["sensitivity"]["criterion"],
    script:
        "../scripts/bootstrap_summary.py"
