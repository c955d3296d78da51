"""Tests of the HMM forward-backward, Viterbi and emissions (em_lib.numerics.hmm: kernels,
forward_backward, emissions), and the helpers the other HMM test files share."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from em_lib.numerics import hmm as H
from em_lib.numerics.gaussian import log_gaussian_density

ENGINES = ["numba", "numpy"]


# ----------------------------------------------------------------------------- helpers


def random_covariances(rng, n_init, n_components, d, covariance_type):
    k = n_components
    if covariance_type == "full":
        a = rng.normal(size=(n_init, k, d, d))
        return a @ np.swapaxes(a, -1, -2) / d + 0.5 * np.eye(d)
    if covariance_type == "tied":
        a = rng.normal(size=(n_init, d, d))
        return a @ np.swapaxes(a, -1, -2) / d + 0.5 * np.eye(d)
    if covariance_type == "diag":
        return rng.uniform(0.5, 2.0, size=(n_init, k, d))
    return rng.uniform(0.5, 2.0, size=(n_init, k))


def random_model(rng, n_init, n_components, d, covariance_type, spread=2.0):
    k = n_components
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
@pytest.mark.parametrize("n_components", [1, 2, 3])
def test_matches_brute_force_enumeration(engine, n_components):
    k = n_components
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


@pytest.mark.parametrize("n_components", [2, 3, 4, 6])  # unrolled kernels and the generic one
def test_fast_path_equals_numpy_reference(n_components):
    rng = np.random.default_rng(3)
    lengths = np.array([50, 1, 7, 120, 2])
    log_b = rng.normal(scale=4.0, size=(3, lengths.sum(), n_components))
    model = random_model(rng, 3, n_components, 1, "diag")
    model["transmat"][0, 1, n_components - 1] = 0.0  # a structural zero
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
