"""Sensitivity tables (em_lib.study.sensitivity) over the aggregate, as CSV and booktabs LaTeX."""

from em_lib.study.script import run


def main(smk, log):
    from em_lib.study import report, results, sensitivity

    settings = smk.params.settings
    ds = results.open_results(smk.input[0])
    models = ds["model"].values.tolist()
    gmm = [m for m in models if m not in sensitivity.HMM_MODELS]
    hmm = [m for m in models if m in sensitivity.HMM_MODELS]
    starts, fits = sensitivity.starts_table(ds), sensitivity.fits_table(ds)
    mixtures = starts[starts["model"].isin(gmm)]
    hmms = starts[starts["model"].isin(hmm)]
    mixture_fits, hmm_fits = fits[fits["model"].isin(gmm)], fits[fits["model"].isin(hmm)]
    init_options = {
        "tol": settings["optimum_tol"],
        "parameter_tol": settings["parameter_tol"],
        "probabilities": settings["probabilities"],
    }
    tables = {
        "initialisation": sensitivity.initialisation_table(mixtures, **init_options),
        "criteria": sensitivity.criteria_table(mixture_fits, mixtures),
        "selection": sensitivity.selection_table(mixture_fits),
        "missingness": sensitivity.missingness_table(
            mixture_fits, sensitivity.true_components(ds), settings["criterion"]
        ),
        "hmm_initialisation": sensitivity.initialisation_table(hmms, **init_options),
        "hmm_criteria": sensitivity.criteria_table(hmm_fits, hmms),
        "hmm_selection": sensitivity.selection_table(hmm_fits),
        "failures": sensitivity.failures_table(starts),
    }
    starts.drop(columns="failure_reason").to_csv(smk.output.starts, index=False)
    for name, csv, tex in zip(smk.params.names, smk.output.csv, smk.output.tex, strict=True):
        report.write_table(tables[name], csv, tex, comment=f"{name} table (em_lib.study)")
        log.info("%s: %d rows", name, len(tables[name]))


run(snakemake, main)  # noqa: F821
