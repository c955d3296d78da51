"""Figures of the sensitivity analyses (em_lib.study.plotting) as vector PDF and 300-dpi PNG.
A figure that does not apply to the config is a small placeholder saying why, and the reason
goes to ``figure_notes.json`` for the report."""

from em_lib.study.script import run


def main(smk, log):
    import json
    from pathlib import Path

    from em_lib.study import plotting, report, results, sensitivity

    settings = smk.params.settings
    tables = {Path(p).stem: report.read_table(p) for p in [*smk.input.tables, *smk.input.delta]}
    starts = report.read_table(smk.input.starts)
    ds = results.open_results(smk.input.results)
    labels = sensitivity.variable_labels(ds)
    models = ds["model"].values.tolist()
    target = smk.params.target
    columns = ds["has_feature"].sel(dataset=target["dataset"]).values
    feature_names = ds["feature"].values[columns].tolist()
    plotting.set_theme()
    hmm_starts = starts[starts["model"].isin(sensitivity.HMM_MODELS)]
    makers = {
        "initialisation": lambda: plotting.initialisation_figure(
            tables["initialisation"], starts, labels, method=settings["method"], model_order=models
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
    notes = report.figure_notes(tables, ds, settings)
    for name, pdf, png in zip(smk.params.names, smk.output.pdf, smk.output.png, strict=True):
        figure = plotting.placeholder_figure(notes[name]) if name in notes else makers[name]()
        figure.savefig(pdf)
        figure.savefig(png, dpi=300)
        plotting.close(figure)
        log.info("wrote %s and %s%s", pdf, png, f" ({notes[name]})" if name in notes else "")
    Path(smk.output.notes).write_text(json.dumps(notes, indent=2), encoding="utf-8")


run(snakemake, main)  # noqa: F821
