"""The compiled small-matrix kernels of the EM step against plain numpy/scipy formulas."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from em_lib.numerics.covariance import (
    FeatureLayout,
    estep_weight_matrix,
    precision_cholesky,
    second_order_features,
)
from em_lib.numerics.mixture_em import EPS, mstep
from em_lib.numerics.squarem import from_vector, to_vector

TYPES = ("full", "tied", "diag", "spherical")


def _random_covariances(rng, covariance_type, n_init, n_comp, d):
    A = rng.normal(size=(n_init, n_comp, d, d))
    full = A @ np.swapaxes(A, -1, -2) + 0.5 * np.eye(d)
    if covariance_type == "full":
        return full
    if covariance_type == "tied":
        return full[:, 0]
    if covariance_type == "diag":
        return np.exp(rng.normal(size=(n_init, n_comp, d)))
    return np.exp(rng.normal(size=(n_init, n_comp)))


def _component(cov, covariance_type, i, k, d):
    if covariance_type == "full":
        return cov[i, k]
    if covariance_type == "tied":
        return cov[i]
    if covariance_type == "diag":
        return np.diag(cov[i, k])
    return cov[i, k] * np.eye(d)


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("d", [1, 3, 6])
def test_weight_matrix_gives_scipy_log_densities(covariance_type, d):
    rng = np.random.default_rng(d)
    n_init, n_comp = 3, 4
    X = rng.normal(size=(25, d))
    cov = _random_covariances(rng, covariance_type, n_init, n_comp, d)
    means = rng.normal(size=(n_init, n_comp, d))
    log_w = np.log(rng.dirichlet(np.ones(n_comp), size=n_init))
    prec, ok = precision_cholesky(cov, covariance_type)
    assert ok.all()
    W = estep_weight_matrix(log_w, means, prec, covariance_type)
    phi = second_order_features(X, FeatureLayout(d, covariance_type))
    got = (phi @ W).reshape(len(X), n_init, n_comp)
    for i in range(n_init):
        for k in range(n_comp):
            component = _component(cov, covariance_type, i, k, d)
            expected = log_w[i, k] + multivariate_normal(means[i, k], component).logpdf(X)
            np.testing.assert_allclose(got[:, i, k], expected, rtol=1e-12, atol=1e-11)


def _numpy_mstep(nk, first, second, covariance_type, reg):
    nk = nk + 10 * EPS
    weights = nk / nk.sum(-1, keepdims=True)
    means = first / nk[..., None]
    d = first.shape[-1]
    if covariance_type == "full":
        cov = second / nk[..., None, None] - np.einsum("ikd,ike->ikde", means, means)
        return weights, means, cov + reg * np.eye(d)
    if covariance_type == "tied":
        scatter = second.sum(1) - np.einsum("ik,ikd,ike->ide", nk, means, means)
        return weights, means, scatter / nk.sum(-1)[:, None, None] + reg * np.eye(d)
    if covariance_type == "diag":
        return weights, means, second / nk[..., None] - means**2 + reg
    square = np.einsum("ikd,ikd->ik", means, means)
    return weights, means, (second / nk - square) / d + reg


@pytest.mark.parametrize("covariance_type", TYPES)
def test_mstep_matches_the_formulas(covariance_type):
    rng = np.random.default_rng(7)
    n_init, n_comp, d = 3, 4, 3
    nk = rng.uniform(0.5, 10, (n_init, n_comp))
    first = rng.normal(size=(n_init, n_comp, d))
    A = rng.normal(size=(n_init, n_comp, d, d))
    second = 10 * A @ np.swapaxes(A, -1, -2)
    if covariance_type == "diag":
        second = np.diagonal(second, axis1=2, axis2=3).copy()
    elif covariance_type == "spherical":
        second = np.trace(second, axis1=2, axis2=3)
    got = mstep((nk, first, second), covariance_type, 1e-6)
    expected = _numpy_mstep(nk, first, second, covariance_type, 1e-6)
    for a, b in zip(got, expected, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_precision_factors_and_failures(covariance_type):
    rng = np.random.default_rng(3)
    d = 4
    cov = _random_covariances(rng, "full", 4, 3, d)
    if covariance_type == "tied":
        cov = cov[:, 0]
    prec, ok = precision_cholesky(cov, covariance_type)
    assert ok.all()
    np.testing.assert_allclose(prec @ np.swapaxes(prec, -1, -2), np.linalg.inv(cov), rtol=1e-10)
    assert np.allclose(np.tril(prec, -1), 0.0)  # upper triangular
    bad = cov.copy()
    index = (0, 1) if covariance_type == "full" else (0,)
    bad[index + (0, 0)] = np.nan
    bad[(1, 2) if covariance_type == "full" else (1,)] = -np.eye(d)
    bad[(2, 0, 0, 3) if covariance_type == "full" else (2, 0, 3)] = np.inf
    prec, ok = precision_cholesky(bad, covariance_type)
    assert ok.tolist() == [False, False, False, True]
    np.testing.assert_array_equal(prec[index], np.eye(d))


@pytest.mark.parametrize("covariance_type", TYPES)
def test_coordinates_round_trip_and_log_cholesky(covariance_type):
    rng = np.random.default_rng(11)
    n_init, n_comp, d = 3, 2, 3
    cov = _random_covariances(rng, covariance_type, n_init, n_comp, d)
    weights = rng.dirichlet(np.ones(n_comp), size=n_init)
    means = rng.normal(size=(n_init, n_comp, d))
    vector = to_vector(weights, means, cov, covariance_type)
    if covariance_type in ("full", "tied"):
        lower = np.linalg.cholesky(cov)
        rows, cols = np.tril_indices(d)
        values = lower[..., rows, cols]
        values[..., rows == cols] = np.log(values[..., rows == cols])
        np.testing.assert_allclose(vector[:, n_comp * (d + 1) :], values.reshape(n_init, -1))
        not_pd = cov.copy()
        not_pd[(0, 0) if covariance_type == "full" else (0,)] = -np.eye(d)
        assert np.isnan(to_vector(weights, means, not_pd, covariance_type)[0]).any()
    back = from_vector(vector, n_comp, d, covariance_type)
    for a, b in zip(back, (weights, means, cov), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
