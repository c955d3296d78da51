"""The self-contained HTML report (em_lib.study.report): figures, tables, findings, methods."""

from em_lib.study.script import run


def caption(path):
    """The first paragraph of a caption .rst file, as plain text."""
    from pathlib import Path

    text = Path(path).read_text(encoding="utf-8").split("\n\n")[0]
    return " ".join(text.replace("``", "").split())


def selected_models(smk, ds, criterion, method):
    """The "Selected models" section: bootstrapped data sets with intervals, cluster sizes
    and the classification figure; the others with the stored means."""
    from em_lib.study import design, report, selected

    names = list(smk.params.bootstrap_datasets)
    sections = []
    if names:
        table_path, classes_path, *figures = smk.input.selected
        sections = selected.report_sections(
            report.read_table(table_path),
            report.read_table(classes_path),
            {name: design.MaskJob(**smk.params.report_jobs[name]) for name in names},
            dict(zip(names, figures, strict=True)),
            criterion,
        )
    others = [
        entry for entry in report.selected_models(ds, criterion, method) if entry[0] not in names
    ]
    return sections + others


def main(smk, log):
    import json
    from pathlib import Path

    from em_lib.study import report, results, sensitivity

    settings, params = smk.params.settings, smk.params
    ds = results.open_results(smk.input.results)
    config = json.loads(ds.attrs["config"])
    tables = {Path(p).stem: report.read_table(p) for p in [*smk.input.tables, *smk.input.delta]}
    notes = json.loads(Path(smk.input.notes).read_text(encoding="utf-8"))
    criterion = params.sensitivity["criterion"]
    findings = report.key_findings(
        tables["selection"],
        tables["initialisation"],
        tables["missingness"],
        sensitivity.true_components(ds),
        tables["delta_tipping"],
        criterion=criterion,
        method=settings["method"],
        hmm_init=tables["hmm_initialisation"],
    )
    figures = [
        (name.replace("_", " "), png, caption(rst))
        for name, png, rst in zip(
            params.figures, smk.input.figures, params.figure_captions, strict=True
        )
        if name not in notes
    ]
    shown = [
        (name.replace("_", " "), tables[name], caption(rst))
        for name, rst in zip(params.tables, params.table_captions, strict=True)
        if not tables[name].empty
    ]
    left_out = [f"figure {name}: {note}" for name, note in notes.items()]
    left_out += [
        f"table {name.replace('_', ' ')}: empty for this experiment"
        for name in params.tables
        if tables[name].empty
    ]
    images = []
    for name, png, summary in zip(
        params.image_datasets, smk.input.image_figures, smk.input.image_summaries, strict=True
    ):
        numbers = json.loads(Path(summary).read_text(encoding="utf-8"))["caption"]
        images.append(
            (f"image segmentation of {name}", png, f"{numbers} {caption(params.image_caption)}")
        )
    page = report.html_report(
        title=settings["title"],
        glance=report.glance_items(ds, config),
        findings=findings,
        figures=figures,
        tables=shown,
        methods=report.methods_paragraph(config, ds.attrs, params.sensitivity),
        failures=tables["failures"],
        images=images,
        notes=left_out,
        models=selected_models(smk, ds, criterion, settings["method"]),
    )
    Path(smk.output[0]).write_text(page, encoding="utf-8")
    log.info(
        "wrote %s (%d figures, %d image figures, %d tables, %d notes)",
        smk.output[0],
        len(figures),
        len(images),
        len(shown),
        len(left_out),
    )


run(snakemake, main)  # noqa: F821
