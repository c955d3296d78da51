"""What each job of the Snakemake workflow does, as plain functions of the config and wildcards.

The workflow (``Snakefile``, ``workflow/``) only unpacks ``snakemake.*`` and calls these
functions, so everything numerical about an experiment is unit-testable without Snakemake.
Nothing here imports xarray: :mod:`em_lib.results` turns the per-job arrays into the
labelled data set.

Design
------
One *fit job* per (dataset, model, n_components, mechanism, missing_rate, replicate, chunk);
each fits its chunk of starts ``fit.n_init`` split into ``fit.starts_per_job`` in one batched
call per method (``em`` on the masked data, ``complete_case`` on the fully observed rows,
``mean_impute`` on column-mean-imputed data). Mechanism ``"none"`` pairs with rate 0 only and
rate 0 with ``"none"`` only. Model ``"hmm"`` (enabled by ``hmm.enabled``) is fitted to
sequence data only; the Gaussian-mixture models (covariance types) to every data set unless a
data set lists its own ``models``.

Seeds
-----
Every random stream is ``SeedSequence(root_seed, spawn_key=seed_key(purpose, **labels))``
where ``seed_key`` hashes ``[purpose, sorted((label, value))]`` written as compact JSON with
SHA-256 and keeps the first 16 bytes as four little-endian uint32 words. Labels are the
wildcard values as plain ``str`` / ``int`` / ``float`` (floats by their shortest repr), so a
stream depends only on the root seed and on what it is for, never on job order, process, chunk
size or Python's ``hash()``:

* data: ``("data", dataset, seed)`` (synthetic data sets; ``seed`` from the data set config);
* masks: ``("mask", dataset, mechanism, missing_rate, replicate)``, shared by every model,
  K and method (the baselines see the same masks);
* starts: ``("init", dataset, model, n_components, mechanism, missing_rate, replicate,
  init)`` per start, shared by the methods; so start ``i`` is the same whatever the chunking.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from em_lib.metrics import adjusted_rand_index, parameter_errors
from em_lib.numerics.covariance import COVARIANCE_TYPES, any_to_full
from em_lib.numerics.criteria import n_parameters
from em_lib.numerics.gaussian import conditional_means, log_gaussian_density, missing_patterns
from em_lib.numerics.init import initial_parameters
from em_lib.numerics.mixture_em import fit_mixture_em
from em_lib.numerics.prior import default_prior

__all__ = [
    "DATASET_KINDS",
    "HMM_MODEL",
    "METHODS",
    "PER_INIT_VARIABLES",
    "SEED_SCHEME",
    "ConfigError",
    "FitJob",
    "MaskJob",
    "check_config",
    "chunk_bounds",
    "dataset_models",
    "design",
    "fit_job",
    "format_rate",
    "hmm_available",
    "load_arrays",
    "make_mask",
    "prepare_dataset",
    "save_arrays",
    "seed_key",
    "seed_sequence",
    "training_data",
]

DATASET_KINDS = ("gaussian_mixture", "hmm_sequences", "bundled", "table", "image")
SEQUENCE_KINDS = ("hmm_sequences",)
GMM_MODELS = COVARIANCE_TYPES
HMM_MODEL = "hmm"
METHODS = ("em", "complete_case", "mean_impute")
HMM_MODULE = "em_lib.numerics.hmm_em"
SEED_SCHEME = (
    "SeedSequence(root_seed, spawn_key=4 little-endian uint32 words of "
    "sha256(json([purpose, sorted([label, value])]))); data: (dataset, seed), "
    "mask: (dataset, mechanism, missing_rate, replicate), init: (dataset, model, n_components, "
    "mechanism, missing_rate, replicate, init)"
)

# per-start outputs of a fit job, each of shape (n_methods, n_starts_in_chunk)
PER_INIT_VARIABLES = (
    "log_likelihood",
    "train_log_likelihood",
    "bic",
    "aic",
    "icl",
    "n_iter",
    "converged",
    "failed",
    "failure_reason",
    "max_decrease",
    "ari",
    "weights_abs_error",
    "means_rmse",
    "covariances_rel_frobenius",
    "transmat_abs_error",
    "imputation_rmse",
)


def _data():
    """em_lib.data, imported on first use: it pulls in pandas, which fit jobs do not need
    (a fit job's process start-up is a large share of its cost)."""
    return importlib.import_module("em_lib.data")


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the offending key or file."""


# ---------------------------------------------------------------------------------------------
# seeds and names
# ---------------------------------------------------------------------------------------------


def _plain(value):
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    if isinstance(value, str):
        return value
    raise TypeError(f"seed labels must be str, int or float, got {type(value).__name__}")


def seed_key(purpose: str, **labels) -> tuple[int, int, int, int]:
    """Stable spawn key of a random stream: four uint32 words from SHA-256 of
    ``[purpose, sorted((label, value))]`` as compact JSON."""
    text = json.dumps(
        [purpose, sorted((k, _plain(v)) for k, v in labels.items())], separators=(",", ":")
    )
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))


def seed_sequence(root_seed: int, purpose: str, **labels) -> np.random.SeedSequence:
    """``SeedSequence(root_seed, spawn_key=seed_key(purpose, **labels))``."""
    return np.random.SeedSequence(int(root_seed), spawn_key=seed_key(purpose, **labels))


def format_rate(rate: float) -> str:
    """Wildcard text of a missing rate: the shortest repr of the float (``0.1`` -> ``"0.1"``)."""
    return repr(float(rate))


@dataclass(frozen=True)
class MaskJob:
    dataset: str
    mechanism: str
    missing_rate: float
    replicate: int

    @property
    def wildcards(self) -> dict[str, str]:
        return {
            "dataset": self.dataset,
            "mechanism": self.mechanism,
            "missing_rate": format_rate(self.missing_rate),
            "replicate": str(self.replicate),
        }


@dataclass(frozen=True)
class FitJob:
    dataset: str
    model: str
    n_components: int
    mechanism: str
    missing_rate: float
    replicate: int
    chunk: int

    @classmethod
    def from_wildcards(cls, wildcards) -> FitJob:
        """From Snakemake wildcards (or any mapping of the wildcard names to strings)."""
        get = wildcards.__getitem__
        return cls(
            str(get("dataset")),
            str(get("model")),
            int(get("n_components")),
            str(get("mechanism")),
            float(get("missing_rate")),
            int(get("replicate")),
            int(get("chunk")),
        )

    @property
    def wildcards(self) -> dict[str, str]:
        return {
            "dataset": self.dataset,
            "model": self.model,
            "n_components": str(self.n_components),
            "mechanism": self.mechanism,
            "missing_rate": format_rate(self.missing_rate),
            "replicate": str(self.replicate),
            "chunk": str(self.chunk),
        }

    @property
    def labels(self) -> dict:
        """The sweep coordinates of the job (no chunk)."""
        return {
            "dataset": self.dataset,
            "model": self.model,
            "n_components": self.n_components,
            "mechanism": self.mechanism,
            "missing_rate": self.missing_rate,
            "replicate": self.replicate,
        }


# ---------------------------------------------------------------------------------------------
# design
# ---------------------------------------------------------------------------------------------


def hmm_available() -> tuple[bool, str]:
    """Whether the batched HMM core can be imported, and why not."""
    try:
        module = importlib.import_module(HMM_MODULE)
        for name in (
            "initial_hmm_parameters",
            "fit_hmm_em",
            "forward_backward",
            "emission_log_prob",
            "hmm_n_parameters",
        ):
            getattr(module, name)
    except (ImportError, AttributeError) as err:
        return False, f"{type(err).__name__}: {err}"
    return True, ""


def chunk_bounds(n_init: int, starts_per_job: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of the start chunks, one fit job each."""
    return [(lo, min(lo + starts_per_job, n_init)) for lo in range(0, n_init, starts_per_job)]


def dataset_names(config) -> list[str]:
    selected = config["sweep"].get("dataset")
    return list(config["datasets"]) if selected is None else list(selected)


def model_coordinate(config) -> list[str]:
    models = list(config["sweep"]["model"])
    return models + [HMM_MODEL] if config["hmm"]["enabled"] else models


def dataset_models(config, name: str) -> list[str]:
    """Models fitted to data set ``name``, in the order of the model coordinate."""
    spec = config["datasets"][name]
    is_sequence = spec["kind"] in SEQUENCE_KINDS
    requested = spec.get("models")
    return [
        model
        for model in model_coordinate(config)
        if (model in requested if requested is not None else model != HMM_MODEL or is_sequence)
    ]


def mechanism_rate_pairs(config) -> list[tuple[str, float]]:
    """(mechanism, rate) pairs run: ``"none"`` with rate 0 only, rate 0 with ``"none"`` only."""
    return [
        (mechanism, float(rate))
        for mechanism in config["sweep"]["mechanism"]
        for rate in config["sweep"]["missing_rate"]
        if (mechanism == "none") == (float(rate) == 0.0)
    ]


def design(config) -> dict:
    """Coordinates of the experiment and its mask and fit jobs, in a deterministic order."""
    fit = config["fit"]
    chunks = chunk_bounds(fit["n_init"], fit["starts_per_job"])
    pairs = mechanism_rate_pairs(config)
    replicates = [int(r) for r in config["sweep"]["replicate"]]
    names = dataset_names(config)
    mask_jobs = [
        MaskJob(name, mech, rate, rep)
        for name in names
        for mech, rate in pairs
        for rep in replicates
    ]
    fit_jobs = [
        FitJob(name, model, int(k), mech, rate, rep, chunk)
        for name in names
        for model in dataset_models(config, name)
        for k in config["sweep"]["n_components"]
        for mech, rate in pairs
        for rep in replicates
        for chunk in range(len(chunks))
    ]
    coords = {
        "dataset": names,
        "model": model_coordinate(config),
        "n_components": [int(k) for k in config["sweep"]["n_components"]],
        "mechanism": list(config["sweep"]["mechanism"]),
        "missing_rate": [float(r) for r in config["sweep"]["missing_rate"]],
        "replicate": replicates,
        "method": list(config["sweep"]["method"]),
        "init": list(range(fit["n_init"])),
        "iteration": list(range(1, fit["max_iter"] + 1)),
        "chunk": list(range(len(chunks))),
    }
    return {"coords": coords, "chunks": chunks, "mask_jobs": mask_jobs, "fit_jobs": fit_jobs}


# ---------------------------------------------------------------------------------------------
# configuration checks beyond the JSON schema
# ---------------------------------------------------------------------------------------------


def _table_dataset(name, spec):
    path = Path(spec["path"])
    if not path.is_file():
        raise ConfigError(
            f"datasets.{name}.path: file not found: {path} "
            f"(relative paths are relative to {os.getcwd()})"
        )
    try:
        return _data().load_table(
            path, columns=spec.get("columns"), label_column=spec.get("label_column")
        )
    except (ValueError, ImportError) as err:
        raise ConfigError(f"datasets.{name}: {err}") from None


def _image_dataset(name, spec, root_seed) -> dict[str, np.ndarray]:
    """Arrays of an ``image`` data set: one row per pixel with every colour observed (fully
    transparent pixels of a file are left out), features from
    :func:`em_lib.segmentation.pixel_features`; ``labels`` (the true regions) for a synthetic
    image; ``image`` (H, W, C) and ``pixel_index`` (n,) (row-major index of each row's pixel)
    so that results can be drawn as images."""
    segmentation = importlib.import_module("em_lib.segmentation")
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
            path = Path(spec["source"])
            if not path.is_file():
                raise ConfigError(
                    f"datasets.{name}.source: file not found: {path} "
                    f"(relative paths are relative to {os.getcwd()})"
                )
            image, labels = _data().read_image(path, max_pixels=spec["max_pixels"]), None
        features = segmentation.pixel_features(image, coordinate_weight=spec["coordinate_weight"])
    except ValueError as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"datasets.{name}: {err}") from None
    complete = ~np.isnan(features.X).any(axis=1)  # masks are imposed on complete rows only
    arrays = {
        "X": features.X[complete],
        "feature_names": np.array(features.feature_names),
        "image": image,
        "pixel_index": np.flatnonzero(complete),
    }
    if labels is not None:
        arrays["labels"] = labels.ravel()[complete]
    return arrays


def dataset_shape(name: str, spec) -> tuple[int, int]:
    """(n_samples, n_features) of a data set as the fits see it (raises ConfigError)."""
    kind = spec["kind"]
    if kind == "image":
        return _image_dataset(name, spec, 0)["X"].shape
    if kind == "gaussian_mixture":
        return spec["n_samples"], spec["n_features"]
    if kind == "hmm_sequences":
        return spec["n_sequences"] * spec["sequence_length"], spec["n_features"]
    if kind == "bundled":
        if spec["name"] not in _data().available_datasets():
            raise ConfigError(
                f"datasets.{name}.name: unknown bundled dataset {spec['name']!r}; "
                f"available: {', '.join(_data().available_datasets())}"
            )
        return _data().load_dataset(spec["name"]).X.shape
    table = _table_dataset(name, spec)
    complete = int((~np.isnan(table.X).any(axis=1)).sum())
    if complete == 0:
        raise ConfigError(f"datasets.{name}.path: {spec['path']} has no complete row")
    return complete, table.X.shape[1]


def check_config(config) -> None:
    """Raise :class:`ConfigError` naming the key or file when a validated config cannot run.

    Checks what the JSON schema cannot: data set names and files, numeric table columns,
    mechanism / rate pairing, achievable rates, the HMM model's availability and data.
    """
    defined = config["datasets"]
    if not defined:
        raise ConfigError("datasets: define at least one data set")
    for name in dataset_names(config):
        if name not in defined:
            raise ConfigError(
                f"sweep.dataset: unknown dataset {name!r}; defined under "
                f"datasets: {', '.join(defined)}"
            )
    sweep = config["sweep"]
    rates = [float(r) for r in sweep["missing_rate"]]
    if "none" in sweep["mechanism"] and 0.0 not in rates:
        raise ConfigError("sweep.mechanism: 'none' needs missing_rate 0 in sweep.missing_rate")
    if 0.0 in rates and "none" not in sweep["mechanism"]:
        raise ConfigError(
            "sweep.missing_rate: rate 0 is only run with mechanism 'none'; add "
            "'none' to sweep.mechanism"
        )
    if not mechanism_rate_pairs(config):
        raise ConfigError("sweep.mechanism / sweep.missing_rate: no (mechanism, rate) pair to run")
    if config["hmm"]["enabled"]:
        ok, why = hmm_available()
        if not ok:
            raise ConfigError(
                f"hmm.enabled: the HMM core {HMM_MODULE} is not importable "
                f"({why}); set hmm.enabled: false"
            )
    for name in dataset_names(config):
        spec = defined[name]
        requested = spec.get("models") or []
        if HMM_MODEL in requested and spec["kind"] not in SEQUENCE_KINDS:
            raise ConfigError(
                f"datasets.{name}.models: model 'hmm' needs sequence data "
                f"(kind hmm_sequences), not {spec['kind']!r}"
            )
        unknown = [m for m in requested if m != HMM_MODEL and m not in sweep["model"]]
        if unknown:
            raise ConfigError(f"datasets.{name}.models: {unknown[0]!r} is not in sweep.model")
        if not dataset_models(config, name):
            raise ConfigError(f"datasets.{name}.models: no model left to fit (is hmm.enabled?)")
        n_samples, n_features = dataset_shape(name, spec)
        if spec["kind"] == "image" and n_samples < max(sweep["n_components"]):
            raise ConfigError(
                f"datasets.{name}: image too small for K = {max(sweep['n_components'])}: "
                f"{n_samples} usable pixel(s)"
            )
        for mechanism, rate in mechanism_rate_pairs(config):
            try:  # the library's own rule on achievable rates, on a placeholder of that shape
                _data().make_missing(
                    np.zeros((n_samples, n_features)),
                    mechanism,
                    rate,
                    random_state=0,
                    strength=config["missingness"]["strength"],
                )
            except ValueError as err:
                raise ConfigError(
                    f"sweep.missing_rate / sweep.mechanism: {mechanism} at rate "
                    f"{rate} on dataset {name!r}: {err}"
                ) from None


# ---------------------------------------------------------------------------------------------
# data and masks
# ---------------------------------------------------------------------------------------------


def prepare_dataset(name: str, spec, root_seed: int) -> dict[str, np.ndarray]:
    """Arrays of one data set: ``X`` (n, d), ``feature_names``, and where known ``labels``
    (n,), ``lengths`` (S,) and the truth ``true_weights`` (K,), ``true_means`` (K, d),
    ``true_covariances`` (K, d, d), ``true_transmat`` (K, K); images add ``image`` (H, W, C)
    and ``pixel_index`` (n,)."""
    kind = spec["kind"]
    if kind in ("gaussian_mixture", "hmm_sequences"):
        rng = np.random.default_rng(
            seed_sequence(root_seed, "data", dataset=name, seed=spec["seed"])
        )
        common = {
            "separation": spec["separation"],
            "covariance_type": spec["covariance_type"],
            "random_state": rng,
        }
        if kind == "gaussian_mixture":
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
            extra = {
                "true_weights": occupancy,
                "true_transmat": sim.transmat,
                "lengths": sim.lengths,
            }
        d = sim.X.shape[1]
        return {
            "X": sim.X,
            "labels": labels,
            "true_means": sim.means,
            "true_covariances": sim.covariances,
            **extra,
            "feature_names": np.array([f"x{j}" for j in range(d)]),
        }
    if kind == "image":
        return _image_dataset(name, spec, root_seed)
    table = _data().load_dataset(spec["name"]) if kind == "bundled" else _table_dataset(name, spec)
    complete = ~np.isnan(table.X).any(axis=1)  # masks are imposed on complete rows only
    arrays = {"X": table.X[complete], "feature_names": np.array(table.feature_names)}
    if table.labels is not None:
        arrays["labels"] = table.labels[complete]
    return arrays


def make_mask(
    X,
    *,
    dataset: str,
    mechanism: str,
    missing_rate: float,
    replicate: int,
    root_seed: int,
    strength: float,
) -> dict[str, np.ndarray]:
    """``mask`` (n, d) bool and ``realised_rate`` of one (dataset, mechanism, rate, replicate)."""
    stream = seed_sequence(
        root_seed,
        "mask",
        dataset=dataset,
        mechanism=mechanism,
        missing_rate=float(missing_rate),
        replicate=int(replicate),
    )
    result = _data().make_missing(
        X, mechanism, float(missing_rate), random_state=stream, strength=strength
    )
    return {"mask": result.mask, "realised_rate": np.float64(result.realised_rate)}


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

    ``em``: the masked data as is; ``complete_case``: rows with no missing entry (each sequence
    keeps its complete steps, concatenated; sequences shorter than ``min_length`` are dropped);
    ``mean_impute``: missing entries replaced by their column's observed mean.
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


def _truth(data):
    return {
        key: data[key]
        for key in ("labels", "true_weights", "true_means", "true_covariances", "true_transmat")
        if key in data
    }


def _fit_gmm(X_train, job: FitJob, starts, fit_settings, root_seed):
    """Starts drawn one by one (own stream each), then fitted in one batched call."""
    ct, k = job.model, job.n_components
    prior = default_prior(X_train, k, ct) if fit_settings["prior"] == "default" else None
    strategy = fit_settings["init_params"]
    parts = []
    for start in starts:
        rng = np.random.default_rng(seed_sequence(root_seed, "init", **job.labels, init=start))
        method = strategy if strategy != "auto" else ("hierarchical" if start == 0 else "kmeans")
        parts.append(
            initial_parameters(
                X_train, k, ct, 1, method, rng, reg_covar=fit_settings["reg_covar"], prior=prior
            )
        )
    weights, means, covariances = (np.concatenate(p) for p in zip(*parts, strict=True))
    fit = fit_mixture_em(
        X_train,
        weights,
        means,
        covariances,
        ct,
        tol=fit_settings["tol"],
        max_iter=fit_settings["max_iter"],
        reg_covar=fit_settings["reg_covar"],
        prior=prior,
    )
    return fit, {"weights": fit.weights, "means": fit.means, "covariances": fit.covariances}


def _fit_hmm(X_train, lengths, job: FitJob, starts, fit_settings, hmm_settings, root_seed):
    hmm_em = importlib.import_module(HMM_MODULE)
    ct, k = hmm_settings["covariance_type"], job.n_components
    prior = default_prior(X_train, k, ct) if fit_settings["prior"] == "default" else None
    parts = [
        hmm_em.initial_hmm_parameters(
            X_train,
            lengths,
            k,
            ct,
            1,
            init=hmm_settings["init"],
            random_state=seed_sequence(root_seed, "init", **job.labels, init=start),
            reg_covar=fit_settings["reg_covar"],
        )
        for start in starts
    ]
    params = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    fit = hmm_em.fit_hmm_em(
        X_train,
        lengths,
        params["startprob"],
        params["transmat"],
        params["means"],
        params["covariances"],
        ct,
        tol=fit_settings["tol"],
        max_iter=fit_settings["max_iter"],
        reg_covar=fit_settings["reg_covar"],
        prior=prior,
    )
    return fit, {
        "startprob": fit.startprob,
        "transmat": fit.transmat,
        "means": fit.means,
        "covariances": fit.covariances,
    }


def _posteriors(X_obs, lengths, params, model, covariance_type):
    """Per-start log-likelihood on ``X_obs`` (I,) and state/component posteriors (I, n, K)."""
    means, covariances = params["means"], params["covariances"]
    if model == HMM_MODEL:
        hmm_em = importlib.import_module(HMM_MODULE)
        log_b = hmm_em.emission_log_prob(X_obs, means, covariances, covariance_type)
        result = hmm_em.forward_backward(
            log_b,
            params["startprob"],
            params["transmat"],
            lengths if lengths is not None else [X_obs.shape[0]],
        )
        return result.log_likelihood.sum(-1), result.posteriors
    with np.errstate(divide="ignore"):
        log_joint = log_gaussian_density(X_obs, means, covariances, covariance_type)
        log_joint += np.log(params["weights"])[:, None, :]
    shift = log_joint.max(-1, keepdims=True)
    log_norm = shift[..., 0] + np.log(np.exp(log_joint - shift).sum(-1))
    return log_norm.sum(-1), np.exp(log_joint - log_norm[..., None])


def posterior_imputation(X_obs, posteriors, means, full_covariances):
    """``sum_k p(k | row) E[x_miss | x_obs, k]`` for every start: (I, n, d).

    posteriors : (I, n, K); means : (I, K, d); full_covariances : (I, K, d, d)
    """
    n_init = posteriors.shape[0]
    d = X_obs.shape[1]
    filled = np.broadcast_to(X_obs, (n_init,) + X_obs.shape).copy()
    for obs, rows in missing_patterns(X_obs):
        miss = np.setdiff1d(np.arange(d), obs)
        if miss.size == 0:
            continue
        if obs.size:
            cond = conditional_means(X_obs[np.ix_(rows, obs)], obs, miss, means, full_covariances)
        else:  # (I, K, n, m)
            cond = np.broadcast_to(
                means[:, :, None, miss], (n_init, means.shape[1], rows.size, miss.size)
            )
        filled[:, rows[:, None], miss] = np.einsum("ink,iknm->inm", posteriors[:, rows], cond)
    return filled


def _evaluate(X_obs, lengths, mask, X_true, truth, params, model, covariance_type, n_params):
    """Criteria and recovery metrics of every start, evaluated on the masked data ``X_obs``."""
    n_init, k, d = params["means"].shape
    log_lik, post = _posteriors(X_obs, lengths, params, model, covariance_type)
    used = ~np.isnan(X_obs).all(axis=1)
    n_used = int(used.sum())
    with np.errstate(divide="ignore"):
        entropy = -np.log(post[:, used].max(-1)).sum(-1)
    out = {
        "log_likelihood": log_lik,
        "bic": -2 * log_lik + n_params * np.log(n_used),
        "aic": -2 * log_lik + 2 * n_params,
    }
    out["icl"] = out["bic"] + 2 * entropy
    full = any_to_full(params["covariances"], covariance_type, k, d)
    nan = np.full(n_init, np.nan)
    labels = post.argmax(-1)
    out["ari"] = (
        np.array([adjusted_rand_index(truth["labels"], lab) for lab in labels])
        if "labels" in truth
        else nan
    )
    errors = {
        key: nan.copy()
        for key in (
            "weights_abs_error",
            "means_rmse",
            "covariances_rel_frobenius",
            "transmat_abs_error",
        )
    }
    if "true_means" in truth:
        est_weights = params["weights"] if "weights" in params else post.mean(1)
        for i in range(n_init):
            err = parameter_errors(
                truth["true_weights"],
                truth["true_means"],
                truth["true_covariances"],
                est_weights[i],
                params["means"][i],
                full[i],
            )
            errors["weights_abs_error"][i] = err["weights_abs_error"]
            errors["means_rmse"][i] = err["means_rmse"]
            errors["covariances_rel_frobenius"][i] = err["covariances_rel_frobenius"]
            if (
                "transmat" in params
                and "true_transmat" in truth
                and k == truth["true_transmat"].shape[0]
            ):
                est = params["transmat"][i][np.ix_(err["permutation"], err["permutation"])]
                errors["transmat_abs_error"][i] = np.abs(est - truth["true_transmat"]).mean()
    out.update(errors)
    if mask.any():
        filled = posterior_imputation(X_obs, post, params["means"], full)
        out["imputation_rmse"] = np.sqrt(((filled[:, mask] - X_true[mask]) ** 2).mean(-1))
    else:
        out["imputation_rmse"] = nan
    return out


def _empty_method_result(n_starts, max_iter, reason):
    result = {name: np.full(n_starts, np.nan) for name in PER_INIT_VARIABLES}
    result.update(
        n_iter=np.zeros(n_starts, dtype=np.int64),
        converged=np.zeros(n_starts, dtype=bool),
        failed=np.ones(n_starts, dtype=bool),
        failure_reason=np.array([reason] * n_starts),
    )
    result["trace"] = np.full((n_starts, max_iter), np.nan)
    return result


def _fit_method(
    X_obs, lengths, mask, X_true, truth, job, starts, method, fit_settings, hmm_settings, root_seed
):
    max_iter = fit_settings["max_iter"]
    is_hmm = job.model == HMM_MODEL
    X_train, lengths_train = training_data(X_obs, lengths, method, min_length=2 if is_hmm else 1)
    n_rows = X_train.shape[0]
    if n_rows < max(job.n_components, 2):
        reason = f"{method}: {n_rows} rows to fit, fewer than n_components={job.n_components}"
        return _empty_method_result(len(starts), max_iter, reason), (0.0, 0.0), n_rows
    tick, cpu_tick = time.perf_counter(), time.process_time()
    try:
        if is_hmm:
            fit, params = _fit_hmm(
                X_train, lengths_train, job, starts, fit_settings, hmm_settings, root_seed
            )
        else:
            fit, params = _fit_gmm(X_train, job, starts, fit_settings, root_seed)
    except (ValueError, np.linalg.LinAlgError) as err:
        reason = f"{method}: {type(err).__name__}: {err}"
        return _empty_method_result(len(starts), max_iter, reason), (0.0, 0.0), n_rows
    seconds = (time.perf_counter() - tick, time.process_time() - cpu_tick)

    result = _empty_method_result(len(starts), max_iter, "")
    result.update(
        train_log_likelihood=fit.log_likelihood,
        n_iter=fit.n_iter.astype(np.int64),
        converged=fit.converged,
        failed=fit.failed,
        failure_reason=fit.failure_reason.astype(str),
        max_decrease=fit.max_decrease,
        trace=fit.trace,
    )
    good = np.flatnonzero(~fit.failed)
    if good.size:
        ct = hmm_settings["covariance_type"] if is_hmm else job.model
        d = X_obs.shape[1]
        if is_hmm:
            n_params = importlib.import_module(HMM_MODULE).hmm_n_parameters(job.n_components, d, ct)
        else:
            n_params = n_parameters(job.n_components, d, ct)
        chosen = {key: value[good] for key, value in params.items()}
        for key, value in _evaluate(
            X_obs, lengths, mask, X_true, truth, chosen, job.model, ct, n_params
        ).items():
            result[key][good] = value
    return result, seconds, n_rows


def fit_job(
    data: dict,
    mask: np.ndarray,
    job: FitJob,
    *,
    fit_settings,
    hmm_settings,
    methods,
    root_seed: int,
) -> dict[str, np.ndarray]:
    """Fit one chunk of starts with every method and evaluate each start.

    Returns arrays ``init`` (I_chunk,) with the global start indices, ``method`` (M,),
    the :data:`PER_INIT_VARIABLES` (M, I_chunk), ``trace`` (M, I_chunk, max_iter),
    ``fit_time`` and ``fit_cpu_time`` (M,) wall-clock and CPU seconds of initialisation plus
    batched fit, ``n_rows_used`` (M,).
    """
    lo, hi = chunk_bounds(fit_settings["n_init"], fit_settings["starts_per_job"])[job.chunk]
    starts = list(range(lo, hi))
    X_true = np.asarray(data["X"], dtype=float)
    mask = np.asarray(mask, dtype=bool)
    X_obs = np.where(mask, np.nan, X_true)
    lengths = data.get("lengths")
    truth = _truth(data)
    results, times, rows = [], [], []
    for method in methods:
        result, seconds, n_rows = _fit_method(
            X_obs,
            lengths,
            mask,
            X_true,
            truth,
            job,
            starts,
            method,
            fit_settings,
            hmm_settings,
            root_seed,
        )
        results.append(result)
        times.append(seconds)
        rows.append(n_rows)
    out = {name: np.stack([r[name] for r in results]) for name in results[0]}
    out.update(
        init=np.array(starts, dtype=np.int64),
        method=np.array(list(methods)),
        fit_time=np.array([wall for wall, _ in times]),
        fit_cpu_time=np.array([cpu for _, cpu in times]),
        n_rows_used=np.array(rows, dtype=np.int64),
    )
    return out
