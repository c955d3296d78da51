"""Figures of the sensitivity analyses (em_lib.plotting) as vector PDF and 300-dpi PNG."""

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = str(snakemake.threads)  # before numpy is imported

import logging

import pandas as pd
from em_lib import experiment, plotting, results, sensitivity

logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
)
logging.captureWarnings(True)
log = logging.getLogger("figures")

try:
    settings = snakemake.params.settings
    tables = {
        name: pd.read_csv(path) for name, path in snakemake.input.items() if path.endswith(".csv")
    }
    ds = results.open_results(snakemake.input.results)
    labels = sensitivity.variable_labels(ds)
    models = ds["model"].values.tolist()
    feature_names = experiment.load_arrays(snakemake.input.data).get("feature_names")
    plotting.set_theme()
    hmm_starts = tables["starts"][tables["starts"]["model"].isin(sensitivity.HMM_MODELS)]
    makers = {
        "initialisation": lambda: plotting.initialisation_figure(
            tables["initialisation"],
            tables["starts"],
            labels,
            method=settings["method"],
            model_order=models,
        ),
        "criteria": lambda: plotting.criteria_figure(
            tables["criteria"],
            labels,
            dataset=settings["dataset"],
            method=settings["method"],
            model_order=models,
        ),
        "selection": lambda: plotting.selection_figure(
            tables["selection"], labels, model_order=models
        ),
        "missingness": lambda: plotting.missingness_figure(
            tables["missingness"],
            labels,
            model=settings["model"],
            method_order=ds["method"].values.tolist(),
        ),
        "hmm": lambda: plotting.hmm_figure(
            tables["hmm_initialisation"], hmm_starts, tables["hmm_criteria"], labels
        ),
        "delta": lambda: plotting.delta_figure(
            tables["delta_adjustment"], tables["delta_tipping"], feature_names=feature_names
        ),
    }
    for name, pdf, png in zip(
        snakemake.params.names, snakemake.output.pdf, snakemake.output.png, strict=True
    ):
        if name == "hmm" and tables["hmm_initialisation"].empty:
            figure = plotting.placeholder_figure("no HMM runs in this experiment")
        else:
            figure = makers[name]()
        figure.savefig(pdf)
        figure.savefig(png, dpi=300)
        plotting.close(figure)
        log.info("wrote %s and %s", pdf, png)
except Exception:
    log.exception("failed")
    raise
