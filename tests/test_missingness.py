"""Tests for em_lib.data.missingness."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from em_lib.data import MECHANISMS, make_missing


def _normal_data(n=4000, d=3, seed=0):
    """Independent standard normal columns, shape (n, d)."""
    return np.random.default_rng(seed).standard_normal((n, d))


def test_mechanism_names():
    assert MECHANISMS == ("none", "MCAR", "MAR", "MNAR")


@pytest.mark.parametrize("mechanism", ["MCAR", "MAR", "MNAR"])
@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5])
def test_realised_rate_is_exact_up_to_rounding(mechanism, rate):
    # The intercept is calibrated by sorting, so exactly round(rate * n * d) entries
    # are masked: the tolerance is half an entry over n * d.
    X = _normal_data(n=1001, d=3)
    result = make_missing(X, mechanism, rate, random_state=1)
    n_entries = X.size
    assert result.mask.sum() == round(rate * n_entries)
    assert result.realised_rate == result.mask.sum() / n_entries
    assert abs(result.realised_rate - rate) <= 0.5 / n_entries + 1e-12
    assert result.mechanism == mechanism and result.rate == rate
    np.testing.assert_array_equal(np.isnan(result.X_missing), result.mask)
    np.testing.assert_array_equal(result.X_missing[~result.mask], X[~result.mask])
    assert not result.mask.all(axis=1).any()
    assert np.isfinite(X).all()  # input untouched


def test_mechanism_name_is_case_insensitive():
    X = _normal_data(n=50)
    assert make_missing(X, "mnar", 0.2, random_state=0).mechanism == "MNAR"


def test_none_mechanism():
    X = _normal_data(n=20)
    result = make_missing(X, "none", 0.0, random_state=0)
    assert not result.mask.any() and result.realised_rate == 0.0
    np.testing.assert_array_equal(result.X_missing, X)
    assert result.X_missing is not X
    with pytest.raises(ValueError, match="mechanism 'none' requires rate 0"):
        make_missing(X, "none", 0.1, random_state=0)


@pytest.mark.parametrize("own_missing", [False, True])
@pytest.mark.parametrize("mechanism", ["MCAR", "MAR", "MNAR"])
def test_reproducible_from_seed(mechanism, own_missing):
    X = _normal_data(n=500)
    if own_missing:  # the data's own missing values stay, the mask is drawn around them
        X[np.random.default_rng(3).random(X.shape) < 0.05] = np.nan
    a = make_missing(X, mechanism, 0.3, random_state=42)
    b = make_missing(X, mechanism, 0.3, random_state=np.random.SeedSequence(42))
    c = make_missing(X, mechanism, 0.3, random_state=43)
    np.testing.assert_array_equal(a.mask, b.mask)
    np.testing.assert_array_equal(np.isnan(a.X_missing), np.isnan(b.X_missing))
    assert not np.array_equal(a.mask, c.mask)
    assert not (a.mask & np.isnan(X)).any()


def test_mcar_is_unrelated_to_values():
    # Masked vs observed means of independent N(0, 1) data: SE ~ sqrt(1/1800 + 1/4200)
    # ~ 0.028 per column (checked over 300 seeds), tolerance 0.12 (~4 SE).
    X = _normal_data(n=6000)
    result = make_missing(X, "MCAR", 0.3, random_state=3)
    for j in range(3):
        masked = result.mask[:, j]
        assert abs(X[masked, j].mean() - X[~masked, j].mean()) < 0.12
    # Column-wise rates differ only by sampling noise (SE ~ 0.006).
    np.testing.assert_allclose(result.mask.mean(axis=0), 0.3, atol=0.03)


def test_mar_depends_on_driver_only():
    # Driver (column 0) and targets are independent N(0, 1), so under MAR the masked
    # rows differ in the driver but the target values of masked and observed rows have
    # the same distribution.
    X = _normal_data(n=6000, seed=5)
    result = make_missing(X, "MAR", 0.3, random_state=8)
    assert result.driver_columns == (0,) and result.target_columns == (1, 2)
    assert not result.mask[:, 0].any()
    for j in (1, 2):
        masked = result.mask[:, j]
        # Driver: strength 2 gives a difference of about 1 SD; require > 0.5.
        assert X[masked, 0].mean() - X[~masked, 0].mean() > 0.5
        # Own value: SE of the mean difference ~ 0.03; tolerance 0.1 (~3.5 SE), and a
        # two-sample Kolmogorov-Smirnov test must not reject at the 0.1 % level.
        assert abs(X[masked, j].mean() - X[~masked, j].mean()) < 0.1
        assert stats.ks_2samp(X[masked, j], X[~masked, j]).pvalue > 1e-3


def test_mar_custom_drivers_and_columns():
    X = _normal_data(n=800, d=4)
    result = make_missing(X, "MAR", 0.2, random_state=0, drivers=[1, 3])
    assert result.driver_columns == (1, 3) and result.target_columns == (0, 2)
    assert not result.mask[:, [1, 3]].any()
    only = make_missing(X, "MAR", 0.1, random_state=0, columns=[2])
    assert only.mask[:, 2].any() and not only.mask[:, [0, 1, 3]].any()


def test_mnar_masks_large_values():
    X = _normal_data(n=4000, seed=9)
    result = make_missing(X, "MNAR", 0.3, random_state=2)
    for j in range(3):
        masked = result.mask[:, j]
        # strength 2 gives a difference of ~1.5 SD; require > 0.8.
        assert X[masked, j].mean() - X[~masked, j].mean() > 0.8
    reversed_ = make_missing(X, "MNAR", 0.3, random_state=2, strength=-2.0)
    masked = reversed_.mask[:, 0]
    assert X[masked, 0].mean() < X[~masked, 0].mean() - 0.8


def test_columns_restrict_targets_and_single_column_rows():
    X = _normal_data(n=300)
    result = make_missing(X, "MCAR", 0.2, random_state=0, columns=[1, 2])
    assert not result.mask[:, 0].any()
    assert result.target_columns == (1, 2)
    # d = 1: a fully missing row is unavoidable and allowed.
    single = make_missing(X[:, :1], "MNAR", 0.5, random_state=0)
    assert single.mask.sum() == 150


def test_maximum_rate_keeps_one_entry_per_row():
    X = _normal_data(n=200, d=2)
    result = make_missing(X, "MNAR", 0.5, random_state=0)
    np.testing.assert_array_equal(result.mask.sum(axis=1), 1)
    with pytest.raises(ValueError, match=r"rate 0.6 is not achievable for MNAR.*rate 0.5\)"):
        make_missing(X, "MNAR", 0.6, random_state=0)
    with pytest.raises(ValueError, match="not achievable for MAR.*driver columns are never masked"):
        make_missing(X, "MAR", 0.55, random_state=0)


def test_bad_inputs():
    X = _normal_data(n=30)
    with pytest.raises(ValueError, match=r"unknown missingness mechanism 'MXAR'.*'MCAR', 'MAR'"):
        make_missing(X, "MXAR", 0.1, random_state=0)
    for rate in (1.0, -0.1, float("nan"), "a lot"):
        with pytest.raises(ValueError, match=r"rate must be a number in \[0, 1\)"):
            make_missing(X, "MCAR", rate, random_state=0)
    # NaN is the data's own missingness (tests/test_own_missing.py); infinities are not.
    with_inf = X.copy()
    with_inf[4, 1] = -np.inf
    with pytest.raises(ValueError, match=r"finite where observed.*X\[4, 1\] is -inf"):
        make_missing(with_inf, "MCAR", 0.1, random_state=0)
    with pytest.raises(ValueError, match="no observed entry"):
        make_missing(np.full((3, 2), np.nan), "none", 0.0, random_state=0)
    with pytest.raises(ValueError, match="X must be a 2-D array"):
        make_missing(X[:, 0], "MCAR", 0.1, random_state=0)
    with pytest.raises(ValueError, match=r"columns entries must be column indices in \[0, 2\]"):
        make_missing(X, "MCAR", 0.1, random_state=0, columns=[3])
    with pytest.raises(ValueError, match="columns lists column 1 more than once"):
        make_missing(X, "MCAR", 0.1, random_state=0, columns=[1, 1])
    with pytest.raises(ValueError, match="drivers only apply to the MAR mechanism"):
        make_missing(X, "MCAR", 0.1, random_state=0, drivers=[0])
    with pytest.raises(ValueError, match="MAR needs at least two columns"):
        make_missing(X[:, :1], "MAR", 0.1, random_state=0)
    with pytest.raises(ValueError, match="column 0 is both a driver"):
        make_missing(X, "MAR", 0.1, random_state=0, columns=[0, 1])
    with pytest.raises(ValueError, match="strength must be a finite number"):
        make_missing(X, "MNAR", 0.1, random_state=0, strength=np.inf)
    with pytest.raises(ValueError, match="random_state is None"):
        make_missing(X, "MCAR", 0.1, random_state=None)
