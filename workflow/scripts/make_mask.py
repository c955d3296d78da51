"""Impose one missingness mask (em_lib.experiment.make_mask) on a data set."""

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = str(snakemake.threads)  # before numpy is imported

import logging

from em_lib import experiment

logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
)
logging.captureWarnings(True)
log = logging.getLogger("make_mask")

try:
    wildcards = snakemake.wildcards
    data = experiment.load_arrays(snakemake.input.data)
    arrays = experiment.make_mask(
        data["X"],
        dataset=wildcards.dataset,
        mechanism=wildcards.mechanism,
        missing_rate=float(wildcards.missing_rate),
        replicate=int(wildcards.replicate),
        root_seed=snakemake.params.root_seed,
        strength=snakemake.params.strength,
    )
    experiment.save_arrays(snakemake.output[0], arrays)
    log.info("mask %s: realised rate %.6f", dict(wildcards), arrays["realised_rate"])
except Exception:
    log.exception("failed")
    raise
