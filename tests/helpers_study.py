"""Shared helpers of the study-layer tests (a plain module: ``from helpers_study import ...``).

* :func:`tiny_config`: a complete (schema-validated, defaults filled) config small enough to
  fit in about a second;
* :func:`write_table`: a small CSV table with its own empty cells;
* :func:`run_study`: every mask and fit job of a config, assembled by ``build_dataset``;
* :func:`tiny_study`: :func:`run_study` of the tiny config plus ``airquality``, once per session;
* :func:`toy_results`: a hand-made aggregate whose sensitivity tables are known by
  construction (no fitting).
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path

import numpy as np
import xarray as xr

from em_lib.study import config as study_config
from em_lib.study import design, jobs, results
from em_lib.study.seeds import SEED_SCHEME


def _merge(base: dict, change: dict) -> dict:
    """``base`` with ``change`` merged in (nested dicts merged key by key)."""
    out = copy.deepcopy(base)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


BLOBS = {
    "kind": "gaussian_mixture",
    "n_samples": 80,
    "n_features": 2,
    "n_components": 2,
    "separation": 5.0,
    "covariance_type": "full",
    "seed": 0,
}


def tiny_config(change: dict | None = None, *, complete: bool = True) -> dict:
    """One simulated data set ``blobs`` (80 x 2, two components), models full and diag, K 1
    and 2, the data as given plus MCAR 20 %, one replicate, every method, three starts.
    ``change`` is merged in (nested dicts key by key); ``complete`` validates the config and
    fills in the schema's defaults (:func:`em_lib.study.config.complete_config`)."""
    config = {
        "root_seed": 5,
        "datasets": {"blobs": dict(BLOBS)},
        "sweep": {
            "model": ["full", "diag"],
            "n_components": [1, 2],
            "mechanism": ["none", "MCAR"],
            "missing_rate": [0.0, 0.2],
            "replicate": [0],
            "method": ["em", "complete_case", "mean_impute"],
        },
        "fit": {"n_init": 3, "max_iter": 40, "tol": 1e-3},
        "hmm": {"enabled": False},
        "sensitivity": {"delta": {"deltas": [-1.0, 0.0, 1.0], "n_draws": 0, "n_init": 2}},
    }
    config = _merge(config, change or {})
    return study_config.complete_config(config) if complete else config


TABLE_ROWS = 40
TABLE_EMPTY = ((0, 1), (3, 0), (7, 2), (11, 1), (12, 2))  # (row, column) of empty cells


def write_table(path) -> Path:
    """A CSV table ``a, b, c, label``: two groups of 20 rows (centres 0 and 6), with empty
    cells at :data:`TABLE_EMPTY` (no row entirely empty)."""
    rng = np.random.default_rng(1)
    X = np.vstack(
        [rng.normal(0.0, 1.0, (TABLE_ROWS // 2, 3)), rng.normal(6.0, 1.0, (TABLE_ROWS // 2, 3))]
    )
    lines = ["a,b,c,label"]
    for i, row in enumerate(X):
        cells = ["" if (i, j) in TABLE_EMPTY else repr(float(v)) for j, v in enumerate(row)]
        lines.append(",".join(cells) + f",{'u' if i < TABLE_ROWS // 2 else 'v'}")
    path = Path(path)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_study(config: dict, attrs: dict | None = None):
    """Every job of ``config`` run in-process: ``(ds, data, fits, masks)`` with ``data`` the
    prepared arrays by data set and ``fits`` / ``masks`` the ``(labels, arrays)`` records
    given to :func:`em_lib.study.results.build_dataset`."""
    root = config["root_seed"]
    data = {
        name: jobs.prepare_dataset(name, config["datasets"][name], root)
        for name in design.dataset_names(config)
    }
    fits, masks = [], []
    for job in design.mask_jobs(config):
        mask = jobs.make_mask(
            data[job.dataset]["X"], job, root_seed=root, strength=config["missingness"]["strength"]
        )
        fits.append((job.labels, jobs.fit_job(data[job.dataset], mask["mask"], job, config)))
        masks.append((job.labels, mask))
    if attrs is None:
        attrs = results.provenance(config, commit="abc", seed_scheme=SEED_SCHEME)
    ds = results.build_dataset(design.coordinates(config), data, fits, masks, attrs)
    return ds, data, fits, masks


# ---------------------------------------------------------------------------------------------
# a hand-made aggregate
# ---------------------------------------------------------------------------------------------

N_INIT = 10
KS = (1, 2, 3)
REPLICATES = (0, 1, 2, 3)
TRUE_K = 2
# K whose fitted model has the lowest BIC in each replicate: K = 2 three times, K = 3 once
SELECTED = {0: 2, 1: 2, 2: 2, 3: 3}
# a failed fitted model with a spuriously low BIC (must never be selected or summarised)
FAILED_FIT = {"n_components": 3, "replicate": 1}


def fit_variables(cell, cell_shape, k_cell, fit_bic, fit_failed):
    """The fitted-model criteria and flags of the toy aggregate (``cell`` labels a variable)."""
    variables = {
        "fit_log_likelihood": (np.broadcast_to(-100.0 - k_cell, cell_shape).copy(), "nat"),
        "fit_bic": (fit_bic, "nat"),
        "fit_aic": (fit_bic - 1.0, "nat"),
        "fit_icl": (fit_bic + 1.0, "nat"),
        "fit_n_iter": (np.full(cell_shape, 20, dtype=np.int64), "1"),
        "fit_converged": (~fit_failed, "1"),
        "fit_failed": (fit_failed, "1"),
        "fit_failure_reason": (np.where(fit_failed, "collapse", "").astype(object), "1"),
    }
    return {
        name: cell(
            values,
            f"{name[4:].upper() if name[4:] in ('bic', 'aic', 'icl') else name[4:]} of the fitted model",
            units,
        )
        for name, (values, units) in variables.items()
    }


def toy_results(with_hmm: bool = False) -> xr.Dataset:
    """A results set with one data set ``toy`` (true K = 2), model full (and hmm), K 1..3,
    MCAR 20 %, four replicates, methods em and mean_impute, ten random starts per cell.

    Random starts: in every cell, starts 0-4 reach the best optimum (log-likelihood -100 - K,
    start 4 only 0.5 nat below it; BIC that of the fitted model), starts 5-8 a worse one
    (-110 - K, BIC 500) and start 9 failed with a spuriously high log-likelihood (+50) and
    BIC (-1e6).

    Fitted models: BIC ``200 + 10 |K - SELECTED[replicate]|``, AIC = BIC - 1, ICL = BIC + 1,
    mean-parameter RMSE ``0.1 K``, log-likelihood -100 - K, except the fitted model at
    :data:`FAILED_FIT` (both methods, every model), which failed with BIC -1e6.
    """
    models = ["full", "hmm"] if with_hmm else ["full"]
    cell_coords = {
        "dataset": ["toy"],
        "model": models,
        "n_components": list(KS),
        "mechanism": ["MCAR"],
        "missing_rate": [0.2],
        "replicate": list(REPLICATES),
        "method": ["em", "mean_impute"],
    }
    coords = {**cell_coords, "init": list(range(N_INIT))}
    cell_dims, start_dims = tuple(cell_coords), tuple(coords)
    cell_shape = tuple(len(v) for v in cell_coords.values())
    shape = (*cell_shape, N_INIT)
    k_cell = np.array(KS, dtype=float)[None, None, :, None, None, None, None]
    k_start = k_cell[..., None]

    log_likelihood = np.empty(shape)
    log_likelihood[..., :5] = -100.0
    log_likelihood[..., 4] = -100.5
    log_likelihood[..., 5:9] = -110.0
    log_likelihood[..., 9] = 50.0
    log_likelihood = log_likelihood - k_start
    failed = np.zeros(shape, dtype=bool)
    failed[..., 9] = True
    means_rmse = np.broadcast_to(0.1 * k_start, shape).copy()
    means_rmse[..., 5:9] = 1.0

    fit_bic = np.empty(cell_shape)
    for replicate, chosen in SELECTED.items():
        for index, k in enumerate(KS):
            fit_bic[:, :, index, :, :, replicate, :] = 200.0 + 10.0 * abs(k - chosen)
    bic = np.full(shape, 500.0)
    bic[..., :5] = fit_bic[..., None]
    bic[..., 9] = -1e6
    fit_failed = np.zeros(cell_shape, dtype=bool)
    where = (
        slice(None),
        slice(None),
        KS.index(FAILED_FIT["n_components"]),
        slice(None),
        slice(None),
        REPLICATES.index(FAILED_FIT["replicate"]),
        slice(None),
    )
    fit_failed[where] = True
    fit_bic[where] = -1e6

    def start(data, long_name, units="1"):
        return (start_dims, data, {"long_name": long_name, "units": units})

    def cell(data, long_name, units="1"):
        return (cell_dims, data, {"long_name": long_name, "units": units})

    config = {"datasets": {"toy": {"kind": "gaussian_mixture", "n_components": TRUE_K}}}
    return xr.Dataset(
        {
            "log_likelihood": start(log_likelihood, "log-likelihood", "nat"),
            "bic": start(bic, "BIC", "nat"),
            "aic": start(bic - 1.0, "AIC", "nat"),
            "icl": start(bic + 1.0, "ICL", "nat"),
            "n_iter": start(np.full(shape, 12, dtype=np.int64), "iterations"),
            "converged": start(~failed, "converged"),
            "failed": start(failed, "failed"),
            "failure_reason": start(np.where(failed, "collapse", "").astype(object), "reason"),
            "means_rmse": start(means_rmse, "mean error", "data unit"),
            "ari": start(np.full(shape, 0.9), "ARI"),
            **fit_variables(cell, cell_shape, k_cell, fit_bic, fit_failed),
            "fit_means_rmse": cell(
                np.broadcast_to(0.1 * k_cell, cell_shape).copy(),
                "mean error of the fitted model",
                "data unit",
            ),
            "fit_ari": cell(np.full(cell_shape, 0.9), "ARI of the fitted model"),
            "in_design": cell(np.ones(cell_shape, dtype=bool), "fitted"),
            "true_n_components": (
                ("dataset",),
                np.array([TRUE_K]),
                {"long_name": "true K", "units": "1"},
            ),
            "own_missing_rate": (
                ("dataset",),
                np.array([0.0]),
                {"long_name": "own missing", "units": "1"},
            ),
            "n_rows": (("dataset",), np.array([100]), {"long_name": "rows", "units": "1"}),
        },
        coords=coords,
        attrs={"config": json.dumps(config), "root_seed": 7},
    )


AIR = {"kind": "bundled", "name": "airquality", "models": ["diag"]}


@functools.cache
def tiny_study():
    """``(config, ds, data, fits, masks)`` of :func:`tiny_config` plus the bundled
    ``airquality`` table (its own missing values; model diag only), run once per test
    session. Shared between test modules: treat every returned object as read-only."""
    config = tiny_config({"datasets": {"air": dict(AIR)}})
    ds, data, fits, masks = run_study(config)
    return config, ds, data, fits, masks
