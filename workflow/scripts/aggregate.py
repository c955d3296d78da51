"""Assemble every fit job's arrays into one labelled netCDF file (em_lib.results)."""

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = str(snakemake.threads)  # before numpy is imported

import logging
from pathlib import Path

from em_lib import experiment, results

logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
)
logging.captureWarnings(True)
log = logging.getLogger("aggregate")

try:
    config = snakemake.params.config
    design = experiment.design(config)
    fit_jobs, mask_jobs = design["fit_jobs"], design["mask_jobs"]
    if len(fit_jobs) != len(snakemake.input.fits) or len(mask_jobs) != len(snakemake.input.masks):
        raise RuntimeError("the design does not match the aggregate rule's inputs")
    fit_records = ({**job.labels, "chunk": job.chunk} for job in fit_jobs)
    mask_records = (vars(job) for job in mask_jobs)
    ds = results.build_dataset(
        design["coords"],
        zip(fit_records, map(experiment.load_arrays, snakemake.input.fits), strict=True),
        zip(mask_records, map(experiment.load_arrays, snakemake.input.masks), strict=True),
        attrs=results.provenance(
            config,
            commit=results.git_commit(Path(__file__).parent),
            seed_scheme=experiment.SEED_SCHEME,
        ),
        chunks=design["chunks"],
    )
    results.write_netcdf(ds, snakemake.output[0])
    log.info("wrote %s: %s", snakemake.output[0], dict(ds.sizes))
except Exception:
    log.exception("failed")
    raise
