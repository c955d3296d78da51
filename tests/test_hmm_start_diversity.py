"""Screening of the random starts of init="auto" (em_lib.numerics.hmm.init.screen_starts and
initial_hmm_parameters' screen_candidates / screen_iter)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from em_lib.hmm import GaussianHMM
from em_lib.numerics import hmm as H
from em_lib.numerics.hmm import init as hmm_init
from em_lib.numerics.hmm.checks import check_sequences


def objective_after(X, lengths, candidates, covariance_type, n_iter):
    fit = H.fit_hmm_em(
        X, lengths, **candidates, covariance_type=covariance_type, tol=0.0, max_iter=n_iter
    )
    return np.where(fit.failed, -np.inf, fit.objective)


def test_screening_keeps_the_best_candidate_of_each_group(sequences):
    data, X = sequences
    candidates = H.initial_hmm_parameters(
        X, data.lengths, 3, "diag", 12, init="random", random_state=1
    )
    groups = np.array([5, 5, 5, 0, 0, 0, 9, 9, 9, 2, 2, 2])  # labels in any order
    chosen = hmm_init.screen_starts(X, data.lengths, candidates, groups, "diag", 6)
    score = objective_after(X, data.lengths, candidates, "diag", 6)
    assert chosen.shape == (4,)
    for index, label in zip(chosen, np.unique(groups), strict=True):
        members = np.flatnonzero(groups == label)
        assert index in members
        assert score[index] == score[members].max()
    # the groups are not all won by the same position: the choice depends on the scores
    assert len({int(index) % 3 for index in chosen}) > 1 or len(set(score)) == 1


def test_a_collapsing_candidate_loses_to_a_worse_one(sequences):
    data, X = sequences
    good = H.initial_hmm_parameters(X, data.lengths, 3, "full", 1, init="gmm", random_state=0)
    spike = {key: value.copy() for key, value in good.items()}
    row = X[~np.isnan(X).any(axis=1)][0]
    spike["means"][0, 0] = row  # state 0 on one observed row, with almost no variance
    spike["covariances"][0, 0] = 1e-8 * np.eye(X.shape[1])
    spike["startprob"][0] = [1 / 3] * 3
    candidates = {key: np.concatenate([good[key], spike[key]]) for key in good}
    score = objective_after(X, data.lengths, candidates, "full", 10)
    assert score[1] > score[0]  # the spike wins on likelihood ...
    chosen = hmm_init.screen_starts(X, data.lengths, candidates, [0, 0], "full", 10)
    assert chosen.tolist() == [0]  # ... and loses the screen
    # alone in its group it is still chosen (a group always keeps one candidate)
    chosen = hmm_init.screen_starts(X, data.lengths, candidates, [0, 1], "full", 10)
    assert chosen.tolist() == [0, 1]


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
def test_auto_random_stream_is_as_documented(sequences, covariance_type):
    """Kinds in AUTO_KINDS order from one Generator; a screened kind draws
    SCREEN_CANDIDATES candidates per start in its batch; screening draws nothing."""
    data, X = sequences
    count, n_iter, k, n_init = 3, 4, 3, 5
    made = H.initial_hmm_parameters(
        X,
        data.lengths,
        k,
        covariance_type,
        n_init,
        random_state=7,
        screen_candidates=count,
        screen_iter=n_iter,
    )
    kinds = H.hmm_start_kinds("auto", n_init)
    assert kinds == [
        "gmm",
        "random-persistent",
        "kmeans-random_transitions",
        "random-persistent",
        "gmm-random_from_data",
    ]
    # replay the stream by hand
    Xc, lengths, offsets = check_sequences(X, data.lengths)
    pooled = Xc[~np.isnan(Xc).all(axis=1)]
    options = {
        "data_cov": hmm_init._data_covariance(pooled),
        "reg_covar": 1e-6,
        "gmm_max_iter": 20,
        "gmm_tol": 1e-3,
    }
    rng = np.random.default_rng(7)
    args = (pooled, k, covariance_type)
    gmm = hmm_init._mixture_starts(Xc, offsets, *args, 1, "kmeans", rng, options)
    persistent = hmm_init._persistent_random_starts(*args, 2 * count, rng, options)
    free = hmm_init._kmeans_random_transition_starts(*args, count, rng, options)
    random_gmm = hmm_init._mixture_starts(
        Xc, offsets, *args, count, "random_from_data", rng, options
    )
    parts = (persistent, free, random_gmm)
    pool = {key: np.concatenate([part[key] for part in parts]) for key in gmm}
    owners = np.repeat([1, 3, 2, 4], count)  # candidate j * count + c belongs to start j
    chosen = hmm_init.screen_starts(Xc, lengths, pool, owners, covariance_type, n_iter)
    for key in gmm:
        np.testing.assert_array_equal(made[key][0], gmm[key][0], err_msg=key)
        np.testing.assert_array_equal(made[key][1:], pool[key][chosen], err_msg=key)
    # start 0 does not depend on screening; the screened starts do
    plain = H.initial_hmm_parameters(
        X, data.lengths, k, covariance_type, n_init, random_state=7, screen_candidates=1
    )
    np.testing.assert_array_equal(plain["means"][0], made["means"][0])
    assert not np.array_equal(plain["means"][1:], made["means"][1:])


def test_screening_settings_and_short_sequences(sequences):
    data, X = sequences
    for bad in (0, 2.0, True, None):
        with pytest.raises(ValueError, match="screen_candidates must be an integer >= 1"):
            H.initial_hmm_parameters(X, data.lengths, 2, "diag", 3, screen_candidates=bad)
        with pytest.raises(ValueError, match="screen_iter must be an integer >= 1"):
            H.initial_hmm_parameters(X, data.lengths, 2, "diag", 3, screen_iter=bad)
    # a sequence of one step has no transition: nothing is screened
    lengths = [1, X.shape[0] - 1]
    made = H.initial_hmm_parameters(X, lengths, 2, "diag", 4, random_state=3)
    plain = H.initial_hmm_parameters(X, lengths, 2, "diag", 4, random_state=3, screen_candidates=1)
    for key in made:
        np.testing.assert_array_equal(made[key], plain[key], err_msg=key)
    assert hmm_init.SCREEN_CANDIDATES == 8 and hmm_init.SCREEN_ITER == 10


@pytest.fixture(scope="module")
def interest_inflation():
    sm = pytest.importorskip("statsmodels.api")
    data = sm.datasets.interest_inflation.load_pandas().data[["Dp", "R"]].to_numpy(dtype=float)
    return (data - data.mean(0)) / data.std(0)


def test_seasonal_optimum_is_reached_from_every_seed(interest_inflation, monkeypatch):
    """German quarterly inflation and interest rate, K=3, full: the best optimum (a seasonal
    chain, hmmlearn's best of 10 seeds -224.575) is reached by few starts of two kinds only.
    Screened, 10 starts reach it for every seed tried; unscreened they miss it for about
    half of the seeds."""
    X = interest_inflation
    best = -224.575 - 1e-3

    def scores(seeds):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.array(
                [
                    GaussianHMM(3, "full", n_init=10, random_state=seed).fit(X).score(X)
                    for seed in seeds
                ]
            )

    seeds = range(300, 310)
    assert (scores(seeds) >= best).all()
    defaults = H.initial_hmm_parameters.__kwdefaults__
    monkeypatch.setitem(defaults, "screen_candidates", 1)
    assert (scores(seeds) < best).sum() >= 2
