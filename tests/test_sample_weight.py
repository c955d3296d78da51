"""Row weights (``sample_weight``) through the batched core, the driver and the estimator.

Frequency-weight semantics: an integer weight is that many copies of the row, scaling every
weight changes nothing, a weight of 0 removes the row; weights may differ per start.
"""

import numpy as np
import pytest

from em_lib import GaussianMixture
from em_lib.numerics.fitting import MixtureSettings, fit_mixture
from em_lib.numerics.mixture_em import fit_mixture_em

TYPES = ("full", "diag", "spherical", "tied")


@pytest.fixture(scope="module")
def data():
    """Two groups in 3-D, integer weights 0..3, and a copy with 15 % of entries missing."""
    rng = np.random.default_rng(5)
    X = np.vstack([rng.normal(0, 1, (70, 3)), rng.normal(2.5, 0.8, (50, 3))])
    weights = rng.integers(0, 4, len(X)).astype(float)
    incomplete = X.copy()
    incomplete[rng.random(X.shape) < 0.15] = np.nan
    return {"complete": X, "missing": incomplete, "weights": weights}


def _start(X, covariance_type, shift=0.2):
    """A start near the optimum (so that both fits run many EM steps from the same point)."""
    fit = fit_mixture(X, 2, covariance_type, MixtureSettings(n_init=2), 0)
    return {
        "weights_init": fit.weights,
        "means_init": fit.means + shift,
        "precisions_init": _precisions(fit.covariances, covariance_type),
    }


def _precisions(covariances, covariance_type):
    if covariance_type in ("full", "tied"):
        return np.linalg.inv(covariances)
    return 1.0 / covariances


def _parameters(model):
    return np.concatenate(
        [np.ravel(model.weights_), np.ravel(model.means_), np.ravel(model.covariances_)]
    )


@pytest.mark.parametrize("kind", ["complete", "missing"])
@pytest.mark.parametrize("covariance_type", TYPES)
def test_integer_weights_equal_repeated_rows(data, kind, covariance_type):
    X, weights = data[kind], data["weights"]
    start = _start(X, covariance_type)
    options = {"covariance_type": covariance_type, "tol": 1e-8, **start}
    weighted = GaussianMixture(2, **options).fit(X, sample_weight=weights)
    repeated_rows = np.repeat(X, weights.astype(int), axis=0)
    repeated = GaussianMixture(2, **options).fit(repeated_rows)
    assert weighted.n_iter_ == repeated.n_iter_ > 3
    np.testing.assert_allclose(_parameters(weighted), _parameters(repeated), rtol=0, atol=1e-10)
    assert weighted.lower_bound_ == pytest.approx(repeated.lower_bound_, abs=1e-12)
    # criteria count the weights as rows
    for name in ("bic", "aic", "icl"):
        ours = getattr(weighted, name)(X, sample_weight=weights)
        theirs = getattr(repeated, name)(repeated_rows)
        assert ours == pytest.approx(theirs, rel=1e-10)
    assert weighted.fit_result_.n_samples == pytest.approx(repeated.fit_result_.n_samples)
    assert weighted.score(X, sample_weight=weights) == pytest.approx(
        repeated.score(repeated_rows), rel=1e-12
    )


@pytest.mark.parametrize("kind", ["complete", "missing"])
@pytest.mark.parametrize("covariance_type", TYPES)
def test_scaling_the_weights_changes_nothing(data, kind, covariance_type):
    """With the default starts (several random starts, polishing) too."""
    X = data[kind]
    weights = data["weights"] + 0.25  # not integers, none zero
    fits = [
        GaussianMixture(2, covariance_type=covariance_type, n_init=4, random_state=3).fit(
            X, sample_weight=weights * factor
        )
        for factor in (1.0, 1e-3, 37.0)
    ]
    for other in fits[1:]:
        np.testing.assert_allclose(_parameters(other), _parameters(fits[0]), atol=1e-10)
        assert other.n_iter_ == fits[0].n_iter_
        assert other.lower_bound_ == pytest.approx(fits[0].lower_bound_, abs=1e-10)


def test_zero_weights_remove_rows_and_unit_weights_change_nothing(data):
    X, weights = data["missing"], data["weights"]
    options = {"covariance_type": "full", "n_init": 3, "random_state": 0}
    zero = GaussianMixture(2, **options).fit(X, sample_weight=(weights > 0).astype(float))
    removed = GaussianMixture(2, **options).fit(X[weights > 0])
    np.testing.assert_allclose(_parameters(zero), _parameters(removed), atol=1e-10)
    labels = GaussianMixture(2, **options).fit_predict(X, sample_weight=(weights > 0) * 1.0)
    assert labels.shape == (len(X),)
    unit = GaussianMixture(2, **options).fit(X, sample_weight=np.ones(len(X)))
    plain = GaussianMixture(2, **options).fit(X)
    np.testing.assert_allclose(_parameters(unit), _parameters(plain), atol=1e-10)


@pytest.mark.parametrize("kind", ["complete", "missing"])
def test_weights_per_start_equal_separate_fits(data, kind):
    """One batch whose starts carry their own row weights equals one fit per weighting."""
    X = data[kind]
    rng = np.random.default_rng(1)
    per_start = rng.multinomial(len(X), np.full(len(X), 1 / len(X)), size=3).astype(float)
    fit = fit_mixture(X, 2, "full", MixtureSettings(n_init=2), 0)
    starts = (
        np.repeat(fit.weights[None], 3, 0),
        np.repeat(fit.means[None], 3, 0),
        np.repeat(fit.covariances[None], 3, 0),
    )
    batch = fit_mixture_em(X, *starts, "full", tol=1e-6, sample_weight=per_start)
    assert not np.allclose(batch.means[0], batch.means[1])
    for i in range(3):
        alone = fit_mixture_em(
            X, *(part[i : i + 1] for part in starts), "full", tol=1e-6, sample_weight=per_start[i]
        )
        assert alone.n_iter[0] == batch.n_iter[i]
        np.testing.assert_allclose(alone.means[0], batch.means[i], atol=1e-10)
        np.testing.assert_allclose(alone.covariances[0], batch.covariances[i], atol=1e-10)
        assert alone.log_likelihood[0] == pytest.approx(batch.log_likelihood[i], rel=1e-12)
        assert batch.n_samples[i] == pytest.approx(per_start[i][~np.isnan(X).all(1)].sum())


@pytest.mark.parametrize(
    "weights, message",
    [
        (-np.ones(120), "finite and >= 0"),
        (np.full(120, np.nan), "finite and >= 0"),
        (np.ones(7), "shape"),
        (np.zeros(120), "all zero"),
    ],
)
def test_bad_weights_are_rejected(data, weights, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(2).fit(data["complete"], sample_weight=weights)


def test_default_prior_uses_the_weights(data):
    X, weights = data["missing"], data["weights"]
    start = _start(X, "diag")
    options = {"covariance_type": "diag", "prior": "default", **start}
    weighted = GaussianMixture(2, **options).fit(X, sample_weight=weights)
    repeated = GaussianMixture(2, **options).fit(np.repeat(X, weights.astype(int), axis=0))
    np.testing.assert_allclose(_parameters(weighted), _parameters(repeated), atol=1e-10)
