"""Simulate or load one data set (em_lib.experiment.prepare_dataset) into an .npz file."""

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = str(snakemake.threads)  # before numpy is imported

import logging

from em_lib import experiment

logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
)
logging.captureWarnings(True)
log = logging.getLogger("prepare_dataset")

try:
    name = snakemake.wildcards.dataset
    arrays = experiment.prepare_dataset(name, snakemake.params.spec, snakemake.params.root_seed)
    experiment.save_arrays(snakemake.output[0], arrays)
    log.info("dataset %s: X %s, arrays %s", name, arrays["X"].shape, sorted(arrays))
except Exception:
    log.exception("failed")
    raise
