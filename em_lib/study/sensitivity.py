"""Sensitivity analyses over the experiment's results, each returned as a tidy pandas table.

Four questions are asked of the aggregate (:mod:`em_lib.results`):

* **initialisation** (:func:`initialisation_table`): how far apart the final log-likelihoods
  of the starts are, how many distinct optima they reach, the share reaching the best one and
  hence the number of starts needed to reach it with probability ``p``
  (``n = ceil(log(1 - p) / log(1 - share))``), and how many iterations they take;
* **number of components** (:func:`criteria_table`, :func:`selection_table`): BIC, AIC and
  ICL against K (best start per replicate, spread over replicates and starts) and how often
  each K is selected;
* **missingness** (:func:`missingness_table`): parameter-recovery error, ARI, imputation
  RMSE, selected K and log-likelihood against the missing rate, per mechanism and method;
* **departures from MAR** (:func:`delta_adjustment`, :func:`tipping_point`): the
  delta-adjustment / tipping-point analysis of van Buuren (*Flexible Imputation of Missing
  Data*, section 3.8) and the National Research Council (2010) report: imputed values of
  chosen variables are shifted by ``delta`` standard deviations, the mixture is re-estimated on
  the completed data, and the smallest shift that changes a conclusion is reported.

The HMM runs are the same initialisation and K questions restricted to ``model == "hmm"``
(``models=HMM_MODELS``). Only numpy, pandas and em_lib are used: no plotting, no I/O.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from em_lib.mixture import GaussianMixture

__all__ = [
    "CRITERIA",
    "HMM_MODELS",
    "RECOVERY_METRICS",
    "best_starts",
    "cluster_optima",
    "criteria_table",
    "delta_adjustment",
    "delta_target",
    "failures_table",
    "initialisation_table",
    "missingness_table",
    "selection_table",
    "starts_needed",
    "starts_table",
    "tipping_point",
    "true_components",
    "variable_labels",
]

CRITERIA = ("bic", "aic", "icl")
HMM_MODELS = ("hmm",)
PARAMETER_ERRORS = ("weights_abs_error", "means_rmse", "covariances_rel_frobenius")
RECOVERY_METRICS = (
    "means_rmse",
    "weights_abs_error",
    "covariances_rel_frobenius",
    "ari",
    "imputation_rmse",
    "log_likelihood",
    "selected_k",
)
_START_VARIABLES = (
    "log_likelihood",
    *CRITERIA,
    "n_iter",
    "converged",
    "failed",
    "failure_reason",
    "ari",
    *PARAMETER_ERRORS,
    "transmat_abs_error",
    "imputation_rmse",
)


# ---------------------------------------------------------------------------------------------
# from the labelled data set to tidy frames
# ---------------------------------------------------------------------------------------------


def variable_labels(ds) -> dict[str, dict[str, str]]:
    """``{name: {"long_name": ..., "units": ...}}`` of every variable and coordinate of ``ds``."""
    labels = {}
    for name, var in {**ds.coords, **ds.data_vars}.items():
        labels[str(name)] = {
            "long_name": str(var.attrs.get("long_name", name)),
            "units": str(var.attrs.get("units", "1")),
        }
    return labels


def true_components(ds) -> dict[str, int]:
    """True number of components per data set, from the ``config`` attribute (simulated data
    sets only; empty if unknown)."""
    try:
        config = json.loads(ds.attrs.get("config", "{}"))
    except json.JSONDecodeError:
        return {}
    truth = {}
    for name, spec in config.get("datasets", {}).items():
        if spec.get("kind") in ("gaussian_mixture", "hmm_sequences") and "n_components" in spec:
            truth[name] = int(spec["n_components"])
    return truth


def starts_table(ds, models: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per start of every fitted cell (cells outside the design are dropped).

    Columns: the dimensions of ``log_likelihood`` (``init`` included) and the per-start
    variables present in ``ds``. ``models`` keeps only those models.
    """
    names = [name for name in _START_VARIABLES if name in ds.data_vars]
    if models is not None:
        wanted = [m for m in ds["model"].values.tolist() if m in set(models)]
        ds = ds.sel(model=wanted)
    dims = list(ds["log_likelihood"].dims)
    frame = ds[names].reset_coords(drop=True).to_dataframe().reset_index()
    if "in_design" in ds.data_vars:
        design = ds["in_design"].reset_coords(drop=True).to_dataframe().reset_index()
        keys = [d for d in design.columns if d != "in_design"]
        frame = frame.merge(design, on=keys, how="left")
        frame = frame[frame.pop("in_design").astype(bool)]
    return frame[dims + names].reset_index(drop=True)


def _cell_dims(frame: pd.DataFrame, drop: Sequence[str] = ()) -> list[str]:
    """Grouping columns: every dimension column except ``init`` and ``drop``."""
    dims = [c for c in frame.columns if c not in _START_VARIABLES and c != "init"]
    return [c for c in dims if c not in drop]


# ---------------------------------------------------------------------------------------------
# initialisation
# ---------------------------------------------------------------------------------------------


def starts_needed(share, p: float):
    """Starts needed to reach the best optimum at least once with probability ``p`` when each
    start reaches it independently with probability ``share``:
    ``ceil(log(1 - p) / log(1 - share))``; 1 when ``share == 1``, NaN when ``share == 0``."""
    share = np.asarray(share, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.log1p(-p) / np.log1p(-np.clip(share, 0.0, 1.0))
        # guard against round-off pushing an exact integer ratio just above it
        needed = np.ceil(raw - 1e-9)
    needed = np.where(share >= 1.0, 1.0, needed)
    needed = np.where((share <= 0.0) | np.isnan(share), np.nan, needed)
    return needed if needed.ndim else float(needed)


def cluster_optima(values, tol: float, signatures=None, signature_tol: float = np.inf):
    """Label starts by the optimum they reached.

    Starts are taken in decreasing order of ``values`` (final log-likelihoods); a start joins
    the first optimum whose best start is within ``tol`` of its value (and, with
    ``signatures`` (n, m), within ``signature_tol`` on every signature column), otherwise it
    opens a new optimum. NaN values get label -1. Optimum 0 is the best.

    Returns
    -------
    labels : (n,) int array
    """
    values = np.asarray(values, dtype=float)
    labels = np.full(values.shape, -1, dtype=np.int64)
    if signatures is not None:
        signatures = np.asarray(signatures, dtype=float).reshape(len(values), -1)
    anchors: list[int] = []
    for index in np.argsort(-np.where(np.isnan(values), -np.inf, values), kind="stable"):
        if np.isnan(values[index]):
            continue
        for label, anchor in enumerate(anchors):
            if values[anchor] - values[index] > tol:
                continue
            if signatures is not None:
                gap = np.abs(signatures[anchor] - signatures[index])
                if np.any(gap[np.isfinite(gap)] > signature_tol):
                    continue
            labels[index] = label
            break
        else:
            labels[index] = len(anchors)
            anchors.append(index)
    return labels


def _initialisation_row(group: pd.DataFrame, tol, parameter_tol, probabilities):
    ok = ~group["failed"].to_numpy(bool) & np.isfinite(group["log_likelihood"].to_numpy(float))
    values = np.where(ok, group["log_likelihood"].to_numpy(float), np.nan)
    n_starts = len(group)
    row = {"n_starts": n_starts, "n_failed": int((~ok).sum())}
    if not ok.any():
        return row
    best = np.nanmax(values)
    labels = cluster_optima(values, tol)
    reached = labels == 0
    share = reached.sum() / n_starts
    row.update(
        ll_best=best,
        ll_median=float(np.nanmedian(values)),
        ll_spread=float(best - np.nanmin(values)),
        ll_iqr=float(np.subtract(*np.nanpercentile(values, [75, 25]))),
        n_optima=int(labels.max() + 1),
        share_best=float(share),
        n_iter_median=float(np.median(group["n_iter"].to_numpy(float)[ok])),
        n_iter_max=int(group["n_iter"].to_numpy()[ok].max()),
        share_converged=float(group["converged"].to_numpy(bool)[ok].mean()),
    )
    errors = [c for c in PARAMETER_ERRORS if c in group.columns]
    if errors:
        signature = group[errors].to_numpy(float)
        if np.isfinite(signature[ok]).any():
            by_parameters = cluster_optima(values, tol, signature, parameter_tol)
            row["n_optima_parameters"] = int(by_parameters.max() + 1)
    for p in probabilities:
        row[f"starts_p{round(100 * p):d}"] = starts_needed(share, p)
    return row


def initialisation_table(
    starts: pd.DataFrame,
    *,
    tol: float = 0.1,
    parameter_tol: float = 0.05,
    probabilities: Sequence[float] = (0.95, 0.99),
) -> pd.DataFrame:
    """Per fitted cell (every dimension but ``init``; an init-strategy dimension, if present,
    is kept as a column so strategies can be compared): spread of the final log-likelihoods
    over starts, the number of distinct optima and the share of starts reaching the best.

    Parameters
    ----------
    starts : the output of :func:`starts_table`
    tol : log-likelihoods (nat, total over rows) within ``tol`` of an optimum's best start
        belong to that optimum
    parameter_tol : optima are also split by the label-matched parameter errors
        (``n_optima_parameters``) when they differ by more than this (the aggregate keeps
        errors against the truth, not the parameters themselves)
    probabilities : for each ``p``, column ``starts_p{100 p}`` is the number of starts needed
        to reach the best optimum with probability ``p``

    Columns: cell dimensions, ``n_starts``, ``n_failed``, ``ll_best``, ``ll_median``,
    ``ll_spread`` (best - worst), ``ll_iqr``, ``n_optima``, ``n_optima_parameters``,
    ``share_best``, ``n_iter_median``, ``n_iter_max``, ``share_converged``, ``starts_p95``,
    ``starts_p99``.
    """
    keys = _cell_dims(starts)
    rows = []
    for values, group in starts.groupby(keys, sort=False, dropna=False):
        row = dict(zip(keys, values, strict=True))
        row.update(_initialisation_row(group, tol, parameter_tol, probabilities))
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# number of components
# ---------------------------------------------------------------------------------------------


def best_starts(starts: pd.DataFrame) -> pd.DataFrame:
    """The start with the highest final log-likelihood among those that did not fail, one row
    per cell (cells where every start failed are dropped)."""
    ok = starts[~starts["failed"].astype(bool) & np.isfinite(starts["log_likelihood"])]
    keys = _cell_dims(starts)
    index = ok.groupby(keys, sort=False)["log_likelihood"].idxmax()
    return ok.loc[index.to_numpy()].reset_index(drop=True)


def criteria_table(starts: pd.DataFrame, criteria: Sequence[str] = CRITERIA) -> pd.DataFrame:
    """BIC / AIC / ICL against K, long format.

    For every cell but the replicate, the best start of each replicate gives ``mean``, ``sd``,
    ``min`` and ``max`` over replicates (``n_replicates``); ``start_q10``, ``start_median``
    and ``start_q90`` summarise every non-failed start of every replicate.
    """
    best = best_starts(starts)
    keys = _cell_dims(starts, drop=("replicate",))
    ok = starts[~starts["failed"].astype(bool)]
    frames = []
    for criterion in criteria:
        if criterion not in starts.columns:
            continue
        over_reps = best.groupby(keys, sort=False)[criterion].agg(
            ["mean", "std", "min", "max", "count"]
        )
        over_reps = over_reps.rename(columns={"std": "sd", "count": "n_replicates"})
        over_starts = ok.groupby(keys, sort=False)[criterion].quantile([0.1, 0.5, 0.9]).unstack()
        over_starts.columns = ["start_q10", "start_median", "start_q90"]
        table = over_reps.join(over_starts).reset_index()
        table.insert(len(keys), "criterion", criterion)
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def _selected(best: pd.DataFrame, criterion: str) -> pd.DataFrame:
    keys = _cell_dims(best, drop=("n_components",))
    valid = best[np.isfinite(best[criterion])]
    index = valid.groupby(keys, sort=False)[criterion].idxmin()
    return valid.loc[index.to_numpy(), [*keys, "n_components"]].reset_index(drop=True)


def selection_table(starts: pd.DataFrame, criteria: Sequence[str] = CRITERIA) -> pd.DataFrame:
    """How often each K is selected (lowest criterion of the best starts) over replicates.

    Columns: cell dimensions without ``n_components`` and ``replicate``, ``criterion``,
    ``n_components``, ``n_selected``, ``n_replicates``, ``share`` (every K of the grid gets a
    row, zeros included).
    """
    best = best_starts(starts)
    grid = np.sort(starts["n_components"].unique())
    keys = _cell_dims(starts, drop=("n_components", "replicate"))
    frames = []
    for criterion in criteria:
        if criterion not in best.columns:
            continue
        chosen = _selected(best, criterion)
        counts = (
            chosen.groupby(keys, sort=False)["n_components"].value_counts().unstack(fill_value=0)
        )
        counts = counts.reindex(columns=grid, fill_value=0)
        total = counts.sum(axis=1)
        long = counts.stack().rename("n_selected").reset_index()
        long = long.merge(total.rename("n_replicates").reset_index(), on=keys)
        long["share"] = long["n_selected"] / long["n_replicates"]
        long.insert(len(keys), "criterion", criterion)
        frames.append(long)
    return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------------------------------------
# missingness
# ---------------------------------------------------------------------------------------------


def missingness_table(
    starts: pd.DataFrame, truth: dict[str, int] | None = None, criterion: str = "bic"
) -> pd.DataFrame:
    """Recovery against the missing rate, per mechanism and method, long format.

    For every replicate the best start is taken at the true K of the data set (``truth``;
    the K selected by ``criterion`` where the truth is unknown). Metrics (column ``metric``):
    ``means_rmse``, ``weights_abs_error``, ``covariances_rel_frobenius``, ``ari``,
    ``imputation_rmse``, ``log_likelihood`` and ``selected_k`` (K selected by
    ``criterion``); ``mean``, ``sd`` and ``n`` are over replicates; ``share_true_k`` is the
    share of replicates selecting the true K.
    """
    truth = truth or {}
    best = best_starts(starts)
    chosen = _selected(best, criterion).rename(columns={"n_components": "selected_k"})
    keys = _cell_dims(best, drop=("n_components",))
    best = best.merge(chosen, on=keys, how="left")
    target = best["dataset"].map(truth).fillna(best["selected_k"])
    at_k = best[best["n_components"] == target].copy()
    at_k["true_k"] = at_k["dataset"].map(truth)
    at_k["picked_true"] = (at_k["selected_k"] == at_k["true_k"]).where(at_k["true_k"].notna())
    summary_keys = [k for k in keys if k != "replicate"]
    metrics = [m for m in RECOVERY_METRICS if m in at_k.columns]
    long = at_k.melt(id_vars=summary_keys, value_vars=metrics, var_name="metric")
    long["value"] = long["value"].astype(float)
    table = (
        long.groupby([*summary_keys, "metric"], sort=False)["value"]
        .agg(["mean", "std", "count"])
        .rename(columns={"std": "sd", "count": "n"})
        .reset_index()
    )
    share = (
        at_k.groupby(summary_keys, sort=False)["picked_true"]
        .mean()
        .rename("share_true_k")
        .reset_index()
    )
    table = table.merge(share, on=summary_keys, how="left")
    orders = {key: {v: i for i, v in enumerate(pd.unique(at_k[key]))} for key in summary_keys}
    orders["metric"] = {m: i for i, m in enumerate(metrics)}
    table = table.sort_values(
        [*summary_keys, "metric"], key=lambda column: column.map(orders[column.name])
    )
    return table.reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# failures
# ---------------------------------------------------------------------------------------------


def failures_table(starts: pd.DataFrame) -> pd.DataFrame:
    """Cells with failed or non-converged starts: ``n_failed``, ``n_not_converged`` (among the
    starts that did not fail) and the distinct failure reasons."""
    flagged = starts.assign(
        not_converged=~starts["converged"].astype(bool) & ~starts["failed"].astype(bool),
        failed=starts["failed"].astype(bool),
    )
    keys = _cell_dims(starts)
    rows = []
    for values, group in flagged.groupby(keys, sort=False):
        n_failed, n_not = int(group["failed"].sum()), int(group["not_converged"].sum())
        if n_failed == 0 and n_not == 0:
            continue
        reasons = sorted({r for r in group["failure_reason"].astype(str) if r})
        row = dict(zip(keys, values, strict=True))
        row.update(
            n_starts=len(group),
            n_failed=n_failed,
            n_not_converged=n_not,
            reasons="; ".join(reasons),
        )
        rows.append(row)
    columns = [*keys, "n_starts", "n_failed", "n_not_converged", "reasons"]
    return pd.DataFrame(rows, columns=columns)


# ---------------------------------------------------------------------------------------------
# departures from MAR: delta adjustment and tipping point
# ---------------------------------------------------------------------------------------------


def tipping_point(deltas, conclusions) -> dict[str, float]:
    """Smallest shifts, on each side of 0, at which a conclusion differs from the one at
    ``delta = 0``.

    Parameters
    ----------
    deltas : (m,) shifts, containing 0
    conclusions : (m,) conclusion at each shift (any comparable values)

    Returns
    -------
    dict with ``negative`` (the largest delta < 0 whose conclusion differs, i.e. the first
    met walking down from 0) and ``positive`` (the smallest delta > 0 whose conclusion
    differs); NaN where the conclusion never changes on that side.
    """
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


def _match_to_reference(reference_means, means):
    """Permutation of ``means``' components closest (Hungarian, Euclidean) to the reference."""
    from scipy.optimize import linear_sum_assignment

    cost = np.linalg.norm(reference_means[:, None, :] - means[None, :, :], axis=-1)
    _, columns = linear_sum_assignment(cost)
    return columns


def _fit(X, n_components, covariance_type, seed, fit_kwargs):
    model = GaussianMixture(
        n_components, covariance_type=covariance_type, random_state=seed, **fit_kwargs
    )
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X)
    return model


def delta_adjustment(
    X_missing,
    *,
    variables: Sequence[int],
    deltas: Sequence[float],
    n_components: Sequence[int],
    covariance_type: str = "full",
    n_draws: int = 0,
    conclusion: str = "selected_k",
    component: int = 0,
    threshold: float = 0.5,
    random_state: int = 0,
    fit_kwargs: dict | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Delta-adjustment sensitivity analysis of a Gaussian mixture fitted under MAR.

    The mixture is fitted to ``X_missing`` by EM for every K in ``n_components``; the K with
    the lowest BIC is the reference. Its imputations of the missing entries (the conditional
    expectations with ``n_draws = 0``, else ``n_draws`` multiple-imputation draws) are shifted
    in the columns ``variables`` by ``delta`` standard deviations of that column's observed
    values; the completed data are refitted for every K, and the weights and means of the fit
    at the reference K (components matched to the reference fit) and the K selected by BIC are
    recorded. With draws, per-draw results are averaged (weights, means) and K is the most
    frequent choice.

    Parameters
    ----------
    X_missing : (n_samples, n_features) array; NaN marks a missing entry
    variables : column indices whose imputed values are shifted
    deltas : shifts in standard deviations; must contain 0
    n_components : K grid of the re-estimation
    conclusion : ``"selected_k"`` (the K chosen by BIC) or ``"weight_above"`` (whether the
        weight of reference component ``component`` exceeds ``threshold``)
    fit_kwargs : further :class:`~em_lib.GaussianMixture` arguments (n_init, tol, ...)

    Returns
    -------
    table : one row per (delta, component): ``delta``, ``component``, ``weight``, ``mean_<j>``
        for every feature j, ``selected_k``, ``conclusion``
    tipping : one row per side (``negative``, ``positive``): the tipping delta (NaN if the
        conclusion never changes on the grid), the conclusion at 0 and its description
    """
    X_missing = np.asarray(X_missing, dtype=float)
    fit_kwargs = dict(fit_kwargs or {})
    deltas = np.asarray(sorted(set(float(d) for d in deltas)))
    grid = sorted(int(k) for k in n_components)
    variables = [int(v) for v in variables]
    if conclusion not in ("selected_k", "weight_above"):
        raise ValueError(f"conclusion must be 'selected_k' or 'weight_above', got {conclusion!r}")
    missing = np.isnan(X_missing)
    scale = np.nanstd(X_missing, axis=0)

    fits = {k: _fit(X_missing, k, covariance_type, random_state, fit_kwargs) for k in grid}
    ref_k = min(grid, key=lambda k: fits[k].bic(X_missing))
    reference = fits[ref_k]
    if conclusion == "weight_above" and not 0 <= component < ref_k:
        raise ValueError(f"component {component} does not exist at the reference K = {ref_k}")
    if n_draws:
        completions = reference.impute_draws(X_missing, n_draws, random_state=random_state)
    else:
        completions = reference.impute(X_missing)[None]

    rows = []
    for delta in deltas:
        per_draw_weights, per_draw_means, per_draw_k = [], [], []
        for completed in completions:
            shifted = completed.copy()
            for j in variables:
                shifted[missing[:, j], j] += delta * scale[j]
            refits = {k: _fit(shifted, k, covariance_type, random_state, fit_kwargs) for k in grid}
            per_draw_k.append(min(grid, key=lambda k: refits[k].bic(shifted)))
            at_ref = refits[ref_k]
            order = _match_to_reference(reference.means_, at_ref.means_)
            per_draw_weights.append(at_ref.weights_[order])
            per_draw_means.append(at_ref.means_[order])
        weights = np.mean(per_draw_weights, axis=0)
        means = np.mean(per_draw_means, axis=0)
        values, counts = np.unique(per_draw_k, return_counts=True)
        selected = int(values[np.argmax(counts)])
        if conclusion == "selected_k":
            verdict = selected
        else:
            verdict = bool(weights[component] > threshold)
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


def starts_needed_label(share: float, p: float) -> str:
    """``starts_needed`` as text (``"never"`` where the optimum was not reached)."""
    value = starts_needed(share, p)
    return "never" if math.isnan(value) else str(int(value))


def delta_target(config) -> dict:
    """The data set and mask of the delta-adjustment analysis, nulls in
    ``config["sensitivity"]["delta"]`` resolved against the sweep: ``dataset``,
    ``mechanism``, ``missing_rate``, ``replicate``, ``n_components``, ``variables``."""
    settings = dict(config.get("sensitivity", {}).get("delta", {}))
    sweep, datasets = config["sweep"], config["datasets"]
    names = sweep.get("dataset") or list(datasets)
    simulated = [n for n in names if datasets[n]["kind"] == "gaussian_mixture"]
    mechanisms = [m for m in sweep["mechanism"] if m != "none"] or list(sweep["mechanism"])
    rates = [float(r) for r in sweep["missing_rate"]]
    return {
        "dataset": settings.get("dataset") or (simulated or names)[0],
        "mechanism": settings.get("mechanism") or mechanisms[0],
        "missing_rate": float(
            max(rates) if settings.get("missing_rate") is None else settings["missing_rate"]
        ),
        "replicate": int(
            sweep["replicate"][0] if settings.get("replicate") is None else settings["replicate"]
        ),
        "n_components": [int(k) for k in settings.get("n_components") or sweep["n_components"]],
        "variables": settings.get("variables"),
    }
