# Batched EM fits fanned out over data sets, models, K, missingness and starts,
# aggregated into one labelled netCDF file (results/experiment.nc).
from snakemake.utils import min_version, validate

min_version("8.0")


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/sensitivity.smk"
include: "workflow/rules/image.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        "results/experiment.nc",
        rules.sensitivity_tables.output,
        rules.sensitivity_delta.output,
        rules.figures.output,
        expand(rules.image_figure.output, dataset=IMAGE_DATASETS),
        "results/report.html",
