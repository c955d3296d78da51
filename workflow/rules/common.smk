# Validation, wildcard constraints, the paths of every output and the input functions.
# What a job computes lives in em_lib.study; this file only wires it.
import os

from em_lib.study import design, selected


wildcard_constraints:
    dataset=r"[A-Za-z][A-Za-z0-9_]*",
    mechanism="none|MCAR|MAR|MNAR",
    missing_rate=r"[0-9][0-9.e+-]*",
    replicate=r"[0-9]+",


MASK = "{dataset}/{mechanism}/rate{missing_rate}/rep{replicate}"
PATHS = {
    "data": "results/data/{dataset}.npz",
    "mask": f"results/masks/{MASK}.npz",
    "fit": f"results/fits/{MASK}.npz",
    "aggregate": "results/experiment.nc",
    "bootstrap": f"results/bootstrap/{MASK}.nc",
    "bootstrap_chunk": f"results/bootstrap/{MASK}/chunk{{chunk}}.nc",
}
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
FIGURES = ["initialisation", "criteria", "selection", "missingness", "hmm", "delta"]
BOOTSTRAP_DATASETS = selected.bootstrap_datasets(config)
BOOTSTRAP_JOBS = selected.bootstrap_jobs(config)
CAPTIONS = os.path.join(workflow.basedir, "workflow", "report")


def mask_path(kind, job):
    return PATHS[kind].format(**job.wildcards)


def get_dataset_spec(wildcards):
    return config["datasets"][wildcards.dataset]


def get_dataset_source(wildcards):
    # absolute, so that a module's prefix does not move the user's file
    spec = config["datasets"][wildcards.dataset]
    if spec["kind"] == "table":
        return [os.path.abspath(spec["path"])]
    if spec["kind"] == "image" and spec["source"] != "synthetic":
        return [os.path.abspath(spec["source"])]
    return []


def get_fit_config(wildcards):
    # only what a fit job depends on, so that Snakemake reruns exactly the affected jobs
    return {
        "root_seed": config["root_seed"],
        "datasets": {wildcards.dataset: config["datasets"][wildcards.dataset]},
        "sweep": {
            key: config["sweep"][key] for key in ("model", "n_components", "method")
        },
        "fit": config["fit"],
        "hmm": config["hmm"],
    }


def get_data_files(wildcards):
    return [PATHS["data"].format(dataset=name) for name in design.dataset_names(config)]


def get_mask_files(wildcards):
    return [mask_path("mask", job) for job in design.mask_jobs(config)]


def get_fit_files(wildcards):
    return [mask_path("fit", job) for job in design.mask_jobs(config)]


def get_delta_inputs(wildcards):
    target = design.delta_target(config)
    job = design.MaskJob(
        target["dataset"],
        target["mechanism"],
        target["missing_rate"],
        target["replicate"],
    )
    return {
        "data": PATHS["data"].format(dataset=target["dataset"]),
        "mask": mask_path("mask", job),
        "results": PATHS["aggregate"],
    }


def get_image_mask(wildcards):
    damage = design.image_damage(config)
    job = design.MaskJob(
        wildcards.dataset, damage.mechanism, damage.missing_rate, damage.replicate
    )
    return mask_path("mask", job)


def image_outputs(kind):
    names = design.image_datasets(config)
    return [f"results/figures/image_{name}.{kind}" for name in names]


def get_image_damage(wildcards):
    return design.image_damage(config).labels


def get_bootstrap_config(wildcards):
    # only what a bootstrap job depends on
    return {
        "root_seed": config["root_seed"],
        "fit": config["fit"],
        "bootstrap": selected.bootstrap_settings(config),
    }


def bootstrap_chunk_files():
    n_chunks = len(
        selected.chunk_sizes(
            selected.bootstrap_settings(config)["n_boot"],
            selected.bootstrap_settings(config)["chunks"],
        )
    )
    return [
        PATHS["bootstrap_chunk"].format(**job.wildcards, chunk=chunk)
        for job in BOOTSTRAP_JOBS
        for chunk in range(n_chunks)
    ]


def bootstrap_outputs():
    """Everything the bootstrap summary writes (empty when nothing is bootstrapped)."""
    if not BOOTSTRAP_DATASETS:
        return []
    return [
        "results/tables/selected_model.csv",
        "results/tables/selected_classification.csv",
    ] + [f"results/figures/classification_{name}.png" for name in BOOTSTRAP_DATASETS]
