# Sensitivity tables over the aggregate, and the delta-adjustment analysis on one data set
# and mask (em_lib.sensitivity).
from em_lib import experiment, sensitivity

SENSITIVITY_TABLES = [
    "initialisation",
    "criteria",
    "selection",
    "missingness",
    "hmm_initialisation",
    "hmm_criteria",
    "hmm_selection",
    "failures",
]
DELTA_TABLES = ["delta_adjustment", "delta_tipping"]
DELTA_TARGET = sensitivity.delta_target(config)
DELTA_INPUTS = {
    "data": "results/data/{}.npz".format(DELTA_TARGET["dataset"]),
    "mask": "results/masks/{}/{}/rate{}/rep{}.npz".format(
        DELTA_TARGET["dataset"],
        DELTA_TARGET["mechanism"],
        experiment.format_rate(DELTA_TARGET["missing_rate"]),
        DELTA_TARGET["replicate"],
    ),
}


rule sensitivity_tables:
    input:
        "results/experiment.nc",
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
        **DELTA_INPUTS,
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
        target=DELTA_TARGET,
        fit=config["fit"],
        root_seed=config["root_seed"],
    script:
        "../scripts/sensitivity_delta.py"
