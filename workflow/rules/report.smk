# Figures (em_lib.study.plotting), image figures (em_lib.study.image) and the self-contained
# HTML report (em_lib.study.report).


rule figures:
    input:
        results=PATHS["aggregate"],
        starts=rules.sensitivity_tables.output.starts,
        tables=rules.sensitivity_tables.output.csv,
        delta=rules.sensitivity_delta.output.csv,
    output:
        pdf=[
            report(
                f"results/figures/{name}.pdf",
                caption=f"../report/figure_{name}.rst",
                category="Figures",
                subcategory="PDF",
            )
            for name in FIGURES
        ],
        png=[
            report(
                f"results/figures/{name}.png",
                caption=f"../report/figure_{name}.rst",
                category="Figures",
                subcategory="PNG",
            )
            for name in FIGURES
        ],
        notes="results/figures/figure_notes.json",
    log:
        "results/logs/figures.log",
    conda:
        "../envs/em_lib.yaml"
    params:
        names=FIGURES,
        settings=config["report"],
        target=design.delta_target(config),
    script:
        "../scripts/figures.py"


rule image_figure:
    input:
        data=PATHS["data"],
        results=PATHS["aggregate"],
        mask=get_image_mask,
    output:
        pdf=report(
            "results/figures/image_{dataset}.pdf",
            caption="../report/figure_image.rst",
            category="Figures",
            subcategory="PDF",
        ),
        png=report(
            "results/figures/image_{dataset}.png",
            caption="../report/figure_image.rst",
            category="Figures",
            subcategory="PNG",
        ),
        summary="results/figures/image_{dataset}.json",
    log:
        "results/logs/image_figure/{dataset}.log",
    conda:
        "../envs/em_lib.yaml"
    params:
        damage=get_image_damage,
        criterion=config["sensitivity"]["criterion"],
    script:
        "../scripts/image_figure.py"


rule html_report:
    input:
        results=PATHS["aggregate"],
        figures=rules.figures.output.png,
        notes=rules.figures.output.notes,
        tables=rules.sensitivity_tables.output.csv,
        delta=rules.sensitivity_delta.output.csv,
        image_figures=image_outputs("png"),
        image_summaries=image_outputs("json"),
        selected=bootstrap_outputs(),
    output:
        report(
            "results/report.html",
            caption="../report/html_report.rst",
            category="Report",
        ),
    log:
        "results/logs/html_report.log",
    conda:
        "../envs/em_lib.yaml"
    params:
        figures=FIGURES,
        tables=SENSITIVITY_TABLES + DELTA_TABLES,
        figure_captions=[f"{CAPTIONS}/figure_{n}.rst" for n in FIGURES],
        image_datasets=design.image_datasets(config),
        image_caption=f"{CAPTIONS}/figure_image.rst",
        table_captions=[
            f"{CAPTIONS}/table_{n}.rst" for n in SENSITIVITY_TABLES + DELTA_TABLES
        ],
        settings=config["report"],
        sensitivity=config["sensitivity"],
        bootstrap_datasets=BOOTSTRAP_DATASETS,
        report_jobs={
            name: selected.report_job(config, name).labels
            for name in BOOTSTRAP_DATASETS
        },
    script:
        "../scripts/report.py"
