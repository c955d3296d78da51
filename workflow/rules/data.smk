rule dataset:
    input:
        get_dataset_source,
    output:
        PATHS["data"],
    log:
        "results/logs/data/{dataset}.log",
    conda:
        "../envs/em_lib.yaml"
    params:
        spec=get_dataset_spec,
        root_seed=config["root_seed"],
    script:
        "../scripts/prepare_dataset.py"


rule mask:
    input:
        data=PATHS["data"],
    output:
        PATHS["mask"],
    log:
        f"results/logs/masks/{MASK}.log",
    conda:
        "../envs/em_lib.yaml"
    params:
        root_seed=config["root_seed"],
        strength=config["missingness"]["strength"],
    script:
        "../scripts/make_mask.py"
