"""Checks of a workflow config beyond its JSON schema, run before any job starts.

:func:`check_config` raises :class:`ConfigError` with one short message naming the key, the
value and what would be valid. It reads table files (their shape and columns decide what can
run) but nothing heavy: synthetic images are not generated and image files are not decoded
(a broken image file is reported by the job that reads it, naming the file).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .design import (
    HMM_MODEL,
    SEQUENCE_KINDS,
    dataset_models,
    dataset_names,
    delta_target,
    mechanism_rate_pairs,
)


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the offending key or file."""


def _data():
    """em_lib.data, imported on first use (it loads pandas)."""
    import em_lib.data

    return em_lib.data


def load_table_dataset(name, spec):
    """The :class:`em_lib.data.Dataset` of a ``table`` data set (raises ConfigError)."""
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


def usable_shape(name: str, spec) -> tuple[int | None, int | None]:
    """(rows with at least one observed value, features) of a data set as the fits see it;
    ``None`` where only the job can tell (image files)."""
    kind = spec["kind"]
    if kind == "gaussian_mixture":
        return spec["n_samples"], spec["n_features"]
    if kind == "hmm_sequences":
        return spec["n_sequences"] * spec["sequence_length"], spec["n_features"]
    if kind == "image":
        if spec["source"] != "synthetic":
            path = Path(spec["source"])
            if not path.is_file():
                raise ConfigError(
                    f"datasets.{name}.source: file not found: {path} "
                    f"(relative paths are relative to {os.getcwd()})"
                )
            return None, None
        channels = 3
        extra = 2 if spec["coordinate_weight"] > 0 else 0
        return spec["height"] * spec["width"], channels + extra
    if kind == "bundled":
        available = _data().available_datasets()
        if spec["name"] not in available:
            raise ConfigError(
                f"datasets.{name}.name: unknown bundled dataset {spec['name']!r}; "
                f"available: {', '.join(available)}"
            )
        X = _data().load_dataset(spec["name"]).X
    else:
        X = load_table_dataset(name, spec).X
    return int((~np.isnan(X).all(axis=1)).sum()), X.shape[1]


def _check_names(config):
    defined = config["datasets"]
    if not defined:
        raise ConfigError("datasets: define at least one data set")
    for name in dataset_names(config):
        if name not in defined:
            raise ConfigError(
                f"sweep.dataset: unknown dataset {name!r}; defined under datasets: "
                f"{', '.join(defined)}"
            )
    names = dataset_names(config)
    for key, value in (
        ("sensitivity.delta.dataset", config["sensitivity"]["delta"].get("dataset")),
        ("report.dataset", config["report"].get("dataset")),
    ):
        if value is not None and value not in names:
            raise ConfigError(
                f"{key}: unknown dataset {value!r}; the sweep runs: {', '.join(names)}"
            )


def _check_sweep(config):
    sweep = config["sweep"]
    rates = [float(r) for r in sweep["missing_rate"]]
    if "none" in sweep["mechanism"] and 0.0 not in rates:
        raise ConfigError("sweep.mechanism: 'none' needs missing_rate 0 in sweep.missing_rate")
    if 0.0 in rates and "none" not in sweep["mechanism"]:
        raise ConfigError(
            "sweep.missing_rate: rate 0 is only run with mechanism 'none'; add 'none' to "
            "sweep.mechanism"
        )
    if not mechanism_rate_pairs(config):
        raise ConfigError("sweep.mechanism / sweep.missing_rate: no (mechanism, rate) pair to run")
    report = config["report"]
    if report["method"] not in sweep["method"]:
        raise ConfigError(
            f"report.method: {report['method']!r} is not in sweep.method {list(sweep['method'])}"
        )
    if report.get("model") is not None and report["model"] not in sweep["model"]:
        raise ConfigError(
            f"report.model: {report['model']!r} is not in sweep.model {list(sweep['model'])}"
        )


def _check_models(config, name, spec):
    requested = spec.get("models") or []
    if HMM_MODEL in requested and spec["kind"] not in SEQUENCE_KINDS:
        raise ConfigError(
            f"datasets.{name}.models: model 'hmm' needs sequence data (kind hmm_sequences), "
            f"not {spec['kind']!r}"
        )
    unknown = [m for m in requested if m != HMM_MODEL and m not in config["sweep"]["model"]]
    if unknown:
        raise ConfigError(
            f"datasets.{name}.models: {unknown[0]!r} is not in sweep.model "
            f"{list(config['sweep']['model'])}"
        )
    if HMM_MODEL in requested and not config["hmm"]["enabled"]:
        raise ConfigError(f"datasets.{name}.models: 'hmm' needs hmm.enabled: true")
    if not dataset_models(config, name):
        raise ConfigError(f"datasets.{name}.models: no model left to fit (is hmm.enabled?)")


def _check_shape(config, name, spec):
    n_rows, n_features = usable_shape(name, spec)
    if n_rows is None:
        return
    largest = max(int(k) for k in config["sweep"]["n_components"])
    if n_rows < 2 or largest >= n_rows:
        raise ConfigError(
            f"sweep.n_components: K = {largest} needs more than {largest} usable rows, but "
            f"dataset {name!r} has {n_rows} (rows with at least one observed value)"
        )
    for mechanism, rate in mechanism_rate_pairs(config):
        try:  # the library's own rule on achievable rates, on a placeholder of that shape
            _data().make_missing(
                np.zeros((n_rows, n_features)),
                mechanism,
                rate,
                random_state=0,
                strength=config["missingness"]["strength"],
            )
        except ValueError as err:
            raise ConfigError(
                f"sweep.missing_rate: {mechanism} at rate {rate} on dataset {name!r}: {err}"
            ) from None


def _check_delta(config):
    settings = config["sensitivity"]["delta"]
    deltas = [float(d) for d in settings["deltas"]]
    if 0.0 not in deltas:
        raise ConfigError(f"sensitivity.delta.deltas: {deltas} must contain 0 (the MAR analysis)")
    target = delta_target(config)
    pairs = mechanism_rate_pairs(config)
    if (target["mechanism"], target["missing_rate"]) not in pairs:
        raise ConfigError(
            f"sensitivity.delta.mechanism / missing_rate: ({target['mechanism']}, "
            f"{target['missing_rate']}) is not a mask of the sweep; masks: {pairs}"
        )
    if target["replicate"] not in [int(r) for r in config["sweep"]["replicate"]]:
        raise ConfigError(
            f"sensitivity.delta.replicate: {target['replicate']} is not in sweep.replicate"
        )
    if settings["conclusion"] == "weight_above" and settings["component"] >= min(
        target["n_components"]
    ):
        raise ConfigError(
            f"sensitivity.delta.component: {settings['component']} does not exist at "
            f"K = {min(target['n_components'])}"
        )
    fitted = dataset_models(config, target["dataset"])
    mixtures = [m for m in fitted if m != HMM_MODEL]
    if mixtures and target["model"] not in mixtures:
        raise ConfigError(
            f"sensitivity.delta.model: {target['model']!r} is not fitted to "
            f"dataset {target['dataset']!r} (models: {fitted})"
        )
    spec = config["datasets"][target["dataset"]]
    if target["variables"] is not None and spec["kind"] != "image":
        _, n_features = usable_shape(target["dataset"], spec)
        bad = [v for v in target["variables"] if n_features is not None and v >= n_features]
        if bad:
            raise ConfigError(
                f"sensitivity.delta.variables: column {bad[0]} does not exist in "
                f"dataset {target['dataset']!r} ({n_features} columns)"
            )


def check_config(config) -> None:
    """Raise :class:`ConfigError` naming the key or file when a schema-valid config cannot run.

    Checks what the JSON schema cannot: data set names wherever they are referenced, files and
    numeric table columns, mechanism / rate pairing and achievable rates, K against the usable
    rows of every data set, models per data set, the delta analysis's mask and grid, and the
    report's method and model.
    """
    _check_names(config)
    _check_sweep(config)
    for name in dataset_names(config):
        spec = config["datasets"][name]
        _check_models(config, name, spec)
        _check_shape(config, name, spec)
    _check_delta(config)


SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def _schema_error(config, schema) -> str | None:
    """The most relevant schema violation as one line naming the key and value, or None."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return None
    key = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    message = error.message
    if len(message) > 300:
        message = message[:300] + " ..."
    return f"{key}: {message}"


def validate_config(config: dict, schema=SCHEMA) -> dict:
    """Check ``config`` against the workflow's JSON schema (one short :class:`ConfigError` on
    the first violation: key and value, no schema dump), fill in the schema's defaults in
    place, then run :func:`check_config`. Returns ``config``."""
    import yaml
    from snakemake.utils import validate

    with open(schema, encoding="utf-8") as handle:
        loaded = yaml.safe_load(handle)
    problem = _schema_error(config, loaded)
    if problem is not None:
        raise ConfigError(problem)
    validate(config, str(schema))  # sets the defaults
    check_config(config)
    return config


def complete_config(config: dict, schema=SCHEMA) -> dict:
    """A validated copy of ``config`` with the schema's defaults filled in, for use outside
    Snakemake (tests, notebooks)."""
    import copy

    return validate_config(copy.deepcopy(config), schema)
