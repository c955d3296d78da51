"""What every workflow script does first: BLAS threads, logging, and failures in the log.

A script is::

    from em_lib.study.script import run

    def main(smk, log):
        ...  # unpack smk.input / smk.params, call em_lib.study, write smk.output

    run(snakemake, main)

:func:`run` sets ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS`` to the
job's ``threads`` before numpy is imported (this module imports nothing heavy), sends logging
and warnings to the job's log file, and logs any exception with its traceback before
re-raising it, so that Snakemake reports the job failed and the log says why. With
``compile_first`` (the jobs that fit) it first makes sure the compiled kernels are built, one
job at a time (:func:`em_lib.numerics.warmup.compile_kernels`; the lock file sits in the folder
of numba's cache, or in ``.snakemake/`` of the working directory where that folder cannot be
written), so that jobs started together on a fresh environment do not all compile them.
"""

from __future__ import annotations

import logging
import os

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


LOCK_FILE = os.path.join(".snakemake", "em_lib-kernels.lock")


def run(snakemake, main, compile_first=False) -> None:
    for name in THREAD_VARIABLES:
        os.environ[name] = str(snakemake.threads)
    logging.basicConfig(
        filename=snakemake.log[0],
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        force=True,
    )
    logging.captureWarnings(True)
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # PDF font subsetting chatter
    log = logging.getLogger(snakemake.rule)
    log.info("rule %s, %d thread(s)", snakemake.rule, snakemake.threads)
    try:
        if compile_first:
            from em_lib.numerics.warmup import cache_lock_path, compile_kernels

            lock = cache_lock_path() or LOCK_FILE
            log.info("compiled kernels ready after %.1f s", compile_kernels(lock))
        main(snakemake, log)
    except Exception:
        log.exception("failed")
        raise
