rule aggregate:
    input:
        masks=get_mask_files,
        fits=get_fit_files,
    output:
        report(
            "results/experiment.nc",
            caption="../report/experiment.rst",
            category="Results",
        ),
    log:
        "results/logs/aggregate.log",
    conda:
        "../envs/em_lib.yaml"
    params:
        config=config,
    script:
        "../scripts/aggregate.py"
