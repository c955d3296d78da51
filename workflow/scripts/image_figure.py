"""Segmentation and restoration figure of one image data set (em_lib.plotting_image), as
vector PDF and 300-dpi PNG, plus a JSON summary whose ``caption`` states the numbers shown.

K is the one BIC selects in the aggregate (method em, lowest missing rate of the first
mechanism, best start per cell); the segmentation map is a refit at that K on the undamaged
pixel features; the damaged image is the workflow's mask at the highest rate of the first
mechanism; the restored image is the EM conditional-mean imputation of a refit on the damaged
pixels. Every refit draws its starts from the root seed (em_lib.experiment.seed_sequence).
"""

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = str(snakemake.threads)  # before numpy is imported

import json
import logging

import numpy as np
import pandas as pd
from em_lib import GaussianMixture, experiment, plotting, plotting_image, results
from em_lib.metrics import adjusted_rand_index
from em_lib.segmentation import pixel_features, restoration_error

logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
)
logging.captureWarnings(True)
log = logging.getLogger("image_figure")
logging.getLogger("fontTools").setLevel(logging.WARNING)  # PDF font subsetting chatter

METHOD_NAMES = {"em": "EM", "complete_case": "complete case", "mean_impute": "mean imputation"}


def percent(rate) -> str:
    return f"{100 * float(rate):g}%"


def aggregate_cells(ds, dataset, model, mechanism, replicate):
    """ARI and BIC of the best start (highest log-likelihood) per (K, rate, method)."""
    cell = ds.sel(dataset=dataset, model=model, mechanism=mechanism, replicate=replicate)
    best = results.best_start(cell)
    chosen = cell[["ari", "bic"]].isel(init=best.where(best >= 0, 0))
    frame = chosen.to_dataframe()[["ari", "bic"]].reset_index()
    frame["failed"] = (best < 0).to_dataframe(name="failed")["failed"].to_numpy()
    frame.loc[frame["failed"], ["ari", "bic"]] = np.nan
    in_design = cell["in_design"].to_dataframe()["in_design"].to_numpy()
    return frame[in_design]


def mixture(n_components, model, fit, stream):
    return GaussianMixture(
        n_components,
        covariance_type=model,
        n_init=fit["n_init"],
        init_params="k-means++",
        nested_starts=False,
        tol=fit["tol"],
        max_iter=fit["max_iter"],
        reg_covar=fit["reg_covar"],
        random_state=stream,
    )


def full_image(values, pixel_index, shape):
    """Rows of colours (n, C) placed at their pixels of an (H, W, C) image; other pixels NaN."""
    flat = np.full((shape[0] * shape[1], shape[2]), np.nan)
    flat[pixel_index] = values
    return flat.reshape(shape)


try:
    p = snakemake.params
    name, model, mechanism = snakemake.wildcards.dataset, p.model, p.mechanism
    rate, replicate, root_seed = float(p.missing_rate), int(p.replicate), int(p.root_seed)
    data = experiment.load_arrays(snakemake.input.data)
    image, X, pixel_index = data["image"], data["X"], data["pixel_index"]
    truth = data.get("labels")
    n_channels = image.shape[2]
    features = pixel_features(image, coordinate_weight=p.spec["coordinate_weight"])

    cells = aggregate_cells(
        results.open_results(snakemake.input.results), name, model, mechanism, replicate
    )
    lowest = cells["missing_rate"].min()
    bic = cells[(cells["method"] == "em") & (cells["missing_rate"] == lowest)]
    k = int(bic.loc[bic["bic"].idxmin(), "n_components"])
    log.info("%s: BIC selects K = %d (em, %s %s, model %s)", name, k, mechanism, lowest, model)

    # segmentation at the selected K on the undamaged pixels
    stream = experiment.seed_sequence(
        root_seed, "image_figure", dataset=name, model=model, n_components=k
    )
    segmenter = mixture(k, model, p.fit, stream).fit(X)
    labels = segmenter.predict(X)
    label_map = np.full(image.shape[0] * image.shape[1], -1, dtype=np.int64)
    label_map[pixel_index] = labels
    label_map = label_map.reshape(image.shape[:2])
    ari_0 = adjusted_rand_index(truth, labels) if truth is not None else np.nan

    # damage (the workflow's mask) and EM restoration
    mask = experiment.load_arrays(snakemake.input.mask)["mask"]
    X_obs = np.where(mask, np.nan, X)
    stream = experiment.seed_sequence(
        root_seed,
        "image_restore",
        dataset=name,
        model=model,
        n_components=k,
        mechanism=mechanism,
        missing_rate=rate,
        replicate=replicate,
    )
    restorer = mixture(k, model, p.fit, stream).fit(X_obs)
    colour_mask = mask[:, :n_channels]
    damaged_colours = np.where(colour_mask, np.nan, image.reshape(-1, n_channels)[pixel_index])
    damaged = full_image(damaged_colours, pixel_index, image.shape)
    imputed = features.center + features.scale * restorer.impute(X_obs)[:, :n_channels]
    restored = full_image(
        np.where(colour_mask, np.clip(imputed, 0, 1), damaged_colours), pixel_index, image.shape
    )
    mean_colours = np.where(colour_mask, np.nanmean(damaged_colours, axis=0), damaged_colours)
    full_mask = full_image(colour_mask, pixel_index, image.shape) == 1
    rmse_em = restoration_error(image, restored, full_mask)
    rmse_mean = restoration_error(
        image, full_image(mean_colours, pixel_index, image.shape), full_mask
    )

    # ARI against the missing rate at the selected K; at 0% the methods coincide
    curve = cells[cells["n_components"] == k][["missing_rate", "method", "ari"]]
    curve = curve.rename(columns={"missing_rate": "rate"})
    zero = pd.DataFrame({"rate": 0.0, "method": sorted(set(curve["method"])), "ari": ari_0})
    curve = pd.concat([zero, curve], ignore_index=True)

    def ari_at(method, at):
        rows = curve[(curve["method"] == method) & np.isclose(curve["rate"], at)]
        return float(rows["ari"].mean()) if len(rows) else float("nan")

    others = [m for m in dict.fromkeys(curve["method"]) if m != "em"]
    baseline = ", ".join(f"{ari_at(m, rate):.2f} {METHOD_NAMES.get(m, m)}" for m in others)
    caption = (
        f"{name}: BIC selects K = {k} (exact EM, {mechanism} {percent(lowest)}). "
        f"ARI {ari_0:.2f} at 0%, {ari_at('em', rate):.2f} at {percent(rate)} {mechanism} "
        f"with EM vs {baseline}. "
        f"The damaged image misses {float(colour_mask.mean()):.0%} of the colour values "
        f"({mechanism} {percent(rate)}); the EM restoration has RMSE {rmse_em:.3f} over them "
        f"vs {rmse_mean:.3f} for mean imputation (colour units in [0, 1])."
    )
    log.info(caption)

    plotting.set_theme()
    figure = plotting_image.segmentation_figure(
        image,
        label_map,
        damaged,
        restored,
        curve,
        n_components=k,
        title=f"{name}: segmentation at K = {k}, {mechanism} damage at {percent(rate)}",
    )
    figure.savefig(snakemake.output.pdf)
    figure.savefig(snakemake.output.png, dpi=300)
    plotting.close(figure)
    summary = {
        "dataset": name,
        "model": model,
        "n_components": k,
        "mechanism": mechanism,
        "missing_rate": rate,
        "lowest_rate": float(lowest),
        "ari": {
            "0": ari_0,
            **{
                f"{m}@{r:g}": a
                for m, r, a in curve[["method", "rate", "ari"]].itertuples(index=False)
                if r > 0
            },
        },
        "restoration_rmse": {"em": rmse_em, "mean_impute": rmse_mean},
        "caption": caption,
    }
    with open(snakemake.output.summary, "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2, allow_nan=True)
    log.info("wrote %s, %s and %s", *snakemake.output)
except Exception:
    log.exception("failed")
    raise
