"""select_mixture: one shared lattice over a K x covariance-type grid, its table and errors."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from em_lib import GaussianMixture, select_mixture
from em_lib._estimator import ConvergenceWarning
from em_lib.data import load_dataset
from em_lib.numerics.criteria import n_parameters
from em_lib.selection import SelectionResult

TYPES = ("full", "diag", "spherical", "tied")


def _random_data(seed, n, d, n_clusters, missing):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(n_clusters, d))
    X = centres[rng.integers(n_clusters, size=n)] + rng.normal(size=(n, d))
    if missing:
        mask = rng.random((n, d)) < 0.15
        mask[np.arange(n), rng.integers(d, size=n)] = False  # every row keeps a value
        X[mask] = np.nan
    return X


def _assert_nested_order(result, ks):
    loglik = {key: est.fit_result_.log_likelihood for key, est in result.estimators.items()}

    def at_least(richer, poorer):
        slack = 1e-8 * (1.0 + abs(loglik[poorer]))
        assert loglik[richer] >= loglik[poorer] - slack, (richer, poorer, loglik)

    for k in ks:
        at_least(("full", k), ("diag", k))
        at_least(("full", k), ("tied", k))
        at_least(("diag", k), ("spherical", k))
        if k - 1 in ks:
            for covariance_type in TYPES:
                at_least((covariance_type, k), (covariance_type, k - 1))


@pytest.mark.parametrize("missing", [False, True])
@settings(
    max_examples=6, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(15, 40),
    d=st.integers(1, 3),
    n_clusters=st.integers(1, 3),
)
def test_nested_ordering_of_the_best_log_likelihoods(missing, seed, n, d, n_clusters):
    X = _random_data(seed, n, d, n_clusters, missing)
    ks = (1, 2, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = select_mixture(X, ks, n_init=2, random_state=seed % 1000)
    _assert_nested_order(result, ks)
    assert len(result.table) == 12
    assert (result.table["n_samples"] == n).all()


@pytest.mark.parametrize("missing", [False, True])
def test_table_matches_isolated_fits_with_the_same_seed(missing):
    X = load_dataset("iris").X.copy()
    if missing:
        rng = np.random.default_rng(3)
        mask = rng.random(X.shape) < 0.1
        mask[:, 0] &= ~mask[:, 1:].all(axis=1)
        X[mask] = np.nan
    ks = (1, 2, 3)
    result = select_mixture(X, ks, TYPES, n_init=3, random_state=11, tol=1e-4)
    assert isinstance(result, SelectionResult)
    table = result.table.set_index(["covariance_type", "n_components"])
    columns = list(result.table.columns)
    assert columns[:2] == ["covariance_type", "n_components"]
    expected = "log_likelihood n_parameters bic aic icl converged n_iter n_samples degenerate"
    assert set(expected.split()) == set(columns[2:])
    for covariance_type in TYPES:
        for k in ks:
            alone = GaussianMixture(
                k,
                covariance_type=covariance_type,
                nested_starts=True,
                random_state=11,
                n_init=3,
                tol=1e-4,
            ).fit(X)
            row = table.loc[(covariance_type, k)]
            expected = alone.fit_result_.log_likelihood
            assert row["log_likelihood"] == pytest.approx(expected, rel=1e-10)
            assert row["log_likelihood"] == pytest.approx(alone.score(X) * len(X), rel=1e-10)
            criteria = alone.criteria(X)
            for name in ("bic", "aic", "icl"):
                assert row[name] == pytest.approx(float(criteria[name]), rel=1e-10)
            assert row["n_parameters"] == n_parameters(k, 4, covariance_type)
            assert row["n_samples"] == 150
            assert row["converged"] == alone.converged_
            assert row["n_iter"] == alone.fit_result_.n_iter  # both stages, as the workflow
            est = result.estimators[covariance_type, k]
            assert est.get_params() == alone.get_params()
            np.testing.assert_allclose(est.means_, alone.means_, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("criterion", ["bic", "aic", "icl"])
def test_best_estimator_is_the_argmin_of_the_table(criterion):
    """The lowest criterion among the cells not marked degenerate."""
    X = load_dataset("old_faithful").X
    result = select_mixture(X, range(1, 5), criterion=criterion, n_init=3, random_state=0)
    table = result.table
    clean = table[~table["degenerate"]]  # (full K = 3, 4 hold a one-row component here)
    best = clean.loc[clean[criterion].idxmin()]
    assert result.criterion == criterion
    assert result.best_cell == (best["covariance_type"], best["n_components"])
    est = result.best_estimator
    assert est is result.estimators[result.best_cell]
    assert (est.covariance_type, est.n_components) == result.best_cell
    params = est.get_params()
    assert params["n_init"] == 3 and params["random_state"] == 0 and params["nested_starts"]
    assert float(est.criteria(X)[criterion]) == pytest.approx(best[criterion], rel=1e-12)
    assert set(result.estimators) == {(t, k) for t in TYPES for k in range(1, 5)}
    np.testing.assert_array_equal(est.predict(X), est.predict(X))  # usable as a fitted model


def test_settings_pass_through_and_a_random_seed_is_recorded():
    X = load_dataset("old_faithful").X
    result = select_mixture(
        X,
        2,
        "diag",
        n_init=2,
        prior="default",
        reg_covar=1e-5,
        init_params="kmeans",
        polish_tol=None,
    )
    est = result.best_estimator
    assert (est.prior, est.reg_covar, est.init_params, est.polish_tol) == (
        "default",
        1e-5,
        "kmeans",
        None,
    )
    assert est.polish_ is None and isinstance(est.random_state, int)
    assert len(result.table) == 1
    alone = GaussianMixture(**est.get_params()).fit(X)
    assert alone.fit_result_.log_likelihood == pytest.approx(
        est.fit_result_.log_likelihood, rel=1e-10
    )


def test_float32_input_and_non_converged_cells_warn():
    X = load_dataset("iris").X.astype(np.float32)
    with pytest.warns(ConvergenceWarning, match=r"cell\(s\) did not converge.*\('full', 3\)"):
        result = select_mixture(
            X, (2, 3), ("full",), n_init=2, random_state=0, max_iter=2, polish_tol=None, tol=0.0
        )
    assert not result.table["converged"].any()
    assert result.best_estimator.means_.dtype == np.float32


def test_rows_without_observed_values_are_ignored():
    X = load_dataset("old_faithful").X.copy()
    X[:3] = np.nan
    with pytest.warns(UserWarning, match="3 row"):
        result = select_mixture(X, (1, 2), ("diag", "spherical"), n_init=2, random_state=0)
    assert (result.table["n_samples"] == len(X) - 3).all()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"criterion": "bik"}, ValueError, "criterion must be one of"),
        ({"n_components": []}, ValueError, "n_components is empty"),
        ({"n_components": [0, 1]}, ValueError, r"n_components must hold integers >= 1"),
        ({"covariance_types": ()}, ValueError, "covariance_types is empty"),
        (
            {"covariance_types": ("full", "banana")},
            ValueError,
            r"unknown covariance type\(s\) \['banana'\]",
        ),
        ({"n_components": [2, 5]}, ValueError, "n_components up to 5 .* X has 5 row"),
        ({"banana": 1}, TypeError, r"unexpected setting\(s\) \['banana'\]"),
        ({"nested_starts": False}, TypeError, "nested_starts is always True"),
        ({"tol": -1.0}, ValueError, "tol must be a number >= 0"),
        ({"n_init": 0}, ValueError, "n_init must be an integer >= 1"),
    ],
)
def test_errors_name_the_problem(kwargs, error, message):
    X = np.random.default_rng(0).normal(size=(6, 2))
    X[0] = np.nan  # 5 usable rows
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(error, match=message):
            select_mixture(X, **{"n_components": [1, 2], **kwargs})


def test_import_stays_light():
    code = (
        "import sys, em_lib, em_lib.selection; "
        "print([m for m in sys.modules if m.startswith(('pandas', 'sklearn', 'xarray', "
        "'matplotlib'))])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_nested_ordering_with_tied_values():
    """Found by hypothesis on rounded (tied) data: SQUAREM polishing used to keep an
    extrapolated point whose spherical variance was below reg_covar (8.6e-8 < 1e-6), so diag
    K=2 (started from it) ended 0.25 below spherical K=2. Polishing now only keeps EM-step
    outputs."""
    X = np.round(_random_data(3826294364, 15, 2, 3, False), 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = select_mixture(X, (1, 2, 3), n_init=2, random_state=364)
    _assert_nested_order(result, (1, 2, 3))


def test_sample_weight_reaches_every_cell(iris):
    """With row weights every cell equals the weighted isolated fit with the same seed, the
    criteria count n as the total weight, and the orderings still hold."""
    weights = np.random.default_rng(0).integers(0, 4, len(iris)).astype(float)
    result = select_mixture(
        iris,
        n_components=[1, 2],
        covariance_types=("full", "diag"),
        n_init=3,
        random_state=11,
        sample_weight=weights,
    )
    table = result.table.set_index(["covariance_type", "n_components"])
    for (covariance_type, k), row in table.iterrows():
        alone = GaussianMixture(
            k, covariance_type=covariance_type, nested_starts=True, random_state=11, n_init=3
        ).fit(iris, sample_weight=weights)
        assert row["log_likelihood"] == pytest.approx(alone.fit_result_.log_likelihood, rel=1e-10)
        assert row["bic"] == pytest.approx(alone.bic(iris, sample_weight=weights), rel=1e-10)
        assert row["n_samples"] == pytest.approx(weights.sum())
    ll = table["log_likelihood"]
    assert ll[("full", 2)] >= ll[("diag", 2)] - 1e-8 and ll[("full", 2)] >= ll[("full", 1)] - 1e-8


def test_degenerate_cells_are_marked_and_not_chosen():
    """Old Faithful (integer waiting times) with diag up to K = 9: the lattice reaches
    components on a few tied values, kept invertible only by reg_covar, whose likelihood wins
    BIC; they are marked, and the best cell is the lowest BIC among the others."""
    from em_lib.selection import DEGENERATE_VARIANCE, degenerate

    X = load_dataset("old_faithful").X
    with pytest.warns(UserWarning, match="degenerate component"):
        result = select_mixture(X, range(1, 10), "diag", n_init=3, random_state=0)
    table = result.table
    assert table["degenerate"].any() and not table["degenerate"].all()
    lowest = table.loc[table["bic"].idxmin()]
    assert lowest["degenerate"]  # a spurious cell has the lowest BIC ...
    clean = table[~table["degenerate"]]
    best = clean.loc[clean["bic"].idxmin()]
    assert result.best_cell == (best["covariance_type"], best["n_components"])  # ... not chosen
    covariance = np.cov(X, rowvar=False, bias=True)
    for (covariance_type, k), estimator in result.estimators.items():
        row = table[(table["covariance_type"] == covariance_type) & (table["n_components"] == k)]
        smallest = (estimator.covariances_ / np.diag(covariance)).min()
        flat = (
            estimator.covariances_.min() < DEGENERATE_VARIANCE * np.linalg.eigvalsh(covariance)[0]
        )
        tiny = estimator.weights_.min() * len(X) < 2.0
        expected = smallest < DEGENERATE_VARIANCE or flat or tiny
        assert bool(row["degenerate"].iloc[0]) == expected
        flag = degenerate(estimator.weights_, estimator.covariances_, "diag", covariance, len(X))
        assert flag == expected


def test_singular_full_component_is_degenerate():
    """A full component of fewer than d + 1 rows is singular but for reg_covar."""
    from em_lib.selection import degenerate

    covariance = np.eye(3)
    good = np.stack([np.eye(3), 2 * np.eye(3)])
    assert not degenerate([0.5, 0.5], good, "full", covariance, 100)
    assert degenerate([0.97, 0.03], good, "full", covariance, 100)  # 3 rows < d + 1
    flat = good.copy()
    flat[1] = np.diag([1.0, 1.0, 1e-6])
    assert degenerate([0.5, 0.5], flat, "full", covariance, 100)


def test_lowest_usable_is_the_selection_rule():
    from em_lib.selection import lowest_usable

    scores = np.array([[5.0, 1.0, np.nan], [3.0, 2.0, np.inf]])
    assert lowest_usable(scores) == (1, 0)
    flags = np.array([[False, True, False], [False, True, False]])
    # cells 1 and 4 are degenerate and lower than the best clean cell (3.0): both passed over
    assert lowest_usable(scores, flags) == (3, 2)
    assert lowest_usable(scores, np.ones_like(flags)) == (1, 0)  # all degenerate: plain rule
    assert lowest_usable(np.full(3, np.nan)) == (-1, 0)
    assert lowest_usable(np.array([np.nan, 4.0]), np.array([False, True])) == (1, 0)
