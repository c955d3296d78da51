"""What each job of the workflow does, as plain functions of the config and the job.

The workflow's scripts only unpack ``snakemake.*`` and call these functions, so everything an
experiment computes is testable without Snakemake. Nothing here imports xarray:
:mod:`em_lib.study.results` turns the per-job arrays into the labelled data set.

* :func:`prepare_dataset`: the data as given (a table's own missing values kept; rows with
  nothing observed dropped), or simulated with its truth stored as arrays;
* :func:`make_mask`: a synthetic mask on top of the data's own missing values;
* :func:`fit_job`: the whole (model x K x method) lattice of one mask, every fit through the
  library's drivers (:func:`em_lib.numerics.fitting.fit_mixture` via a shared
  :class:`~em_lib.numerics.fitting.MixtureLattice`, :func:`em_lib.numerics.hmm.fit_hmm`), with
  the same ``random_state`` a user would pass to the estimators.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from em_lib.numerics.covariance import any_to_full
from em_lib.numerics.fitting import MixtureLattice, MixtureSettings

from .config import ConfigError, _data, load_table_dataset
from .design import HMM_MODEL, METHODS, MaskJob, dataset_models
from .evaluation import MEASURES, evaluate
from .seeds import seed_sequence

TRUTH_KEYS = ("labels", "true_weights", "true_means", "true_covariances", "true_transmat")
N_NESTED = 4  # at most: two contained types (or one), a split and an epsilon start


# ---------------------------------------------------------------------------------------------
# data and masks
# ---------------------------------------------------------------------------------------------


def _simulated(name, spec, root_seed):
    rng = np.random.default_rng(seed_sequence(root_seed, "data", dataset=name, seed=spec["seed"]))
    common = {
        "separation": spec["separation"],
        "covariance_type": spec["covariance_type"],
        "random_state": rng,
    }
    if spec["kind"] == "gaussian_mixture":
        sim = _data().make_gaussian_mixture(
            spec["n_samples"],
            spec["n_features"],
            spec["n_components"],
            weights=spec.get("weights"),
            **common,
        )
        labels, extra = sim.labels, {"true_weights": sim.weights}
    else:
        sim = _data().make_hmm_sequences(
            [spec["sequence_length"]] * spec["n_sequences"],
            spec["n_features"],
            spec["n_components"],
            self_transition=spec["self_transition"],
            **common,
        )
        labels = sim.states
        occupancy = np.bincount(labels, minlength=spec["n_components"]) / labels.size
        extra = {"true_weights": occupancy, "true_transmat": sim.transmat, "lengths": sim.lengths}
    d = sim.X.shape[1]
    return {
        "X": sim.X,
        "labels": labels,
        "true_means": sim.means,
        "true_covariances": sim.covariances,
        "true_n_components": np.int64(spec["n_components"]),
        **extra,
        "feature_names": np.array([f"x{j}" for j in range(d)]),
    }


def _image(name, spec, root_seed):
    """One row per pixel with at least one observed colour (fully transparent pixels of a file
    are left out); ``image`` (H, W, C) and ``pixel_index`` (row-major pixel of each row) let
    results be drawn as images; ``labels`` (the true regions) for a synthetic image."""
    from em_lib.segmentation import pixel_features

    try:
        if spec["source"] == "synthetic":
            rng = np.random.default_rng(
                seed_sequence(root_seed, "data", dataset=name, seed=spec["seed"])
            )
            image, labels = _data().make_synthetic_image(
                spec["height"],
                spec["width"],
                n_regions=spec["n_regions"],
                noise=spec["noise"],
                illumination_gradient=spec["illumination_gradient"],
                random_state=rng,
            )
        else:
            image = _data().read_image(Path(spec["source"]), max_pixels=spec["max_pixels"])
            labels = None
        features = pixel_features(image, coordinate_weight=spec["coordinate_weight"])
    except (ValueError, OSError) as err:
        raise ConfigError(f"datasets.{name}.source ({spec['source']}): {err}") from None
    used = ~np.isnan(features.X).all(axis=1)
    arrays = {
        "X": features.X[used],
        "feature_names": np.array(features.feature_names),
        "image": image,
        "pixel_index": np.flatnonzero(used),
    }
    if labels is not None:
        arrays["labels"] = labels.ravel()[used]
        arrays["true_n_components"] = np.int64(spec["n_regions"])
    return arrays


def prepare_dataset(name: str, spec, root_seed: int) -> dict[str, np.ndarray]:
    """Arrays of one data set: ``X`` (n, d) with the data's own missing values as NaN (rows
    with nothing observed dropped), ``feature_names``, and where known ``labels`` (n,),
    ``lengths`` (S,), ``true_n_components`` and the true ``true_weights`` (K,), ``true_means``
    (K, d), ``true_covariances`` (K, d, d), ``true_transmat`` (K, K); images add ``image``
    (H, W, C) and ``pixel_index`` (n,)."""
    kind = spec["kind"]
    if kind in ("gaussian_mixture", "hmm_sequences"):
        return _simulated(name, spec, root_seed)
    if kind == "image":
        return _image(name, spec, root_seed)
    table = (
        _data().load_dataset(spec["name"]) if kind == "bundled" else load_table_dataset(name, spec)
    )
    used = ~np.isnan(table.X).all(axis=1)
    arrays = {"X": table.X[used], "feature_names": np.array(table.feature_names)}
    if table.labels is not None:
        arrays["labels"] = table.labels[used]
    return arrays


def make_mask(X, job: MaskJob, *, root_seed: int, strength: float) -> dict[str, np.ndarray]:
    """``mask`` (n, d) bool of the entries masked on top of the data's own missing values,
    ``realised_rate`` (newly masked / all entries) and ``total_missing_rate`` (own and
    masked / all entries)."""
    X = np.asarray(X, dtype=float)
    stream = seed_sequence(root_seed, "mask", **job.labels)
    result = _data().make_missing(
        X, job.mechanism, float(job.missing_rate), random_state=stream, strength=strength
    )
    total = (np.isnan(X) | result.mask).mean() if X.size else 0.0
    return {
        "mask": result.mask,
        "realised_rate": np.float64(result.realised_rate),
        "total_missing_rate": np.float64(total),
    }


def save_arrays(path, arrays: dict) -> None:
    """Write arrays to ``path`` (.npz) atomically: a killed job leaves no partial file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
    os.replace(tmp, path)


def load_arrays(path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


# ---------------------------------------------------------------------------------------------
# fitting
# ---------------------------------------------------------------------------------------------


def training_data(X_obs, lengths, method: str, min_length: int = 1):
    """The data a method is fitted to: ``(X_train, lengths_train)``.

    ``em``: the damaged data as is; ``complete_case``: rows with no missing entry (each
    sequence keeps its complete steps, concatenated; sequences shorter than ``min_length`` are
    dropped); ``mean_impute``: missing entries replaced by their column's observed mean.
    """
    if method == "em":
        return X_obs, lengths
    if method == "mean_impute":
        return np.where(np.isnan(X_obs), np.nanmean(X_obs, axis=0), X_obs), lengths
    if method != "complete_case":
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    keep = ~np.isnan(X_obs).any(axis=1)
    if lengths is None:
        return X_obs[keep], None
    sequence = np.repeat(np.arange(len(lengths)), lengths)
    kept_lengths = np.bincount(sequence[keep], minlength=len(lengths))
    long_enough = kept_lengths >= min_length
    keep &= long_enough[sequence]
    return X_obs[keep], kept_lengths[long_enough]


def cell_arrays(n_init, max_iter, n_components, n_features):
    """Empty per-cell outputs of a fit job (the fill values of cells that were not fitted)."""
    nan = np.nan
    return {
        # every random start as it ended on its own
        **{f"start_{name}": np.full(n_init, nan) for name in MEASURES},
        "start_train_log_likelihood": np.full(n_init, nan),
        "start_n_iter": np.full(n_init, -1, dtype=np.int64),
        "start_converged": np.zeros(n_init, dtype=bool),
        "start_failed": np.ones(n_init, dtype=bool),
        "start_failure_reason": np.full(n_init, "", dtype=object),
        "start_max_decrease": np.full(n_init, nan),
        "start_kind": np.full(n_init, "", dtype=object),
        "trace": np.full((n_init, max_iter), nan),
        # starts built from contained models
        "nested_origin": np.full(N_NESTED, "", dtype=object),
        "nested_log_likelihood": np.full(N_NESTED, nan),
        "nested_n_iter": np.full(N_NESTED, -1, dtype=np.int64),
        "nested_converged": np.zeros(N_NESTED, dtype=bool),
        # the fitted model: the best start, polished
        **{f"fit_{name}": np.array(nan) for name in MEASURES},
        "fit_train_log_likelihood": np.array(nan),
        "fit_n_iter": np.array(-1, dtype=np.int64),
        "fit_converged": np.array(False),
        "fit_failed": np.array(True),
        "fit_failure_reason": np.array("", dtype=object),
        "fit_origin": np.array("", dtype=object),
        "fit_polished": np.array(False),
        "fit_degenerate": np.array(False),
        "weights": np.full(n_components, nan),
        "startprob": np.full(n_components, nan),
        "means": np.full((n_components, n_features), nan),
        "covariances": np.full((n_components, n_features, n_features), nan),
        "transmat": np.full((n_components, n_components), nan),
        "n_rows_used": np.array(-1, dtype=np.int64),
        "fit_time": np.array(nan),
        "fit_cpu_time": np.array(nan),
    }


def _fill_mixture(out, result, n_init):
    fit = result.starts
    random = result.random_starts[:n_init]
    count = random.size
    out["start_train_log_likelihood"][:count] = fit.log_likelihood[random]
    out["start_n_iter"][:count] = fit.n_iter[random]
    out["start_converged"][:count] = fit.converged[random]
    out["start_failed"][:count] = fit.failed[random]
    out["start_failure_reason"][:count] = fit.failure_reason[random]
    out["start_max_decrease"][:count] = fit.max_decrease[random]
    out["start_kind"][:count] = result.origin[random]
    out["trace"][:count] = fit.trace[random]
    nested = np.setdiff1d(np.arange(fit.n_init), random)[:N_NESTED]
    out["nested_origin"][: nested.size] = result.origin[nested]
    out["nested_log_likelihood"][: nested.size] = fit.log_likelihood[nested]
    out["nested_n_iter"][: nested.size] = fit.n_iter[nested]
    out["nested_converged"][: nested.size] = fit.converged[nested]
    out["fit_origin"][()] = str(result.origin[result.best_start])
    out["fit_polished"][()] = result.polish is not None
    out["fit_train_log_likelihood"][()] = result.log_likelihood
    out["fit_n_iter"][()] = result.n_iter
    out["fit_converged"][()] = result.converged
    k = result.n_components
    out["weights"][:k] = result.weights
    return random


def _fill_hmm(out, result):
    fit = result.starts
    count = fit.n_init
    out["start_train_log_likelihood"][:count] = fit.log_likelihood
    out["start_n_iter"][:count] = fit.n_iter
    out["start_converged"][:count] = fit.converged
    out["start_failed"][:count] = fit.failed
    out["start_failure_reason"][:count] = fit.failure_reason
    out["start_max_decrease"][:count] = fit.max_decrease
    out["start_kind"][:count] = result.origin
    out["trace"][:count] = fit.trace
    out["fit_origin"][()] = str(result.origin[result.best_start])
    out["fit_polished"][()] = result.polish is not None
    out["fit_train_log_likelihood"][()] = float(result.log_likelihood)
    out["fit_n_iter"][()] = int(result.n_iter)
    out["fit_converged"][()] = bool(result.converged)
    k = fit.means.shape[1]
    out["startprob"][:k] = result.startprob
    out["transmat"][:k, :k] = result.transmat
    return np.arange(count)


def _evaluate_cell(out, params, random, result_params, context, covariance_type, is_hmm):
    """Measures of the random starts and of the fitted model, in one batched evaluation."""
    stacked = {
        key: np.concatenate([value[random], result_params[key][None]])
        for key, value in params.items()
    }
    ok = np.concatenate([~out["start_failed"][: random.size], [True]])
    measured = evaluate(
        context["X_obs"],
        context["mask"],
        context["X_true"],
        context["truth"],
        {key: value[ok] for key, value in stacked.items()},
        covariance_type,
        lengths=context["lengths"],
        is_hmm=is_hmm,
    )
    rows = np.flatnonzero(ok[:-1])
    for name, values in measured.items():
        out[f"start_{name}"][rows] = values[:-1]
        out[f"fit_{name}"][()] = values[-1]


def _fit_cell(model, n_components, method, lattice, train, context, settings, random_state):
    """Every output of one (model, K, method) cell; failures recorded, never raised."""
    n_init, max_iter = settings["mixture"].n_init, settings["mixture"].max_iter  # = the HMM's
    k_max, d = context["k_max"], context["X_obs"].shape[1]
    out = cell_arrays(n_init, max_iter, k_max, d)
    X_train, lengths_train = train
    out["n_rows_used"][()] = X_train.shape[0]
    if X_train.shape[0] <= n_components:
        reason = (
            f"{method}: {X_train.shape[0]} rows to fit, not more than n_components={n_components}"
        )
        out["start_failure_reason"][:] = reason
        out["fit_failure_reason"][()] = reason
        return out
    tick, cpu_tick = time.perf_counter(), time.process_time()
    try:
        if model == HMM_MODEL:
            from em_lib.numerics.hmm import fit_hmm

            covariance_type = settings["hmm_covariance_type"]
            result = fit_hmm(
                X_train, lengths_train, n_components, covariance_type, settings["hmm"], random_state
            )
            params = {
                "startprob": result.starts.startprob,
                "transmat": result.starts.transmat,
                "means": result.starts.means,
                "covariances": result.starts.covariances,
            }
            chosen = {
                "startprob": result.startprob,
                "transmat": result.transmat,
                "means": result.means,
                "covariances": result.covariances,
            }
        else:
            covariance_type = model
            result = lattice.fit(n_components, model)
            params = {
                "weights": result.starts.weights,
                "means": result.starts.means,
                "covariances": result.starts.covariances,
            }
            chosen = {
                "weights": result.weights,
                "means": result.means,
                "covariances": result.covariances,
            }
    except (ValueError, np.linalg.LinAlgError) as err:
        reason = f"{method}: {type(err).__name__}: {err}"
        out["start_failure_reason"][:] = reason
        out["fit_failure_reason"][()] = reason
        return out
    out["fit_time"][()] = time.perf_counter() - tick
    out["fit_cpu_time"][()] = time.process_time() - cpu_tick
    is_hmm = model == HMM_MODEL
    random = _fill_hmm(out, result) if is_hmm else _fill_mixture(out, result, n_init)
    out["fit_failed"][()] = False
    out["means"][:n_components] = chosen["means"]
    full = any_to_full(chosen["covariances"][None], covariance_type, n_components, d)[0]
    out["covariances"][:n_components] = full
    if not is_hmm:
        out["fit_degenerate"][()] = _degenerate(result, covariance_type, X_train)
    _evaluate_cell(out, params, random, chosen, context, covariance_type, is_hmm)
    return out


def _degenerate(result, covariance_type, X_train) -> bool:
    """:func:`em_lib.selection.degenerate` of a fitted mixture on the rows it was fitted to
    (the rule by which :func:`em_lib.select_mixture` and the workflow's selections pass over
    spurious maxima)."""
    from em_lib.selection import data_covariance, degenerate

    observed = ~np.isnan(X_train).all(axis=1)
    covariance = data_covariance(X_train[observed])
    return degenerate(
        result.weights, result.covariances, covariance_type, covariance, int(observed.sum())
    )


def fit_settings(config) -> dict:
    """The fitting settings of every cell, built once from the config."""
    settings = {"mixture": MixtureSettings.from_config({**config["fit"], "nested_starts": True})}
    if config["hmm"]["enabled"]:
        from em_lib.numerics.hmm import HMMSettings

        settings["hmm"] = HMMSettings.from_config(config["fit"], config["hmm"])
        settings["hmm_covariance_type"] = config["hmm"]["covariance_type"]
    return settings


def fit_job(data: dict, mask: np.ndarray, job: MaskJob, config) -> dict[str, np.ndarray]:
    """Fit the whole lattice of one mask: every model of the data set, every K and method.

    Every fit of the mask uses ``random_state = seed_sequence(root_seed, "init",
    **job.labels)``: a cell's random starts are those of ``GaussianMixture(K,
    covariance_type=model, n_init=fit.n_init, ..., nested_starts=True,
    random_state=that SeedSequence)`` on the same training data, and its contained fits are
    shared through one :class:`MixtureLattice` per method.

    Returns arrays with leading dimensions (model, n_components, method) named by ``model``,
    ``n_components`` and ``method``, one per output of :func:`cell_arrays`.
    """
    models = dataset_models(config, job.dataset)
    grid = [int(k) for k in config["sweep"]["n_components"]]
    methods = list(config["sweep"]["method"])
    settings = fit_settings(config)
    X_true = np.asarray(data["X"], dtype=float)
    mask = np.asarray(mask, dtype=bool)
    X_obs = np.where(mask, np.nan, X_true)
    lengths = data.get("lengths")
    context = {
        "X_obs": X_obs,
        "mask": mask,
        "X_true": X_true,
        "lengths": lengths,
        "truth": {key: data[key] for key in TRUTH_KEYS if key in data},
        "k_max": max(grid),
    }
    random_state = seed_sequence(config["root_seed"], "init", **job.labels)
    cells = {}
    for method in methods:
        has_hmm = HMM_MODEL in models
        train = training_data(X_obs, lengths, method, min_length=2 if has_hmm else 1)
        lattice = MixtureLattice(train[0], settings["mixture"], random_state)
        for model in models:
            for n_components in grid:
                cells[model, n_components, method] = _fit_cell(
                    model, n_components, method, lattice, train, context, settings, random_state
                )
    out = {}
    for name in next(iter(cells.values())):
        stacked = np.stack(
            [
                cells[model, n_components, method][name]
                for model in models
                for n_components in grid
                for method in methods
            ]
        )
        shape = (len(models), len(grid), len(methods)) + stacked.shape[1:]
        out[name] = stacked.reshape(shape)
        if out[name].dtype == object:
            out[name] = out[name].astype(str)
    out.update(model=np.array(models), n_components=np.array(grid), method=np.array(methods))
    return out
