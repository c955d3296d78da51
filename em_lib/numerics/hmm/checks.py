"""Input checks of the HMM core: observation sequences, parameter batches, option letters.

Shapes (init dimension first): ``startprob`` (I, K), ``transmat`` (I, K, K), ``means``
(I, K, d), covariances (I, K, d, d) full, (I, K, d) diag, (I, K) spherical, (I, d, d) tied.
"""

from __future__ import annotations

import numpy as np

from ..covariance import check_covariance_type, precision_cholesky
from ..criteria import PARAM_LETTERS

ENGINES = ("auto", "numba", "numpy")
DECODERS = ("viterbi", "map")

__all__ = [
    "DECODERS",
    "ENGINES",
    "PARAM_LETTERS",
    "check_engine",
    "check_params",
    "check_sequences",
    "validate_parameters",
]


def check_sequences(X, lengths=None, *, min_length=1):
    """Validate observations and sequence lengths.

    Parameters
    ----------
    X : array-like (n_samples, n_features); NaN marks a missing entry, inf is an error
    lengths : sequence of int or None
        Lengths of the consecutive sequences in ``X`` (hmmlearn's convention); None means
        one sequence.
    min_length : int
        Smallest allowed sequence length (fitting needs 2: a transition).

    Returns
    -------
    X : float array (n, d)
    lengths : int64 array (S,)
    offsets : int64 array (S + 1,), sequence ``s`` is ``X[offsets[s]:offsets[s + 1]]``
    """
    try:
        X = np.asarray(X, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"X must be a numeric array: {exc}") from None
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (n_samples, n_features), got {X.ndim}-D")
    n, d = X.shape
    if n == 0 or d == 0:
        raise ValueError(f"X must have at least one sample and one feature, got shape {X.shape}")
    if np.isinf(X).any():
        raise ValueError("X contains infinite values (NaN marks a missing entry, inf is invalid)")
    if lengths is None:
        lengths = np.array([n], dtype=np.int64)
    else:
        raw = np.asarray(lengths)
        if raw.ndim == 0:
            raw = raw.reshape(1)
        if raw.ndim != 1 or raw.size == 0:
            raise ValueError("lengths must be a non-empty 1-D sequence of positive integers")
        if raw.dtype.kind not in "iu":
            if raw.dtype.kind != "f" or not np.all(np.isfinite(raw)) or np.any(raw % 1):
                raise ValueError(f"lengths must be integers, got {raw.tolist()!r}")
        lengths = raw.astype(np.int64)
    bad = np.flatnonzero(lengths <= 0)
    if bad.size:
        raise ValueError(
            f"every sequence length must be positive; lengths[{bad[0]}] = {lengths[bad[0]]}"
        )
    if int(lengths.sum()) != n:
        raise ValueError(f"lengths sum to {int(lengths.sum())}, but X has {n} rows")
    short = np.flatnonzero(lengths < min_length)
    if short.size:
        raise ValueError(
            f"every sequence needs at least {min_length} time steps (T >= {min_length}) to fit "
            f"an HMM; sequence {short[0]} has length {lengths[short[0]]}"
        )
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return X, lengths, offsets


def check_engine(engine):
    """The forward-backward engine to run: ``"auto"`` means the compiled one (numba)."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
    return "numba" if engine == "auto" else engine


def check_params(params, name="params"):
    """A string of parameter letters (s: start, t: transitions, m: means, c: covariances)."""
    if not isinstance(params, str) or any(letter not in PARAM_LETTERS for letter in params):
        raise ValueError(
            f"{name} must be a string of letters from {PARAM_LETTERS!r} "
            f"(s: start, t: transitions, m: means, c: covariances), got {params!r}"
        )
    return params


def validate_parameters(
    startprob, transmat, means, covariances, covariance_type, *, check_covariances=True
):
    """Check a batch of HMM parameters (init dimension first); raises ValueError.

    ``check_covariances=False`` skips the positive-definiteness check (a fit reports such
    starts as failed instead). Returns the arrays as float copies, probabilities
    renormalised.
    """
    check_covariance_type(covariance_type)
    startprob = np.array(startprob, dtype=float)
    transmat = np.array(transmat, dtype=float)
    means = np.array(means, dtype=float)
    covariances = np.array(covariances, dtype=float)
    if means.ndim != 3:
        raise ValueError(f"means must have shape (n_init, K, d), got {means.shape}")
    n_init, n_states, d = means.shape
    if startprob.shape != (n_init, n_states):
        raise ValueError(f"startprob must have shape {(n_init, n_states)}, got {startprob.shape}")
    if transmat.shape != (n_init, n_states, n_states):
        raise ValueError(
            f"transmat must have shape {(n_init, n_states, n_states)}, got {transmat.shape}"
        )
    expected = {
        "full": (n_init, n_states, d, d),
        "diag": (n_init, n_states, d),
        "spherical": (n_init, n_states),
        "tied": (n_init, d, d),
    }[covariance_type]
    if covariances.shape != expected:
        raise ValueError(
            f"{covariance_type} covariances must have shape {expected}, got {covariances.shape}"
        )
    for name, arr in (("startprob", startprob), ("transmat", transmat)):
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ValueError(f"{name} must be finite and non-negative")
        if not np.allclose(arr.sum(-1), 1.0, rtol=0, atol=1e-8):
            raise ValueError(f"{name} rows must sum to 1, got sums {arr.sum(-1).ravel()[:5]}")
    if not np.all(np.isfinite(means)):
        raise ValueError("means must be finite")
    _, ok = precision_cholesky(covariances, covariance_type)
    if check_covariances and not ok.all():
        raise ValueError(
            f"covariances of start(s) {np.flatnonzero(~ok).tolist()} are not symmetric "
            "positive definite"
        )
    startprob /= startprob.sum(-1, keepdims=True)
    transmat /= transmat.sum(-1, keepdims=True)
    return startprob, transmat, means, covariances
