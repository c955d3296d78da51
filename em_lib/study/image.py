"""The image figure's analysis: segmentation, damage and restoration of an image data set,
read from the fitted models stored in the aggregate (nothing is refitted).

K is the one the criterion selects for exact EM on the least damaged mask of the figure's
mechanism (the data as given when the sweep runs ``none``); the segmentation map is the MAP
component of every pixel's undamaged features under that fitted model; the restored image is
the posterior-mean imputation of the damaged pixels under the model fitted to them. The curve
is the adjusted Rand index against the missing rate at that K: against the true regions of a
synthetic scene, else against the segmentation of the undamaged image (the agreement with the
fit on the undamaged data).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from em_lib.metrics import adjusted_rand_index
from em_lib.numerics.gaussian import impute_posterior_means

from .evaluation import mixture_posteriors

METHOD_NAMES = {"em": "EM", "complete_case": "complete case", "mean_impute": "mean imputation"}


def _percent(rate) -> str:
    return f"{100 * float(rate):g}%"


def stored_model(ds, **cell):
    """(weights (K,), means (K, d), full covariances (K, d, d)) of a cell's fitted model in the
    data set's own columns, or None when it was not fitted."""
    chosen = ds.sel({key: value for key, value in cell.items()})
    if bool(chosen["fit_failed"]) or not bool(chosen["in_design"]):
        return None
    k = int(cell["n_components"])
    columns = ds["has_feature"].sel(dataset=cell["dataset"]).values
    weights = chosen["weights"].values[:k]
    means = chosen["means"].values[:k][:, columns]
    full = chosen["covariances"].values[:k][:, columns][:, :, columns]
    return weights, means, full


def _labels(X, model):
    weights, means, full = model
    _, log_post = mixture_posteriors(X, weights[None], means[None], full[None], "full")
    return log_post[0].argmax(-1)


def _impute(X_obs, model):
    weights, means, full = model
    _, log_post = mixture_posteriors(X_obs, weights[None], means[None], full[None], "full")
    return impute_posterior_means(X_obs, np.exp(log_post), means[None], full[None])[0]


def _full_image(values, pixel_index, shape):
    flat = np.full((shape[0] * shape[1], shape[2]), np.nan)
    flat[pixel_index] = values
    return flat.reshape(shape)


def image_analysis(
    ds, data, mask, *, dataset, mechanism, missing_rate, replicate, criterion="bic"
) -> dict:
    """Everything the image figure shows, from the aggregate ``ds`` and the data set's arrays.

    Returns a dict with ``image``, ``label_map`` (H, W), ``damaged``, ``restored`` (H, W, C),
    ``curve`` (DataFrame rate / method / ari), ``n_components``, ``model``, ``has_truth``,
    the restoration errors and a ``caption`` stating the numbers.
    """
    from em_lib.segmentation import pixel_features, restoration_error

    image, X, pixel_index = data["image"], data["X"], data["pixel_index"]
    truth = data.get("labels")
    models = [
        m
        for m in ds["model"].values.tolist()
        if m != "hmm" and bool(ds["in_design"].sel(dataset=dataset, model=m).any())
    ]
    model = "full" if "full" in models else models[0]
    rates = sorted(
        float(r)
        for r in ds["missing_rate"].values
        if bool(
            ds["in_design"]
            .sel(
                {
                    "dataset": dataset,
                    "model": model,
                    "mechanism": mechanism,
                    "missing_rate": r,
                    "method": "em",
                }
            )
            .any()
        )
    )
    reference = {
        "dataset": dataset,
        "model": model,
        "mechanism": mechanism,
        "missing_rate": rates[0],
        "replicate": replicate,
        "method": "em",
    }
    if "none" in ds["mechanism"].values.tolist():
        reference.update(mechanism="none", missing_rate=0.0)
    scores = ds[f"fit_{criterion}"].sel(reference)
    n_components = int(scores["n_components"].values[int(np.nanargmin(scores.values))])
    base = stored_model(ds, **reference, n_components=n_components)
    labels = _labels(X, base)
    label_map = np.full(image.shape[0] * image.shape[1], -1, dtype=np.int64)
    label_map[pixel_index] = labels
    label_map = label_map.reshape(image.shape[:2])
    target = truth if truth is not None else labels
    n_channels = image.shape[2]

    rows = []
    methods = [m for m in ds["method"].values.tolist()]
    for rate in [0.0] + [r for r in rates if r > 0]:
        for method in methods:
            cell = {
                "dataset": dataset,
                "model": model,
                "replicate": replicate,
                "method": method,
                "n_components": n_components,
            }
            cell.update(mechanism="none", missing_rate=0.0) if rate == 0.0 else cell.update(
                mechanism=mechanism, missing_rate=rate
            )
            if cell["mechanism"] not in ds["mechanism"].values.tolist():
                continue
            fitted = stored_model(ds, **cell)
            ari = adjusted_rand_index(target, _labels(X, fitted)) if fitted else np.nan
            rows.append({"rate": rate, "method": method, "ari": ari})
    curve = pd.DataFrame(rows, columns=["rate", "method", "ari"])

    X_obs = np.where(mask, np.nan, X)
    damage = {"mechanism": mechanism, "missing_rate": missing_rate}
    damaged_model = stored_model(ds, **{**reference, **damage, "n_components": n_components})
    colour_mask = mask[:, :n_channels]
    colours = image.reshape(-1, n_channels)[pixel_index]
    damaged_colours = np.where(colour_mask, np.nan, colours)
    restored_colours = damaged_colours
    if damaged_model is not None and colour_mask.any():
        colour_features = pixel_features(image)  # the standardisation of the colour columns
        imputed = (
            colour_features.center
            + colour_features.scale * _impute(X_obs, damaged_model)[:, :n_channels]
        )
        restored_colours = np.where(colour_mask, np.clip(imputed, 0, 1), damaged_colours)
    mean_colours = np.where(colour_mask, np.nanmean(damaged_colours, axis=0), damaged_colours)
    full_mask = _full_image(colour_mask, pixel_index, image.shape) == 1
    restored = _full_image(restored_colours, pixel_index, image.shape)
    rmse_em = restoration_error(image, restored, full_mask) if full_mask.any() else np.nan
    rmse_mean = (
        restoration_error(image, _full_image(mean_colours, pixel_index, image.shape), full_mask)
        if full_mask.any()
        else np.nan
    )
    against = "the true regions" if truth is not None else "the undamaged segmentation"
    ari_at = {(r.method, r.rate): r.ari for r in curve.itertuples()}
    others = ", ".join(
        f"{ari_at.get((m, missing_rate), np.nan):.2f} {METHOD_NAMES.get(m, m)}"
        for m in methods
        if m != "em"
    )
    caption = (
        f"{dataset}: {criterion.upper()} selects K = {n_components} ({model}, exact EM, "
        f"{reference['mechanism']} {_percent(reference['missing_rate'])}). ARI against "
        f"{against}: {ari_at.get(('em', 0.0), np.nan):.2f} undamaged, "
        f"{ari_at.get(('em', missing_rate), np.nan):.2f} at {_percent(missing_rate)} "
        f"{mechanism} with EM" + (f" vs {others}" if others else "") + ". "
        f"The damaged image misses {float(colour_mask.mean()):.0%} of the colour values; the "
        f"EM restoration has RMSE {rmse_em:.3f} over them vs {rmse_mean:.3f} for mean "
        "imputation (colour units in [0, 1])."
    )
    return {
        "image": image,
        "label_map": label_map,
        "damaged": _full_image(damaged_colours, pixel_index, image.shape),
        "restored": restored,
        "curve": curve,
        "n_components": n_components,
        "model": model,
        "has_truth": truth is not None,
        "restoration_rmse": {"em": rmse_em, "mean_impute": rmse_mean},
        "caption": caption,
        "agreement_title": (
            "Segmentation accuracy" if truth is not None else "Agreement with the undamaged fit"
        ),
    }
