"""The experiment's results as one labelled :class:`xarray.Dataset` (the only module that knows
the xarray dimension names).

Dimensions
----------
The sweep dimensions named after the config keys (``dataset``, ``model``, ``n_components``,
``mechanism``, ``missing_rate``, ``replicate``), ``method`` (em / complete_case /
mean_impute), ``init`` (random start), ``iteration`` (EM iteration, from 1), ``nested``
(starts built from contained models), ``component`` (mixture component or HMM state),
``state_from`` / ``state_to`` (HMM transitions), ``feature`` / ``feature_i`` / ``feature_j``
(the data's column names: the union over data sets, in order of appearance; ``has_feature``
says which columns a data set has).

What is stored
--------------
* every random start as it ended on its own (``init``): criteria, recovery, imputation error,
  convergence, failures, the trace, and ``start_kind`` (how it was made);
* the starts built from contained models (``nested_*``, labelled by ``nested_origin``),
  never counted as random starts;
* the fitted model of every cell (``fit_*``: the best start, polished, exactly what
  :class:`em_lib.GaussianMixture` with ``nested_starts=True`` returns for the same settings and
  seed), with its parameters ``weights``, ``means``, ``covariances`` (full matrices), and for
  the HMM ``startprob`` and ``transmat``. Size rule: parameters are stored for the fitted model
  of every cell only (per-start parameters are not; per-start recovery errors are);
* the truth of simulated data as data: ``true_n_components`` (-1 where unknown),
  ``true_weights``, ``true_means``, ``true_covariances``, ``true_transmat``;
* the masks' ``realised_rate`` (entries masked on top of the data's own missing values, over
  all entries) and ``total_missing_rate`` (own and masked, over all entries), and each data
  set's ``own_missing_rate`` and ``n_rows``.

Cells outside the design (the HMM on non-sequence data, mechanism ``"none"`` at a non-zero
rate, ...) hold NaN, ``-1`` counts, ``False`` flags and empty strings; ``in_design`` tells
them apart.

Reproducibility: every variable except those listed in the ``nondeterministic_variables``
attribute (the run times ``fit_time`` and ``fit_cpu_time``) is a deterministic function of
the config and the software versions; :func:`deterministic_part` drops them and the
``creation_time`` attribute, and what remains is bit-identical between runs with any number of
cores or after a killed and resumed run.
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

SWEEP_DIMS = ("dataset", "model", "n_components", "mechanism", "missing_rate", "replicate")
CELL_DIMS = (*SWEEP_DIMS, "method")
START_DIMS = (*CELL_DIMS, "init")
TRACE_DIMS = (*START_DIMS, "iteration")
NESTED_DIMS = (*CELL_DIMS, "nested")
MASK_DIMS = ("dataset", "mechanism", "missing_rate", "replicate")
NONDETERMINISTIC_VARIABLES = ("fit_time", "fit_cpu_time")
DETERMINISTIC_EXCLUDED_ATTRS = ("creation_time",)
COMPONENT, FEATURE = ("component",), ("feature",)
COVARIANCE = ("component", "feature_i", "feature_j")
TRANSITION = ("state_from", "state_to")


@dataclass(frozen=True)
class Variable:
    dims: tuple[str, ...]
    long_name: str
    units: str
    dtype: str = "float64"
    fill: object = np.nan
    source: str = ""  # name in a fit job's arrays ("" for variables not from fit jobs)


def _measures(prefix, dims, source_prefix, what):
    return {
        f"{prefix}log_likelihood": Variable(
            dims,
            f"observed-data log-likelihood of {what} on the damaged data (same data "
            "for every method)",
            "nat",
            source=f"{source_prefix}log_likelihood",
        ),
        f"{prefix}train_log_likelihood": Variable(
            dims,
            f"objective of {what} on the data the method was fitted to",
            "nat",
            source=f"{source_prefix}train_log_likelihood",
        ),
        f"{prefix}bic": Variable(
            dims,
            f"BIC -2 log L + p log n of {what} on the damaged data (lower is better)",
            "nat",
            source=f"{source_prefix}bic",
        ),
        f"{prefix}aic": Variable(
            dims,
            f"AIC -2 log L + 2 p of {what} on the damaged data (lower is better)",
            "nat",
            source=f"{source_prefix}aic",
        ),
        f"{prefix}icl": Variable(
            dims,
            f"ICL: BIC plus twice the entropy of the MAP classification, {what} (lower is better)",
            "nat",
            source=f"{source_prefix}icl",
        ),
        f"{prefix}ari": Variable(
            dims,
            f"adjusted Rand index of the MAP labels of {what} against the known labels",
            "1",
            source=f"{source_prefix}ari",
        ),
        f"{prefix}weights_abs_error": Variable(
            dims,
            f"mean absolute error of the mixing weights (HMM: state occupancy) of {what} "
            "after label matching",
            "1",
            source=f"{source_prefix}weights_abs_error",
        ),
        f"{prefix}means_rmse": Variable(
            dims,
            f"root mean squared error of the means of {what} after label matching",
            "data unit",
            source=f"{source_prefix}means_rmse",
        ),
        f"{prefix}covariances_rel_frobenius": Variable(
            dims,
            f"mean relative Frobenius error of the covariances of {what} after label matching",
            "1",
            source=f"{source_prefix}covariances_rel_frobenius",
        ),
        f"{prefix}transmat_abs_error": Variable(
            dims,
            f"mean absolute error of the transition matrix of {what} after label "
            "matching (HMM, K = true K)",
            "1",
            source=f"{source_prefix}transmat_abs_error",
        ),
        f"{prefix}imputation_rmse": Variable(
            dims,
            f"root mean squared error of the posterior-mean imputation by {what} over "
            "the synthetically masked entries",
            "data unit",
            source=f"{source_prefix}imputation_rmse",
        ),
        f"{prefix}n_iter": Variable(
            dims,
            f"EM iterations of {what} (-1: not fitted)",
            "1",
            "int64",
            -1,
            f"{source_prefix}n_iter",
        ),
        f"{prefix}converged": Variable(
            dims,
            f"{what}: tolerance met (never true merely because max_iter was reached)",
            "1",
            "bool",
            False,
            f"{source_prefix}converged",
        ),
        f"{prefix}failed": Variable(
            dims,
            f"{what} failed (covariance collapse, non-finite likelihood, or the method "
            "could not be fitted)",
            "1",
            "bool",
            False,
            f"{source_prefix}failed",
        ),
        f"{prefix}failure_reason": Variable(
            dims,
            f"why {what} failed (empty if it did not)",
            "1",
            "str",
            "",
            f"{source_prefix}failure_reason",
        ),
    }


VARIABLES: dict[str, Variable] = {
    **_measures("", START_DIMS, "start_", "the random start"),
    "max_decrease": Variable(
        START_DIMS,
        "largest decrease of the per-sample objective between iterations (0 if none)",
        "nat",
        source="start_max_decrease",
    ),
    "start_kind": Variable(
        START_DIMS,
        "how the random start was made (hierarchical, hierarchical-whitened, "
        "kmeans, random_from_data, ...; gmm or random for the HMM)",
        "1",
        "str",
        "",
        "start_kind",
    ),
    "trace": Variable(
        TRACE_DIMS,
        "objective (mean per-sample log-likelihood) of the parameters entering "
        "each iteration; NaN after the start stopped",
        "nat",
        source="trace",
    ),
    "nested_origin": Variable(
        NESTED_DIMS,
        "contained model a nested start was built from (nested:<type>, split:K=<k>, epsilon:K=<k>)",
        "1",
        "str",
        "",
        "nested_origin",
    ),
    "nested_log_likelihood": Variable(
        NESTED_DIMS,
        "objective of a nested start at tol on the data the method was fitted to",
        "nat",
        source="nested_log_likelihood",
    ),
    "nested_n_iter": Variable(
        NESTED_DIMS, "EM iterations of a nested start", "1", "int64", -1, "nested_n_iter"
    ),
    "nested_converged": Variable(
        NESTED_DIMS, "nested start met the tolerance", "1", "bool", False, "nested_converged"
    ),
    **{
        key: value
        for key, value in _measures("fit_", CELL_DIMS, "fit_", "the fitted model").items()
    },
    "fit_origin": Variable(
        CELL_DIMS,
        "the start the fitted model came from (a random start kind or a nested origin)",
        "1",
        "str",
        "",
        "fit_origin",
    ),
    "fit_polished": Variable(
        CELL_DIMS,
        "the fitted model was polished (SQUAREM to polish_tol)",
        "1",
        "bool",
        False,
        "fit_polished",
    ),
    "fit_degenerate": Variable(
        CELL_DIMS,
        "the fitted mixture has a degenerate component (em_lib.selection.degenerate: a "
        "variance below 1e-4 of the data's, or fewer rows than its covariance needs); "
        "selections pass over it",
        "1",
        "bool",
        False,
        "fit_degenerate",
    ),
    "weights": Variable(
        (*CELL_DIMS, *COMPONENT), "mixing weights of the fitted model", "1", source="weights"
    ),
    "startprob": Variable(
        (*CELL_DIMS, *COMPONENT), "start probabilities of the fitted HMM", "1", source="startprob"
    ),
    "means": Variable(
        (*CELL_DIMS, *COMPONENT, *FEATURE),
        "component means of the fitted model",
        "data unit",
        source="means",
    ),
    "covariances": Variable(
        (*CELL_DIMS, *COVARIANCE),
        "component covariances of the fitted model (full matrices)",
        "data unit^2",
        source="covariances",
    ),
    "transmat": Variable(
        (*CELL_DIMS, *TRANSITION),
        "transition probabilities of the fitted HMM",
        "1",
        source="transmat",
    ),
    "fit_time": Variable(
        CELL_DIMS,
        "wall-clock time of the cell's fit, contained fits it "
        "triggered included (not deterministic)",
        "s",
        source="fit_time",
    ),
    "fit_cpu_time": Variable(
        CELL_DIMS,
        "CPU time of the cell's fit, contained fits it triggered included (not deterministic)",
        "s",
        source="fit_cpu_time",
    ),
    "n_rows_used": Variable(
        CELL_DIMS,
        "rows the method was fitted to (-1: not in the design)",
        "1",
        "int64",
        -1,
        "n_rows_used",
    ),
    "in_design": Variable(CELL_DIMS, "whether the cell was fitted", "1", "bool", False),
    "realised_rate": Variable(
        MASK_DIMS, "entries masked on top of the data's own missing values, over all entries", "1"
    ),
    "total_missing_rate": Variable(
        MASK_DIMS, "missing entries (the data's own and masked) over all entries", "1"
    ),
    "own_missing_rate": Variable(
        ("dataset",), "the data's own missing entries over all entries", "1"
    ),
    "n_rows": Variable(
        ("dataset",), "rows of the data set (with at least one observed value)", "1", "int64", -1
    ),
    "has_feature": Variable(
        ("dataset", *FEATURE), "the data set has this column", "1", "bool", False
    ),
    "true_n_components": Variable(
        ("dataset",), "true number of components or states (-1: unknown)", "1", "int64", -1
    ),
    "true_weights": Variable(("dataset", *COMPONENT), "true mixing weights (HMM: occupancy)", "1"),
    "true_means": Variable(("dataset", *COMPONENT, *FEATURE), "true component means", "data unit"),
    "true_covariances": Variable(
        ("dataset", *COVARIANCE), "true component covariances", "data unit^2"
    ),
    "true_transmat": Variable(("dataset", *TRANSITION), "true transition probabilities", "1"),
}

COORDINATE_ATTRS = {
    "dataset": ("data set name (key under datasets in the config)", "1"),
    "model": ("Gaussian-mixture covariance type, or hmm", "1"),
    "n_components": ("number of mixture components or hidden states K", "1"),
    "mechanism": (
        "missingness mechanism imposed on top of the data's own missing values "
        "(none: the data as given)",
        "1",
    ),
    "missing_rate": ("requested fraction of all entries masked on top of the data's own", "1"),
    "replicate": ("replicate index (new mask and new starts)", "1"),
    "method": ("how missing entries are handled: em (exact EM), complete_case, mean_impute", "1"),
    "init": ("random start index", "1"),
    "iteration": ("EM iteration", "1"),
    "nested": ("slot of a start built from a contained model", "1"),
    "component": ("mixture component or hidden state", "1"),
    "state_from": ("hidden state at time t", "1"),
    "state_to": ("hidden state at time t + 1", "1"),
    "feature": ("data column", "1"),
    "feature_i": ("data column (covariance row)", "1"),
    "feature_j": ("data column (covariance column)", "1"),
}


def feature_union(names_per_dataset) -> list[str]:
    """Column names of every data set, each once, in order of appearance."""
    union: list[str] = []
    for names in names_per_dataset:
        union.extend(str(n) for n in names if str(n) not in union)
    return union


def full_coordinates(coords: dict, datasets: dict, n_nested: int) -> dict:
    """The sweep coordinates plus ``nested``, ``component``, ``state_*`` and ``feature*``;
    ``datasets`` maps data set names to their prepared arrays."""
    k_max = max(coords["n_components"])
    for data in datasets.values():
        if "true_means" in data:
            k_max = max(k_max, data["true_means"].shape[0])
    features = feature_union(data["feature_names"].tolist() for data in datasets.values())
    components = list(range(k_max))
    return {
        **coords,
        "nested": list(range(n_nested)),
        "component": components,
        "state_from": components,
        "state_to": components,
        "feature": features,
        "feature_i": features,
        "feature_j": features,
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


def _place(target, prefix_index, value, dims, positions):
    """Write ``value`` into ``target`` at ``prefix_index`` and, along the trailing ``dims``,
    at ``positions[dim]`` (index arrays; the value's own length along each)."""
    trailing = [
        positions[dim][: value.shape[len(value.shape) - len(dims) + i]]
        for i, dim in enumerate(dims)
    ]
    target[prefix_index + np.ix_(*trailing)] = value


def _dataset_records(data, index, arrays):
    """Per-dataset variables: rows, own missing rate, columns, truth."""
    for name, values in data.items():
        i = index["dataset"][name]
        X = values["X"]
        arrays["n_rows"][i] = X.shape[0]
        arrays["own_missing_rate"][i] = float(np.isnan(X).mean()) if X.size else 0.0
        columns = [index["feature"][str(f)] for f in values["feature_names"].tolist()]
        arrays["has_feature"][i, columns] = True
        if "true_n_components" in values:
            arrays["true_n_components"][i] = int(values["true_n_components"])
        if "true_means" in values:
            k = values["true_means"].shape[0]
            arrays["true_weights"][i, :k] = values["true_weights"]
            arrays["true_means"][i][np.ix_(range(k), columns)] = values["true_means"]
            block = arrays["true_covariances"][i]
            block[np.ix_(range(k), columns, columns)] = values["true_covariances"]
        if "true_transmat" in values:
            k = values["true_transmat"].shape[0]
            arrays["true_transmat"][i, :k, :k] = values["true_transmat"]


def build_dataset(
    coords: dict, datasets: dict, fit_records, mask_records, attrs: dict | None = None
):
    """Assemble per-job arrays into the labelled data set.

    Parameters
    ----------
    coords : sweep coordinates (:func:`em_lib.study.design.coordinates`)
    datasets : data set name -> prepared arrays (``X``, ``feature_names``, truth)
    fit_records : iterable of ``(labels, arrays)``: a mask's labels and its fit job's output
        (:func:`em_lib.study.jobs.fit_job`)
    mask_records : iterable of ``(labels, arrays)`` with the mask's ``realised_rate`` and
        ``total_missing_rate``
    attrs : provenance attributes
    """
    import xarray as xr

    from .jobs import N_NESTED

    coords = full_coordinates(coords, datasets, N_NESTED)
    index = _index_maps(coords)
    data = _allocate(coords)
    _dataset_records(datasets, index, data)
    for labels, arrays in fit_records:
        features = [
            index["feature"][str(f)] for f in datasets[labels["dataset"]]["feature_names"].tolist()
        ]
        positions = {dim: np.arange(len(values)) for dim, values in coords.items()}
        positions.update(
            feature=np.array(features), feature_i=np.array(features), feature_j=np.array(features)
        )
        for m, model in enumerate(arrays["model"].tolist()):
            for k, n_components in enumerate(arrays["n_components"].tolist()):
                for e, method in enumerate(arrays["method"].tolist()):
                    cell = (
                        index["dataset"][labels["dataset"]],
                        index["model"][model],
                        index["n_components"][int(n_components)],
                        index["mechanism"][labels["mechanism"]],
                        index["missing_rate"][float(labels["missing_rate"])],
                        index["replicate"][int(labels["replicate"])],
                        index["method"][method],
                    )
                    data["in_design"][cell] = True
                    for name, var in VARIABLES.items():
                        # a fit job's output written before a variable existed keeps its fill
                        if not var.source or var.source not in arrays:
                            continue
                        value = arrays[var.source][m, k, e]
                        trailing = var.dims[len(CELL_DIMS) :]
                        if not trailing:
                            data[name][cell] = value
                        else:
                            _place(data[name], cell, value, trailing, positions)
    for labels, arrays in mask_records:
        cell = tuple(index[dim][labels[dim]] for dim in MASK_DIMS)
        data["realised_rate"][cell] = arrays["realised_rate"]
        data["total_missing_rate"][cell] = arrays["total_missing_rate"]

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


def _encoding(ds) -> dict:
    encoding = {}
    for name, var in ds.data_vars.items():
        if var.dtype.kind in "fiub":
            encoding[name] = {"zlib": True, "complevel": 4}
    return encoding


def write_netcdf(ds, path) -> None:
    """Write ``ds`` as netCDF-4 (compressed), atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    ds.to_netcdf(tmp, engine="netcdf4", encoding=_encoding(ds))
    os.replace(tmp, path)


def open_results(path):
    """Load a results file fully into memory (the file is closed afterwards)."""
    import xarray as xr

    with xr.open_dataset(path, engine="netcdf4") as ds:
        return ds.load()


def deterministic_part(ds):
    """``ds`` without the run-time variables and the creation time: what must be bit-identical
    between runs of the same config."""
    part = ds.drop_vars([v for v in NONDETERMINISTIC_VARIABLES if v in ds.variables])
    part.attrs = {k: v for k, v in ds.attrs.items() if k not in DETERMINISTIC_EXCLUDED_ATTRS}
    return part


def best_start(ds):
    """Index along ``init`` of the random start with the highest log-likelihood among those
    that did not fail (NaN-safe; -1 where every start failed)."""
    score = ds["log_likelihood"].where(~ds["failed"])
    has_any = score.notnull().any("init")
    return score.fillna(-np.inf).argmax("init").where(has_any, -1)
