"""The experiment's results as one labelled :class:`xarray.Dataset` (the only module that knows
the xarray dimension names).

Dimensions: the sweep dimensions named after the config keys (``dataset``, ``model``,
``n_components``, ``mechanism``, ``missing_rate``, ``replicate``), ``method`` (em /
complete_case / mean_impute), ``init`` (start index), ``iteration`` (EM iteration, from 1) and
``chunk`` (the start chunk one job fitted). Every dimension has a coordinate, every variable a
``long_name`` and ``units``; the data set carries provenance attributes.

Cells outside the design (the HMM on non-sequence data, mechanism ``"none"`` at a non-zero
rate, ...) hold NaN, ``n_iter = -1``, ``False`` flags and an empty ``failure_reason``;
``in_design`` tells them apart.

Reproducibility: every variable except those listed in the ``nondeterministic_variables``
attribute (the run times ``fit_time`` and ``fit_cpu_time``) is a deterministic function of the config and the software
versions; :func:`deterministic_part` drops them and the ``creation_time`` attribute, and what
remains is bit-identical between runs with any number of cores or after a killed and resumed
run.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import xarray as xr

SWEEP_DIMS = ("dataset", "model", "n_components", "mechanism", "missing_rate", "replicate")
PER_INIT_DIMS = (*SWEEP_DIMS, "method", "init")
TRACE_DIMS = (*PER_INIT_DIMS, "iteration")
PER_CHUNK_DIMS = (*SWEEP_DIMS, "method", "chunk")
PER_METHOD_DIMS = (*SWEEP_DIMS, "method")
MASK_DIMS = ("dataset", "mechanism", "missing_rate", "replicate")
NONDETERMINISTIC_VARIABLES = ("fit_time", "fit_cpu_time")
DETERMINISTIC_EXCLUDED_ATTRS = ("creation_time",)


@dataclass(frozen=True)
class Variable:
    dims: tuple[str, ...]
    long_name: str
    units: str
    dtype: str
    fill: object


_F, _NAN = "float64", np.nan
VARIABLES: dict[str, Variable] = {
    "log_likelihood": Variable(
        PER_INIT_DIMS,
        "observed-data log-likelihood of the final "
        "parameters on the masked data (same data for every method)",
        "nat",
        _F,
        _NAN,
    ),
    "train_log_likelihood": Variable(
        PER_INIT_DIMS,
        "log-likelihood of the final parameters on the data the method was fitted to",
        "nat",
        _F,
        _NAN,
    ),
    "bic": Variable(
        PER_INIT_DIMS,
        "Bayesian information criterion -2 log L + p log n on the masked data (lower is better)",
        "nat",
        _F,
        _NAN,
    ),
    "aic": Variable(
        PER_INIT_DIMS,
        "Akaike information criterion -2 log L + 2 p on the masked data (lower is better)",
        "nat",
        _F,
        _NAN,
    ),
    "icl": Variable(
        PER_INIT_DIMS,
        "integrated completed likelihood: BIC plus twice the "
        "entropy of the MAP classification (lower is better)",
        "nat",
        _F,
        _NAN,
    ),
    "n_iter": Variable(
        PER_INIT_DIMS, "EM iterations run (-1: not in the design)", "1", "int64", -1
    ),
    "converged": Variable(
        PER_INIT_DIMS,
        "tolerance met (never true merely because max_iter was reached)",
        "1",
        "bool",
        False,
    ),
    "failed": Variable(
        PER_INIT_DIMS,
        "start failed (covariance collapse, non-finite "
        "likelihood, or the method could not be fitted)",
        "1",
        "bool",
        False,
    ),
    "failure_reason": Variable(
        PER_INIT_DIMS, "why the start failed (empty if it did not)", "1", "str", ""
    ),
    "max_decrease": Variable(
        PER_INIT_DIMS,
        "largest decrease of the per-sample objective between iterations (0 if none)",
        "nat",
        _F,
        _NAN,
    ),
    "ari": Variable(
        PER_INIT_DIMS,
        "adjusted Rand index of the MAP labels against the true labels",
        "1",
        _F,
        _NAN,
    ),
    "weights_abs_error": Variable(
        PER_INIT_DIMS,
        "mean absolute error of the mixing weights (HMM: state occupancy) after label matching",
        "1",
        _F,
        _NAN,
    ),
    "means_rmse": Variable(
        PER_INIT_DIMS,
        "root mean squared error of the component means after label matching",
        "data unit",
        _F,
        _NAN,
    ),
    "covariances_rel_frobenius": Variable(
        PER_INIT_DIMS,
        "mean relative Frobenius error of the covariances after label matching",
        "1",
        _F,
        _NAN,
    ),
    "transmat_abs_error": Variable(
        PER_INIT_DIMS,
        "mean absolute error of the transition matrix after label matching (HMM, K = true K)",
        "1",
        _F,
        _NAN,
    ),
    "imputation_rmse": Variable(
        PER_INIT_DIMS,
        "root mean squared error of the posterior-mean imputation over the masked entries",
        "data unit",
        _F,
        _NAN,
    ),
    "trace": Variable(
        TRACE_DIMS,
        "objective (mean per-sample log-likelihood) of the parameters "
        "entering each iteration; NaN after the start stopped",
        "nat",
        _F,
        _NAN,
    ),
    "fit_time": Variable(
        PER_CHUNK_DIMS,
        "wall-clock time of the chunk's initialisation and batched fit (not deterministic)",
        "s",
        _F,
        _NAN,
    ),
    "fit_cpu_time": Variable(
        PER_CHUNK_DIMS,
        "CPU time of the chunk's initialisation and batched fit (not deterministic)",
        "s",
        _F,
        _NAN,
    ),
    "n_rows_used": Variable(
        PER_METHOD_DIMS, "rows the method was fitted to (-1: not in the design)", "1", "int64", -1
    ),
    "in_design": Variable(PER_METHOD_DIMS, "whether the cell was fitted", "1", "bool", False),
    "realised_rate": Variable(MASK_DIMS, "fraction of all entries masked", "1", _F, _NAN),
}

COORDINATE_ATTRS = {
    "dataset": ("data set name (key under datasets in the config)", "1"),
    "model": ("Gaussian-mixture covariance type, or hmm", "1"),
    "n_components": ("number of mixture components or hidden states K", "1"),
    "mechanism": ("missingness mechanism", "1"),
    "missing_rate": ("requested fraction of entries made missing", "1"),
    "replicate": ("replicate index (new mask and new starts)", "1"),
    "method": ("how missing entries are handled: em (exact EM), complete_case, mean_impute", "1"),
    "init": ("start index (start 0 is the hierarchical start with init_params auto)", "1"),
    "iteration": ("EM iteration", "1"),
    "chunk": ("start chunk fitted by one job", "1"),
    "chunk_of_init": ("chunk (job) that fitted the start", "1"),
}


def _index_maps(coords):
    return {dim: {value: i for i, value in enumerate(values)} for dim, values in coords.items()}


def _allocate(coords):
    arrays = {}
    for name, var in VARIABLES.items():
        shape = tuple(len(coords[dim]) for dim in var.dims)
        dtype = object if var.dtype == "str" else var.dtype
        arrays[name] = np.full(shape, var.fill, dtype=dtype)
    return arrays


def build_dataset(
    coords: dict, fit_records, mask_records, attrs: dict | None = None, chunks=None
) -> xr.Dataset:
    """Assemble per-job arrays into the labelled data set.

    Parameters
    ----------
    coords : dict of dimension name -> coordinate values (every dimension above)
    fit_records : iterable of ``(labels, arrays)``; ``labels`` maps the sweep dimensions and
        ``chunk`` to the job's values, ``arrays`` is a fit job's output (``init``, ``method``,
        per-start arrays (M, I_chunk), ``trace`` (M, I_chunk, iteration), ``fit_time`` (M,),
        ``n_rows_used`` (M,))
    mask_records : iterable of ``(labels, arrays)`` with the mask dimensions and
        ``realised_rate``
    attrs : provenance attributes
    chunks : list of (start, stop) per chunk, for the ``chunk_of_init`` coordinate
    """
    index = _index_maps(coords)
    data = _allocate(coords)
    for labels, arrays in fit_records:
        cell = tuple(index[dim][labels[dim]] for dim in SWEEP_DIMS)
        methods = [index["method"][m] for m in arrays["method"].tolist()]
        inits = [index["init"][i] for i in arrays["init"].tolist()]
        chunk = index["chunk"][labels["chunk"]]
        for name, var in VARIABLES.items():
            if var.dims == PER_INIT_DIMS:
                data[name][cell + np.ix_(methods, inits)] = arrays[name]
        n_iter_axis = len(coords["iteration"])
        data["trace"][cell + np.ix_(methods, inits)] = arrays["trace"][..., :n_iter_axis]
        data["fit_time"][cell + (methods, chunk)] = arrays["fit_time"]
        data["fit_cpu_time"][cell + (methods, chunk)] = arrays["fit_cpu_time"]
        data["n_rows_used"][cell + (methods,)] = arrays["n_rows_used"]
        data["in_design"][cell + (methods,)] = True
    for labels, arrays in mask_records:
        cell = tuple(index[dim][labels[dim]] for dim in MASK_DIMS)
        data["realised_rate"][cell] = arrays["realised_rate"]

    variables = {
        name: xr.Variable(var.dims, data[name], {"long_name": var.long_name, "units": var.units})
        for name, var in VARIABLES.items()
    }
    coord_vars = {
        dim: xr.Variable(
            dim,
            np.asarray(values),
            dict(zip(("long_name", "units"), COORDINATE_ATTRS[dim], strict=True)),
        )
        for dim, values in coords.items()
    }
    if chunks is not None:
        owner = np.zeros(len(coords["init"]), dtype=np.int64)
        for number, (lo, hi) in enumerate(chunks):
            owner[lo:hi] = number
        long_name, units = COORDINATE_ATTRS["chunk_of_init"]
        coord_vars["chunk_of_init"] = xr.Variable(
            "init", owner, {"long_name": long_name, "units": units}
        )
    return xr.Dataset(variables, coords=coord_vars, attrs=dict(attrs or {}))


def git_commit(path) -> str:
    """``git describe --always --dirty --abbrev=40`` of the repository holding ``path``,
    or ``"unknown"``."""
    try:
        result = subprocess.run(
            ["git", "-C", str(path), "describe", "--always", "--dirty", "--abbrev=40"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() or "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def provenance(config: dict, *, commit: str = "unknown", seed_scheme: str = "") -> dict:
    """Attributes recording how the data set was made."""
    from em_lib import __version__

    attrs = {
        "title": "EM sensitivity experiment",
        "config": json.dumps(config, sort_keys=True),
        "root_seed": int(config["root_seed"]),
        "seed_scheme": seed_scheme,
        "em_lib_version": __version__,
        "git_commit": commit,
        "python_version": platform.python_version(),
        "creation_time": datetime.now(UTC).isoformat(timespec="seconds"),
        "nondeterministic_variables": " ".join(NONDETERMINISTIC_VARIABLES),
    }
    for package in ("numpy", "scipy", "pandas", "xarray", "netCDF4", "snakemake"):
        attrs[f"{package}_version"] = _version(package)
    return attrs


def _encoding(ds: xr.Dataset) -> dict:
    encoding = {}
    for name, var in ds.data_vars.items():
        if var.dtype.kind in "fiub":
            encoding[name] = {"zlib": True, "complevel": 4}
    return encoding


def write_netcdf(ds: xr.Dataset, path) -> None:
    """Write ``ds`` as netCDF-4 (compressed), atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    ds.to_netcdf(tmp, engine="netcdf4", encoding=_encoding(ds))
    os.replace(tmp, path)


def open_results(path) -> xr.Dataset:
    """Load a results file fully into memory (the file is closed afterwards)."""
    with xr.open_dataset(path, engine="netcdf4") as ds:
        return ds.load()


def deterministic_part(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` without the run-time variables and the creation time: what must be bit-identical
    between runs of the same config."""
    part = ds.drop_vars([v for v in NONDETERMINISTIC_VARIABLES if v in ds.variables])
    part.attrs = {k: v for k, v in ds.attrs.items() if k not in DETERMINISTIC_EXCLUDED_ATTRS}
    return part


def best_start(ds: xr.Dataset) -> xr.DataArray:
    """Index along ``init`` of the start with the highest log-likelihood among those that did
    not fail (NaN-safe; -1 where every start failed)."""
    score = ds["log_likelihood"].where(~ds["failed"])
    has_any = score.notnull().any("init")
    return score.fillna(-np.inf).argmax("init").where(has_any, -1)
