"""Parameter counts and information criteria of Gaussian mixtures and HMMs, and the one
log-sum-exp of the numpy code (the compiled kernels have their own, inside the loop).

Sign convention: scikit-learn's, ``-2 log L + penalty``, so **lower is better** (mclust
reports the negative). ``n`` is the number of rows (time steps) with at least one observed
value. ICL (Biernacki, Celeux & Govaert 2000) in BIC units adds twice the entropy of the hard
classification, ``-2 sum_n log tau_{n, z_n}`` with ``z_n`` the most probable component.
"""

from __future__ import annotations

import numpy as np

from .covariance import check_covariance_type

PARAM_LETTERS = "stmc"


def logsumexp(values, axis=-1):
    """``log(sum(exp(values), axis))`` with a max shift; all ``-inf`` gives ``-inf``."""
    values = np.asarray(values, dtype=float)
    shift = np.max(values, axis=axis, keepdims=True)
    shift = np.where(np.isfinite(shift), shift, 0.0)
    with np.errstate(divide="ignore", under="ignore"):
        total = np.log(np.exp(values - shift).sum(axis=axis, keepdims=True))
    return np.squeeze(shift + total, axis=axis)


def normalise_log(values, axis=-1):
    """``(log_norm, log_posterior)``: the log-sum-exp along ``axis`` and ``values`` minus it."""
    log_norm = logsumexp(values, axis=axis)
    return log_norm, values - np.expand_dims(log_norm, axis)


def n_parameters(n_components: int, n_features: int, covariance_type: str) -> int:
    """Free parameters of a Gaussian mixture.

    ``(K - 1)`` weights, ``K d`` means and the covariance parameters:
    full ``K d (d + 1) / 2``, diag ``K d``, spherical ``K``, tied ``d (d + 1) / 2``.
    """
    check_covariance_type(covariance_type)
    k, d = n_components, n_features
    cov = {
        "full": k * d * (d + 1) // 2,
        "diag": k * d,
        "spherical": k,
        "tied": d * (d + 1) // 2,
    }[covariance_type]
    return int(cov + k * d + k - 1)


def hmm_n_parameters(n_components, n_features, covariance_type, params=PARAM_LETTERS) -> int:
    """Free parameters of a Gaussian HMM (those named in ``params``).

    ``s``: K - 1, ``t``: K (K - 1), ``m``: K d, ``c``: the covariance count of
    :func:`n_parameters`. With all four this is the mixture count plus ``K (K - 1)`` (start
    and transitions replace the mixture's ``K - 1`` weights); it agrees with hmmlearn's count.
    """
    unknown = sorted(set(params) - set(PARAM_LETTERS))
    if unknown:
        raise ValueError(f"params may only contain the letters {PARAM_LETTERS!r}, got {params!r}")
    k, d = n_components, n_features
    mixture = n_parameters(k, d, covariance_type)
    counts = {"s": k - 1, "t": k * (k - 1), "m": k * d, "c": mixture - k * d - (k - 1)}
    return int(sum(counts[letter] for letter in set(params)))


def classification_entropy(log_posterior) -> np.ndarray:
    """``-sum_n log tau_{n, z_n}`` over the rows of ``log_posterior`` (..., n, K)."""
    return -np.max(log_posterior, axis=-1).sum(axis=-1)


def information_criteria(log_likelihood, n_params, n_samples, entropy=None) -> dict:
    """``{"bic", "aic"}`` (and ``"icl"`` when the classification ``entropy`` is given), lower
    is better; arrays broadcast."""
    log_likelihood = np.asarray(log_likelihood, dtype=float)
    out = {
        "bic": -2.0 * log_likelihood + n_params * np.log(n_samples),
        "aic": -2.0 * log_likelihood + 2.0 * n_params,
    }
    if entropy is not None:
        out["icl"] = out["bic"] + 2.0 * np.asarray(entropy, dtype=float)
    return out
