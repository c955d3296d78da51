"""The self-contained HTML report (em_lib.report): figures, tables, findings and methods."""

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = str(snakemake.threads)  # before numpy is imported

import json
import logging
from pathlib import Path

import pandas as pd
from em_lib import report, results, sensitivity

logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
)
logging.captureWarnings(True)
log = logging.getLogger("report")


def caption(path):
    """The first paragraph of a caption .rst file, as plain text."""
    text = Path(path).read_text(encoding="utf-8").split("\n\n")[0]
    return " ".join(text.replace("``", "").split())


try:
    settings = snakemake.params.settings
    ds = results.open_results(snakemake.input.results)
    config = json.loads(ds.attrs["config"])
    tables = {Path(p).stem: pd.read_csv(p) for p in snakemake.input.tables}
    findings = report.key_findings(
        tables["selection"],
        tables["initialisation"],
        tables["missingness"],
        sensitivity.true_components(ds),
        tables["delta_tipping"],
        criterion=snakemake.params.criterion,
        method=settings["method"],
        hmm_init=tables["hmm_initialisation"],
    )
    figures = [
        (name.replace("_", " "), png, caption(rst))
        for name, png, rst in zip(
            snakemake.params.figures,
            snakemake.input.figures,
            snakemake.params.figure_captions,
            strict=True,
        )
    ]
    shown = [
        (name.replace("_", " "), tables[name], caption(rst))
        for name, rst in zip(snakemake.params.tables, snakemake.params.table_captions, strict=True)
    ]
    images = []
    for name, png, summary in zip(
        snakemake.params.image_datasets,
        snakemake.input.image_figures,
        snakemake.input.image_summaries,
        strict=True,
    ):
        numbers = json.loads(Path(summary).read_text(encoding="utf-8"))["caption"]
        images.append(
            (
                f"image segmentation of {name}",
                png,
                f"{numbers} {caption(snakemake.params.image_caption)}",
            )
        )
    page = report.html_report(
        title=settings["title"],
        glance=report.glance_items(ds, config),
        findings=findings,
        figures=figures,
        tables=shown,
        methods=report.methods_paragraph(config, ds.attrs, snakemake.params.sensitivity),
        failures=tables["failures"],
        images=images,
    )
    Path(snakemake.output[0]).write_text(page, encoding="utf-8")
    log.info(
        "wrote %s (%d figures, %d image figures, %d tables)",
        snakemake.output[0],
        len(figures),
        len(images),
        len(shown),
    )
except Exception:
    log.exception("failed")
    raise
