"""Tests of batched Baum-Welch (em_lib.numerics.hmm.baum_welch.fit_hmm_em) and the input
checks of the HMM core."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_hmm_forward_backward import ENGINES, random_model

from em_lib.data import make_hmm_sequences
from em_lib.numerics import hmm as H
from em_lib.numerics.covariance import COVARIANCE_TYPES, any_to_full


def fit_sequences(data, model, **options):
    """Baum-Welch on simulated sequences from the starting model ``model`` (a dict)."""
    return H.fit_hmm_em(data.X, data.lengths, **model, **options)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    n_components=st.integers(1, 3),
    d=st.integers(1, 2),
    covariance_type=st.sampled_from(COVARIANCE_TYPES),
    missing=st.booleans(),
)
def test_log_likelihood_never_decreases(seed, n_components, d, covariance_type, missing):
    k = n_components
    rng = np.random.default_rng(seed)
    lengths = np.array([int(rng.integers(10, 30)), int(rng.integers(2, 20))])
    X = rng.normal(size=(lengths.sum(), d)) + 3.0 * (rng.random((lengths.sum(), 1)) < 0.5)
    if missing:
        X[rng.random(X.shape) < 0.15] = np.nan
        X[0] = 1.0  # keep every column observed
    model = random_model(rng, 2, k, d, covariance_type, spread=1.5)
    fit = H.fit_hmm_em(
        X, lengths, **model, covariance_type=covariance_type, tol=0.0, max_iter=15, reg_covar=1e-10
    )
    full = any_to_full(fit.covariances, covariance_type, k, d)
    smallest = np.linalg.eigvalsh(full).min(axis=(1, 2))
    for i in range(2):
        if smallest[i] < 1e-4:
            # a state collapsed onto a few points: the likelihood is singular there and
            # round-off in the variances dominates the per-iteration changes
            continue
        trace = fit.trace[i][np.isfinite(fit.trace[i])]
        assert np.all(np.diff(trace) >= -1e-9 * (1 + np.abs(trace[1:])))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_batch_of_starts_equals_one_at_a_time(covariance_type):
    rng = np.random.default_rng(7)
    data = make_hmm_sequences([80, 60], 2, 3, covariance_type="full", random_state=1)
    model = random_model(rng, 4, 3, 2, covariance_type)
    batch = H.fit_hmm_em(
        data.X, data.lengths, **model, covariance_type=covariance_type, tol=1e-6, max_iter=12
    )
    for i in range(4):
        single = H.fit_hmm_em(
            data.X,
            data.lengths,
            **{key: value[i : i + 1] for key, value in model.items()},
            covariance_type=covariance_type,
            tol=1e-6,
            max_iter=12,
        )
        assert single.n_iter[0] == batch.n_iter[i]
        assert single.converged[0] == batch.converged[i]
        np.testing.assert_allclose(single.trace[0], batch.trace[i], rtol=1e-9, atol=1e-12)
        for name in ("startprob", "transmat", "means", "covariances", "log_likelihood"):
            np.testing.assert_allclose(
                getattr(single, name)[0],
                getattr(batch, name)[i],
                rtol=1e-7,
                atol=1e-9,
                err_msg=name,
            )


def test_numba_and_numpy_engines_give_the_same_fit():
    rng = np.random.default_rng(8)
    data = make_hmm_sequences([60, 40, 30], 2, 2, random_state=2)
    model = random_model(rng, 2, 2, 2, "full")
    fits = [
        fit_sequences(
            data,
            model,
            covariance_type="full",
            tol=0.0,
            max_iter=6,
            engine=engine,
        )
        for engine in ENGINES
    ]
    np.testing.assert_allclose(fits[0].trace, fits[1].trace, rtol=1e-10)
    np.testing.assert_allclose(fits[0].means, fits[1].means, rtol=1e-9)
    np.testing.assert_allclose(fits[0].transmat, fits[1].transmat, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("covariance_type", ["diag", "full"])
def test_trajectory_matches_hmmlearn(covariance_type):
    hmmlearn_hmm = pytest.importorskip("hmmlearn.hmm")
    rng = np.random.default_rng(9)
    data = make_hmm_sequences([150, 100], 2, 3, covariance_type="full", random_state=3)
    model = random_model(rng, 1, 3, 2, covariance_type)
    n_iter = 8
    reference = hmmlearn_hmm.GaussianHMM(
        n_components=3,
        covariance_type=covariance_type,
        n_iter=n_iter,
        tol=-np.inf,
        init_params="",
        params="stmc",
        implementation="log",
        min_covar=1e-3,
        covars_prior=0.0,
        covars_weight=1.0,
        means_prior=0.0,
        means_weight=0.0,
    )
    reference.startprob_ = model["startprob"][0]
    reference.transmat_ = model["transmat"][0]
    reference.means_ = model["means"][0]
    reference.covars_ = model["covariances"][0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference.fit(data.X, data.lengths)
    # hmmlearn's covars_prior=0 / covars_weight=1 is the plain ML update: reg_covar=0 here
    fit = fit_sequences(
        data,
        model,
        covariance_type=covariance_type,
        tol=0.0,
        max_iter=n_iter,
        reg_covar=0.0,
    )
    history = np.array(reference.monitor_.history)
    assert history.size == n_iter
    np.testing.assert_allclose(fit.trace[0] * fit.n_samples, history, rtol=1e-6)
    np.testing.assert_allclose(fit.startprob[0], reference.startprob_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(fit.transmat[0], reference.transmat_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(fit.means[0], reference.means_, rtol=1e-6, atol=1e-9)
    full = any_to_full(fit.covariances, covariance_type, 3, 2)[0]
    np.testing.assert_allclose(full, reference.covars_, rtol=1e-6, atol=1e-9)
    assert fit.log_likelihood[0] == pytest.approx(reference.score(data.X, data.lengths), rel=1e-8)


def test_dirichlet_priors_give_the_map_update():
    rng = np.random.default_rng(12)
    data = make_hmm_sequences([50, 40], 1, 2, random_state=4)
    model = random_model(rng, 1, 2, 1, "diag")
    alpha_t = np.array([[5.0, 0.5], [2.0, 3.0]])
    alpha_s = np.array([3.0, 0.5])
    fit = fit_sequences(
        data,
        model,
        covariance_type="diag",
        tol=0.0,
        max_iter=1,
        startprob_prior=alpha_s,
        transmat_prior=alpha_t,
    )
    log_b = H.emission_log_prob(data.X, model["means"], model["covariances"], "diag")
    fb = H.forward_backward_reference(log_b, model["startprob"], model["transmat"], data.lengths)
    trans = np.maximum(fb.transition_counts[0] + alpha_t - 1, 0)
    start = np.maximum(fb.start_counts[0] + alpha_s - 1, 0)
    np.testing.assert_allclose(fit.transmat[0], trans / trans.sum(1, keepdims=True))
    np.testing.assert_allclose(fit.startprob[0], start / start.sum())
    # the penalised objective still climbs
    fit = fit_sequences(
        data,
        model,
        covariance_type="diag",
        tol=0.0,
        max_iter=10,
        transmat_prior=3.0,
        startprob_prior=2.0,
    )
    assert np.all(np.diff(fit.trace[0]) >= -1e-10)
    assert np.all(fit.log_prior < 0)


def test_convergence_is_honest_and_stopped_starts_freeze():
    rng = np.random.default_rng(13)
    data = make_hmm_sequences([200], 2, 2, random_state=5)
    model = random_model(rng, 3, 2, 2, "diag")
    capped = H.fit_hmm_em(
        data.X, data.lengths, **model, covariance_type="diag", tol=0.0, max_iter=3
    )
    assert not capped.converged.any()
    assert np.all(capped.n_iter == 3)
    loose = H.fit_hmm_em(
        data.X, data.lengths, **model, covariance_type="diag", tol=1e-3, max_iter=200
    )
    assert loose.converged.all()
    for i in range(3):
        n = loose.n_iter[i]
        assert n < 200
        assert np.all(np.isfinite(loose.trace[i, :n])) and np.all(np.isnan(loose.trace[i, n:]))
        assert abs(loose.trace[i, n - 1] - loose.trace[i, n - 2]) < 1e-3


def test_core_rejects_bad_sequences_and_parameters():
    with pytest.raises(ValueError, match="2-D"):
        H.check_sequences(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="lengths must be integers"):
        H.check_sequences(np.zeros((4, 1)), [1.5, 2.5])
    rng = np.random.default_rng(15)
    model = random_model(rng, 1, 2, 1, "diag")
    model["transmat"][0, 0] = [0.7, 0.7]
    with pytest.raises(ValueError, match="transmat rows must sum to 1"):
        H.fit_hmm_em(np.zeros((6, 1)), None, **model, covariance_type="diag")
    with pytest.raises(ValueError, match="unknown|covariance_type"):
        H.initial_hmm_parameters(np.zeros((6, 1)), None, 2, "banded", 1)


def test_a_start_with_a_bad_covariance_fails_alone():
    rng = np.random.default_rng(16)
    data = make_hmm_sequences([60], 2, 2, random_state=9)
    model = random_model(rng, 3, 2, 2, "full")
    model["covariances"][1, 0] = [[1.0, 2.0], [2.0, 1.0]]  # indefinite
    fit = H.fit_hmm_em(data.X, None, **model, covariance_type="full", max_iter=5)
    np.testing.assert_array_equal(fit.failed, [False, True, False])
    assert "not positive definite" in fit.failure_reason[1]
    assert fit.n_iter[1] == 0 and fit.log_likelihood[1] == -np.inf
    assert np.all(np.isnan(fit.trace[1]))
    assert fit.best in (0, 2)


def test_a_collapsed_start_fails_with_its_iteration_and_leaves_the_others_alone():
    # state 1 of start 0 can never be reached (start probability 0, no transition into it):
    # it gets no posterior mass and, without reg_covar, a zero variance at the first M-step
    rng = np.random.default_rng(17)
    X = rng.normal(size=(30, 1))
    model = {
        "startprob": np.array([[1.0, 0.0], [0.5, 0.5]]),
        "transmat": np.array([[[1.0, 0.0], [0.5, 0.5]], [[0.5, 0.5], [0.5, 0.5]]]),
        "means": np.array([[[0.0], [3.0]], [[0.0], [1.0]]]),
        "covariances": np.ones((2, 2, 1)),
    }
    fit = H.fit_hmm_em(X, None, **model, covariance_type="diag", reg_covar=0.0, max_iter=10)
    np.testing.assert_array_equal(fit.failed, [True, False])
    assert fit.failure_reason[0] == (
        "covariance collapsed (not positive definite after the M-step) at iteration 1"
    )
    assert fit.failure_reason[1] == ""
    assert fit.n_iter[0] == 1 and not fit.converged[0]
    assert np.isfinite(fit.trace[0, 0]) and np.all(np.isnan(fit.trace[0, 1:]))
    np.testing.assert_array_equal(fit.means[0], model["means"][0])  # last usable parameters
    assert fit.best == 1
    alone = H.fit_hmm_em(
        X,
        None,
        **{key: value[1:] for key, value in model.items()},
        covariance_type="diag",
        reg_covar=0.0,
        max_iter=10,
    )
    for name in H.HMMFit.PER_START:
        np.testing.assert_array_equal(getattr(alone, name)[0], getattr(fit, name)[1], name)


def test_monitor_bookkeeping_of_a_fit():
    rng = np.random.default_rng(18)
    data = make_hmm_sequences([120, 80], 2, 2, random_state=12)
    model = random_model(rng, 3, 2, 2, "full")
    fit = H.fit_hmm_em(data.X, data.lengths, **model, covariance_type="full", tol=1e-5)
    assert fit.trace.shape == (3, 100)
    for i in range(3):
        n = fit.n_iter[i]
        trace = fit.trace[i, :n]
        assert np.all(np.isfinite(trace)) and np.all(np.isnan(fit.trace[i, n:]))
        decrease = max(0.0, float(np.max(-np.diff(trace), initial=0.0)))
        assert fit.max_decrease[i] == pytest.approx(decrease, abs=1e-15)
        assert fit.converged[i] == (abs(trace[-1] - trace[-2]) < 1e-5)
    assert fit.failure_reason.dtype == object and not fit.failed.any()
    assert fit.settings["n_sequences"] == 2 and fit.settings["engine"] == "numba"
