"""Tests of the batched Gaussian-mixture numerics against independent references."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import optimize, stats

from em_lib.numerics.covariance import (
    COVARIANCE_TYPES,
    any_to_full,
    covariances_from_precision_cholesky,
    precision_cholesky,
)
from em_lib.numerics.criteria import n_parameters
from em_lib.numerics.gaussian import impute_mixture, log_gaussian_density
from em_lib.numerics.init import INIT_METHODS, initial_parameters
from em_lib.numerics.mixture_em import fit_mixture_em
from em_lib.numerics.prior import default_prior


def random_covariances(rng, n_init, n_comp, d, covariance_type):
    if covariance_type == "full":
        A = rng.normal(size=(n_init, n_comp, d, d))
        return A @ np.swapaxes(A, -1, -2) + 0.5 * np.eye(d)
    if covariance_type == "tied":
        A = rng.normal(size=(n_init, d, d))
        return A @ np.swapaxes(A, -1, -2) + 0.5 * np.eye(d)
    if covariance_type == "diag":
        return rng.uniform(0.3, 2.0, size=(n_init, n_comp, d))
    return rng.uniform(0.3, 2.0, size=(n_init, n_comp))


def blobs(rng, n=300, d=3):
    centres = np.array([[0.0] * d, [4.0] + [0.0] * (d - 1), [0.0, 4.0] + [0.0] * (d - 2)])
    labels = rng.integers(3, size=n)
    return centres[labels] + rng.normal(size=(n, d)) * rng.uniform(0.5, 1.5, size=(3, 1))[
        labels
    ], labels


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("with_missing", [False, True])
def test_log_density_matches_scipy(covariance_type, with_missing):
    rng = np.random.default_rng(1)
    n_init, n_comp, d = 2, 3, 4
    X = rng.normal(size=(40, d)) * 2
    if with_missing:
        X[rng.random(X.shape) < 0.3] = np.nan
        X[0] = np.nan  # a fully missing row
    means = rng.normal(size=(n_init, n_comp, d))
    covs = random_covariances(rng, n_init, n_comp, d, covariance_type)
    got = log_gaussian_density(X, means, covs, covariance_type)
    full = any_to_full(covs, covariance_type, n_comp, d)
    for i in range(n_init):
        for k in range(n_comp):
            for row in range(X.shape[0]):
                obs = ~np.isnan(X[row])
                if not obs.any():
                    expected = 0.0
                else:
                    expected = stats.multivariate_normal(
                        means[i, k, obs], full[i, k][np.ix_(obs, obs)]
                    ).logpdf(X[row, obs])
                assert got[i, row, k] == pytest.approx(expected, rel=1e-10, abs=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_precision_cholesky_round_trip(covariance_type):
    rng = np.random.default_rng(2)
    covs = random_covariances(rng, 3, 2, 3, covariance_type)
    prec, ok = precision_cholesky(covs, covariance_type)
    assert ok.all()
    np.testing.assert_allclose(
        covariances_from_precision_cholesky(prec, covariance_type), covs, rtol=1e-10
    )


def test_n_parameters_match_sklearn():
    from sklearn.mixture import GaussianMixture as SK

    X = np.random.default_rng(0).normal(size=(50, 4))
    for ct in COVARIANCE_TYPES:
        sk = SK(3, covariance_type=ct, max_iter=2).fit(X)
        assert n_parameters(3, 4, ct) == sk._n_parameters()


def _starting_point(X, ct, n_init=3, seed=0):
    return initial_parameters(X, 3, ct, n_init, "k-means++", np.random.default_rng(seed))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_trajectory_matches_sklearn(covariance_type):
    from sklearn.mixture import GaussianMixture as SK

    rng = np.random.default_rng(3)
    X, _ = blobs(rng)
    weights, means, covs = _starting_point(X, covariance_type, n_init=1)
    prec, _ = precision_cholesky(covs, covariance_type)
    precisions = (
        prec @ np.swapaxes(prec, -1, -2) if covariance_type in ("full", "tied") else prec**2
    )
    sk = SK(
        3,
        covariance_type=covariance_type,
        max_iter=60,
        tol=1e-10,
        reg_covar=1e-6,
        weights_init=weights[0],
        means_init=means[0],
        precisions_init=precisions[0],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk.fit(X)
    fit = fit_mixture_em(X, weights, means, covs, covariance_type, tol=1e-10, max_iter=60)
    n = len(sk.lower_bounds_)
    assert fit.n_iter[0] == sk.n_iter_
    assert bool(fit.converged[0]) == sk.converged_
    np.testing.assert_allclose(fit.trace[0, :n], sk.lower_bounds_, rtol=0, atol=1e-8)
    np.testing.assert_allclose(fit.weights[0], sk.weights_, atol=1e-8)
    np.testing.assert_allclose(fit.means[0], sk.means_, atol=1e-8)
    np.testing.assert_allclose(fit.covariances[0], sk.covariances_, atol=1e-8)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("missing", [False, True])
def test_batch_equals_one_at_a_time(covariance_type, missing):
    rng = np.random.default_rng(4)
    X, _ = blobs(rng)
    if missing:
        X[rng.random(X.shape) < 0.15] = np.nan
    weights, means, covs = _starting_point(X, covariance_type, n_init=4)
    batch = fit_mixture_em(X, weights, means, covs, covariance_type, tol=1e-6, max_iter=40)
    for i in range(4):
        one = fit_mixture_em(
            X,
            weights[i : i + 1],
            means[i : i + 1],
            covs[i : i + 1],
            covariance_type,
            tol=1e-6,
            max_iter=40,
        )
        assert one.n_iter[0] == batch.n_iter[i]
        assert one.converged[0] == batch.converged[i]
        np.testing.assert_allclose(one.means[0], batch.means[i], rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(one.covariances[0], batch.covariances[i], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(one.trace[0], batch.trace[i], rtol=1e-12, equal_nan=True)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    covariance_type=st.sampled_from(COVARIANCE_TYPES),
    n_comp=st.integers(1, 4),
    d=st.integers(1, 4),
    missing_rate=st.sampled_from([0.0, 0.2]),
    use_prior=st.booleans(),
)
def test_objective_never_decreases(seed, covariance_type, n_comp, d, missing_rate, use_prior):
    rng = np.random.default_rng(seed)
    n = 60
    X = rng.normal(size=(n, d)) + rng.integers(0, 3, size=(n, 1)) * 2.0
    if missing_rate:
        mask = rng.random(X.shape) < missing_rate
        mask[:, 0] &= False  # keep every row informative
        X[mask] = np.nan
    prior = default_prior(X, n_comp, covariance_type) if use_prior else None
    weights, means, covs = initial_parameters(
        X, n_comp, covariance_type, 4, "random", rng, reg_covar=1e-3, prior=prior
    )
    fit = fit_mixture_em(
        X, weights, means, covs, covariance_type, tol=0.0, max_iter=25, reg_covar=0.0, prior=prior
    )
    for i in range(4):
        if fit.failed[i]:
            assert fit.failure_reason[i]
            continue
        trace = fit.trace[i][~np.isnan(fit.trace[i])]
        steps = np.diff(trace)
        assert np.all(steps >= -1e-10 * np.maximum(1.0, np.abs(trace[1:]))), steps.min()
        assert fit.max_decrease[i] <= 1e-10 * max(1.0, np.abs(trace).max())


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_missing_engine_on_complete_data_equals_plain_path(covariance_type):
    rng = np.random.default_rng(5)
    X, _ = blobs(rng)
    weights, means, covs = _starting_point(X, covariance_type)
    plain = fit_mixture_em(X, weights, means, covs, covariance_type, max_iter=30)
    forced = fit_mixture_em(
        X, weights, means, covs, covariance_type, max_iter=30, force_missing=True
    )
    assert not plain.settings["missing_data"] and forced.settings["missing_data"]
    np.testing.assert_allclose(forced.means, plain.means, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(forced.covariances, plain.covariances, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(forced.log_likelihood, plain.log_likelihood, rtol=1e-12)
    np.testing.assert_array_equal(forced.n_iter, plain.n_iter)


def test_fully_missing_row_adds_zero():
    rng = np.random.default_rng(6)
    X, _ = blobs(rng)
    X[rng.random(X.shape) < 0.1] = np.nan
    X[:, 0] = np.where(np.isnan(X).all(axis=1), 0.0, X[:, 0])
    weights, means, covs = _starting_point(X, "full")
    base = fit_mixture_em(X, weights, means, covs, "full", max_iter=30)
    padded = np.vstack([X[:10], np.full((3, X.shape[1]), np.nan), X[10:]])
    more = fit_mixture_em(padded, weights, means, covs, "full", max_iter=30)
    np.testing.assert_array_equal(more.log_likelihood, base.log_likelihood)
    np.testing.assert_array_equal(more.means, base.means)
    assert more.n_samples == base.n_samples == X.shape[0]


def test_single_component_with_mcar_equals_direct_mle():
    """K=1 with missing entries: EM's fixed point is the multivariate-normal MLE of the
    observed-data likelihood, found independently by scipy.optimize."""
    rng = np.random.default_rng(7)
    d, n = 3, 200
    A = rng.normal(size=(d, d))
    X = rng.multivariate_normal([1.0, -1.0, 0.5], A @ A.T + np.eye(d), size=n)
    X[rng.random(X.shape) < 0.25] = np.nan
    X = X[~np.isnan(X).all(axis=1)]
    start = initial_parameters(X, 1, "full", 1, "kmeans", rng, reg_covar=0.0)
    fit = fit_mixture_em(X, *start, "full", tol=1e-13, max_iter=5000, reg_covar=0.0)
    assert fit.converged[0]

    tril = np.tril_indices(d)

    def negative_loglik(theta):
        mean = theta[:d]
        lower = np.zeros((d, d))
        lower[tril] = theta[d:]
        lower[np.diag_indices(d)] = np.exp(lower[np.diag_indices(d)])
        cov = lower @ lower.T
        total = 0.0
        for row in X:
            obs = ~np.isnan(row)
            total += stats.multivariate_normal(mean[obs], cov[np.ix_(obs, obs)]).logpdf(row[obs])
        return -total

    cov0 = np.diag(np.nanvar(X, axis=0))
    lower0 = np.linalg.cholesky(cov0)
    lower0[np.diag_indices(d)] = np.log(np.diag(lower0))
    theta0 = np.concatenate([np.nanmean(X, axis=0), lower0[tril]])
    best = optimize.minimize(
        negative_loglik, theta0, method="BFGS", options={"gtol": 1e-8, "maxiter": 2000}
    )
    assert -best.fun == pytest.approx(fit.log_likelihood[0], abs=1e-6)
    assert fit.log_likelihood[0] >= -best.fun - 1e-8
    np.testing.assert_allclose(fit.means[0, 0], best.x[:d], atol=1e-4)


def test_parameter_recovery_after_label_matching():
    from em_lib.data import make_gaussian_mixture
    from em_lib.metrics import parameter_errors

    truth = make_gaussian_mixture(3000, 3, 3, separation=5.0, random_state=11)
    for ct in ("full", "diag"):
        w, m, c = initial_parameters(truth.X, 3, ct, 5, "kmeans", np.random.default_rng(0))
        fit = fit_mixture_em(truth.X, w, m, c, ct, max_iter=200, tol=1e-8)
        best = fit.best
        est_cov = any_to_full(fit.covariances[best : best + 1], ct, 3, 3)[0]
        errors = parameter_errors(
            truth.weights,
            truth.means,
            truth.covariances,
            fit.weights[best],
            fit.means[best],
            est_cov,
        )
        assert errors["weights_abs_error"] < 0.03
        assert errors["means_rmse"] < 0.15
        if ct == "full":  # truth is full, so only the full model can recover covariances
            assert errors["covariances_rel_frobenius"] < 0.15


def test_collapsed_start_fails_alone():
    rng = np.random.default_rng(8)
    X = np.vstack([rng.normal(size=(100, 2)), rng.normal(size=(100, 2)) + 6.0])
    weights = np.array([[0.5, 0.5], [0.5, 0.5]])
    # start 1 puts a needle-thin component on a single row: it collapses onto that row
    means = np.array([[[0.0, 0.0], [6.0, 6.0]], [[0.0, 0.0], X[150]]])
    covs = np.broadcast_to(np.eye(2), (2, 2, 2, 2)).copy()
    covs[1, 1] *= 1e-8
    fit = fit_mixture_em(X, weights, means, covs, "full", reg_covar=0.0, max_iter=50)
    assert fit.failed[1] and not fit.failed[0]
    assert "collapsed" in fit.failure_reason[1]
    assert fit.best == 0
    for name in ("weights", "means", "covariances", "log_likelihood"):
        assert np.isfinite(getattr(fit, name)[0]).all()
        assert not np.isnan(getattr(fit, name)[1]).any()


def test_converged_never_from_max_iter():
    rng = np.random.default_rng(9)
    X, _ = blobs(rng)
    start = _starting_point(X, "full")
    fit = fit_mixture_em(X, *start, "full", tol=0.0, max_iter=5)
    assert not fit.converged.any()
    assert (fit.n_iter == 5).all()


def test_relative_tolerance_is_mclust_criterion():
    rng = np.random.default_rng(10)
    X, _ = blobs(rng)
    start = _starting_point(X, "diag", n_init=1)
    fit = fit_mixture_em(X, *start, "diag", tol=1e-5, tol_type="relative", max_iter=500)
    assert fit.converged[0]
    totals = fit.trace[0][~np.isnan(fit.trace[0])] * fit.n_samples
    last, before = totals[-1], totals[-2]
    assert abs(last - before) / (1 + abs(last)) < 1e-5
    assert abs(before - totals[-3]) / (1 + abs(before)) >= 1e-5


@pytest.mark.parametrize("method", INIT_METHODS)
def test_init_methods_reproducible_and_valid(method):
    rng_x = np.random.default_rng(12)
    X, _ = blobs(rng_x)
    first = initial_parameters(X, 3, "full", 4, method, np.random.default_rng(5))
    second = initial_parameters(X, 3, "full", 4, method, np.random.default_rng(5))
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    weights, means, covs = first
    assert weights.shape == (4, 3) and means.shape == (4, 3, 3) and covs.shape == (4, 3, 3, 3)
    np.testing.assert_allclose(weights.sum(1), 1.0)
    assert precision_cholesky(covs, "full")[1].all()


def test_impute_single_gaussian_is_regression():
    mean = np.array([1.0, 2.0])
    cov = np.array([[2.0, 0.8], [0.8, 1.0]])
    X = np.array([[np.nan, 3.0], [0.0, np.nan], [np.nan, np.nan], [1.5, 2.5]])
    filled = impute_mixture(X, np.array([1.0]), mean[None], cov[None], "full")
    assert filled[0, 0] == pytest.approx(1.0 + 0.8 / 1.0 * (3.0 - 2.0))
    assert filled[1, 1] == pytest.approx(2.0 + 0.8 / 2.0 * (0.0 - 1.0))
    np.testing.assert_allclose(filled[2], mean)
    np.testing.assert_array_equal(filled[3], X[3])
    draws = impute_mixture(
        X,
        np.array([1.0]),
        mean[None],
        cov[None],
        "full",
        n_draws=20000,
        rng=np.random.default_rng(0),
    )
    # conditional variance of x1 | x2 is 2 - 0.8^2 / 1 = 1.36
    assert draws[:, 0, 0].mean() == pytest.approx(1.8, abs=0.05)
    assert draws[:, 0, 0].var() == pytest.approx(1.36, rel=0.05)
    np.testing.assert_array_equal(draws[:, 3], np.broadcast_to(X[3], (20000, 2)))


def test_starts_on_very_different_scales_do_not_underflow_each_other():
    """A start whose log-densities are thousands of nats below another start's must still get
    its own exact values (the normaliser shifts every start by its own maximum)."""
    rng = np.random.default_rng(13)
    X = rng.normal(size=(50, 2))
    means = np.stack([rng.normal(size=(3, 2)), rng.normal(size=(3, 2)) + 200.0])
    covs = np.broadcast_to(np.eye(2) * 0.5, (2, 3, 2, 2)).copy()
    together = log_gaussian_density(X, means, covs, "full")
    for i in range(2):
        alone = log_gaussian_density(X, means[i : i + 1], covs[i : i + 1], "full")[0]
        np.testing.assert_allclose(together[i], alone, rtol=1e-12)
    from em_lib.numerics.covariance import precision_cholesky as pc_of
    from em_lib.numerics.gaussian import CompleteDataEngine

    engine = CompleteDataEngine(X, "full")
    prec, _ = pc_of(covs, "full")
    log_w = np.log(np.full((2, 3), 1 / 3))
    both = engine.estep(log_w, means, prec, want_samples=True)
    for i in range(2):
        one = engine.estep(log_w[i : i + 1], means[i : i + 1], prec[i : i + 1], want_samples=True)
        assert np.isfinite(both["sample_loglik"][i]).all()
        np.testing.assert_allclose(both["sample_loglik"][i], one["sample_loglik"][0], rtol=1e-12)
        for a, b in zip(both["stats"], one["stats"], strict=True):
            np.testing.assert_allclose(a[i], b[0], rtol=1e-10, atol=1e-300)


def test_compiled_exponential_matches_numpy():
    from em_lib.numerics._normalise import exp_nonpositive

    rng = np.random.default_rng(3)
    x = np.concatenate(
        [
            -rng.exponential(40.0, 20000),
            -rng.uniform(0, 1e-6, 1000),
            [0.0, -1e-300, -707.9, -708.1, -750.0, -np.inf, np.nan],
        ]
    )
    got, want = exp_nonpositive(x), np.exp(x)
    normal = want > 1e-300
    assert np.max(np.abs(got[normal] - want[normal]) / want[normal]) < 1e-15
    assert got[x < -708.0].tolist() == [0.0, 0.0, 0.0]  # below the normal range: 0
    assert np.isnan(got[-1])


def test_normaliser_equals_logsumexp_per_start():
    """The compiled per-start log-sum-exp against scipy on blocks with -inf, huge offsets
    between starts and NaN; a NaN touches only its own (start, row)."""
    from scipy.special import logsumexp, softmax

    from em_lib.numerics.gaussian import normalise_log_probs

    rng = np.random.default_rng(4)
    n_init, n_comp, n_rows = 5, 4, 300
    values = rng.normal(scale=30.0, size=(n_init, n_comp, n_rows))
    values[1] -= 5000.0
    values[2, 0] = -np.inf
    values[3, :, :7] = -np.inf  # a row where the start has nothing: log_norm -inf
    values[4, 2, 11] = np.nan
    block = values.reshape(n_init * n_comp, n_rows).copy()
    log_norm, resp = normalise_log_probs(block, n_comp, True)
    with np.errstate(invalid="ignore", divide="ignore"):
        want = logsumexp(values, axis=1)
    clean = np.isfinite(want)
    np.testing.assert_allclose(log_norm[clean], want[clean], rtol=1e-14, atol=1e-12)
    assert np.isneginf(log_norm[3, :7]).all()
    assert np.isnan(log_norm[4, 11]) and np.isfinite(np.delete(log_norm[4], 11)).all()
    resp = resp.reshape(n_init, n_comp, n_rows)
    for i in (0, 1, 2):
        np.testing.assert_allclose(resp[i], softmax(values[i], axis=0), rtol=1e-13, atol=1e-300)
    no_resp = values.reshape(n_init * n_comp, n_rows).copy()
    log_norm_only, _ = normalise_log_probs(no_resp, n_comp, False)
    np.testing.assert_array_equal(log_norm_only[clean], log_norm[clean])


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_compiled_iterations_equal_the_numpy_steps(monkeypatch, covariance_type, weighted):
    """Complete data without a prior run each iteration as one compiled batched EM map: the
    same iterations, verdicts and parameters as the numpy steps, a collapsing start
    included (start 3 puts a needle-thin component on one row)."""
    import em_lib.numerics.mixture_em as mixture_em

    rng = np.random.default_rng(4)
    X, _ = blobs(rng)
    weights, means, covs = _starting_point(X, covariance_type, n_init=4)
    row_weights = rng.integers(0, 3, size=len(X)).astype(float) if weighted else None
    if covariance_type == "full":
        means[3, 0] = X[5]
        covs[3, 0] *= 1e-9
    kwargs = dict(tol=1e-8, max_iter=60, reg_covar=0.0, sample_weight=row_weights)
    compiled = fit_mixture_em(X, weights, means, covs, covariance_type, **kwargs)
    monkeypatch.setattr(mixture_em, "COMPILED_MAPS", False)
    plain = fit_mixture_em(X, weights, means, covs, covariance_type, **kwargs)
    np.testing.assert_array_equal(compiled.n_iter, plain.n_iter)
    np.testing.assert_array_equal(compiled.converged, plain.converged)
    np.testing.assert_array_equal(compiled.failed, plain.failed)
    np.testing.assert_array_equal(compiled.failure_reason, plain.failure_reason)
    if covariance_type == "full":
        assert compiled.failed[3] and "collapsed" in compiled.failure_reason[3]
    np.testing.assert_allclose(compiled.trace, plain.trace, rtol=1e-10, equal_nan=True)
    np.testing.assert_allclose(compiled.log_likelihood, plain.log_likelihood, rtol=1e-10)
    for name in ("weights", "means", "covariances", "precisions_cholesky"):
        np.testing.assert_allclose(
            getattr(compiled, name), getattr(plain, name), rtol=1e-8, atol=1e-12
        )
