"""HMM restarts: the kinds of start of init="auto" and the polishing of the best distinct
starts (em_lib.numerics.hmm.init.hmm_start_kinds, em_lib.numerics.hmm.driver.fit_hmm)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from em_lib.data import make_hmm_sequences
from em_lib.hmm import GaussianHMM
from em_lib.numerics import hmm as H
from em_lib.numerics.covariance import COVARIANCE_TYPES


@pytest.fixture(scope="module")
def two_optima():
    """Four states on a line, two standard deviations apart, fitted with three: a 3-state
    HMM has clearly different local optima (which neighbours share a state). Every ``gmm``
    start reaches the same one, 35 nats below the best."""
    data = make_hmm_sequences(
        [300, 300], 1, 4, separation=2.0, self_transition=0.85, random_state=222
    )
    return data.X, data.lengths


def n_optima(fit: H.HMMFit) -> int:
    """Distinct final optima among the starts that did not fail: log-likelihoods more than
    1e-3 per observed step apart."""
    values = np.sort(fit.log_likelihood[~fit.failed])[::-1]
    count, last = 0, np.inf
    for value in values:
        if last - value > 1e-3 * fit.n_samples:
            count, last = count + 1, value
    return count


def assert_same_fit(a: H.HMMFit, b: H.HMMFit):
    for name in H.HMMFit.PER_START:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


# ----------------------------------------------------------------------------- start kinds


def test_start_kinds_by_index():
    assert H.hmm_start_kinds("auto", 10) == [
        "gmm",
        "random-persistent",
        "kmeans-random_transitions",
        "random-persistent",
        "gmm-random_from_data",
        "random-persistent",
        "kmeans-random_transitions",
        "random-persistent",
        "gmm-random_from_data",
        "random-persistent",
    ]
    assert H.hmm_start_kinds("auto", 1) == ["gmm"]
    assert H.hmm_start_kinds("auto", 3) == ["gmm", "random-persistent", "kmeans-random_transitions"]
    assert H.hmm_start_kinds("gmm", 3) == ["gmm"] * 3
    assert H.hmm_start_kinds("random", 2) == ["random"] * 2
    assert set(H.hmm_start_kinds("auto", 40)) == set(H.AUTO_KINDS)
    with pytest.raises(ValueError, match="init must be one of"):
        H.hmm_start_kinds("kmeans", 2)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_auto_starts_are_valid_and_of_their_kind(sequences, covariance_type):
    data, X = sequences
    lengths = data.lengths
    n_init = 9
    made = H.initial_hmm_parameters(
        X, lengths, 3, covariance_type, n_init, init="auto", random_state=3
    )
    H.validate_parameters(
        made["startprob"], made["transmat"], made["means"], made["covariances"], covariance_type
    )
    kinds = np.array(H.hmm_start_kinds("auto", n_init))
    # random-persistent: the pooled covariance for every state, sticky random transitions
    persistent = np.flatnonzero(kinds == "random-persistent")
    pooled = H.initial_hmm_parameters(
        X, lengths, 3, covariance_type, 1, init="random", random_state=0
    )["covariances"][0]
    for row in persistent:
        np.testing.assert_array_equal(made["covariances"][row], pooled)
    diagonal = np.diagonal(made["transmat"][persistent], axis1=1, axis2=2)
    assert diagonal.mean() > 0.5
    # kmeans-random_transitions: the pooled covariance, k-means centres as means (every mean
    # is the average of the observed rows nearest to it), sparse random transition rows
    free = np.flatnonzero(kinds == "kmeans-random_transitions")
    assert free.size == 2
    for row in free:
        np.testing.assert_array_equal(made["covariances"][row], pooled)
    rows = X[~np.isnan(X).all(axis=1)]
    rows = np.where(np.isnan(rows), np.nanmean(rows, axis=0), rows)  # k-means imputes means
    for row in free:
        means = made["means"][row]
        nearest = np.argmin(((rows[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
        centroids = np.stack([rows[nearest == j].mean(0) for j in range(3)])
        np.testing.assert_allclose(means, centroids, atol=0.05 * rows.std())
    largest = made["transmat"][free].max(-1)
    assert largest.mean() > 0.6  # Dirichlet(1/3) rows: most of the mass on one successor
    # the starts differ from one another
    means = made["means"].reshape(n_init, -1)
    assert len({tuple(np.round(row, 8)) for row in means}) == n_init
    # one start is exactly init="gmm"
    one = H.initial_hmm_parameters(X, lengths, 3, covariance_type, 1, init="auto", random_state=3)
    gmm = H.initial_hmm_parameters(X, lengths, 3, covariance_type, 1, init="gmm", random_state=3)
    for key in gmm:
        np.testing.assert_array_equal(one[key], gmm[key], err_msg=key)


def test_auto_reaches_optima_the_gmm_starts_miss(two_optima):
    X, lengths = two_optima
    for seed in (0, 1):
        fits = {
            init: H.fit_hmm(
                X,
                lengths,
                3,
                "diag",
                H.HMMSettings(n_init=10, init=init, tol=1e-6, max_iter=300, polish_tol=None),
                random_state=seed,
            )
            for init in ("gmm", "auto")
        }
        assert n_optima(fits["gmm"].starts) == 1
        assert n_optima(fits["auto"].starts) >= 2
        assert fits["auto"].log_likelihood >= fits["gmm"].log_likelihood - 1e-9
        np.testing.assert_array_equal(fits["auto"].origin, H.hmm_start_kinds("auto", 10))
    assert fits["auto"].log_likelihood > fits["gmm"].log_likelihood + 10


# ----------------------------------------------------------------------------- polishing


@pytest.mark.parametrize(
    ("covariance_type", "init", "seed"),
    [("full", "auto", 0), ("diag", "gmm", 1), ("spherical", "random", 2), ("tied", "auto", 3)],
)
def test_polishing_never_lowers_the_best(sequences, covariance_type, init, seed):
    data, X = sequences
    lengths = data.lengths
    settings = H.HMMSettings(n_init=6, init=init)
    polished = H.fit_hmm(X, lengths, 3, covariance_type, settings, random_state=seed)
    plain = H.fit_hmm(
        X, lengths, 3, covariance_type, H.HMMSettings(n_init=6, init=init, polish_tol=None), seed
    )
    assert_same_fit(polished.starts, plain.starts)  # polishing leaves the batch alone
    assert polished.log_likelihood >= plain.log_likelihood - 1e-9 * abs(plain.log_likelihood)
    polish = polished.polish
    assert polish is not None and 1 <= polish.n_init <= settings.polish_starts
    rows = polished.polished_starts
    assert polished.starts.converged[rows].all()
    row = int(np.flatnonzero(rows == polished.best_start)[0])
    assert polished.log_likelihood == polish.log_likelihood[row]
    np.testing.assert_array_equal(polished.means, polish.means[row])
    assert polished.n_iter == polished.starts.n_iter[polished.best_start] + polish.n_iter[row]
    assert polished.trace.shape == (polished.n_iter,)
    assert np.all(np.diff(polished.trace) > -1e-9)
    # polishing starts from the parameters where the batch stopped
    np.testing.assert_allclose(
        polish.trace[:, 0] * polish.n_samples, polished.starts.log_likelihood[rows], rtol=1e-12
    )


def test_polishing_off_reproduces_the_unpolished_best(sequences):
    data, X = sequences
    lengths = data.lengths
    settings = H.HMMSettings(n_init=5, init="gmm", polish_tol=None)
    result = H.fit_hmm(X, lengths, 2, "full", settings, random_state=4)
    assert result.polish is None and result.polished_starts.size == 0
    # the same as composing the core by hand and taking the best start
    start = H.initial_hmm_parameters(X, lengths, 2, "full", 5, init="gmm", random_state=4)
    core = H.fit_hmm_em(X, lengths, **start, covariance_type="full")
    assert_same_fit(result.starts, core)
    best = core.best
    assert result.best_start == best
    assert result.log_likelihood == core.log_likelihood[best]
    assert (result.converged, result.n_iter) == (bool(core.converged[best]), int(core.n_iter[best]))
    for name in ("startprob", "transmat", "means", "covariances"):
        np.testing.assert_array_equal(getattr(result, name), getattr(core, name)[best])
    trace = core.trace[best]
    np.testing.assert_array_equal(result.trace, trace[~np.isnan(trace)])


def test_starts_that_used_up_max_iter_are_not_polished(sequences):
    data, X = sequences
    lengths = data.lengths
    settings = H.HMMSettings(n_init=3, tol=0.0, max_iter=4)
    result = H.fit_hmm(X, lengths, 2, "diag", settings, random_state=0)
    assert not result.starts.converged.any()
    assert result.polish is None and result.n_iter == 4


def test_polish_settings_are_checked():
    with pytest.raises(ValueError, match="polish_tol must be a number >= 0"):
        H.HMMSettings(polish_tol=-1.0).validate()
    with pytest.raises(ValueError, match="polish_starts must be an integer >= 1"):
        H.HMMSettings(polish_starts=0).validate()


# ----------------------------------------------------------------------------- seeds, estimator


def test_reproducible_by_seed(two_optima):
    X, lengths = two_optima
    settings = H.HMMSettings(n_init=6)
    a = H.fit_hmm(X, lengths, 3, "diag", settings, random_state=11)
    b = H.fit_hmm(X, lengths, 3, "diag", settings, random_state=np.random.default_rng(11))
    assert_same_fit(a.starts, b.starts)
    assert_same_fit(a.polish, b.polish)
    assert a.best_start == b.best_start and a.log_likelihood == b.log_likelihood
    np.testing.assert_array_equal(a.polished_starts, b.polished_starts)
    np.testing.assert_array_equal(a.origin, b.origin)
    other = H.fit_hmm(X, lengths, 3, "diag", settings, random_state=12)
    assert not np.array_equal(other.starts.log_likelihood, a.starts.log_likelihood)


def test_estimator_defaults_and_attributes(two_optima):
    X, lengths = two_optima
    assert GaussianHMM().init == "auto"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = GaussianHMM(3, n_init=4, random_state=2).fit(X, lengths)
        previous = GaussianHMM(3, n_init=4, init="gmm", random_state=2).fit(X, lengths)
    result = H.fit_hmm(X, lengths, 3, "diag", H.HMMSettings(n_init=4), random_state=2)
    np.testing.assert_array_equal(model.start_origin_, H.hmm_start_kinds("auto", 4))
    assert_same_fit(model.polish_, result.polish)
    assert model.best_start_ == result.best_start
    assert model.score(X, lengths) == pytest.approx(result.log_likelihood, rel=1e-12)
    np.testing.assert_array_equal(previous.start_origin_, ["gmm"] * 4)
    gmm = H.fit_hmm(X, lengths, 3, "diag", H.HMMSettings(n_init=4, init="gmm"), random_state=2)
    assert_same_fit(previous.starts_, gmm.starts)
