"""Starts for a Gaussian mixture built from the solutions of the models it contains.

A model contains another when every parameter of the smaller one is a parameter of the larger
one with the same likelihood: diag and tied solutions are full solutions, spherical ones are
diag solutions, and a ``K - 1`` component solution is (up to a component of weight epsilon) a
``K`` component one. Starting EM there, the richer fit can only climb from the contained
model's optimum. The contained models are fitted by the same estimator class with the same
settings, so their results are exactly what a user fitting them directly gets.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np

from .numerics.covariance import any_to_full

_CONTAINED = {"full": ("diag", "tied"), "diag": ("spherical",), "tied": (), "spherical": ()}
_CACHE: OrderedDict = OrderedDict()
_CACHE_SIZE = 512
NEW_COMPONENT_WEIGHT = 1e-8
SPLIT_DISTANCE = 0.5  # in standard deviations along the principal axis


def _cache_key(estimator, X, n_components, covariance_type):
    if not isinstance(estimator.random_state, int | np.integer):
        return None
    params = estimator.get_params()
    params.update(n_components=n_components, covariance_type=covariance_type)
    settings = repr(sorted((k, repr(v)) for k, v in params.items()))
    digest = hashlib.sha1(np.ascontiguousarray(X).view(np.uint8)).hexdigest()
    return (digest, X.shape, settings)


def fit_contained(estimator, X, n_components, covariance_type):
    """Best (weights, means, covariances) of the same estimator with another K / type."""
    key = _cache_key(estimator, X, n_components, covariance_type)
    if key is not None and key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    clone = type(estimator)(**estimator.get_params())
    clone.set_params(n_components=n_components, covariance_type=covariance_type)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clone.fit(X)
    result = (clone.weights_, clone.means_, clone.covariances_)
    if key is not None:
        _CACHE[key] = result
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return result


def _convert(weights, means, covariances, source, target, n_features):
    """A solution of type ``source`` as parameters of type ``target`` (same likelihood)."""
    n_comp = weights.shape[0]
    if target == "full":
        covariances = any_to_full(covariances[None], source, n_comp, n_features)[0]
    elif target == "diag" and source == "spherical":
        covariances = np.repeat(covariances[:, None], n_features, axis=1)
    elif target == "tied" and source == "diag":  # K = 1 only
        covariances = np.diag(covariances[0])
    return weights, means, covariances


def _variance_axes(covariances, covariance_type, n_comp, n_features):
    full = any_to_full(covariances[None], covariance_type, n_comp, n_features)[0]
    values, vectors = np.linalg.eigh(full)
    return values[:, -1], vectors[:, :, -1], full


def _split_start(weights, means, covariances, covariance_type, n_features):
    """Split the component with the largest weight * variance along its principal axis."""
    n_comp = weights.shape[0]
    top_value, top_vector, full = _variance_axes(covariances, covariance_type, n_comp,
                                                 n_features)
    chosen = int(np.argmax(weights * np.trace(full, axis1=1, axis2=2)))
    step = SPLIT_DISTANCE * np.sqrt(top_value[chosen]) * top_vector[chosen]
    new_weights = np.append(weights, weights[chosen] / 2)
    new_weights[chosen] /= 2
    new_means = np.vstack([means, means[chosen] + step])
    new_means[chosen] = means[chosen] - step
    if covariance_type == "tied":
        new_cov = covariances
    else:
        new_cov = np.concatenate([covariances, covariances[chosen : chosen + 1]])
    return new_weights, new_means, new_cov


def _epsilon_start(estimator_like, X, weights, means, covariances, covariance_type):
    """Add a component of tiny weight at the worst-fitted row (likelihood barely changes)."""
    scores = estimator_like.score_samples(X)
    scores[np.isnan(X).all(axis=1)] = np.inf
    worst = np.nan_to_num(X[int(np.argmin(scores))], nan=0.0)
    worst = np.where(np.isnan(X[int(np.argmin(scores))]), np.nanmean(X, axis=0), worst)
    new_weights = np.append(weights * (1 - NEW_COMPONENT_WEIGHT), NEW_COMPONENT_WEIGHT)
    new_means = np.vstack([means, worst])
    if covariance_type == "tied":
        new_cov = covariances
    else:
        average = np.tensordot(weights, covariances, axes=(0, 0))
        new_cov = np.concatenate([covariances, average[None]])
    return new_weights, new_means, new_cov


def nested_starting_parameters(estimator, X):
    """Extra starts (weights (J, K), means (J, K, d), covariances, origins list) or None."""
    n_comp, ct = estimator.n_components, estimator.covariance_type
    d = X.shape[1]
    starts, origins = [], []
    contained = list(_CONTAINED[ct])
    if ct == "tied" and n_comp == 1:
        contained.append("diag")
    for source in contained:
        solution = fit_contained(estimator, X, n_comp, source)
        starts.append(_convert(*solution, source, ct, d))
        origins.append(f"nested:{source}")
    if n_comp > 1:
        weights, means, covariances = fit_contained(estimator, X, n_comp - 1, ct)
        starts.append(_split_start(weights, means, covariances, ct, d))
        origins.append(f"split:K={n_comp - 1}")
        smaller = type(estimator)(**estimator.get_params())
        smaller.set_params(n_components=n_comp - 1)
        smaller.weights_, smaller.means_, smaller.covariances_ = weights, means, covariances
        smaller.n_features_in_ = d
        starts.append(_epsilon_start(smaller, X, weights, means, covariances, ct))
        origins.append(f"epsilon:K={n_comp - 1}")
    if not starts:
        return None
    stacked = [np.stack([start[i] for start in starts]) for i in range(3)]
    return stacked[0], stacked[1], stacked[2], origins
