"""Seeds of the workflow's random streams.

Every random stream is ``SeedSequence(root_seed, spawn_key=seed_key(purpose, **labels))``
where ``seed_key`` hashes ``[purpose, sorted((label, value))]`` written as compact JSON with
SHA-256 and keeps the first 16 bytes as four little-endian uint32 words. Labels are the
wildcard values as plain ``str`` / ``int`` / ``float`` (floats by their shortest repr), so a
stream depends only on the root seed and on what it is for, never on job order, process or
Python's ``hash()``:

* data: ``("data", dataset, seed)`` (synthetic data sets; ``seed`` from the data set config);
* masks: ``("mask", dataset, mechanism, missing_rate, replicate)``, shared by every model,
  K and method (the baselines see the same masks);
* starts: ``("init", dataset, mechanism, missing_rate, replicate)``: the ``random_state`` of
  every fit on that mask (every model, K and method), exactly as a user passing that
  ``SeedSequence`` to :class:`em_lib.GaussianMixture` or :class:`em_lib.GaussianHMM`.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

SEED_SCHEME = (
    "SeedSequence(root_seed, spawn_key=4 little-endian uint32 words of "
    "sha256(json([purpose, sorted([label, value])]))); data: (dataset, seed), "
    "mask: (dataset, mechanism, missing_rate, replicate), init: (dataset, mechanism, "
    "missing_rate, replicate), the random_state of every fit on that mask; delta: (dataset, "
    "mechanism, missing_rate, replicate), the delta analysis's imputations and refits; "
    "bootstrap: (dataset, mechanism, missing_rate, replicate, chunk), one chunk of bootstrap "
    "replicates"
)


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
