"""Departures from MAR: the delta-adjustment (tipping-point) analysis.

The delta-adjustment analysis of van Buuren (*Flexible Imputation of Missing Data*, section
3.8) and the National Research Council (2010) report on missing data in clinical trials:
the MAR fit's imputations of chosen variables are shifted by ``delta`` standard deviations,
the mixture is re-estimated on the completed data, and the smallest shift that changes a
conclusion is the tipping point.

The MAR reference is the fitted model stored in the aggregate (exact EM on the target mask,
the K its BIC selects); nothing is refitted for it. Every re-estimation goes through the
library's fitting driver (:func:`em_lib.numerics.fitting.fit_mixture`) with the workflow's fit
settings, ``n_init`` from the delta settings and no nested starts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from em_lib.metrics import match_components
from em_lib.numerics.criteria import information_criteria, n_parameters
from em_lib.numerics.fitting import MixtureSettings, fit_mixture
from em_lib.numerics.gaussian import impute_mixture
from em_lib.numerics.starts import as_generator


def tipping_point(deltas, conclusions) -> dict[str, float]:
    """Smallest shifts, on each side of 0, at which a conclusion differs from the one at
    ``delta = 0``: ``negative`` (the largest delta < 0 whose conclusion differs) and
    ``positive`` (the smallest delta > 0 whose conclusion differs); NaN where the conclusion
    never changes on that side."""
    deltas = np.asarray(deltas, dtype=float)
    conclusions = np.asarray(conclusions, dtype=object)
    zero = np.flatnonzero(deltas == 0)
    if zero.size == 0:
        raise ValueError("the delta grid must contain 0 (the MAR analysis)")
    reference = conclusions[zero[0]]
    changed = np.array([c != reference for c in conclusions], dtype=bool)
    positive = deltas[(deltas > 0) & changed]
    negative = deltas[(deltas < 0) & changed]
    return {
        "negative": float(negative.max()) if negative.size else np.nan,
        "positive": float(positive.min()) if positive.size else np.nan,
    }


def reference_model(ds, target, criterion="bic"):
    """The MAR reference stored in the aggregate: (K, weights, means, full covariances) of the
    fitted ``em`` model on the target mask with the lowest ``criterion``, in the data set's
    own columns; None when no such model was fitted."""
    cell = {key: target[key] for key in ("dataset", "mechanism", "missing_rate", "replicate")}
    cell.update(model=target["model"], method="em")
    chosen = ds.sel(cell)
    scores = chosen[f"fit_{criterion}"].where(~chosen["fit_failed"])
    grid = [k for k in target["n_components"] if k in chosen["n_components"].values.tolist()]
    scores = scores.sel(n_components=grid)
    if not np.isfinite(scores.values).any():
        return None
    k = int(grid[int(np.nanargmin(scores.values))])
    at_k = chosen.sel(n_components=k)
    columns = ds["has_feature"].sel(dataset=target["dataset"]).values
    return (
        k,
        at_k["weights"].values[:k],
        at_k["means"].values[:k][:, columns],
        at_k["covariances"].values[:k][:, columns][:, :, columns],
    )


def _fit(X, n_components, covariance_type, settings, seed):
    return fit_mixture(X, n_components, covariance_type, settings, seed)


def _bic(X, result):
    n_used = int((~np.isnan(X).all(axis=1)).sum())
    p = n_parameters(result.n_components, X.shape[1], result.covariance_type)
    return float(information_criteria(result.log_likelihood, p, n_used)["bic"])


def delta_adjustment(
    X_missing,
    reference,
    *,
    variables: Sequence[int],
    deltas: Sequence[float],
    n_components: Sequence[int],
    covariance_type: str,
    settings: MixtureSettings,
    n_draws: int = 0,
    conclusion: str = "selected_k",
    component: int = 0,
    threshold: float = 0.5,
    random_state=0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Delta-adjustment sensitivity analysis of a Gaussian mixture fitted under MAR.

    ``reference`` is ``(K, weights, means, full covariances)`` of the MAR fit
    (:func:`reference_model`). Its imputations of the missing entries (the conditional
    expectations with ``n_draws = 0``, else ``n_draws`` multiple-imputation draws) are shifted
    in the columns ``variables`` by ``delta`` standard deviations of that column's observed
    values; the completed data are refitted for every K of ``n_components``, and the weights
    and means of the fit at the reference K (components matched to the reference by the
    Hungarian assignment on the means) and the K selected by BIC are recorded. With draws,
    per-draw results are averaged (weights, means) and K is the most frequent choice.

    Returns
    -------
    table : one row per (delta, component): ``delta``, ``component``, ``weight``,
        ``mean_<j>`` for every feature j, ``selected_k``, ``conclusion``
    tipping : one row per side (``negative``, ``positive``): the tipping delta (NaN if the
        conclusion never changes on the grid), the conclusion at 0 and its description
    """
    X_missing = np.asarray(X_missing, dtype=float)
    deltas = np.asarray(sorted({float(d) for d in deltas}))
    grid = sorted(int(k) for k in n_components)
    variables = [int(v) for v in variables]
    if conclusion not in ("selected_k", "weight_above"):
        raise ValueError(f"conclusion must be 'selected_k' or 'weight_above', got {conclusion!r}")
    ref_k, ref_weights, ref_means, ref_full = reference
    if conclusion == "weight_above" and not 0 <= component < ref_k:
        raise ValueError(f"component {component} does not exist at the reference K = {ref_k}")
    missing = np.isnan(X_missing)
    scale = np.nanstd(X_missing, axis=0)
    rng = as_generator(random_state)
    if n_draws:
        completions = impute_mixture(
            X_missing, ref_weights, ref_means, ref_full, "full", n_draws=n_draws, rng=rng
        )
    else:
        completions = impute_mixture(X_missing, ref_weights, ref_means, ref_full, "full")[None]

    rows = []
    for delta in deltas:
        per_draw_weights, per_draw_means, per_draw_k = [], [], []
        for completed in completions:
            shifted = completed.copy()
            for j in variables:
                shifted[missing[:, j], j] += delta * scale[j]
            refits = {k: _fit(shifted, k, covariance_type, settings, random_state) for k in grid}
            per_draw_k.append(min(grid, key=lambda k: _bic(shifted, refits[k])))
            at_ref = (
                refits[ref_k]
                if ref_k in refits
                else _fit(shifted, ref_k, covariance_type, settings, random_state)
            )
            order = match_components(ref_means, at_ref.means)
            per_draw_weights.append(at_ref.weights[order])
            per_draw_means.append(at_ref.means[order])
        weights = np.mean(per_draw_weights, axis=0)
        means = np.mean(per_draw_means, axis=0)
        values, counts = np.unique(per_draw_k, return_counts=True)
        selected = int(values[np.argmax(counts)])
        verdict = selected if conclusion == "selected_k" else bool(weights[component] > threshold)
        for k in range(ref_k):
            row = {"delta": delta, "component": k, "weight": weights[k]}
            row.update({f"mean_{j}": means[k, j] for j in range(X_missing.shape[1])})
            row.update(selected_k=selected, conclusion=verdict)
            rows.append(row)
    table = pd.DataFrame(rows)
    per_delta = table.drop_duplicates("delta")
    points = tipping_point(per_delta["delta"], per_delta["conclusion"])
    at_zero = per_delta.loc[per_delta["delta"] == 0, "conclusion"].iloc[0]
    if conclusion == "selected_k":
        described = f"BIC selects K = {at_zero}"
    else:
        described = f"weight of component {component} > {threshold:g}: {bool(at_zero)}"
    tipping = pd.DataFrame(
        {
            "side": list(points),
            "tipping_delta": list(points.values()),
            "conclusion_at_0": [described] * 2,
            "reference_k": [ref_k] * 2,
            "variables": [",".join(map(str, variables))] * 2,
            "n_draws": [n_draws] * 2,
            "n_missing": [int(missing[:, variables].sum())] * 2,
        }
    )
    return table, tipping


TABLE_COLUMNS = ("delta", "component", "weight", "selected_k", "conclusion")
TIPPING_COLUMNS = (
    "side",
    "tipping_delta",
    "conclusion_at_0",
    "reference_k",
    "variables",
    "n_draws",
    "n_missing",
)


def empty_tables(reason: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two tables of an analysis that does not apply, with the reason in ``note``."""
    table = pd.DataFrame(columns=[*TABLE_COLUMNS, "note"])
    tipping = pd.DataFrame({"side": ["not run"], "note": [reason]})
    return table, tipping


def delta_analysis(X, ds, target, settings, fit, root_seed):
    """The workflow's delta step: the analysis on ``X`` (the target data with the mask's and
    its own missing values as NaN) against the MAR fit stored in ``ds``, with the delta
    ``settings`` (``config["sensitivity"]["delta"]``) and the fit settings ``fit``
    (``config["fit"]``; ``n_init`` from the delta settings, no nested starts). Tables with a
    ``note`` where the analysis does not apply."""
    variables = target["variables"]
    if variables is None:
        variables = np.flatnonzero(np.isnan(X).any(axis=0)).tolist()
    fitted = target["model"] in ds["model"].values.tolist()
    reference = reference_model(ds, target) if fitted else None
    if not variables:
        return empty_tables("the data set has no missing value on this mask")
    if reference is None:
        return empty_tables(
            f"no {target['model']} mixture was fitted to {target['dataset']} on this mask"
        )
    fit_settings = MixtureSettings.from_config(
        {**fit, "n_init": settings["n_init"], "nested_starts": False}
    )
    options = {key: settings[key] for key in ("n_draws", "conclusion", "component", "threshold")}
    return delta_adjustment(
        X,
        reference,
        variables=variables,
        deltas=settings["deltas"],
        n_components=target["n_components"],
        covariance_type=target["model"],
        settings=fit_settings,
        random_state=root_seed,
        **options,
    )
