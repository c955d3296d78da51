# Image segmentation and restoration figure (em_lib.plotting_image), one per image data set.

IMAGE_DATASETS = [
    name for name in DESIGN["coords"]["dataset"] if config["datasets"][name]["kind"] == "image"
]


# the damaged image: the highest rate of the first mechanism of the sweep (other than "none"
# where there is one), first replicate
_IMAGE_PAIRS = experiment.mechanism_rate_pairs(config)
_IMAGE_MECHANISM = next(
    (m for m, _ in _IMAGE_PAIRS if m != "none"), _IMAGE_PAIRS[0][0] if _IMAGE_PAIRS else "none"
)
IMAGE_DAMAGE = (
    _IMAGE_MECHANISM,
    max((r for m, r in _IMAGE_PAIRS if m == _IMAGE_MECHANISM), default=0.0),
    int(config["sweep"]["replicate"][0]),
)


rule image_figure:
    input:
        data="results/data/{dataset}.npz",
        results="results/experiment.nc",
        mask=(
            "results/masks/{{dataset}}/{m}/rate{r}/rep{rep}.npz".format(
                m=IMAGE_DAMAGE[0], r=experiment.format_rate(IMAGE_DAMAGE[1]), rep=IMAGE_DAMAGE[2]
            )
        ),
    output:
        pdf=report(
            "results/figures/image_{dataset}.pdf",
            caption="../report/figure_image.rst",
            category="Figures",
            subcategory="PDF",
        ),
        png=report(
            "results/figures/image_{dataset}.png",
            caption="../report/figure_image.rst",
            category="Figures",
            subcategory="PNG",
        ),
        summary="results/figures/image_{dataset}.json",
    log:
        "results/logs/image_figure/{dataset}.log",
    conda:
        "../envs/em_lib.yaml"
    params:
        spec=get_dataset_spec,
        model=lambda wildcards: (
            "full"
            if "full" in experiment.dataset_models(config, wildcards.dataset)
            else experiment.dataset_models(config, wildcards.dataset)[0]
        ),
        mechanism=IMAGE_DAMAGE[0],
        missing_rate=IMAGE_DAMAGE[1],
        replicate=IMAGE_DAMAGE[2],
        fit=config["fit"],
        root_seed=config["root_seed"],
    script:
        "../scripts/image_figure.py"
