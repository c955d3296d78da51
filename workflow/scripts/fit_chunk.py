"""Fit one chunk of starts with every method (em_lib.experiment.fit_job)."""

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = str(snakemake.threads)  # before numpy is imported

import logging

from em_lib import experiment

logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
)
logging.captureWarnings(True)
log = logging.getLogger("fit_chunk")

try:
    job = experiment.FitJob.from_wildcards(snakemake.wildcards)
    settings = snakemake.params.settings
    log.info("%s with %d BLAS thread(s)", job, snakemake.threads)
    arrays = experiment.fit_job(
        experiment.load_arrays(snakemake.input.data),
        experiment.load_arrays(snakemake.input.mask)["mask"],
        job,
        fit_settings=settings["fit"],
        hmm_settings=settings["hmm"],
        methods=settings["methods"],
        root_seed=settings["root_seed"],
    )
    experiment.save_arrays(snakemake.output[0], arrays)
    for method, wall, cpu, reasons in zip(
        arrays["method"],
        arrays["fit_time"],
        arrays["fit_cpu_time"],
        arrays["failure_reason"],
        strict=True,
    ):
        failed = sorted({r for r in reasons.tolist() if r})
        log.info("%s: fit %.3f s (CPU %.3f s), failures: %s", method, wall, cpu, failed or "none")
except Exception:
    log.exception("failed")
    raise
