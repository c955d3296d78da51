"""select_hmm: Gaussian HMMs over a K x covariance-type grid on one nested lattice.

That different kinds of start reach different optima on a multimodal sequence (the reason for
``init="auto"``) is tested in tests/test_hmm_restarts.py
(``test_auto_reaches_optima_the_gmm_starts_miss``); not repeated here.
"""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from em_lib import GaussianHMM, select_hmm
from em_lib._estimator import ConvergenceWarning
from em_lib.numerics.hmm.driver import NEW_STATE_PROBABILITY
from em_lib.selection import HMM_TABLE_COLUMNS, SelectionResult

N_INIT = 3


def _regime_sequences(seed, lengths, d, n_states, missing):
    """Sequences from a sticky chain of ``n_states`` Gaussian regimes (random means)."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=2.5, size=(n_states, d))
    parts = []
    for length in lengths:
        state, states = rng.integers(n_states), []
        for _ in range(length):
            if rng.random() > 0.85:
                state = rng.integers(n_states)
            states.append(state)
        parts.append(means[states] + rng.normal(size=(length, d)))
    X = np.vstack(parts)
    if missing:
        X[rng.random(X.shape) < 0.1] = np.nan
        X[rng.integers(X.shape[0])] = np.nan  # one step wholly missing
    return X


def _slack(table, n_samples):
    """Round-off plus the epsilon start's possible loss (``T * NEW_STATE_PROBABILITY``)."""
    return 1e-8 * (1.0 + table["log_likelihood"].abs().max()) + n_samples * NEW_STATE_PROBABILITY


def _quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return func(*args, **kwargs)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    lengths=st.lists(st.integers(25, 60), min_size=1, max_size=2),
    d=st.integers(1, 2),
    n_states=st.integers(2, 4),
    missing=st.booleans(),
)
def test_orderings_hold_by_construction(seed, lengths, d, n_states, missing):
    X = _regime_sequences(seed, lengths, d, n_states, missing)
    result = _quiet(
        select_hmm, X, lengths, n_components=(1, 2, 3), n_init=2, random_state=0, tol=1e-3
    )
    loglik = {
        (row.covariance_type, row.n_components): row.log_likelihood
        for row in result.table.itertuples()
    }
    slack = _slack(result.table, X.shape[0])
    for (covariance_type, k), value in loglik.items():
        if k > 1:
            assert value >= loglik[covariance_type, k - 1] - slack, (covariance_type, k, loglik)
        if covariance_type == "full":
            assert value >= loglik["diag", k] - slack, (k, loglik)


def test_table_matches_the_estimators_and_isolated_fits():
    lengths = [70, 50]
    X = _regime_sequences(7, lengths, 2, 3, missing=False)
    result = _quiet(select_hmm, X, lengths, n_components=(1, 2, 3), n_init=N_INIT, random_state=3)
    assert isinstance(result, SelectionResult) and result.criterion == "bic"
    assert list(result.table.columns) == list(HMM_TABLE_COLUMNS)
    assert list(zip(result.table.covariance_type, result.table.n_components, strict=True)) == [
        (t, k) for t in ("full", "diag") for k in (1, 2, 3)
    ]
    for row in result.table.itertuples():
        key = (row.covariance_type, row.n_components)
        estimator = result.estimators[key]
        assert estimator.get_params()["random_state"] == 3
        assert estimator.score(X, lengths) == row.log_likelihood
        assert estimator.bic(X, lengths) == pytest.approx(row.bic, rel=1e-12)
        assert estimator.aic(X, lengths) == pytest.approx(row.aic, rel=1e-12)
        assert row.n_samples == X.shape[0]
        assert row.origin == estimator.start_origin_[estimator.best_start_]
        alone = _quiet(
            GaussianHMM(row.n_components, row.covariance_type, n_init=N_INIT, random_state=3).fit,
            X,
            lengths,
        )
        # the same drawn starts, plus nested ones: never below the isolated fit
        np.testing.assert_allclose(
            estimator.starts_.log_likelihood[:N_INIT], alone.starts_.log_likelihood, rtol=1e-10
        )
        assert row.log_likelihood >= alone.score(X, lengths) - _slack(result.table, X.shape[0])
        if key == ("diag", 1):  # no cell under it: exactly the isolated fit
            assert row.log_likelihood == pytest.approx(alone.score(X, lengths), rel=1e-12)
            assert estimator.starts_.n_init == N_INIT


def test_cells_without_nesting_equal_isolated_fits():
    X = _regime_sequences(11, [90], 1, 2, missing=True)
    result = _quiet(
        select_hmm, X, n_components=2, covariance_types="diag", n_init=N_INIT, random_state=5
    )
    alone = _quiet(GaussianHMM(2, "diag", n_init=N_INIT, random_state=5).fit, X)
    chosen = result.estimators["diag", 2]
    # K = 1 is fitted for the split start, the drawn starts are the isolated fit's
    np.testing.assert_allclose(
        chosen.starts_.log_likelihood[:N_INIT], alone.starts_.log_likelihood, rtol=1e-10
    )
    assert list(chosen.start_origin_[N_INIT:]) == ["split:K=1", "epsilon:K=1"]
    one = _quiet(
        select_hmm, X, n_components=1, covariance_types="diag", n_init=N_INIT, random_state=5
    )
    alone_one = _quiet(GaussianHMM(1, "diag", n_init=N_INIT, random_state=5).fit, X)
    assert one.table["log_likelihood"].iloc[0] == pytest.approx(alone_one.score(X), rel=1e-12)


@pytest.mark.parametrize("criterion", ["bic", "aic"])
def test_best_estimator_is_the_argmin_of_the_criterion(criterion):
    X = _regime_sequences(2, [120], 2, 3, missing=False)
    result = _quiet(
        select_hmm, X, n_components=(1, 2, 3), criterion=criterion, n_init=N_INIT, random_state=0
    )
    best = result.table[criterion].idxmin()
    cell = (result.table.covariance_type[best], int(result.table.n_components[best]))
    assert result.best_cell == cell
    assert result.best_estimator is result.estimators[cell]
    assert result.best_estimator.predict(X).shape == (X.shape[0],)


def test_settings_pass_through():
    X = _regime_sequences(4, [80], 1, 2, missing=False)
    result = _quiet(
        select_hmm,
        X,
        n_components=2,
        covariance_types="diag",
        n_init=2,
        random_state=1,
        tol=1e-3,
        init="gmm",
    )
    estimator = result.estimators["diag", 2]
    assert (estimator.tol, estimator.init, estimator.n_init) == (1e-3, "gmm", 2)
    assert list(estimator.start_origin_[:2]) == ["gmm", "gmm"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"criterion": "icl"}, ValueError, r"criterion must be one of \['bic', 'aic'\]"),
        ({"n_components": (2, 500)}, ValueError, "n_components up to 500 needs more observed"),
        ({"covariance_types": ("full", "banded")}, ValueError, "unknown covariance type"),
        ({"params": "st"}, TypeError, "are fixed"),
        ({"n_components_max": 3}, TypeError, "unexpected setting"),
        ({"n_iter": 0}, ValueError, "n_iter >= 1"),
    ],
)
def test_errors_name_the_problem(kwargs, error, message):
    X = _regime_sequences(0, [60], 1, 2, missing=False)
    with pytest.raises(error, match=message):
        select_hmm(X, **kwargs)


def test_sequences_shorter_than_two_steps_are_rejected():
    X = _regime_sequences(0, [60], 1, 2, missing=False)
    with pytest.raises(ValueError, match="at least 2 time steps"):
        select_hmm(X, [59, 1], n_components=2)
