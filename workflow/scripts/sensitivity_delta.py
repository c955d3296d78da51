"""Delta-adjustment (tipping-point) analysis on one data set and mask (em_lib.sensitivity)."""

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = str(snakemake.threads)  # before numpy is imported

import logging

import numpy as np
from em_lib import experiment, report, sensitivity

logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
)
logging.captureWarnings(True)
log = logging.getLogger("sensitivity_delta")

try:
    settings, target, fit = snakemake.params.settings, snakemake.params.target, snakemake.params.fit
    X = experiment.load_arrays(snakemake.input.data)["X"].astype(float)
    X[experiment.load_arrays(snakemake.input.mask)["mask"]] = np.nan
    variables = target["variables"]
    if variables is None:
        variables = np.flatnonzero(np.isnan(X).any(axis=0)).tolist()
    table, tipping = sensitivity.delta_adjustment(
        X,
        variables=variables,
        deltas=settings["deltas"],
        n_components=target["n_components"],
        covariance_type=settings["model"],
        n_draws=settings["n_draws"],
        conclusion=settings["conclusion"],
        component=settings["component"],
        threshold=settings["threshold"],
        random_state=snakemake.params.root_seed,
        fit_kwargs={
            "n_init": settings["n_init"],
            "tol": fit["tol"],
            "max_iter": fit["max_iter"],
            "reg_covar": fit["reg_covar"],
            "nested_starts": False,
        },
    )
    label = "delta adjustment on {dataset} {mechanism} rate {missing_rate} rep {replicate}"
    frames = (table, tipping)
    for frame, csv, tex in zip(frames, snakemake.output.csv, snakemake.output.tex, strict=True):
        for position, key in enumerate(("dataset", "mechanism", "missing_rate", "replicate")):
            frame.insert(position, key, target[key])
        report.write_table(frame, csv, tex, comment=label.format(**target))
    log.info("tipping points:\n%s", tipping.to_string())
except Exception:
    log.exception("failed")
    raise
