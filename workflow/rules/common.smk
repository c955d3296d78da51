# Validation, wildcard constraints and the input functions of the workflow.
# What a job computes lives in em_lib.experiment; this file only wires it.
import os

from em_lib import experiment

try:
    experiment.check_config(config)
except experiment.ConfigError as error:
    raise ValueError(f"Invalid configuration: {error}") from None


DESIGN = experiment.design(config)


wildcard_constraints:
    dataset=r"[A-Za-z][A-Za-z0-9_]*",
    model="|".join(DESIGN["coords"]["model"]),
    n_components=r"[0-9]+",
    mechanism="none|MCAR|MAR|MNAR",
    missing_rate=r"[0-9][0-9.e+-]*",
    replicate=r"[0-9]+",
    chunk=r"[0-9]+",


def get_dataset_spec(wildcards):
    return config["datasets"][wildcards.dataset]


def get_dataset_source(wildcards):
    # absolute, so that a module's prefix does not move the user's file
    spec = config["datasets"][wildcards.dataset]
    return [os.path.abspath(spec["path"])] if spec["kind"] == "table" else []


def get_fit_settings(wildcards):
    # only what a fit depends on, so that Snakemake reruns exactly the affected fits
    return {
        "fit": config["fit"],
        "hmm": config["hmm"] if wildcards.model == "hmm" else None,
        "methods": config["sweep"]["method"],
        "root_seed": config["root_seed"],
    }


def get_mask_files(wildcards):
    return [
        "results/masks/{dataset}/{mechanism}/rate{missing_rate}/rep{replicate}.npz".format(
            **job.wildcards
        )
        for job in DESIGN["mask_jobs"]
    ]


def get_fit_files(wildcards):
    return [
        "results/fits/{dataset}/{model}/K{n_components}/{mechanism}/rate{missing_rate}/rep{replicate}/chunk{chunk}.npz".format(
            **job.wildcards
        )
        for job in DESIGN["fit_jobs"]
    ]
