rule dataset:
    input:
        get_dataset_source,
    output:
        "results/data/{dataset}.npz",
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
        data="results/data/{dataset}.npz",
    output:
        "results/masks/{dataset}/{mechanism}/rate{missing_rate}/rep{replicate}.npz",
    log:
        "results/logs/masks/{dataset}/{mechanism}/rate{missing_rate}/rep{replicate}.log",
    conda:
        "../envs/em_lib.yaml"
    params:
        root_seed=config["root_seed"],
        strength=config["missingness"]["strength"],
    script:
        "../scripts/make_mask.py"
