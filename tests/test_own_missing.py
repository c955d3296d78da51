"""make_missing on data with missing values of its own (NaN), and on the bundled airquality."""

from __future__ import annotations

import numpy as np
import pytest

from em_lib.data import load_dataset, make_missing


def _incomplete_data(n=600, d=4, own_rate=0.1, seed=0):
    """Standard normal (n, d) with about ``own_rate`` of the entries NaN, no empty row."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    own = rng.random((n, d)) < own_rate
    own[own.all(axis=1), 0] = False
    X[own] = np.nan
    return X


@pytest.mark.parametrize("mechanism", ["MCAR", "MAR", "MNAR"])
@pytest.mark.parametrize("rate", [0.05, 0.2, 0.4])
def test_own_missing_values_are_kept_and_rates_add_up(mechanism, rate):
    X = _incomplete_data()
    own = np.isnan(X)
    before = X.copy()
    result = make_missing(X, mechanism, rate, random_state=3)
    n_entries = X.size
    # Own NaN kept; the new mask is disjoint from them; X_missing has both.
    assert not (result.mask & own).any()
    np.testing.assert_array_equal(np.isnan(result.X_missing), own | result.mask)
    np.testing.assert_array_equal(result.own_mask, own)
    observed = ~own & ~result.mask
    np.testing.assert_array_equal(result.X_missing[observed], X[observed])
    np.testing.assert_array_equal(X, before)  # input untouched
    # Rates: all over n * d; the new entries are `rate` on top of the own rate.
    assert result.mask.sum() == round(rate * n_entries)
    assert result.realised_rate == result.mask.sum() / n_entries
    assert result.own_missing_rate == own.sum() / n_entries
    assert result.total_missing_rate == (own.sum() + result.mask.sum()) / n_entries
    assert result.total_missing_rate == np.isnan(result.X_missing).mean()
    assert abs(result.total_missing_rate - (result.own_missing_rate + rate)) <= 0.5 / n_entries
    # Row rule counting the own NaN: no row is left without an observed entry.
    assert (~np.isnan(result.X_missing)).any(axis=1).all()


@pytest.mark.parametrize(
    ("mechanism", "expected"),
    [
        ("MCAR", [0, 1, 9, 13, 14, 15, 22]),
        ("MAR", [1, 2, 8, 14, 20, 22, 23]),
        ("MNAR", [0, 2, 6, 9, 13, 18, 21]),
    ],
)
def test_complete_data_masks_are_unchanged(mechanism, expected):
    # Flat indices of the masked entries given by the complete-data implementation
    # before own missing values were supported (same seed -> same mask).
    X = np.random.default_rng(0).standard_normal((8, 3))
    result = make_missing(X, mechanism, 0.3, random_state=5)
    assert np.flatnonzero(result.mask).tolist() == expected
    assert result.own_missing_rate == 0.0
    assert result.total_missing_rate == result.realised_rate == 7 / 24
    assert not result.own_mask.any()


def test_none_returns_the_data_as_it_is():
    X = _incomplete_data(n=50)
    result = make_missing(X, "none", 0.0, random_state=0)
    np.testing.assert_array_equal(result.X_missing, X)  # NaN == NaN for this helper
    assert result.X_missing is not X
    assert not result.mask.any() and result.realised_rate == 0.0
    assert result.own_missing_rate == result.total_missing_rate == np.isnan(X).mean() > 0


def _staircase():
    """(4, 3): row 0 has one observed entry left, row 1 two, rows 2 and 3 three."""
    X = np.arange(12, dtype=float).reshape(4, 3)
    X[0, [0, 2]] = np.nan
    X[1, 1] = np.nan
    return X


@pytest.mark.parametrize("mechanism", ["MCAR", "MNAR"])
def test_row_rule_counts_own_missing_entries(mechanism):
    X = _staircase()
    # 9 observed entries, one kept in each of the 4 rows: at most 5 new (rate 5/12).
    for seed in range(20):
        result = make_missing(X, mechanism, 5 / 12, random_state=seed)
        assert result.mask.sum() == 5
        np.testing.assert_array_equal((~np.isnan(result.X_missing)).sum(axis=1), 1)
        assert not result.mask[0].any()  # its only observed entry is never taken
    with pytest.raises(
        ValueError,
        match=(
            r"rate 0.5 is not achievable for "
            + mechanism
            + r" .*own 3 missing entries.*at least one entry per row is kept \(counting the "
            r"data's own missing entries\), so at most 5 of 12 entries \(rate 0.416667\) can "
            r"be masked; total missing rate counting the own missing values at most 0.666667"
        ),
    ):
        make_missing(X, mechanism, 0.5, random_state=0)


def test_row_rule_with_target_columns_whose_other_entries_are_missing():
    # Only columns 1 and 2 may be masked; a row whose column 0 is missing must keep one
    # of them, a row whose column 0 is observed may lose both.
    X = np.ones((6, 3))
    X[:3, 0] = np.nan
    result = make_missing(X, "MCAR", 9 / 18, random_state=0, columns=[1, 2])
    np.testing.assert_array_equal(result.mask[:3].sum(axis=1), 1)
    np.testing.assert_array_equal(result.mask[3:].sum(axis=1), 2)
    with pytest.raises(ValueError, match=r"at most 9 of 18 entries \(rate 0.5\)"):
        make_missing(X, "MCAR", 10 / 18, random_state=0, columns=[1, 2])


def test_rows_the_data_leaves_empty_stay_empty_and_single_column():
    X = np.arange(10, dtype=float).reshape(5, 2)
    X[2] = np.nan
    result = make_missing(X, "MCAR", 0.3, random_state=0)
    assert not result.mask[2].any() and np.isnan(result.X_missing[2]).all()
    assert result.mask.sum() == 3 and (result.mask.sum(axis=1) <= 1).all()
    # d = 1: rows may be emptied, but one entry of X stays observed.
    column = np.array([[1.0], [np.nan], [3.0], [4.0], [np.nan]])
    result = make_missing(column, "MNAR", 0.4, random_state=0)
    assert result.mask.sum() == 2 and np.isnan(result.X_missing).sum() == 4
    with pytest.raises(ValueError, match=r"not every entry can be missing.*at most 2 of 5"):
        make_missing(column, "MNAR", 0.6, random_state=0)


def test_mnar_on_incomplete_data_masks_large_observed_values():
    X = _incomplete_data(n=4000, d=3, own_rate=0.2, seed=9)
    # Shift and scale a column: standardisation is over its observed values.
    X[:, 1] = 50.0 + 10.0 * X[:, 1]
    result = make_missing(X, "MNAR", 0.2, random_state=2)
    for j in range(3):
        masked = result.mask[:, j]
        still = ~np.isnan(result.X_missing[:, j])
        spread = np.nanstd(X[:, j])
        # strength 2 gives a difference of ~1.5 SD on complete data; require > 0.8 SD.
        assert X[masked, j].mean() - X[still, j].mean() > 0.8 * spread
    # The column-wise shares of new missing entries are alike (same own rate).
    np.testing.assert_allclose(result.mask.sum(axis=0) / X.shape[0], 0.2, atol=0.04)


def test_mar_with_missing_driver_counts_it_as_its_mean():
    X = _incomplete_data(n=400, d=4, own_rate=0.15, seed=4)
    X[:, 3] = np.random.default_rng(1).standard_normal(400)  # complete, not a target
    assert np.isnan(X[:, 0]).any()
    result = make_missing(X, "MAR", 0.15, random_state=6, columns=[1, 2])
    assert not result.mask[:, [0, 3]].any()  # the driver is never masked
    # A missing driver value is treated as the driver's observed mean: the same mask as
    # with the driver's NaN replaced by that mean (the driver score is standardised).
    # Column 3 keeps every row non-empty, so the row rule protects nothing in either.
    imputed = X.copy()
    imputed[np.isnan(X[:, 0]), 0] = np.nanmean(X[:, 0])
    same = make_missing(imputed, "MAR", 0.15, random_state=6, columns=[1, 2])
    np.testing.assert_array_equal(result.mask, same.mask)
    # Large driver values still drive the missingness.
    rows = result.mask.any(axis=1)
    driver = X[:, 0]
    assert np.nanmean(driver[rows]) - np.nanmean(driver[~rows]) > 0.5


def test_missing_driver_rows_keep_one_target():
    # A row whose only driver is missing has no observed non-target entry: it keeps one.
    X = np.arange(30, dtype=float).reshape(10, 3)
    X[:4, 0] = np.nan
    result = make_missing(X, "MAR", 16 / 30, random_state=0)
    np.testing.assert_array_equal(result.mask[:4].sum(axis=1), 1)
    np.testing.assert_array_equal(result.mask[4:].sum(axis=1), 2)
    with pytest.raises(
        ValueError, match=r"not achievable for MAR.*driver columns are never masked.*at most 16"
    ):
        make_missing(X, "MAR", 17 / 30, random_state=0)


@pytest.mark.parametrize("mechanism", ["MCAR", "MAR", "MNAR"])
def test_airquality_with_imposed_missingness(mechanism):
    X = load_dataset("airquality").X
    own = np.isnan(X)
    assert own.sum() == 44
    result = make_missing(X, mechanism, 0.1, random_state=1)
    assert not (result.mask & own).any()
    assert result.mask.sum() == round(0.1 * 612)
    assert result.own_missing_rate == 44 / 612
    assert result.total_missing_rate == (44 + 61) / 612
    assert (~np.isnan(result.X_missing)).any(axis=1).all()
    with pytest.raises(ValueError, match=r"rate 0.7 is not achievable.*\(rate 0.678105\)"):
        make_missing(X, mechanism, 0.7, random_state=1)
