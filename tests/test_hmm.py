"""Tests for the batched Baum-Welch core (em_lib.numerics.hmm_em) and em_lib.hmm.GaussianHMM."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from em_lib._estimator import ConvergenceWarning
from em_lib.data import make_hmm_sequences
from em_lib.hmm import GaussianHMM
from em_lib.metrics import match_components
from em_lib.numerics import hmm_em as H
from em_lib.numerics.covariance import COVARIANCE_TYPES, any_to_full
from em_lib.numerics.gaussian import log_gaussian_density

ENGINES = ["numba", "numpy"]


# ----------------------------------------------------------------------------- helpers


def random_covariances(rng, n_init, k, d, covariance_type):
    if covariance_type == "full":
        a = rng.normal(size=(n_init, k, d, d))
        return a @ np.swapaxes(a, -1, -2) / d + 0.5 * np.eye(d)
    if covariance_type == "tied":
        a = rng.normal(size=(n_init, d, d))
        return a @ np.swapaxes(a, -1, -2) / d + 0.5 * np.eye(d)
    if covariance_type == "diag":
        return rng.uniform(0.5, 2.0, size=(n_init, k, d))
    return rng.uniform(0.5, 2.0, size=(n_init, k))


def random_model(rng, n_init, k, d, covariance_type, spread=2.0):
    return {
        "startprob": rng.dirichlet(np.ones(k), size=n_init),
        "transmat": rng.dirichlet(np.ones(k), size=(n_init, k)),
        "means": rng.normal(scale=spread, size=(n_init, k, d)),
        "covariances": random_covariances(rng, n_init, k, d, covariance_type),
    }


def brute_force(log_b, startprob, transmat):
    """Enumerate every state path of one sequence: loglik, posteriors, transition counts,
    best path and its log probability."""
    length, k = log_b.shape
    with np.errstate(divide="ignore"):
        log_pi, log_a = np.log(startprob), np.log(transmat)
    paths = np.array(list(itertools.product(range(k), repeat=length)))
    scores = log_pi[paths[:, 0]] + log_b[0, paths[:, 0]]
    for t in range(1, length):
        scores = scores + log_a[paths[:, t - 1], paths[:, t]] + log_b[t, paths[:, t]]
    loglik = logsumexp(scores)
    weights = np.exp(scores - loglik)
    posteriors = np.zeros((length, k))
    counts = np.zeros((k, k))
    for path, weight in zip(paths, weights, strict=True):
        posteriors[np.arange(length), path] += weight
        for t in range(1, length):
            counts[path[t - 1], path[t]] += weight
    best = int(np.argmax(scores))
    return loglik, posteriors, counts, paths[best], scores[best]


def offsets_of(lengths):
    return np.concatenate([[0], np.cumsum(lengths)])


# ----------------------------------------------------------------------------- forward-backward


def test_forward_and_backward_log_likelihoods_agree():
    rng = np.random.default_rng(0)
    lengths = np.array([7, 1, 12, 3])
    log_b = rng.normal(scale=3.0, size=(2, lengths.sum(), 3))
    model = random_model(rng, 2, 3, 1, "diag")
    result, (log_alpha, log_beta) = H.forward_backward_reference(
        log_b, model["startprob"], model["transmat"], lengths, want_lattices=True
    )
    off = offsets_of(lengths)
    for i in range(2):
        for s, (lo, hi) in enumerate(zip(off[:-1], off[1:], strict=True)):
            forward = logsumexp(log_alpha[i, hi - 1])
            backward = logsumexp(np.log(model["startprob"][i]) + log_b[i, lo] + log_beta[i, lo])
            assert forward == pytest.approx(backward, abs=1e-10)
            assert forward == pytest.approx(result.log_likelihood[i, s], abs=1e-12)
            # alpha_t . beta_t is the likelihood at every step
            per_step = logsumexp(log_alpha[i, lo:hi] + log_beta[i, lo:hi], axis=1)
            np.testing.assert_allclose(per_step, forward, atol=1e-10)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_matches_brute_force_enumeration(engine, k):
    rng = np.random.default_rng(10 + k)
    lengths = np.array([5, 3, 1, 2, 4])
    log_b = rng.normal(scale=2.0, size=(2, lengths.sum(), k))
    model = random_model(rng, 2, k, 1, "diag")
    fb = H.forward_backward(log_b, model["startprob"], model["transmat"], lengths, engine=engine)
    vit_logprob, vit_states = H.viterbi(
        log_b, model["startprob"], model["transmat"], lengths, engine=engine
    )
    off = offsets_of(lengths)
    for i in range(2):
        total_counts = np.zeros((k, k))
        start_counts = np.zeros(k)
        for s, (lo, hi) in enumerate(zip(off[:-1], off[1:], strict=True)):
            loglik, post, counts, path, best = brute_force(
                log_b[i, lo:hi], model["startprob"][i], model["transmat"][i]
            )
            assert fb.log_likelihood[i, s] == pytest.approx(loglik, abs=1e-10)
            np.testing.assert_allclose(fb.posteriors[i, lo:hi], post, atol=1e-10)
            np.testing.assert_array_equal(vit_states[i, lo:hi], path)
            assert vit_logprob[i, s] == pytest.approx(best, abs=1e-10)
            total_counts += counts
            start_counts += post[0]
        np.testing.assert_allclose(fb.transition_counts[i], total_counts, atol=1e-10)
        np.testing.assert_allclose(fb.start_counts[i], start_counts, atol=1e-10)


def test_fast_path_equals_numpy_reference():
    rng = np.random.default_rng(3)
    lengths = np.array([50, 1, 7, 120, 2])
    log_b = rng.normal(scale=4.0, size=(3, lengths.sum(), 4))
    model = random_model(rng, 3, 4, 1, "diag")
    model["transmat"][0, 1, 2] = 0.0  # a structural zero
    model["transmat"][0, 1] /= model["transmat"][0, 1].sum()
    args = (log_b, model["startprob"], model["transmat"], lengths)
    fast = H.forward_backward(*args, engine="numba")
    ref = H.forward_backward(*args, engine="numpy")
    for name in ("log_likelihood", "posteriors", "transition_counts", "start_counts"):
        np.testing.assert_allclose(
            getattr(fast, name), getattr(ref, name), rtol=1e-10, atol=1e-10, err_msg=name
        )
    lp_fast, states_fast = H.viterbi(*args, engine="numba")
    lp_ref, states_ref = H.viterbi(*args, engine="numpy")
    np.testing.assert_allclose(lp_fast, lp_ref, rtol=1e-12)
    np.testing.assert_array_equal(states_fast, states_ref)


def test_scaled_recursion_falls_back_to_log_space_on_underflow():
    # the chain can never leave state 0, but the data look like state 1: every scaled
    # constant underflows, the log-space kernel takes over
    log_b = np.tile([-5000.0, -1.0], (1, 6, 1))
    startprob = np.array([[1.0, 0.0]])
    transmat = np.array([[[1.0, 0.0], [0.0, 1.0]]])
    fast = H.forward_backward(log_b, startprob, transmat, [6], engine="numba")
    ref = H.forward_backward(log_b, startprob, transmat, [6], engine="numpy")
    assert fast.log_likelihood[0, 0] == pytest.approx(-30000.0)
    np.testing.assert_allclose(fast.log_likelihood, ref.log_likelihood)
    np.testing.assert_allclose(fast.posteriors, ref.posteriors, atol=1e-12)
    np.testing.assert_allclose(fast.transition_counts, ref.transition_counts, atol=1e-12)


def test_iid_hmm_scores_like_the_mixture_even_for_long_sequences():
    # transition rows equal to the start probabilities: the HMM is a Gaussian mixture
    rng = np.random.default_rng(4)
    n, k, d = 100_000, 3, 2
    weights = np.array([0.5, 0.3, 0.2])
    means = rng.normal(scale=3, size=(1, k, d))
    covs = random_covariances(rng, 1, k, d, "full")
    X = rng.normal(scale=3, size=(n, d))
    log_dens = log_gaussian_density(X, means, covs, "full")
    mixture = logsumexp(log_dens[0] + np.log(weights), axis=1)
    lengths = np.array([n - 1000, 1000])
    fb = H.forward_backward(
        H.emission_log_prob(X, means, covs, "full"),
        weights[None],
        np.tile(weights, (1, k, 1)),
        lengths,
    )
    assert fb.log_likelihood.sum() == pytest.approx(mixture.sum(), rel=1e-12)
    resp = np.exp(log_dens[0] + np.log(weights) - mixture[:, None])
    np.testing.assert_allclose(fb.posteriors[0], resp, atol=1e-9)


# ----------------------------------------------------------------------------- missing values


def test_missing_steps_use_emission_one_and_the_observed_marginal():
    rng = np.random.default_rng(5)
    k, d = 2, 3
    model = random_model(rng, 1, k, d, "full")
    X = rng.normal(scale=2, size=(5, d))
    X[2] = np.nan  # nothing observed
    X[3, 1] = np.nan  # partially observed
    expected = np.zeros((5, k))
    for t in range(5):
        obs = ~np.isnan(X[t])
        for j in range(k):
            if obs.any():
                cov = model["covariances"][0, j][np.ix_(obs, obs)]
                expected[t, j] = multivariate_normal(model["means"][0, j, obs], cov).logpdf(
                    X[t, obs]
                )
    log_b = H.emission_log_prob(X, model["means"], model["covariances"], "full")
    np.testing.assert_allclose(log_b[0], expected, rtol=1e-10, atol=1e-10)
    assert np.all(log_b[0, 2] == 0.0)
    for engine in ENGINES:
        fb = H.forward_backward(log_b, model["startprob"], model["transmat"], [5], engine=engine)
        loglik, post, _, _, _ = brute_force(expected, model["startprob"][0], model["transmat"][0])
        assert fb.log_likelihood[0, 0] == pytest.approx(loglik, abs=1e-10)
        np.testing.assert_allclose(fb.posteriors[0], post, atol=1e-10)


def test_all_nan_step_of_an_iid_hmm_is_like_a_removed_step():
    rng = np.random.default_rng(6)
    model = random_model(rng, 1, 2, 2, "diag")
    model["transmat"] = np.tile(model["startprob"][:, None, :], (1, 2, 1))
    X = rng.normal(size=(8, 2))
    X_gap = X.copy()
    X_gap[4] = np.nan
    args = (model["means"], model["covariances"], "diag")
    with_gap = H.forward_backward(
        H.emission_log_prob(X_gap, *args), model["startprob"], model["transmat"], [8]
    )
    removed = H.forward_backward(
        H.emission_log_prob(np.delete(X, 4, axis=0), *args),
        model["startprob"],
        model["transmat"],
        [7],
    )
    assert with_gap.log_likelihood[0, 0] == pytest.approx(removed.log_likelihood[0, 0])
    np.testing.assert_allclose(with_gap.posteriors[0, 4], model["startprob"][0])


# ----------------------------------------------------------------------------- Baum-Welch


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    k=st.integers(1, 3),
    d=st.integers(1, 2),
    covariance_type=st.sampled_from(COVARIANCE_TYPES),
    missing=st.booleans(),
)
def test_log_likelihood_never_decreases(seed, k, d, covariance_type, missing):
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
        H.fit_hmm_em(
            data.X,
            data.lengths,
            **model,
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
    fit = H.fit_hmm_em(
        data.X,
        data.lengths,
        **model,
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


def test_parameter_recovery_on_simulated_sequences():
    data = make_hmm_sequences(
        [400] * 4, 2, 3, separation=4.0, covariance_type="full", random_state=11
    )
    model = GaussianHMM(3, "full", n_init=3, random_state=0).fit(data.X, data.lengths)
    perm = match_components(data.means, model.means_)
    np.testing.assert_allclose(model.means_[perm], data.means, atol=0.25)
    np.testing.assert_allclose(model.transmat_[np.ix_(perm, perm)], data.transmat, atol=0.06)
    np.testing.assert_allclose(model.covars_[perm], data.covariances, atol=0.3)
    states = model.predict(data.X, data.lengths)
    inverse = np.argsort(perm)
    assert np.mean(inverse[states] == data.states) > 0.97
    assert model.converged_


def test_dirichlet_priors_give_the_map_update():
    rng = np.random.default_rng(12)
    data = make_hmm_sequences([50, 40], 1, 2, random_state=4)
    model = random_model(rng, 1, 2, 1, "diag")
    alpha_t = np.array([[5.0, 0.5], [2.0, 3.0]])
    alpha_s = np.array([3.0, 0.5])
    fit = H.fit_hmm_em(
        data.X,
        data.lengths,
        **model,
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
    fit = H.fit_hmm_em(
        data.X,
        data.lengths,
        **model,
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


# ----------------------------------------------------------------------------- estimator


def test_estimator_api_and_hmmlearn_conventions():
    data = make_hmm_sequences([120, 80], 2, 2, random_state=6)
    X, lengths = data.X, data.lengths
    for covariance_type in COVARIANCE_TYPES:
        model = GaussianHMM(2, covariance_type, n_init=2, random_state=0).fit(X, lengths)
        assert model.covars_.shape == (2, 2, 2)  # always full, like hmmlearn
        assert np.allclose(model.covars_, np.swapaxes(model.covars_, 1, 2))
        logprob, post = model.score_samples(X, lengths)
        assert logprob == pytest.approx(model.score(X, lengths))
        np.testing.assert_allclose(post.sum(1), 1.0)
        np.testing.assert_allclose(model.predict_proba(X, lengths), post)
        vit_logprob, states = model.decode(X, lengths)
        assert vit_logprob <= logprob
        np.testing.assert_array_equal(states, model.predict(X, lengths))
        assert model.decode(X, lengths, algorithm="map")[1].shape == (X.shape[0],)
        p = H.hmm_n_parameters(2, 2, covariance_type)
        assert model.bic(X, lengths) == pytest.approx(-2 * logprob + p * np.log(len(X)))
        assert model.aic(X, lengths) == pytest.approx(-2 * logprob + 2 * p)
        starts = model.starts_
        assert starts.trace.shape == (2, 100) and starts.log_likelihood.shape == (2,)
        assert model.best_start_ == int(np.argmax(starts.log_likelihood))
    sample_a = model.sample(30, random_state=1)
    sample_b = model.sample(30, random_state=1)
    np.testing.assert_array_equal(sample_a[0], sample_b[0])
    assert sample_a[0].shape == (30, 2) and sample_a[1].shape == (30,)
    assert GaussianHMM(2).get_params()["n_iter"] == 100


def test_parameter_counts_match_hmmlearn():
    hmmlearn_hmm = pytest.importorskip("hmmlearn.hmm")
    for covariance_type in COVARIANCE_TYPES:
        reference = hmmlearn_hmm.GaussianHMM(3, covariance_type)
        reference.n_features = 4
        expected = sum(reference._get_n_fit_scalars_per_param().values())
        assert H.hmm_n_parameters(3, 4, covariance_type) == expected


def test_user_given_parameters_and_convergence_warning():
    rng = np.random.default_rng(14)
    data = make_hmm_sequences([100, 100], 1, 2, random_state=7)
    model = random_model(rng, 1, 2, 1, "spherical")
    hmm = GaussianHMM(2, "spherical", init_params="", n_init=1, n_iter=2)
    hmm.startprob_ = model["startprob"][0]
    hmm.transmat_ = model["transmat"][0]
    hmm.means_ = model["means"][0]
    hmm.covars_ = model["covariances"][0]
    with pytest.warns(ConvergenceWarning):
        hmm.fit(data.X, data.lengths)
    assert not hmm.converged_ and hmm.n_iter_ == 2
    core = H.fit_hmm_em(data.X, data.lengths, **model, covariance_type="spherical", max_iter=2)
    np.testing.assert_allclose(hmm.means_, core.means[0])
    np.testing.assert_allclose(hmm.covariances_, core.covariances[0])


def test_random_initialisation_is_seeded():
    data = make_hmm_sequences([100], 2, 2, random_state=8)
    a = H.initial_hmm_parameters(data.X, None, 2, "tied", 3, init="random", random_state=5)
    b = H.initial_hmm_parameters(
        data.X, None, 2, "tied", 3, init="random", random_state=np.random.default_rng(5)
    )
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    fit_a = GaussianHMM(2, init="random", n_init=2, random_state=3).fit(data.X)
    fit_b = GaussianHMM(2, init="random", n_init=2, random_state=3).fit(data.X)
    np.testing.assert_array_equal(fit_a.means_, fit_b.means_)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("X", "lengths", "kwargs", "match"),
    [
        (np.zeros(10), None, {}, "2D"),
        (np.array([[0.0], [np.inf], [1.0], [2.0]]), None, {}, "infinity"),
        (np.zeros((10, 1)), [4, 5], {}, "lengths sum to 9"),
        (np.zeros((10, 1)), [12, -2], {}, "must be positive"),
        (np.zeros((10, 1)), [10, 0], {}, "must be positive"),
        (np.arange(10.0)[:, None], [9, 1], {}, r"at least 2 time steps"),
        (np.arange(3.0)[:, None], None, {"n_components": 5}, "n_components = 5"),
        (np.arange(10.0)[:, None], None, {"covariance_type": "banded"}, "covariance_type"),
        (np.arange(10.0)[:, None], None, {"init": "kmeans"}, "init must be one of"),
        (np.arange(10.0)[:, None], None, {"params": "stx"}, "params must be"),
    ],
)
def test_bad_input_raises(X, lengths, kwargs, match):
    kwargs = {"n_components": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        GaussianHMM(**kwargs).fit(X, lengths)


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


def test_estimator_options_prior_fixed_emissions_and_missing_data():
    data = make_hmm_sequences([150, 100], 2, 2, random_state=10)
    X = data.X.copy()
    X[5] = np.nan
    X[7, 0] = np.nan
    for covariance_type in COVARIANCE_TYPES:
        model = GaussianHMM(2, covariance_type, n_init=2, prior="default", random_state=0)
        model.fit(X, data.lengths)
        assert np.isfinite(model.score(X, data.lengths))
        trace = model.starts_.trace[model.best_start_]
        assert np.all(np.diff(trace[np.isfinite(trace)]) >= -1e-9)
    fixed = GaussianHMM(2, "diag", n_init=1, init_params="st", params="st", n_iter=5, tol=0)
    fixed.means_ = data.means
    fixed.covars_ = np.array([np.diag(c) for c in data.covariances])
    with pytest.warns(ConvergenceWarning):
        fixed.fit(X, data.lengths)
    np.testing.assert_array_equal(fixed.means_, data.means)
    assert H.hmm_n_parameters(2, 2, "diag", "st") == 1 + 2
