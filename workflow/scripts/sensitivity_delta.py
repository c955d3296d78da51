"""Delta-adjustment (tipping-point) analysis on one data set and mask (em_lib.study.delta)."""

from em_lib.study.script import run


def main(smk, log):
    import numpy as np

    from em_lib.numerics.fitting import MixtureSettings
    from em_lib.study import delta, jobs, report, results

    settings, target = smk.params.settings, smk.params.target
    X = jobs.load_arrays(smk.input.data)["X"].astype(float)
    X[jobs.load_arrays(smk.input.mask)["mask"]] = np.nan
    variables = target["variables"]
    if variables is None:
        variables = np.flatnonzero(np.isnan(X).any(axis=0)).tolist()
    ds = results.open_results(smk.input.results)
    fitted = target["model"] in ds["model"].values.tolist()
    reference = delta.reference_model(ds, target) if fitted else None
    if not variables:
        tables = delta.empty_tables("the data set has no missing value on this mask")
    elif reference is None:
        tables = delta.empty_tables(
            f"no {target['model']} mixture was fitted to {target['dataset']} on this mask"
        )
    else:
        fit_settings = MixtureSettings.from_config(
            {**smk.params.fit, "n_init": settings["n_init"], "nested_starts": False}
        )
        tables = delta.delta_adjustment(
            X,
            reference,
            variables=variables,
            deltas=settings["deltas"],
            n_components=target["n_components"],
            covariance_type=target["model"],
            settings=fit_settings,
            n_draws=settings["n_draws"],
            conclusion=settings["conclusion"],
            component=settings["component"],
            threshold=settings["threshold"],
            random_state=smk.params.root_seed,
        )
    label = "delta adjustment on {dataset} {mechanism} rate {missing_rate} rep {replicate}"
    for frame, csv, tex in zip(tables, smk.output.csv, smk.output.tex, strict=True):
        for position, key in enumerate(("dataset", "mechanism", "missing_rate", "replicate")):
            frame.insert(position, key, target[key])
        report.write_table(frame, csv, tex, comment=label.format(**target))
    log.info("tipping points:\n%s", tables[1].to_string())


run(snakemake, main)  # noqa: F821
