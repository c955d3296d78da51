"""``numerics.replicates``: bootstrap replicates moved together by a shared rate matrix, then
polished; the result must be each replicate's own optimum, whatever the path."""

import numpy as np
import pytest

from em_lib import GaussianMixture
from em_lib.numerics import replicates
from em_lib.numerics.replicates import fit_replicates, rate_extrapolation
from em_lib.numerics.squarem import polish_em
from em_lib.uncertainty import replicate_weights


def test_newton_step_of_a_linear_map_lands_on_every_fixed_point():
    """For F_b(t) = t*_b + J (t - t*_b) with one J and replicate-specific t*_b, the pair of
    two EM steps gives J exactly, and one step (I - J)^-1 (F(t) - t) reaches t*_b."""
    rng = np.random.default_rng(0)
    n_rep, dim = 40, 6
    q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    rate = q @ np.diag([0.9, 0.7, 0.5, 0.3, 0.2, 0.0]) @ q.T
    fixed = rng.normal(size=(n_rep, dim))
    start = np.zeros(dim)

    def step(t):
        return (fixed + (t - fixed) @ rate.T) - t

    t0 = np.repeat(start[None], n_rep, axis=0)
    s1 = step(t0)
    s2 = step(t0 + s1)
    solve = rate_extrapolation(s1, s2 - s1)
    t1 = t0 + s1
    np.testing.assert_allclose(t1 + solve(step(t1)), fixed, atol=1e-10)


def test_no_extrapolation_when_em_is_not_a_contraction():
    rng = np.random.default_rng(1)
    s1 = rng.normal(size=(30, 4))
    assert rate_extrapolation(s1, -s1) is not None  # changes = (J - I) moves: J = 0
    assert rate_extrapolation(s1, 0.2 * s1) is None  # J = 1.2 I


def _data(missing):
    from em_lib.data import make_gaussian_mixture

    X = make_gaussian_mixture(1500, 3, 3, separation=3.0, random_state=5).X
    if missing:
        X = X.copy()
        rng = np.random.default_rng(2)
        X[rng.random(X.shape) < 0.1] = np.nan
        X = X[~np.isnan(X).all(axis=1)]
    return X


@pytest.mark.parametrize(
    "covariance_type, kind, missing",
    [
        ("full", "nonparametric", False),
        ("diag", "weighted", False),
        ("spherical", "nonparametric", False),
        ("tied", "weighted", False),
        ("full", "nonparametric", True),
    ],
)
def test_replicates_reach_their_own_optimum(covariance_type, kind, missing, monkeypatch):
    """100 replicates from the ML fit through the shared-rate stage: each ends at the optimum
    that polishing its own data to 1e-13 finds from the same start (objective within 5e-9
    relative and means within 2e-3 data SD, as close as the plain path gets at
    ``polish_tol=1e-10``: up to 2e-9 and 1e-3 here), in fewer EM-map evaluations than batched
    EM + SQUAREM (the path taken when the stage is switched off)."""
    X = _data(missing)
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    settings = model._settings()
    n_rep = 100
    W = replicate_weights(kind, n_rep, np.ones(len(X)), np.random.default_rng(3))
    starts = {
        "weights": np.repeat(model.weights_[None], n_rep, axis=0),
        "means": np.repeat(model.means_[None], n_rep, axis=0),
        "covariances": np.repeat(model.covariances_[None], n_rep, axis=0),
    }
    fast = fit_replicates(X, starts, covariance_type, settings, W)
    reference = polish_em(
        X,
        starts["weights"],
        starts["means"],
        starts["covariances"],
        covariance_type,
        tol=1e-13,
        max_iter=5000,
        prune=False,
        sample_weight=W,
    )
    assert fast.converged.all() and not fast.failed.any()
    scale = np.nanstd(X, axis=0)
    np.testing.assert_allclose(fast.log_likelihood, reference.log_likelihood, rtol=5e-9, atol=0.0)
    assert np.abs((fast.means - reference.means) / scale).max() < 2e-3
    np.testing.assert_allclose(fast.weights, reference.weights, atol=1e-3)

    monkeypatch.setattr(replicates, "MIN_SHARED", 10**9)  # every start: batched EM, SQUAREM
    plain = fit_replicates(X, starts, covariance_type, settings, W)
    assert plain.converged.all()
    assert fast.n_iter.sum() < plain.n_iter.sum()


def test_random_starts_and_few_replicates_take_the_plain_path():
    """Starts that are not the common one run batched EM first; the best start of each group
    is returned; a batch smaller than MIN_SHARED is fitted like any other."""
    X = _data(False)
    model = GaussianMixture(3, random_state=0).fit(X)
    settings = model._settings()
    rng = np.random.default_rng(4)
    n_rep = 12
    W = np.repeat(replicate_weights("nonparametric", n_rep, np.ones(len(X)), rng), 2, axis=0)
    weights = np.repeat(model.weights_[None], 2 * n_rep, axis=0)
    means = np.repeat(model.means_[None], 2 * n_rep, axis=0)
    means[1::2] += rng.normal(scale=0.3, size=means[1::2].shape)  # a second, random start
    covariances = np.repeat(model.covariances_[None], 2 * n_rep, axis=0)
    starts = {"weights": weights, "means": means, "covariances": covariances}
    groups = np.repeat(np.arange(n_rep), 2)
    fit = fit_replicates(X, starts, "full", settings, W, groups=groups)
    assert fit.log_likelihood.shape == (n_rep,) and fit.converged.all()
    both = fit_replicates(X, starts, "full", settings, W)
    best = np.maximum(both.objective[0::2], both.objective[1::2])
    np.testing.assert_allclose(fit.objective, best, rtol=1e-12)
