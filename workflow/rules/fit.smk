rule fit:
    input:
        data="results/data/{dataset}.npz",
        mask="results/masks/{dataset}/{mechanism}/rate{missing_rate}/rep{replicate}.npz",
    output:
        "results/fits/{dataset}/{model}/K{n_components}/{mechanism}/rate{missing_rate}/rep{replicate}/chunk{chunk}.npz",
    log:
        "results/logs/fits/{dataset}/{model}/K{n_components}/{mechanism}/rate{missing_rate}/rep{replicate}/chunk{chunk}.log",
    conda:
        "../envs/em_lib.yaml"
    params:
        settings=get_fit_settings,
    script:
        "../scripts/fit_chunk.py"
