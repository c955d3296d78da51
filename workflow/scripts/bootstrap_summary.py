"""Join the bootstrap chunks of every condition; write the selected-model tables, a booktabs
table and a classification figure per data set (em_lib.study.selected)."""

from em_lib.study.script import run


def main(smk, log):
    import numpy as np
    import xarray as xr

    from em_lib.study import design, jobs, plotting, plotting_selected, results, selected

    config = smk.params.config
    level = float(selected.bootstrap_settings(config)["level"])
    conditions = [design.MaskJob(**labels) for labels in smk.params.jobs]
    data = {
        name: jobs.load_arrays(path)
        for name, path in zip(smk.params.datasets, smk.input.data, strict=True)
    }
    observed = {}
    for job, path in zip(conditions, smk.input.masks, strict=True):
        mask = jobs.load_arrays(path)["mask"]
        arrays = data[job.dataset]
        observed[job] = (np.where(mask, np.nan, arrays["X"]), arrays["feature_names"].tolist())
    parts = []
    for path in smk.input.chunks:
        with xr.open_dataset(path, engine="netcdf4") as part:
            parts.append(part.load())
    summary = selected.summarise(
        parts,
        conditions,
        observed,
        results.open_results(smk.input.results),
        smk.params.criterion,
        level,
    )
    for joined, path in zip(summary["conditions"], smk.output.conditions, strict=True):
        results.write_netcdf(joined, path)
    summary["table"].to_csv(smk.output.table, index=False)
    summary["classification"].to_csv(smk.output.classification, index=False)
    plotting.set_theme()
    outputs = zip(
        smk.params.datasets, smk.output.latex, smk.output.png, smk.output.pdf, strict=True
    )
    for name, latex, png, pdf in outputs:
        job = design.MaskJob(**smk.params.report_jobs[name])
        cell = summary["selected"].get(job)
        if cell is None:
            reason = f"{name}: no exact-EM fit of {selected.describe_condition(job)} succeeded"
            log.warning(reason)
            with open(latex, "w", encoding="utf-8") as handle:
                handle.write(f"% {reason}\n")
            figure = plotting.placeholder_figure(reason)
            figure.savefig(pdf)
            figure.savefig(png, dpi=200)
            plotting.close(figure)
            continue
        table = summary["table"][
            [
                selected.condition_key(row) == selected.condition_key(job.labels)
                for _, row in summary["table"].iterrows()
            ]
        ]
        caption = selected.report_caption(job, cell, table)
        with open(latex, "w", encoding="utf-8") as handle:
            handle.write(selected.booktabs_table(table, caption, f"tab:selected-{name}"))
        X_obs, names = observed[job]
        labels, uncertainty = selected.classification(X_obs, cell)
        figure = plotting_selected.classification_figure(
            X_obs,
            labels,
            uncertainty,
            cell,
            names,
            title=f"{name}: {cell['model']}, K = {cell['n_components']} "
            f"({selected.describe_condition(job)})",
        )
        figure.savefig(pdf)
        figure.savefig(png, dpi=200)
        plotting.close(figure)
        log.info("%s", caption)


run(snakemake, main)  # noqa: F821
