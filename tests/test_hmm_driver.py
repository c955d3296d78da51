"""Tests of the HMM fitting driver (em_lib.numerics.hmm.driver: HMMSettings, fit_hmm)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from em_lib.hmm import GaussianHMM
from em_lib.numerics import hmm as H
from em_lib.numerics.covariance import COVARIANCE_TYPES
from em_lib.numerics.hmm import driver as D
from em_lib.numerics.prior import default_prior


def assert_same_starts(a: H.HMMFit, b: H.HMMFit):
    """Every per-start array identical, bit for bit (NaN where NaN)."""
    for name in H.HMMFit.PER_START:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.n_samples == b.n_samples and a.settings == b.settings


def quiet_fit(model, X, lengths):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X, lengths)


# ----------------------------------------------------------------------------- settings


def test_settings_defaults_and_from_config():
    settings = H.HMMSettings()
    assert (settings.n_init, settings.init, settings.tol, settings.max_iter) == (
        10,
        "auto",
        1e-4,
        100,
    )
    assert (settings.polish_tol, settings.polish_starts) == (1e-8, 3)
    assert settings.prior is None and settings.params == settings.init_params == "stmc"
    assert settings.validate() is settings
    fit = {
        "n_init": 16,
        "starts_per_job": 8,
        "init_params": "auto",
        "tol": 1e-3,
        "max_iter": 200,
        "reg_covar": 1e-5,
        "prior": "none",
    }
    hmm = {"enabled": True, "covariance_type": "diag", "init": "random"}
    built = H.HMMSettings.from_config(fit, hmm)
    assert built == H.HMMSettings(
        n_init=16, init="random", tol=1e-3, max_iter=200, reg_covar=1e-5, prior=None
    )
    assert H.HMMSettings.from_config({**fit, "prior": "default"}, hmm).prior == "default"
    # missing keys keep the defaults
    assert H.HMMSettings.from_config({}, {}) == H.HMMSettings()
    with pytest.raises(ValueError, match="fit.prior"):
        H.HMMSettings.from_config({**fit, "prior": "flat"}, hmm)
    with pytest.raises(ValueError, match="n_init"):
        H.HMMSettings.from_config({**fit, "n_init": 0}, hmm)
    with pytest.raises(ValueError, match="init must be one of"):
        H.HMMSettings.from_config(fit, {**hmm, "init": "kmeans"})


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"n_init": 0}, "n_init must be an integer >= 1"),
        ({"n_init": True}, "n_init must be an integer"),
        ({"init": "kmeans"}, "init must be one of"),
        ({"tol": -1e-3}, "tol must be a number >= 0"),
        ({"tol": np.inf}, "tol must be finite"),
        ({"max_iter": 0}, "max_iter must be an integer >= 1"),
        ({"reg_covar": -1.0}, "reg_covar must be a number >= 0"),
        ({"prior": "flat"}, "prior must be None, 'default' or a ConjugatePrior"),
        ({"startprob_prior": 0.0}, "startprob_prior must be None or positive"),
        ({"transmat_prior": [[1.0, -1.0]]}, "transmat_prior must be None or positive"),
        ({"params": "sq"}, "params must be a string of letters"),
        ({"params": "stm"}, "both 'm' and 'c'"),
        ({"init_params": 3}, "init_params must be a string of letters"),
        ({"engine": "gpu"}, "engine must be one of"),
    ],
)
def test_settings_validate_names_the_bad_setting(changes, match):
    with pytest.raises(ValueError, match=match):
        H.HMMSettings(**changes).validate()


# ----------------------------------------------------------------------------- fit_hmm


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"init": "random", "prior": "default", "startprob_prior": 2.0, "transmat_prior": 1.5},
        {"params": "st", "tol": 0.0, "max_iter": 7, "engine": "numpy"},
    ],
    ids=["defaults", "random-priors", "transitions-only"],
)
def test_fit_hmm_equals_the_estimator_bit_for_bit(sequences, covariance_type, options):
    data, X = sequences
    settings = H.HMMSettings(
        n_init=3,
        max_iter=options.get("max_iter", 40),
        **{key: value for key, value in options.items() if key != "max_iter"},
    )
    result = H.fit_hmm(X, data.lengths, 3, covariance_type, settings, random_state=5)
    model = quiet_fit(
        GaussianHMM(
            3,
            covariance_type=covariance_type,
            n_init=settings.n_init,
            init=settings.init,
            tol=settings.tol,
            n_iter=settings.max_iter,
            reg_covar=settings.reg_covar,
            prior=settings.prior,
            startprob_prior=1.0 if settings.startprob_prior is None else settings.startprob_prior,
            transmat_prior=1.0 if settings.transmat_prior is None else settings.transmat_prior,
            params=settings.params,
            init_params=settings.init_params,
            engine=settings.engine,
            random_state=5,
        ),
        X,
        data.lengths,
    )
    assert_same_starts(result.starts, model.starts_)
    assert result.best_start == model.best_start_
    np.testing.assert_array_equal(result.startprob, model.startprob_)
    np.testing.assert_array_equal(result.transmat, model.transmat_)
    np.testing.assert_array_equal(result.means, model.means_)
    np.testing.assert_array_equal(result.covariances, model.covariances_)
    assert (result.converged, result.n_iter) == (model.converged_, model.n_iter_)

    # the same as composing the core by hand: one Generator for every start, then Baum-Welch
    start = H.initial_hmm_parameters(
        X,
        data.lengths,
        3,
        covariance_type,
        3,
        init=settings.init,
        random_state=np.random.default_rng(5),
        reg_covar=settings.reg_covar,
    )
    prior = default_prior(X, 3, covariance_type) if settings.prior == "default" else None
    core = H.fit_hmm_em(
        X,
        data.lengths,
        **start,
        covariance_type=covariance_type,
        tol=settings.tol,
        max_iter=settings.max_iter,
        reg_covar=settings.reg_covar,
        prior=prior,
        startprob_prior=settings.startprob_prior,
        transmat_prior=settings.transmat_prior,
        params=settings.params,
        engine=settings.engine,
    )
    assert_same_starts(result.starts, core)


def test_result_holds_the_best_start(sequences):
    data, X = sequences
    settings = H.HMMSettings(n_init=4, polish_tol=None)  # polished results: test_hmm_restarts
    result = H.fit_hmm(X, data.lengths, 2, "diag", settings, random_state=1)
    fit, best = result.starts, result.best_start
    assert best == fit.best
    assert result.log_likelihood == fit.log_likelihood[best]
    assert isinstance(result.log_likelihood, float) and isinstance(result.n_iter, int)
    assert result.trace.shape == (result.n_iter,) and np.all(np.isfinite(result.trace))
    np.testing.assert_array_equal(result.trace, fit.trace[best, : result.n_iter])
    assert result.converged == fit.converged[best]
    assert result.startprob.shape == (2,) and result.covariances.shape == (2, 2)
    # copies, not views of the per-start arrays
    result.means[0, 0] = 1e6
    assert fit.means[best, 0, 0] != 1e6


def test_seeds_of_every_kind_give_the_same_starts(sequences):
    data, X = sequences
    settings = H.HMMSettings(n_init=2, max_iter=5, tol=0.0)
    by_int = H.fit_hmm(X, data.lengths, 2, "spherical", settings, random_state=9)
    by_generator = H.fit_hmm(
        X, data.lengths, 2, "spherical", settings, random_state=np.random.default_rng(9)
    )
    by_sequence = H.fit_hmm(
        X, data.lengths, 2, "spherical", settings, random_state=np.random.SeedSequence(9)
    )
    assert_same_starts(by_int.starts, by_generator.starts)
    assert_same_starts(by_int.starts, by_sequence.starts)
    other = H.fit_hmm(X, data.lengths, 2, "spherical", settings, random_state=10)
    assert not np.array_equal(other.starts.means, by_int.starts.means)
    with pytest.raises(ValueError, match="random_state"):
        H.fit_hmm(X, data.lengths, 2, "spherical", settings, random_state="seed")


def test_fixed_parameters_are_used_and_kept(sequences):
    data, X = sequences
    means = data.means  # (3, 2)
    covariances = np.array([np.diag(c) for c in data.covariances])  # diag (3, 2)
    settings = H.HMMSettings(n_init=2, init_params="st", params="st", max_iter=10)
    result = H.fit_hmm(
        X,
        data.lengths,
        3,
        "diag",
        settings,
        random_state=0,
        fixed={"means": means, "covariances": covariances},
    )
    # kept up to the round-off of centring the data inside the fit
    np.testing.assert_allclose(
        result.starts.means, np.broadcast_to(means, (2, 3, 2)), rtol=1e-14, atol=1e-15
    )
    np.testing.assert_array_equal(result.covariances, covariances)
    # one value per start, and every parameter fixed (no start strategy at all)
    per_start = np.stack([means, means + 0.5])
    result = H.fit_hmm(
        X,
        data.lengths,
        3,
        "diag",
        H.HMMSettings(n_init=2, init_params="", max_iter=3),
        fixed={
            "startprob": np.full(3, 1 / 3),
            "transmat": np.full((3, 3), 1 / 3),
            "means": per_start,
            "covariances": covariances,
        },
    )
    core = H.fit_hmm_em(
        X,
        data.lengths,
        np.full((2, 3), 1 / 3),
        np.full((2, 3, 3), 1 / 3),
        per_start,
        np.stack([covariances] * 2),
        "diag",
        max_iter=3,
    )
    assert_same_starts(result.starts, core)


@pytest.mark.parametrize(
    ("fixed", "init_params", "match"),
    [
        (None, "stc", r"leaves out 'm', so fixed\['means'\] must be given"),
        ({"means": np.zeros((3, 2))}, "stmc", r"fixed\['means'\] is given, but init_params"),
        ({"mean": np.zeros((3, 2))}, "stc", "unknown key"),
        ({"means": np.zeros((2, 2))}, "stc", r"fixed\['means'\] has shape \(2, 2\)"),
    ],
)
def test_bad_fixed_parameters_raise(sequences, fixed, init_params, match):
    data, X = sequences
    settings = H.HMMSettings(n_init=2, init_params=init_params)
    with pytest.raises(ValueError, match=match):
        H.fit_hmm(X, data.lengths, 3, "diag", settings, fixed=fixed)


def test_fit_hmm_rejects_bad_data_and_arguments(sequences):
    data, X = sequences
    settings = H.HMMSettings(n_init=1)
    with pytest.raises(ValueError, match="n_components must be an integer"):
        H.fit_hmm(X, data.lengths, 0, "diag", settings)
    with pytest.raises(ValueError, match="covariance_type"):
        H.fit_hmm(X, data.lengths, 2, "banded", settings)
    with pytest.raises(ValueError, match="at least 2 time steps"):
        H.fit_hmm(X[:11], [10, 1], 2, "diag", settings)
    empty_column = X.copy()
    empty_column[:, 1] = np.nan
    with pytest.raises(ValueError, match=r"column\(s\) \[1\] of X have no observed value"):
        H.fit_hmm(empty_column, data.lengths, 2, "diag", settings)
    with pytest.raises(ValueError, match="n_components = 5 observed time steps"):
        H.fit_hmm(np.arange(4.0)[:, None], None, 5, "diag", settings)
    with pytest.raises(ValueError, match="max_iter must be"):
        H.fit_hmm(X, data.lengths, 2, "diag", H.HMMSettings(max_iter=0))


def test_every_start_failing_raises_with_the_reasons():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 1))
    settings = H.HMMSettings(n_init=1, init_params="", reg_covar=0.0)
    fixed = {
        "startprob": [1.0, 0.0],
        "transmat": [[1.0, 0.0], [0.5, 0.5]],
        "means": [[0.0], [3.0]],
        "covariances": [[1.0], [1.0]],
    }
    with pytest.raises(ValueError, match="every start failed: covariance collapsed"):
        H.fit_hmm(X, None, 2, "diag", settings, fixed=fixed)


# ----------------------------------------------------------------------------- initial, nesting


def _model_score(X, lengths, model, covariance_type):
    """log-likelihood of one model (a dict of the four parameters, no init axis)."""
    hmm = GaussianHMM(model["means"].shape[0], covariance_type)
    hmm.startprob_ = model["startprob"]
    hmm.transmat_ = model["transmat"]
    hmm.means_ = model["means"]
    hmm.covars_ = model["covariances"]
    return hmm.score(X, lengths)


def test_initial_starts_join_the_batch_after_the_drawn_ones(sequences):
    data, X = sequences
    settings = H.HMMSettings(n_init=3, polish_tol=None)
    plain = H.fit_hmm(X, data.lengths, 3, "diag", settings, random_state=5)
    truth = {
        "startprob": np.full((1, 3), 1 / 3),
        "transmat": data.transmat[None],
        "means": data.means[None],
        "covariances": np.array([np.diag(c) for c in data.covariances])[None],
    }
    both = H.fit_hmm(X, data.lengths, 3, "diag", settings, 5, initial={**truth, "origin": ["t"]})
    assert both.starts.n_init == 4
    np.testing.assert_array_equal(both.origin, [*H.hmm_start_kinds("auto", 3), "t"])
    # the drawn starts are those of the call without initial (nothing drawn for initial)
    np.testing.assert_allclose(
        both.starts.log_likelihood[:3], plain.starts.log_likelihood, rtol=1e-12
    )
    alone = H.fit_hmm_em(X, data.lengths, **truth, covariance_type="diag")
    np.testing.assert_allclose(both.starts.log_likelihood[3], alone.log_likelihood[0], rtol=1e-12)
    assert both.log_likelihood >= plain.log_likelihood - 1e-9 * abs(plain.log_likelihood)
    assert H.fit_hmm(X, data.lengths, 3, "diag", settings, 5, initial=truth).origin[-1] == (
        "initial"
    )


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"means": np.zeros((1, 2, 2))}, r"initial\['means'\] has shape \(1, 2, 2\)"),
        ({"weights": np.ones((1, 3))}, "unknown"),
        ({"origin": ["a", "b"]}, "2 labels for 1 starts"),
    ],
)
def test_bad_initial_starts_raise(sequences, change, match):
    data, X = sequences
    initial = {
        "startprob": np.full((1, 3), 1 / 3),
        "transmat": np.full((1, 3, 3), 1 / 3),
        "means": data.means[None],
        "covariances": np.ones((1, 3, 2)),
        **change,
    }
    with pytest.raises(ValueError, match=match):
        H.fit_hmm(X, data.lengths, 3, "diag", H.HMMSettings(n_init=1), initial=initial)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_nested_starts_keep_the_smaller_model(sequences, covariance_type):
    """The split start with its two means put back together is the K - 1 model (a lumpable
    chain: the same likelihood); the epsilon start loses at most T * NEW_STATE_PROBABILITY
    (every old path keeps its probability times (1 - p)^T)."""
    data, X = sequences
    d = X.shape[1]
    settings = H.HMMSettings(n_init=3)
    smaller = H.fit_hmm(X, data.lengths, 2, covariance_type, settings, random_state=1)
    base = _model_score(X, data.lengths, vars(smaller), covariance_type)
    split = D.split_state_start(smaller, covariance_type, d)
    moved = np.flatnonzero(np.any(split["means"][:2] != smaller.means, axis=1))
    assert moved.size == 1 and not np.allclose(split["means"][2], split["means"][moved[0]])
    joined = {**split, "means": np.vstack([smaller.means, smaller.means[moved]])}
    assert _model_score(X, data.lengths, joined, covariance_type) == pytest.approx(base, rel=1e-10)
    epsilon = D.epsilon_state_start(X, smaller, covariance_type, d)
    # paths through the new state add probability, so the loss may also be negative
    loss = base - _model_score(X, data.lengths, epsilon, covariance_type)
    assert loss <= 1.01 * X.shape[0] * D.NEW_STATE_PROBABILITY + 1e-9
    for start in (split, epsilon):
        H.validate_parameters(
            *(start[key][None] for key in D.PARAMETERS), covariance_type=covariance_type
        )


def test_lattice_orders_the_cells_and_reuses_the_drawn_starts(sequences):
    data, X = sequences
    settings = H.HMMSettings(n_init=3)
    lattice = D.HMMLattice(X, data.lengths, settings, 4, covariance_types=("full", "diag"))
    cells = {(t, k): lattice.fit(k, t) for t in ("full", "diag") for k in (1, 2, 3)}
    assert set(lattice.solutions) == set(cells)
    for (t, k), result in cells.items():
        slack = 1e-8 * (1 + abs(result.log_likelihood)) + X.shape[0] * D.NEW_STATE_PROBABILITY
        if k > 1:
            assert result.log_likelihood >= cells[t, k - 1].log_likelihood - slack
        if t == "full":
            assert result.log_likelihood >= cells["diag", k].log_likelihood - slack
        expected = {"full": ["nested:diag"], "diag": []}[t]
        if k > 1:
            expected += [f"split:K={k - 1}", f"epsilon:K={k - 1}"]
        np.testing.assert_array_equal(result.origin[3:], expected)
        # the drawn starts are those of an isolated fit with the same seed
        alone = H.fit_hmm(X, data.lengths, k, t, settings, random_state=4)
        np.testing.assert_allclose(
            result.starts.log_likelihood[:3], alone.starts.log_likelihood, rtol=1e-10
        )
    with pytest.raises(ValueError, match="init_params and settings.params must be 'stmc'"):
        D.HMMLattice(X, data.lengths, H.HMMSettings(params="st"))
