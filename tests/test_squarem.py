"""SQUAREM-accelerated polishing (em_lib.numerics.squarem)."""

import numpy as np
import pytest

from em_lib.data import load_dataset
from em_lib.numerics.covariance import COVARIANCE_TYPES
from em_lib.numerics.init import initial_parameters
from em_lib.numerics.mixture_em import fit_mixture_em
from em_lib.numerics.prior import default_prior
from em_lib.numerics.squarem import from_vector, polish_em, to_vector


def _loose_starts(X, k, covariance_type, prior=None, n_init=3):
    start = initial_parameters(
        X, k, covariance_type, n_init, "kmeans", np.random.default_rng(0), prior=prior
    )
    return fit_mixture_em(X, *start, covariance_type, tol=1e-2, prior=prior)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_coordinates_round_trip(covariance_type):
    X = load_dataset("iris").X
    fit = _loose_starts(X, 3, covariance_type)
    vector = to_vector(fit.weights, fit.means, fit.covariances, covariance_type)
    weights, means, covariances = from_vector(vector, 3, 4, covariance_type)
    np.testing.assert_allclose(weights, fit.weights, rtol=1e-12)
    np.testing.assert_allclose(means, fit.means, rtol=1e-12)
    np.testing.assert_allclose(covariances, fit.covariances, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dataset,k", [("iris", 3), ("old_faithful", 4)])
def test_polishing_reaches_the_plain_em_optimum_and_never_goes_down(dataset, k, covariance_type):
    X = load_dataset(dataset).X
    loose = _loose_starts(X, k, covariance_type)
    args = (X, loose.weights, loose.means, loose.covariances, covariance_type)
    plain = fit_mixture_em(*args, tol=1e-10, tol_type="relative", max_iter=3000)
    fast = polish_em(*args, tol=1e-10, max_iter=3000)
    assert not fast.failed.any()
    # never below where it started; every trace is non-decreasing
    assert np.all(fast.log_likelihood >= loose.log_likelihood - 1e-9)
    for row, n_eval in zip(fast.trace, fast.n_iter, strict=True):
        values = row[:n_eval]
        assert np.all(np.isfinite(values)) and np.all(np.diff(values) >= 0)
    # the same optimum as plain EM iterated to the same tolerance, in fewer EM steps overall
    converged = fast.converged & plain.converged
    assert converged.any()
    np.testing.assert_allclose(
        fast.log_likelihood[converged], plain.log_likelihood[converged], rtol=1e-7
    )
    assert fast.n_iter.sum() <= plain.n_iter.sum() + 3 * len(fast.n_iter)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_polishing_with_a_prior_increases_the_penalised_objective(covariance_type):
    X = load_dataset("old_faithful").X
    prior = default_prior(X, 3, covariance_type)
    loose = _loose_starts(X, 3, covariance_type, prior=prior)
    fast = polish_em(
        X,
        loose.weights,
        loose.means,
        loose.covariances,
        covariance_type,
        tol=1e-10,
        max_iter=2000,
        prior=prior,
    )
    assert np.all(fast.objective >= loose.objective - 1e-9)
    assert np.all(fast.log_prior != 0)


@pytest.mark.parametrize("covariance_type", ["full", "spherical"])
def test_polishing_with_missing_values(covariance_type):
    X = load_dataset("iris").X.copy()
    X[np.random.default_rng(1).random(X.shape) < 0.15] = np.nan
    loose = _loose_starts(X, 3, covariance_type)
    args = (X, loose.weights, loose.means, loose.covariances, covariance_type)
    plain = fit_mixture_em(*args, tol=1e-10, tol_type="relative", max_iter=3000)
    fast = polish_em(*args, tol=1e-10, max_iter=3000)
    assert fast.settings["missing_data"]
    assert np.all(fast.log_likelihood >= loose.log_likelihood - 1e-9)
    both = fast.converged & plain.converged
    np.testing.assert_allclose(fast.log_likelihood[both], plain.log_likelihood[both], rtol=1e-7)


def _needle_start():
    """60 rows around the origin, 4 rows on one point, and a start with a component there."""
    rng = np.random.default_rng(2)
    X = np.vstack(
        [
            rng.normal(size=(60, 2)),
            np.repeat([[6.0, 6.0]], 4, axis=0) + 1e-9 * rng.normal(size=(4, 2)),
        ]
    )
    return X, np.array([[0.9, 0.1]]), np.array([[[0.0, 0.0], [6.0, 6.0]]])


def test_a_start_heading_for_a_singularity_keeps_its_best_finite_parameters():
    """One component on a single repeated point: EM collapses it; the polish must return
    the best evaluated, non-collapsed parameters, never a degenerate or NaN solution."""
    X, weights, means = _needle_start()
    covariances = np.array([[[[1.0, 0.0], [0.0, 1.0]], [[0.5, 0.0], [0.0, 0.5]]]])
    fast = polish_em(X, weights, means, covariances, "full", tol=1e-10, max_iter=200, reg_covar=0.0)
    assert np.isfinite(fast.log_likelihood).all()
    assert np.isfinite(fast.covariances).all()
    assert np.linalg.eigvalsh(fast.covariances[0]).min() > 1e-12 * X.var(axis=0).min()


def test_pruning_stops_duplicates_and_hopeless_starts_without_changing_the_best():
    X = load_dataset("old_faithful").X
    loose = _loose_starts(X, 4, "full", n_init=8)
    # the best start twice (the copy slightly moved): the copy runs into it and is pruned
    order = np.argsort(-loose.objective)
    picks = np.concatenate([order, order[:1]])
    means = loose.means[picks].copy()
    means[-1] += 1e-3 * X.std(axis=0)
    args = (X, loose.weights[picks], means, loose.covariances[picks], "full")
    pruned = polish_em(*args, tol=1e-10, max_iter=2000)
    full = polish_em(*args, tol=1e-10, max_iter=2000, prune=False)
    assert pruned.settings["pruned"].any() and not full.settings["pruned"].any()
    assert pruned.n_iter.sum() < full.n_iter.sum()
    # the same optimum, to the precision of the stop rule: on this slowly converging fit the
    # unpruned run's own starts, all at one optimum, stop up to ~1e-5 apart (1e-8 relative)
    spread = np.ptp(full.objective)
    assert spread < 1e-8 * abs(full.objective.max())
    assert pruned.objective.max() >= full.objective.min() - spread
    # pruned starts only ever stop below the best
    best = pruned.objective.max()
    assert np.all(pruned.objective[pruned.settings["pruned"]] <= best)


def _both_loops(monkeypatch, *args, **kwargs):
    import em_lib.numerics.squarem as squarem

    compiled = polish_em(*args, **kwargs)
    monkeypatch.setattr(squarem, "COMPILED_CYCLES", False)
    plain = polish_em(*args, **kwargs)
    monkeypatch.setattr(squarem, "COMPILED_CYCLES", True)
    return compiled, plain


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("prune", [False, True])
def test_compiled_cycles_take_the_numpy_loops_path(monkeypatch, covariance_type, weighted, prune):
    """The compiled cycles (complete data, no prior) evaluate the same points in the same
    order as the numpy loop: over the first cycles, the same evaluation counts, traces,
    verdicts and parameters, to round-off (one start's matrix products instead of the
    batch's). Over hundreds of evaluations on a flat ridge that round-off grows to ~1e-8
    relative and can decide which of two starts at one optimum is pruned; the whole runs
    are compared by their result below."""
    X = load_dataset("old_faithful").X
    loose = _loose_starts(X, 4, covariance_type, n_init=8)
    # starts at distinct points: which of two starts at one optimum is pruned is decided by
    # objectives equal to round-off
    keep = [0]
    for start in range(1, 8):
        gaps = np.abs(loose.objective[keep] - loose.objective[start])
        if np.all(gaps > 1e-6 * abs(loose.objective[start])):
            keep.append(start)
    assert len(keep) >= 3
    rng = np.random.default_rng(3)
    weights = rng.integers(0, 4, size=len(X)).astype(float) if weighted else None
    args = (X, loose.weights[keep], loose.means[keep], loose.covariances[keep], covariance_type)
    compiled, plain = _both_loops(
        monkeypatch, *args, tol=1e-10, max_iter=14, prune=prune, sample_weight=weights
    )
    assert compiled.settings["compiled"] and not plain.settings["compiled"]
    assert compiled.n_iter.max() >= 10  # several extrapolation cycles ran
    np.testing.assert_array_equal(compiled.n_iter, plain.n_iter)
    np.testing.assert_array_equal(compiled.converged, plain.converged)
    np.testing.assert_array_equal(compiled.settings["pruned"], plain.settings["pruned"])
    np.testing.assert_allclose(compiled.trace, plain.trace, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(compiled.log_likelihood, plain.log_likelihood, rtol=1e-12)
    for name in ("weights", "means", "covariances"):
        np.testing.assert_allclose(
            getattr(compiled, name), getattr(plain, name), rtol=1e-9, atol=1e-12
        )


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dataset,k", [("old_faithful", 4), ("iris", 5)])
def test_compiled_cycles_reach_the_numpy_loops_optimum(monkeypatch, dataset, k, covariance_type):
    X = load_dataset(dataset).X
    loose = _loose_starts(X, k, covariance_type, n_init=6)
    args = (X, loose.weights, loose.means, loose.covariances, covariance_type)
    compiled, plain = _both_loops(monkeypatch, *args, tol=1e-10, max_iter=3000)
    best, reference = compiled.objective.max(), plain.objective.max()
    assert best == pytest.approx(reference, rel=1e-8)
    assert compiled.converged[np.argmax(compiled.objective)]
    assert not compiled.failed.any()


def test_compiled_cycles_keep_the_best_finite_parameters_of_a_collapsing_start(monkeypatch):
    """A start driven onto a repeated point: the compiled cycles stop it where the numpy
    loop does, with the same finite, non-collapsed parameters."""
    X, weights, means = _needle_start()
    covariances = np.array([[np.eye(2), 0.5 * np.eye(2)]])
    compiled, plain = _both_loops(
        monkeypatch,
        X,
        weights,
        means,
        covariances,
        "full",
        tol=1e-10,
        max_iter=200,
        reg_covar=0.0,
        prune=False,
    )
    assert compiled.settings["compiled"]
    np.testing.assert_array_equal(compiled.n_iter, plain.n_iter)
    np.testing.assert_array_equal(compiled.failed, plain.failed)
    np.testing.assert_allclose(compiled.log_likelihood, plain.log_likelihood, rtol=1e-9)
    assert np.isfinite(compiled.covariances).all()
    assert np.linalg.eigvalsh(compiled.covariances).min() > 1e-12 * X.var(axis=0).min()
