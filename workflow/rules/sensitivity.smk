# Sensitivity tables over the aggregate, and the delta-adjustment analysis of departures from
# MAR on one data set and mask (em_lib.study.sensitivity, em_lib.study.delta).


rule sensitivity_tables:
    input:
        PATHS["aggregate"],
    output:
        starts="results/tables/starts.csv",
        csv=[
            report(
                f"results/tables/{name}.csv",
                caption=f"../report/table_{name}.rst",
                category="Tables",
                subcategory="CSV",
            )
            for name in SENSITIVITY_TABLES
        ],
        tex=[
            report(
                f"results/tables/{name}.tex",
                caption=f"../report/table_{name}.rst",
                category="Tables",
                subcategory="LaTeX",
            )
            for name in SENSITIVITY_TABLES
        ],
    log:
        "results/logs/sensitivity_tables.log",
    conda:
        "../envs/em_lib.yaml"
    params:
        names=SENSITIVITY_TABLES,
        settings=config["sensitivity"],
    script:
        "../scripts/sensitivity_tables.py"


rule sensitivity_delta:
    input:
        unpack(get_delta_inputs),
    output:
        csv=[
            report(
                f"results/tables/{name}.csv",
                caption=f"../report/table_{name}.rst",
                category="Tables",
                subcategory="CSV",
            )
            for name in DELTA_TABLES
        ],
        tex=[
            report(
                f"results/tables/{name}.tex",
                caption=f"../report/table_{name}.rst",
                category="Tables",
                subcategory="LaTeX",
            )
            for name in DELTA_TABLES
        ],
    log:
        "results/logs/sensitivity_delta.log",
    conda:
        "../envs/em_lib.yaml"
    params:
        settings=config["sensitivity"]["delta"],
        target=design.delta_target(config),
        fit=config["fit"],
        root_seed=config["root_seed"],
    script:
        "../scripts/sensitivity_delta.py"
