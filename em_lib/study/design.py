"""The sweep of an experiment: its coordinates and jobs, as plain functions of the config.

One **mask job** per (dataset, mechanism, missing_rate, replicate) imposes a synthetic mask
on top of the data's own missing values; one **fit job** per mask fits the whole lattice of
that data set on that mask: every model (covariance type, and the HMM for sequence data), every
K and every method (``em`` on the damaged data, ``complete_case`` and ``mean_impute``
baselines on the same rows), with nested starts shared inside the lattice. A job is seconds of
batched fitting, so interpreter start-up does not dominate the sweep, and the lattice gives
nested starts for free. Mechanism ``"none"`` pairs with rate 0 only and rate 0 with ``"none"``
only: that cell is the data as given (its own missing values, nothing added).
"""

from __future__ import annotations

from dataclasses import dataclass

from .seeds import format_rate

SEQUENCE_KINDS = ("hmm_sequences",)
HMM_MODEL = "hmm"
METHODS = ("em", "complete_case", "mean_impute")


@dataclass(frozen=True)
class MaskJob:
    """One mask of one data set, and the fit job of the whole lattice on it."""

    dataset: str
    mechanism: str
    missing_rate: float
    replicate: int

    @classmethod
    def from_wildcards(cls, wildcards) -> MaskJob:
        get = wildcards.__getitem__
        return cls(
            str(get("dataset")),
            str(get("mechanism")),
            float(get("missing_rate")),
            int(get("replicate")),
        )

    @property
    def wildcards(self) -> dict[str, str]:
        return {
            "dataset": self.dataset,
            "mechanism": self.mechanism,
            "missing_rate": format_rate(self.missing_rate),
            "replicate": str(self.replicate),
        }

    @property
    def labels(self) -> dict:
        return {
            "dataset": self.dataset,
            "mechanism": self.mechanism,
            "missing_rate": self.missing_rate,
            "replicate": self.replicate,
        }


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


def mask_jobs(config) -> list[MaskJob]:
    """Every (dataset, mechanism, rate, replicate), in a deterministic order."""
    return [
        MaskJob(name, mechanism, rate, int(replicate))
        for name in dataset_names(config)
        for mechanism, rate in mechanism_rate_pairs(config)
        for replicate in config["sweep"]["replicate"]
    ]


def coordinates(config) -> dict[str, list]:
    """Coordinates of the sweep dimensions (and ``method``, ``init``, ``iteration``)."""
    fit = config["fit"]
    return {
        "dataset": dataset_names(config),
        "model": model_coordinate(config),
        "n_components": [int(k) for k in config["sweep"]["n_components"]],
        "mechanism": list(config["sweep"]["mechanism"]),
        "missing_rate": [float(r) for r in config["sweep"]["missing_rate"]],
        "replicate": [int(r) for r in config["sweep"]["replicate"]],
        "method": list(config["sweep"]["method"]),
        "init": list(range(fit["n_init"])),
        "iteration": list(range(1, fit["max_iter"] + 1)),
    }


def image_datasets(config) -> list[str]:
    return [n for n in dataset_names(config) if config["datasets"][n]["kind"] == "image"]


def image_damage(config) -> MaskJob | None:
    """The mask an image figure shows: the highest rate of the first mechanism other than
    ``"none"`` (else ``"none"``), first replicate; the dataset field is left empty."""
    pairs = mechanism_rate_pairs(config)
    if not pairs:
        return None
    mechanism = next((m for m, _ in pairs if m != "none"), pairs[0][0])
    rate = max(r for m, r in pairs if m == mechanism)
    return MaskJob("", mechanism, rate, int(config["sweep"]["replicate"][0]))


def delta_target(config) -> dict:
    """The data set and mask of the delta-adjustment analysis, nulls in
    ``config["sensitivity"]["delta"]`` resolved against the sweep: ``dataset``,
    ``mechanism``, ``missing_rate``, ``replicate``, ``n_components``, ``variables``,
    ``model``. The default data set is the first simulated mixture among those with a mixture
    model, else the first such data set; the default mask the first mechanism other than
    ``"none"`` at its largest rate (the data as given when the sweep has no other)."""
    settings = dict(config.get("sensitivity", {}).get("delta", {}))
    datasets = config["datasets"]
    names = [
        n for n in dataset_names(config) if any(m != HMM_MODEL for m in dataset_models(config, n))
    ] or dataset_names(config)
    simulated = [n for n in names if datasets[n]["kind"] == "gaussian_mixture"]
    pairs = mechanism_rate_pairs(config)
    mechanisms = [m for m, _ in pairs if m != "none"] or [m for m, _ in pairs]
    mechanism = settings.get("mechanism") or (mechanisms[0] if mechanisms else "none")
    rates = [r for m, r in pairs if m == mechanism] or [0.0]
    sweep = config["sweep"]
    return {
        "dataset": settings.get("dataset") or (simulated or names)[0],
        "mechanism": mechanism,
        "missing_rate": float(
            max(rates) if settings.get("missing_rate") is None else settings["missing_rate"]
        ),
        "replicate": int(
            sweep["replicate"][0] if settings.get("replicate") is None else settings["replicate"]
        ),
        "n_components": [int(k) for k in settings.get("n_components") or sweep["n_components"]],
        "variables": settings.get("variables"),
        "model": settings.get("model")
        or ("full" if "full" in sweep["model"] else sweep["model"][0]),
    }
