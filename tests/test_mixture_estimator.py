"""The GaussianMixture estimator: scikit-learn conventions, criteria, errors, nesting."""

import subprocess
import sys
import warnings

import numpy as np
import pytest

from em_lib import GaussianMixture
from em_lib.data import load_dataset
from em_lib.numerics.covariance import COVARIANCE_TYPES
from em_lib.numerics.criteria import n_parameters
from em_lib.numerics.mixture_em import fit_mixture_em


def test_check_estimator_passes():
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_estimator(GaussianMixture(n_init=2, random_state=0))


def test_clone_and_params_round_trip():
    from sklearn.base import clone

    est = GaussianMixture(3, covariance_type="diag", n_init=5, random_state=1, prior="default")
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    assert "n_init=5" in repr(est)


def test_fit_attributes_and_every_start_kept():
    X = load_dataset("old_faithful").X
    est = GaussianMixture(2, n_init=6, random_state=0, polish_tol=None, nested_starts=True).fit(X)
    fit = est.starts_
    assert est.polish_ is None
    assert fit.n_init == 6 + 4  # 6 requested + diag, tied, split and epsilon starts from K=1
    assert len(est.start_origin_) == fit.n_init
    assert est.weights_.shape == (2,) and est.means_.shape == (2, 2)
    assert est.covariances_.shape == (2, 2, 2)
    np.testing.assert_allclose(est.precisions_, np.linalg.inv(est.covariances_), rtol=1e-8)
    assert est.converged_ and est.n_iter_ == fit.n_iter[est.best_start_]
    assert est.lower_bounds_[-1] == est.lower_bound_
    assert est.score(X) == pytest.approx(fit.log_likelihood[est.best_start_] / len(X))
    assert fit.trace.shape == (fit.n_init, est.max_iter)


@pytest.mark.parametrize("covariance_type", ["full", "spherical"])
def test_polishing_continues_the_best_starts_to_the_optimum(covariance_type):
    X = load_dataset("iris").X
    kwargs = dict(
        n_components=3,
        covariance_type=covariance_type,
        n_init=5,
        random_state=2,
        nested_starts=False,
    )
    loose = GaussianMixture(**kwargs, polish_tol=None).fit(X)
    est = GaussianMixture(**kwargs).fit(X)
    # the starts themselves are the same; polishing only adds
    np.testing.assert_array_equal(est.starts_.log_likelihood, loose.starts_.log_likelihood)
    assert est.polish_ is not None and 1 <= est.polish_.n_init <= est.polish_starts
    assert est.score(X) >= loose.score(X) - 1e-12
    bounds = np.array(est.lower_bounds_)
    # n_iter_ counts the batch's steps (<= max_iter, as scikit-learn); the trace both stages
    assert est.n_iter_ == est.starts_.n_iter[est.best_start_] <= est.max_iter
    assert len(bounds) == est.fit_result_.n_iter > est.n_iter_
    assert np.all(np.diff(bounds) >= -1e-12)
    total = bounds * len(X)
    assert est.converged_
    assert abs(total[-1] - total[-2]) / (1 + abs(total[-1])) < 1e-10
    # the same optimum as plain EM run from that start to the tight tolerance
    fit = est.starts_
    best = est.best_start_
    direct = fit_mixture_em(
        X,
        fit.weights[[best]],
        fit.means[[best]],
        fit.covariances[[best]],
        covariance_type,
        tol=1e-10,
        tol_type="relative",
        max_iter=1000,
    )
    assert est.score(X) * len(X) == pytest.approx(direct.log_likelihood[0], rel=1e-8)
    assert est.score(X) * len(X) >= direct.log_likelihood[0] - 1e-6


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_criteria_formulas(covariance_type):
    X = load_dataset("iris").X
    est = GaussianMixture(3, covariance_type=covariance_type, n_init=3, random_state=0).fit(X)
    loglik = est.score_samples(X).sum()
    p = n_parameters(3, 4, covariance_type)
    assert est.bic(X) == pytest.approx(-2 * loglik + p * np.log(150))
    assert est.aic(X) == pytest.approx(-2 * loglik + 2 * p)
    proba = est.predict_proba(X)
    assert est.icl(X) == pytest.approx(est.bic(X) - 2 * np.log(proba.max(axis=1)).sum())
    assert est.icl(X) >= est.bic(X)


def test_richer_models_never_worse():
    X = load_dataset("iris").X
    score = {}
    for ct in COVARIANCE_TYPES:
        for k in range(1, 6):
            est = GaussianMixture(k, covariance_type=ct, n_init=5, random_state=3).fit(X)
            score[ct, k] = est.starts_.log_likelihood[est.best_start_]
    slack = 1e-6
    for k in range(1, 6):
        assert score["full", k] >= score["diag", k] - slack
        assert score["full", k] >= score["tied", k] - slack
        assert score["diag", k] >= score["spherical", k] - slack
        if k > 1:
            for ct in COVARIANCE_TYPES:
                assert score[ct, k] >= score[ct, k - 1] - slack


def test_matches_sklearn_best_loglik_on_iris():
    from sklearn.mixture import GaussianMixture as SK

    X = load_dataset("iris").X
    for ct in COVARIANCE_TYPES:
        ours = GaussianMixture(3, covariance_type=ct, n_init=10, random_state=0).fit(X)
        theirs = SK(3, covariance_type=ct, n_init=10, random_state=0).fit(X)
        assert ours.score(X) >= theirs.score(X) - 1e-4


def test_missing_values_fit_impute_and_warning():
    rng = np.random.default_rng(0)
    X = load_dataset("iris").X.copy()
    mask = rng.random(X.shape) < 0.2
    mask[:, 0] &= ~mask[:, 1:].all(axis=1)
    X[mask] = np.nan
    X[5] = np.nan
    with pytest.warns(UserWarning, match="1 row.*no observed value"):
        est = GaussianMixture(3, n_init=4, random_state=0).fit(X)
    assert est.score_samples(X)[5] == 0.0
    filled = est.impute(X)
    assert not np.isnan(filled).any()
    np.testing.assert_array_equal(filled[~np.isnan(X)], X[~np.isnan(X)])
    draws = est.impute_draws(X, n_draws=3, random_state=1)
    assert draws.shape == (3,) + X.shape
    np.testing.assert_array_equal(draws[:, ~np.isnan(X)][0], X[~np.isnan(X)])
    truth = load_dataset("iris").X
    rmse_em = np.sqrt(np.mean((filled[mask] - truth[mask]) ** 2))
    mean_fill = np.where(np.isnan(X), np.nanmean(X, axis=0), X)
    rmse_mean = np.sqrt(np.mean((mean_fill[mask] - truth[mask]) ** 2))
    assert rmse_em < 0.6 * rmse_mean


def test_no_nan_gives_plain_path_exactly():
    X = load_dataset("old_faithful").X
    a = GaussianMixture(2, n_init=3, random_state=0).fit(X)
    assert not a.starts_.settings["missing_data"]


def test_reproducible_from_seed():
    X = load_dataset("iris").X
    a = GaussianMixture(3, n_init=4, random_state=7, nested_starts=False).fit(X)
    b = GaussianMixture(3, n_init=4, random_state=7, nested_starts=False).fit(X)
    np.testing.assert_array_equal(a.starts_.trace, b.starts_.trace)


def test_zero_variance_column_is_regularised():
    X = load_dataset("iris").X.copy()
    X[:, 2] = 1.0
    est = GaussianMixture(2, n_init=2, random_state=0).fit(X)
    assert np.isfinite(est.score(X))
    assert est.covariances_[:, 2, 2].min() >= 1e-6 * 0.999


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_zero_variance_column_with_the_default_prior(covariance_type):
    """The default prior's scale matrix is singular for a constant column; it gets a ridge so
    that MAP covariances stay positive definite (found by fuzzing: it used to crash)."""
    X = load_dataset("iris").X.copy()
    X[:, 2] = 1.0
    est = GaussianMixture(
        2, covariance_type=covariance_type, n_init=3, random_state=0, prior="default"
    ).fit(X)
    assert np.isfinite(est.score(X))
    assert np.linalg.eigvalsh(est.covariances_).min() > 0


@pytest.mark.parametrize(
    ("X", "kwargs", "message"),
    [
        (np.zeros(10), {}, "Expected 2D array"),
        (np.ones((2, 2)), {"n_components": 3}, "n_samples >= n_components"),
        (np.array([[1.0, np.inf], [0.0, 1.0]]), {}, "infinity.*row 0, column 1"),
        (np.array([["a", "b"], ["c", "d"]], dtype=object), {}, "non-numeric"),
        (np.array([[1.0, np.nan], [2.0, np.nan]]), {}, r"column\(s\) \[1\].*no observed"),
        (np.ones((5, 2)), {"n_components": 0}, "n_components must be an integer >= 1"),
        (np.ones((5, 2)), {"covariance_type": "banana"}, "covariance_type must be one of"),
        (np.ones((5, 2)), {"init_params": "banana"}, "init_params must be one of"),
        (np.ones((5, 2)), {"tol_type": "x"}, "tol_type must be one of"),
        (np.ones((5, 2)), {"polish_tol": -1.0}, "polish_tol must be a number >= 0"),
        (np.ones((5, 2)), {"polish_starts": 0}, "polish_starts must be an integer >= 1"),
    ],
)
def test_bad_input_messages(X, kwargs, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(**kwargs).fit(X)


def test_predict_before_fit_and_wrong_width():
    est = GaussianMixture()
    with pytest.raises(ValueError, match="not fitted"):
        est.predict(np.ones((3, 2)))
    est.fit(np.random.default_rng(0).normal(size=(20, 2)))
    with pytest.raises(ValueError, match="X has 3 features, but GaussianMixture is expecting 2"):
        est.predict(np.ones((3, 3)))


def test_sample_shapes_and_moments():
    X = load_dataset("old_faithful").X
    est = GaussianMixture(2, n_init=3, random_state=0).fit(X)
    draws, labels = est.sample(20000)
    assert draws.shape == (20000, 2) and labels.shape == (20000,)
    np.testing.assert_allclose(draws.mean(axis=0), est.weights_ @ est.means_, rtol=0.02)


@pytest.mark.parametrize("missing", [False, True])
def test_fit_predict_equals_predict(missing):
    X = load_dataset("old_faithful").X.copy()
    if missing:
        rng = np.random.default_rng(5)
        X[rng.random(X.shape) < 0.2] = np.nan
        X[3] = np.nan  # a row with nothing observed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = GaussianMixture(3, covariance_type="diag", n_init=3, random_state=0)
        labels = est.fit_predict(X)
        np.testing.assert_array_equal(labels, est.predict(X))
    assert len(set(labels.tolist())) == 3


# ----------------------------------------------------------------------------- drop-in gaps


def test_convergence_warning_is_sklearns_once_sklearn_is_loaded():
    import pickle

    import sklearn.exceptions

    from em_lib._estimator import ConvergenceWarning

    X = load_dataset("iris").X
    est = GaussianMixture(3, max_iter=1, polish_tol=None, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=sklearn.exceptions.ConvergenceWarning)
        est.fit(X)  # silenced by scikit-learn's class, else the "error" filter raises
    with pytest.warns(sklearn.exceptions.ConvergenceWarning) as record:
        est.fit(X)
    category = record[0].category
    assert issubclass(category, ConvergenceWarning)
    assert pickle.loads(pickle.dumps(category)) is category
    with pytest.warns(ConvergenceWarning):  # em_lib's own class still catches it
        est.fit(X)


def test_convergence_warning_never_imports_sklearn():
    code = """
import sys, warnings
import numpy as np
from em_lib import GaussianMixture
from em_lib._estimator import ConvergenceWarning
X = np.random.default_rng(0).normal(size=(60, 2))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    GaussianMixture(2, max_iter=1, polish_tol=None, random_state=0).fit(X)
assert caught[-1].category is ConvergenceWarning, caught
print(sorted(m for m in sys.modules if m.startswith("sklearn")))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_warm_start_convergence_continues_across_fits_as_sklearn():
    from sklearn.mixture import GaussianMixture as SK

    X = load_dataset("iris").X
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = GaussianMixture(3, max_iter=2, polish_tol=None, random_state=0).fit(X)
    init = dict(
        weights_init=base.weights_, means_init=base.means_, precisions_init=base.precisions_
    )
    ours = GaussianMixture(3, max_iter=1, warm_start=True, polish_tol=None, **init)
    theirs = SK(3, max_iter=1, warm_start=True, **init)
    cold = GaussianMixture(3, max_iter=1, polish_tol=None, **init)
    history = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(300):
            ours.fit(X)
            theirs.fit(X)
            assert ours.lower_bound_ == pytest.approx(theirs.lower_bound_, rel=1e-7)
            history.append((ours.converged_, theirs.converged_))
            if ours.converged_ and theirs.converged_:
                break
        assert not cold.fit(X).converged_ and not cold.fit(X).converged_
    ours_flags, theirs_flags = zip(*history, strict=True)
    assert ours_flags == theirs_flags
    assert 3 < len(history) < 300 and ours_flags[-1] and not any(ours_flags[:-1])


def test_float32_input_keeps_float32_parameters_as_sklearn():
    from sklearn.mixture import GaussianMixture as SK

    X32 = load_dataset("iris").X.astype(np.float32)
    names = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")
    for covariance_type in COVARIANCE_TYPES:
        ours = GaussianMixture(3, covariance_type=covariance_type, n_init=2, random_state=0).fit(
            X32
        )
        wide = GaussianMixture(3, covariance_type=covariance_type, n_init=2, random_state=0).fit(
            X32.astype(np.float64)
        )
        theirs = SK(3, covariance_type=covariance_type, random_state=0).fit(X32)
        for name in names:
            assert getattr(ours, name).dtype == getattr(theirs, name).dtype == np.float32
            assert getattr(wide, name).dtype == np.float64
            # computed in float64 and cast at the end
            np.testing.assert_array_equal(
                getattr(ours, name), getattr(wide, name).astype(np.float32)
            )
        assert ours.score_samples(X32).dtype == theirs.score_samples(X32).dtype
        assert ours.predict_proba(X32).dtype == theirs.predict_proba(X32).dtype
        np.testing.assert_array_equal(ours.predict(X32), wide.predict(X32))
        assert ours.score(X32) == pytest.approx(wide.score(X32), rel=1e-5)


def test_verbose_reports_starts_polishing_and_trace(capsys):
    X = load_dataset("iris").X
    GaussianMixture(3, n_init=3, random_state=0).fit(X)
    assert capsys.readouterr().out == ""
    est = GaussianMixture(3, n_init=3, random_state=0, verbose=1).fit(X)
    out = capsys.readouterr().out
    for i, kind in enumerate(est.start_origin_):
        line = next(row for row in out.splitlines() if row.strip().startswith(f"start {i:3d}"))
        assert kind in line and f"n_iter {est.starts_.n_iter[i]:4d}" in line
        assert f"{est.starts_.log_likelihood[i]:.6f}" in line
    assert "polishing" in out and f"kept start {est.best_start_}" in out
    assert "iter    1" not in out
    est = GaussianMixture(3, n_init=3, random_state=0, verbose=2, polish_tol=None).fit(X)
    out = capsys.readouterr().out
    assert "polishing: off" in out
    steps = [row for row in out.splitlines() if row.strip().startswith("iter ")]
    assert len(steps) == est.n_iter_ == len(est.lower_bounds_)
    assert f"{est.lower_bounds_[-1]:.10f}" in steps[-1]
