"""Sensitivity tables (em_lib.sensitivity) over the aggregate, as CSV and booktabs LaTeX."""

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = str(snakemake.threads)  # before numpy is imported

import logging

from em_lib import report, results, sensitivity

logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
)
logging.captureWarnings(True)
log = logging.getLogger("sensitivity_tables")

try:
    settings = snakemake.params.settings
    ds = results.open_results(snakemake.input[0])
    models = ds["model"].values.tolist()
    gmm = [m for m in models if m not in sensitivity.HMM_MODELS]
    hmm = [m for m in models if m in sensitivity.HMM_MODELS]
    starts = sensitivity.starts_table(ds)
    mixtures, hmms = starts[starts["model"].isin(gmm)], starts[starts["model"].isin(hmm)]
    init_options = {
        "tol": settings["optimum_tol"],
        "parameter_tol": settings["parameter_tol"],
        "probabilities": settings["probabilities"],
    }
    tables = {
        "initialisation": sensitivity.initialisation_table(mixtures, **init_options),
        "criteria": sensitivity.criteria_table(mixtures),
        "selection": sensitivity.selection_table(mixtures),
        "missingness": sensitivity.missingness_table(
            mixtures, sensitivity.true_components(ds), settings["criterion"]
        ),
        "hmm_initialisation": sensitivity.initialisation_table(hmms, **init_options),
        "hmm_criteria": sensitivity.criteria_table(hmms),
        "hmm_selection": sensitivity.selection_table(hmms),
        "failures": sensitivity.failures_table(starts),
    }
    starts.drop(columns="failure_reason").to_csv(snakemake.output.starts, index=False)
    for name, csv, tex in zip(
        snakemake.params.names, snakemake.output.csv, snakemake.output.tex, strict=True
    ):
        report.write_table(tables[name], csv, tex, comment=f"{name} table (em_lib.sensitivity)")
        log.info("%s: %d rows", name, len(tables[name]))
except Exception:
    log.exception("failed")
    raise
