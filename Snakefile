# Batched EM fits fanned out over data sets, masks, models, K and methods, aggregated into one
# labelled netCDF file (results/experiment.nc), sensitivity tables, figures and a report.
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

from em_lib.study.config import ConfigError, validate_config

min_version("8.0")


configfile: "config.yaml"


SCHEMA = workflow.current_basedir.join("workflow/schemas/config.schema.yaml")


try:
    validate_config(config, SCHEMA.get_path_or_uri(secret_free=True))
except ConfigError as error:
    raise WorkflowError(f"Invalid configuration: {error}") from None


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/sensitivity.smk"
include: "workflow/rules/bootstrap.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        rules.aggregate.output,
        rules.sensitivity_tables.output,
        rules.sensitivity_delta.output,
        rules.figures.output,
        rules.html_report.output,
        bootstrap_outputs(),
