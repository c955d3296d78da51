"""Segmentation and restoration figure of one image data set (em_lib.study.image), as vector
PDF and 300-dpi PNG, plus a JSON summary whose ``caption`` states the numbers shown. Read from
the fitted models stored in the aggregate: nothing is refitted."""

from em_lib.study.script import run


def main(smk, log):
    import json

    from em_lib.study import image, jobs, plotting, plotting_image, results

    damage = smk.params.damage
    name = smk.wildcards.dataset
    data = jobs.load_arrays(smk.input.data)
    mask = jobs.load_arrays(smk.input.mask)["mask"]
    shown = image.image_analysis(
        results.open_results(smk.input.results),
        data,
        mask,
        dataset=name,
        mechanism=damage["mechanism"],
        missing_rate=damage["missing_rate"],
        replicate=damage["replicate"],
        criterion=smk.params.criterion,
    )
    log.info(shown["caption"])
    plotting.set_theme()
    rate = f"{100 * damage['missing_rate']:g}%"
    figure = plotting_image.segmentation_figure(
        shown["image"],
        shown["label_map"],
        shown["damaged"],
        shown["restored"],
        shown["curve"],
        n_components=shown["n_components"],
        title=f"{name}: segmentation at K = {shown['n_components']}, "
        f"{damage['mechanism']} damage at {rate}",
        agreement_title=shown["agreement_title"],
    )
    figure.savefig(smk.output.pdf)
    figure.savefig(smk.output.png, dpi=300)
    plotting.close(figure)
    summary = {
        key: shown[key]
        for key in ("n_components", "model", "has_truth", "restoration_rmse", "caption")
    }
    summary.update(damage, dataset=name, curve=shown["curve"].to_dict(orient="records"))
    with open(smk.output.summary, "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2, allow_nan=True, default=float)


run(snakemake, main)  # noqa: F821
