"""``em_lib.uncertainty.bootstrap``: replicates in one batch, label alignment, summaries."""

import numpy as np
import pytest

from em_lib import GaussianHMM, GaussianMixture
from em_lib.numerics.starts import as_generator
from em_lib.uncertainty import alignment, bootstrap, replicate_weights


@pytest.fixture(scope="module")
def blobs():
    from em_lib.data import make_gaussian_mixture

    return make_gaussian_mixture(400, 2, 3, separation=3.5, random_state=2).X


@pytest.fixture(scope="module")
def fitted(blobs):
    return GaussianMixture(3, n_init=4, random_state=0).fit(blobs)


def test_replicates_equal_fits_of_the_resampled_rows(blobs, fitted):
    """Replicate b of the batch is the fit of the rows repeated by their counts, started at
    the ML fit, with the estimator's settings."""
    result = bootstrap(fitted, blobs, n_boot=4, random_state=7)
    counts = replicate_weights("nonparametric", 4, np.ones(len(blobs)), as_generator(7))
    for b in (0, 3):
        alone = GaussianMixture(
            3,
            weights_init=fitted.weights_,
            means_init=fitted.means_,
            precisions_init=fitted.precisions_,
        ).fit(np.repeat(blobs, counts[b].astype(int), axis=0))
        perm, _ = alignment(fitted.means_, fitted.covariances_, alone.means_[None])
        np.testing.assert_allclose(result.replicates["means"][b], alone.means_[perm[0]], atol=1e-8)
        np.testing.assert_allclose(
            result.replicates["weights"][b], alone.weights_[perm[0]], atol=1e-8
        )
    assert result.converged.all()


def test_alignment_undoes_a_permutation(fitted):
    means = fitted.means_[[2, 0, 1]][None] + 0.05
    perm, cost = alignment(fitted.means_, fitted.covariances_, means)
    np.testing.assert_array_equal(perm[0], [1, 2, 0])
    assert cost[0] > 0


def test_random_starts_are_aligned_to_the_fit(blobs, fitted):
    result = bootstrap(fitted, blobs, n_boot=6, n_random_starts=3, random_state=1)
    spread = np.abs(result.replicates["means"] - result.estimate["means"]).max()
    assert spread < 0.5  # components 3.5 SD apart: a label switch would move a mean by ~3
    assert result.info["n_random_starts"] == 3


def test_standard_error_of_a_mean_matches_theory():
    """K = 1: the bootstrap SE of a mean is sigma / sqrt(n) (within the Monte Carlo error of
    200 replicates, about 5 %); replicates stopped at tol without polishing would be far
    too narrow here."""
    rng = np.random.default_rng(3)
    X = rng.normal([0.0, 5.0], [1.0, 3.0], size=(400, 2))
    model = GaussianMixture(1).fit(X)
    for kind in ("nonparametric", "weighted", "parametric"):
        result = bootstrap(model, X, n_boot=200, kind=kind, random_state=4)
        se = result.standard_errors()["means"][0]
        theory = X.std(axis=0) / np.sqrt(len(X))
        np.testing.assert_allclose(se, theory, rtol=0.15, err_msg=kind)


def test_summary_and_dataset_are_labelled(airquality):
    X = airquality.X
    model = GaussianMixture(2, covariance_type="diag", n_init=3, random_state=0).fit(X)
    result = bootstrap(model, X, n_boot=20, random_state=0, feature_names=airquality.feature_names)
    table = result.summary(level=0.9)
    assert set(table["parameter"]) == {"weight", "mean", "variance", "correlation"}
    means = table[table["parameter"] == "mean"]
    assert set(means["feature"]) == set(airquality.feature_names)
    assert (means["lower"] <= means["upper"]).all()
    inside = (means["lower"] <= means["estimate"] + 1e-9) & (
        means["estimate"] - 1e-9 <= means["upper"]
    )
    assert inside.mean() > 0.8
    ds = result.to_xarray()
    assert ds["means"].dims == ("replicate", "component", "feature")
    assert list(ds["feature"].values) == list(airquality.feature_names)
    assert ds.attrs["kind"] == "nonparametric"


def test_parametric_replicates_keep_the_missing_pattern(incomplete_blobs):
    model = GaussianMixture(3, n_init=3, random_state=0).fit(incomplete_blobs)
    result = bootstrap(model, incomplete_blobs, n_boot=5, kind="parametric", random_state=0)
    assert result.n_usable == 5
    assert np.isfinite(result.replicates["means"]).all()


def test_weighted_bootstrap_weights():
    base = np.array([1.0, 2.0, 0.0, 3.0])
    weights = replicate_weights("weighted", 1000, base, np.random.default_rng(0))
    np.testing.assert_allclose(weights.sum(axis=1), 6.0)
    assert (weights[:, 2] == 0).all()
    # Dirichlet(base) scaled to the total: mean weight = the base weight
    np.testing.assert_allclose(weights.mean(axis=0), base, atol=0.15)
    counts = replicate_weights("nonparametric", 10, base, np.random.default_rng(0))
    assert (counts.sum(axis=1) == 6).all() and (counts[:, 2] == 0).all()


def test_hmm_parametric_bootstrap(sequences):
    truth, X = sequences
    lengths = [90, 60]
    model = GaussianHMM(3, covariance_type="full", n_init=3, random_state=0).fit(X, lengths)
    result = bootstrap(model, X, lengths=lengths, n_boot=8, kind="parametric", random_state=0)
    assert result.model == "hmm"
    trans = result.replicates["transmat"]
    np.testing.assert_allclose(trans.sum(axis=2)[~result.failed], 1.0, atol=1e-9)
    table = result.summary()
    assert "transition probability" in set(table["parameter"])
    with pytest.raises(ValueError, match="kind must be one of"):
        bootstrap(model, X, lengths=lengths, kind="nonparametric")


def test_bad_arguments(blobs, fitted):
    with pytest.raises(ValueError, match="kind must be one of"):
        bootstrap(fitted, blobs, kind="jackknife")
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap(fitted, blobs, n_boot=1)
    with pytest.raises(TypeError, match="GaussianMixture or GaussianHMM"):
        bootstrap(object(), blobs)
    with pytest.raises(ValueError, match="level"):
        bootstrap(fitted, blobs, n_boot=3, random_state=0).intervals(1.5)


def test_bootstrap_lrt_rejects_too_few_components_only():
    from em_lib import bootstrap_lrt
    from em_lib.data import make_gaussian_mixture
    from em_lib.numerics.fitting import MixtureSettings

    X = make_gaussian_mixture(200, 2, 2, separation=4.0, random_state=3).X
    settings = MixtureSettings(n_init=3)
    too_few = bootstrap_lrt(X, 1, "full", n_boot=19, settings=settings, random_state=0)
    assert too_few.p_value == pytest.approx(1 / 20)  # no simulated statistic reaches it
    enough = bootstrap_lrt(X, 2, "full", n_boot=19, settings=settings, random_state=0)
    assert enough.p_value > 0.1
    assert (enough.null_statistics[np.isfinite(enough.null_statistics)] >= -1e-8).all()
    assert enough.statistic >= 0
