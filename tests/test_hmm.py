"""Tests of the estimator em_lib.hmm.GaussianHMM and of the em_lib.numerics.hmm package."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from test_hmm_forward_backward import random_model

from em_lib._estimator import ConvergenceWarning
from em_lib.data import make_hmm_sequences
from em_lib.hmm import GaussianHMM
from em_lib.metrics import match_components
from em_lib.numerics import hmm as H
from em_lib.numerics.covariance import COVARIANCE_TYPES
from em_lib.numerics.criteria import hmm_n_parameters


def test_package_exports():
    for name in H.__all__:
        assert getattr(H, name) is not None, name
    # what the workflow's fit jobs take from the package
    for name in (
        "initial_hmm_parameters",
        "fit_hmm_em",
        "forward_backward",
        "emission_log_prob",
        "hmm_n_parameters",
        "HMMSettings",
        "fit_hmm",
    ):
        assert callable(getattr(H, name)), name


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
        p = hmm_n_parameters(2, 2, covariance_type)
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


def test_parameter_counts_match_hmmlearn():
    hmmlearn_hmm = pytest.importorskip("hmmlearn.hmm")
    for covariance_type in COVARIANCE_TYPES:
        reference = hmmlearn_hmm.GaussianHMM(3, covariance_type)
        reference.n_features = 4
        expected = sum(reference._get_n_fit_scalars_per_param().values())
        assert hmm_n_parameters(3, 4, covariance_type) == expected


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
        (np.arange(10.0)[:, None], None, {"params": "stm"}, "both 'm' and 'c'"),
        (np.arange(10.0)[:, None], None, {"n_iter": -1}, "n_iter must be an integer >= 0"),
        (np.arange(10.0)[:, None], None, {"n_init": 0}, "n_init must be"),
        (np.arange(10.0)[:, None], None, {"tol": -1.0}, "tol must be"),
        (np.arange(10.0)[:, None], None, {"prior": "flat"}, "prior must be"),
        (np.arange(10.0)[:, None], None, {"engine": "gpu"}, "engine must be"),
        (np.arange(10.0)[:, None], None, {"algorithm": "best"}, "algorithm must be"),
        (np.arange(10.0)[:, None], None, {"init_params": "sx"}, "init_params must be"),
    ],
)
def test_bad_input_raises(X, lengths, kwargs, match):
    kwargs = {"n_components": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        GaussianHMM(**kwargs).fit(X, lengths)


def test_parameters_left_out_of_init_params_start_from_the_set_value_or_are_initialised():
    X = np.arange(10.0)[:, None]
    unset = GaussianHMM(2, init_params="stc", n_init=2, random_state=0).fit(X)  # as hmmlearn
    assert unset.means_.shape == (2, 1) and np.isfinite(unset.score(X))
    hmm = GaussianHMM(2, "diag", init_params="stc")
    hmm.means_ = np.zeros((3, 1))
    with pytest.raises(ValueError, match=r"fixed\['means'\] has shape \(3, 1\)"):
        hmm.fit(X)


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
    assert hmm_n_parameters(2, 2, "diag", "st") == 1 + 2


# ----------------------------------------------------------------------------- hand-set models


def _hand_set(model, covariance_type, startprob, transmat, means, covars):
    hmm = GaussianHMM(len(startprob), covariance_type, **model)
    hmm.startprob_ = startprob
    hmm.transmat_ = transmat
    hmm.means_ = means
    hmm.covars_ = covars
    return hmm


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_hand_set_model_works_without_fit_as_hmmlearn(covariance_type):
    hmmlearn_hmm = pytest.importorskip("hmmlearn.hmm")
    rng = np.random.default_rng(21)
    truth = random_model(rng, 1, 3, 2, covariance_type)
    params = [truth[key][0] for key in ("startprob", "transmat", "means", "covariances")]
    ours = _hand_set({"random_state": 0}, covariance_type, *params)
    reference = hmmlearn_hmm.GaussianHMM(3, covariance_type, random_state=0)
    (reference.startprob_, reference.transmat_, reference.means_, reference.covars_) = params
    assert not hasattr(ours, "n_features_in_")
    X, states = ours.sample(200, random_state=1)
    assert X.shape == (200, 2) and states.shape == (200,) and ours.n_features_in_ == 2
    lengths = [120, 80]
    assert ours.score(X, lengths) == pytest.approx(reference.score(X, lengths), rel=1e-10)
    np.testing.assert_allclose(
        ours.predict_proba(X, lengths), reference.predict_proba(X, lengths), atol=1e-10
    )
    log_prob, path = ours.decode(X, lengths)
    ref_log_prob, ref_path = reference.decode(X, lengths)
    assert log_prob == pytest.approx(ref_log_prob, rel=1e-10)
    np.testing.assert_array_equal(path, ref_path)
    np.testing.assert_array_equal(ours.predict(X, lengths), ref_path)
    np.testing.assert_allclose(ours.covars_, reference.covars_, rtol=1e-12)
    assert np.isfinite(ours.bic(X, lengths))


def test_hand_set_model_checks_name_the_problem():
    from em_lib._estimator import NotFittedError

    X = np.zeros((5, 2))
    hmm = GaussianHMM(2, "diag")
    hmm.startprob_ = [0.5, 0.5]
    hmm.means_ = np.zeros((2, 2))
    with pytest.raises(NotFittedError, match="not fitted.*missing: transmat_, covars_"):
        hmm.score(X)
    hmm.transmat_ = np.eye(2)
    hmm.covars_ = np.ones((2, 2))
    assert hmm.__sklearn_is_fitted__()
    assert np.isfinite(hmm.score(X))
    hmm.means_ = np.zeros((2, 3))
    assert not hmm.__sklearn_is_fitted__()
    with pytest.raises(ValueError, match=r"diag covars_ must have shape \(2, 3\)"):
        hmm.score(X)
    hmm.means_ = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"means_ must have shape .* n_components=2"):
        hmm.score(X)
    hmm.means_ = np.zeros((2, 2))
    hmm.startprob_ = [0.7, 0.7]
    with pytest.raises(ValueError, match="startprob rows must sum to 1"):
        hmm.score(X)


@pytest.mark.parametrize("shape", [(3, 1), (3, 1, 1)])
def test_spherical_covars_as_a_column_or_one_by_one_matrices(shape):
    hmm = GaussianHMM(3, "spherical")
    hmm.covars_ = np.arange(1.0, 4.0).reshape(shape)
    np.testing.assert_array_equal(hmm.covariances_, [1.0, 2.0, 3.0])
    two_per_start = GaussianHMM(1, "spherical")
    two_per_start.covars_ = np.ones((4, 1))  # (n_init, K) stays one value per start
    assert two_per_start.covariances_.shape == (4, 1)


def test_n_iter_zero_only_initialises():
    data = make_hmm_sequences([100, 60], 2, 2, random_state=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        hmm = GaussianHMM(2, "full", n_iter=0, n_init=1, random_state=5).fit(data.X, data.lengths)
    made = H.initial_hmm_parameters(data.X, data.lengths, 2, "full", 1, init="gmm", random_state=5)
    np.testing.assert_allclose(hmm.means_, made["means"][0], rtol=1e-12)
    np.testing.assert_allclose(hmm.transmat_, made["transmat"][0], rtol=1e-12)
    np.testing.assert_allclose(hmm.covariances_, made["covariances"][0], rtol=1e-12)
    assert hmm.n_iter_ == 0 and not hmm.converged_ and hmm.starts_.trace.shape == (1, 0)
    assert hmm.score(data.X, data.lengths) == pytest.approx(hmm.fit_result_.log_likelihood)
    several = GaussianHMM(2, "full", n_iter=0, n_init=4, random_state=5).fit(data.X, data.lengths)
    assert several.best_start_ == int(np.argmax(several.starts_.log_likelihood))


def test_fit_warns_when_it_overwrites_a_user_set_parameter():
    data = make_hmm_sequences([100, 60], 2, 2, random_state=4)
    hmm = GaussianHMM(2, "diag", n_init=2, random_state=0)
    hmm.means_ = data.means
    with pytest.warns(UserWarning, match="means_ is set, but it will be overwritten") as record:
        hmm.fit(data.X, data.lengths)
    assert not any("startprob_" in str(w.message) for w in record)
    with warnings.catch_warnings(record=True) as caught:  # a refit overwrites only its own
        warnings.simplefilter("always")
        hmm.fit(data.X, data.lengths)
    assert not any("overwritten" in str(w.message) for w in caught)
    hmm.covars_ = hmm.covariances_ * 2
    with pytest.warns(UserWarning, match="covars_ is set, but it will be overwritten"):
        hmm.fit(data.X, data.lengths)
