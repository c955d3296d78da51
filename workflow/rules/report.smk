# Figures (em_lib.plotting) and the self-contained HTML report (em_lib.report).

# the caption files, read by the HTML report too (a stable path, also when used as a module)
CAPTIONS = os.path.join(workflow.basedir, "workflow", "report")
FIGURES = ["initialisation", "criteria", "selection", "missingness", "hmm", "delta"]


rule figures:
    input:
        data=DELTA_INPUTS["data"],
        results="results/experiment.nc",
        starts="results/tables/starts.csv",
        **{name: f"results/tables/{name}.csv" for name in SENSITIVITY_TABLES + DELTA_TABLES},
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
    log:
        "results/logs/figures.log",
    conda:
        "../envs/em_lib.yaml"
    params:
        names=FIGURES,
        settings=config["report"],
    script:
        "../scripts/figures.py"


rule html_report:
    input:
        results="results/experiment.nc",
        figures=[f"results/figures/{name}.png" for name in FIGURES],
        tables=[f"results/tables/{name}.csv" for name in SENSITIVITY_TABLES + DELTA_TABLES],
        image_figures=[f"results/figures/image_{name}.png" for name in IMAGE_DATASETS],
        image_summaries=[f"results/figures/image_{name}.json" for name in IMAGE_DATASETS],
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
        image_datasets=IMAGE_DATASETS,
        image_caption=f"{CAPTIONS}/figure_image.rst",
        table_captions=[f"{CAPTIONS}/table_{n}.rst" for n in SENSITIVITY_TABLES + DELTA_TABLES],
        settings=config["report"],
        sensitivity=config["sensitivity"],
        criterion=config["sensitivity"]["criterion"],
    script:
        "../scripts/report.py"
