# One job per mask fits the whole (model x K x method) lattice of that data set.
rule fit:
    input:
        data=PATHS["data"],
        mask=PATHS["mask"],
    output:
        PATHS["fit"],
    log:
        f"results/logs/fits/{MASK}.log",
    conda:
        "../envs/em_lib.yaml"
    params:
        config=get_fit_config,
    script:
        "../scripts/fit.py"
