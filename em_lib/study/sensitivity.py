"""Sensitivity analyses over the experiment's results, each returned as a tidy pandas table.

Three questions are asked of the aggregate (:mod:`em_lib.study.results`):

* **initialisation** (:func:`initialisation_table`, over the random starts only): how far
  apart the final log-likelihoods of the starts are, how many distinct optima they reach, the
  share reaching the best one and hence the number of starts needed to reach it with
  probability ``p`` (``n = ceil(log(1 - p) / log(1 - share))``), and how many iterations they
  take;
* **number of components** (:func:`criteria_table`, :func:`selection_table`, over the fitted
  models: best start, nested starts included, polished): BIC, AIC and ICL against K and how
  often each K is selected;
* **missingness** (:func:`missingness_table`): parameter-recovery error, ARI, imputation
  RMSE, selected K and log-likelihood against the missing rate, per mechanism and method.

Departures from MAR are :mod:`em_lib.study.delta`. The HMM runs are the same questions
restricted to ``model == "hmm"``. Only numpy, pandas and em_lib are used: no plotting, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

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
    "train_log_likelihood",
    "start_kind",
    *CRITERIA,
    "n_iter",
    "converged",
    "failed",
    "failure_reason",
    "ari",
    *PARAMETER_ERRORS,
    "transmat_abs_error",
    "imputation_rmse",
    "origin",
    "polished",
    "degenerate",
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
    """True number of components per data set where it is known (the ``true_n_components``
    stored with the data: simulated mixtures and sequences, synthetic images)."""
    values = ds["true_n_components"]
    return {
        str(name): int(k)
        for name, k in zip(values["dataset"].values, values.values, strict=True)
        if k >= 0
    }


_FIT_VARIABLES = {
    f"fit_{name}": name
    for name in (
        "log_likelihood",
        "train_log_likelihood",
        *CRITERIA,
        "ari",
        *PARAMETER_ERRORS,
        "transmat_abs_error",
        "imputation_rmse",
        "n_iter",
        "converged",
        "failed",
        "failure_reason",
        "origin",
        "polished",
        "degenerate",
    )
}


def _in_design(ds, frame):
    design = ds["in_design"].reset_coords(drop=True).to_dataframe().reset_index()
    keys = [d for d in design.columns if d != "in_design"]
    frame = frame.merge(design, on=keys, how="left")
    return frame[frame.pop("in_design").astype(bool)]


def fits_table(ds, models: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per fitted cell: the fitted model (best start, polished) of every (dataset,
    model, K, mechanism, rate, replicate, method), with the ``fit_`` prefix dropped from its
    columns (``log_likelihood``, ``bic``, ``aic``, ``icl``, ``ari``, recovery errors,
    ``imputation_rmse``, ``n_iter``, ``converged``, ``failed``, ``origin``, ...)."""
    names = [name for name in _FIT_VARIABLES if name in ds.data_vars]
    if models is not None:
        ds = ds.sel(model=[m for m in ds["model"].values.tolist() if m in set(models)])
    dims = list(ds["fit_log_likelihood"].dims)
    frame = ds[names].reset_coords(drop=True).to_dataframe().reset_index()
    frame = _in_design(ds, frame)[dims + names].rename(columns=_FIT_VARIABLES)
    return frame.reset_index(drop=True)


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
    frame = _in_design(ds, ds[names].reset_coords(drop=True).to_dataframe().reset_index())
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
    columns = [
        *keys,
        "n_starts",
        "n_failed",
        "ll_best",
        "ll_median",
        "ll_spread",
        "ll_iqr",
        "n_optima",
        "share_best",
        "n_iter_median",
        "n_iter_max",
        "share_converged",
        "n_optima_parameters",
        *(f"starts_p{round(100 * p):d}" for p in probabilities),
    ]
    frame = pd.DataFrame(rows)
    return frame.reindex(columns=[*columns, *(c for c in frame.columns if c not in columns)])


# ---------------------------------------------------------------------------------------------
# number of components
# ---------------------------------------------------------------------------------------------


def criteria_table(
    fits: pd.DataFrame, starts: pd.DataFrame | None = None, criteria: Sequence[str] = CRITERIA
) -> pd.DataFrame:
    """BIC / AIC / ICL against K, long format.

    For every cell but the replicate, the fitted model of each replicate gives ``mean``,
    ``sd``, ``min`` and ``max`` over replicates (``n_replicates``); with ``starts``,
    ``start_q10``, ``start_median`` and ``start_q90`` summarise every non-failed random start
    of every replicate.
    """
    keys = _cell_dims(fits, drop=("replicate",))
    columns = [
        *keys,
        "criterion",
        "mean",
        "sd",
        "min",
        "max",
        "n_replicates",
        "start_q10",
        "start_median",
        "start_q90",
    ]
    ok_fits = fits[~fits["failed"].astype(bool)]
    if ok_fits.empty:
        return pd.DataFrame(columns=columns)
    frames = []
    for criterion in criteria:
        if criterion not in fits.columns:
            continue
        over_reps = ok_fits.groupby(keys, sort=False)[criterion].agg(
            ["mean", "std", "min", "max", "count"]
        )
        table = over_reps.rename(columns={"std": "sd", "count": "n_replicates"})
        if starts is not None and not starts.empty:
            ok = starts[~starts["failed"].astype(bool)]
            quantiles = ok.groupby(keys, sort=False)[criterion].quantile([0.1, 0.5, 0.9])
            quantiles = quantiles.unstack()
            quantiles.columns = ["start_q10", "start_median", "start_q90"]
            table = table.join(quantiles)
        table = table.reset_index()
        table.insert(len(keys), "criterion", criterion)
        frames.append(table)
    return pd.concat(frames, ignore_index=True).reindex(columns=columns)


def _selected(fits: pd.DataFrame, criterion: str) -> pd.DataFrame:
    """The K each cell's criterion selects: the rule of
    :func:`em_lib.selection.lowest_usable` (lowest criterion among the fits without a
    degenerate component when a cell has one, else the lowest)."""
    from em_lib.selection import lowest_usable

    keys = _cell_dims(fits, drop=("n_components",))
    valid = fits[~fits["failed"].astype(bool) & np.isfinite(fits[criterion].astype(float))]
    rows = []
    for _, cell in valid.groupby(keys, sort=False):
        flags = cell["degenerate"].to_numpy(bool) if "degenerate" in cell else None
        rows.append(cell.index[lowest_usable(cell[criterion].to_numpy(float), flags)[0]])
    return valid.loc[rows, [*keys, "n_components"]].reset_index(drop=True)


def selection_table(fits: pd.DataFrame, criteria: Sequence[str] = CRITERIA) -> pd.DataFrame:
    """How often each K is selected (lowest criterion of the fitted models) over replicates.

    Columns: cell dimensions without ``n_components`` and ``replicate``, ``criterion``,
    ``n_components``, ``n_selected``, ``n_replicates``, ``share`` (every K of the grid gets a
    row, zeros included).
    """
    grid = np.sort(fits["n_components"].unique())
    keys = _cell_dims(fits, drop=("n_components", "replicate"))
    columns = [*keys, "criterion", "n_components", "n_selected", "n_replicates", "share"]
    frames = []
    for criterion in criteria:
        if criterion not in fits.columns:
            continue
        chosen = _selected(fits, criterion)
        if chosen.empty:
            continue
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
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


# ---------------------------------------------------------------------------------------------
# missingness
# ---------------------------------------------------------------------------------------------


def missingness_table(
    fits: pd.DataFrame, truth: dict[str, int] | None = None, criterion: str = "bic"
) -> pd.DataFrame:
    """Recovery against the missing rate, per mechanism and method, long format.

    For every replicate the fitted model is taken at the true K of the data set (``truth``;
    the K selected by ``criterion`` where the truth is unknown). Metrics (column ``metric``):
    ``means_rmse``, ``weights_abs_error``, ``covariances_rel_frobenius``, ``ari``,
    ``imputation_rmse``, ``log_likelihood`` and ``selected_k`` (K selected by
    ``criterion``); ``mean``, ``sd`` and ``n`` are over replicates; ``share_true_k`` is the
    share of replicates selecting the true K.
    """
    truth = truth or {}
    best = fits[~fits["failed"].astype(bool)]
    keys = _cell_dims(best, drop=("n_components",))
    columns = [k for k in keys if k != "replicate"] + ["metric", "mean", "sd", "n", "share_true_k"]
    if best.empty:
        return pd.DataFrame(columns=columns)
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


def starts_needed_label(share: float, p: float) -> str:
    """``starts_needed`` as text (``"never"`` where the optimum was not reached)."""
    value = starts_needed(share, p)
    return "never" if math.isnan(value) else str(int(value))
