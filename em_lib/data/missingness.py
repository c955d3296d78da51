"""Impose missing values on complete data under MCAR, MAR or MNAR mechanisms.

All mechanisms share one latent-logistic model. Each candidate entry ``(i, j)`` (row
``i``, target column ``j``) gets a score::

    score[i, j] = strength * z[i, j] + eps[i, j],    eps ~ Logistic(0, 1) i.i.d.

and the ``m = round(rate * n_samples * n_features)`` entries with the largest scores are
made missing. Thresholding a logistic latent variable is the logistic model
``P(missing) = expit(strength * z - t)``; choosing ``t`` as the order statistic that
leaves exactly ``m`` entries above it is the intercept calibrated by sorting, so the
realised rate equals ``m / (n_samples * n_features)`` exactly (``rate`` up to rounding).

* ``"none"``: nothing is masked (``rate`` must be 0).
* ``"MCAR"``: ``z = 0``; the ``m`` masked entries form a uniformly random subset of the
  candidate entries (subject to the row rule below).
* ``"MAR"``: ``z[i, j]`` is the standardised *driver score* of row ``i`` (the sum of the
  standardised driver columns divided by the square root of their number, then
  standardised again), the same for every target column of the row. Driver columns
  (by default column 0) are never masked, so the missingness of each target depends
  only on fully observed values. With ``strength > 0`` rows with large driver values
  lose more entries.
* ``"MNAR"``: self-masking; ``z[i, j]`` is entry ``(i, j)`` standardised within its own
  column, so with ``strength > 0`` large values are more likely to go missing.

Standardisation uses the column mean and population standard deviation; a constant
column gets ``z = 0``.

Row rule
--------
No row is ever made entirely missing when ``n_features > 1``: if the target columns
cover every column, the candidate entry with the *lowest* score in each row is
protected (exactly what greedily taking entries by decreasing score while skipping any
that would empty a row gives). With ``n_features == 1`` this is impossible; masked rows
are then entirely missing. Because of the protection (and because MAR drivers are
never masked), rates close to 1 are not achievable; :func:`make_missing` raises a
``ValueError`` giving the maximum.

The randomness is only through ``random_state``: the same seed and inputs give the same
mask.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from em_lib.data.synthetic import as_generator

__all__ = ["MECHANISMS", "MissingResult", "make_missing"]

MECHANISMS = ("none", "MCAR", "MAR", "MNAR")


@dataclass(frozen=True, eq=False)
class MissingResult:
    """Data with imposed missingness.

    Attributes
    ----------
    X_missing : numpy.ndarray of float64, shape (n_samples, n_features)
        A copy of the input with masked entries set to ``NaN``.
    mask : numpy.ndarray of bool, shape (n_samples, n_features)
        ``True`` where an entry was made missing.
    realised_rate : float
        ``mask.sum() / (n_samples * n_features)``: the fraction of *all* entries of
        ``X`` (not only of the target columns) that are missing.
    mechanism : str
        Canonical mechanism name, one of :data:`MECHANISMS`.
    rate : float
        The requested rate (same denominator as ``realised_rate``).
    target_columns : tuple of int
        Columns that were allowed to receive missing values.
    driver_columns : tuple of int
        MAR driver columns (always fully observed); empty for other mechanisms.
    """

    X_missing: np.ndarray
    mask: np.ndarray
    realised_rate: float
    mechanism: str
    rate: float
    target_columns: tuple[int, ...] = ()
    driver_columns: tuple[int, ...] = ()


def _canonical_mechanism(mechanism: object) -> str:
    if isinstance(mechanism, str):
        for name in MECHANISMS:
            if mechanism.strip().lower() == name.lower():
                return name
    raise ValueError(f"unknown missingness mechanism {mechanism!r}; known mechanisms: {MECHANISMS}")


def _check_matrix(X: object) -> np.ndarray:
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"X must be a 2-D array (n_samples, n_features), got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"X must have at least one row and one column, got shape {arr.shape}")
    finite = np.isfinite(arr)
    if not finite.all():
        i, j = np.argwhere(~finite)[0]
        raise ValueError(
            f"X must be complete and finite before imposing missingness; X[{i}, {j}] is "
            f"{float(arr[i, j])!r}"
        )
    return arr


def _check_columns(columns: object, d: int, name: str) -> list[int]:
    if isinstance(columns, int | np.integer) and not isinstance(columns, bool | np.bool_):
        columns = [columns]
    try:
        items = list(columns)  # type: ignore[call-overload]
    except TypeError:
        raise ValueError(f"{name} must be a sequence of column indices, got {columns!r}") from None
    if not items:
        raise ValueError(f"{name} must not be empty")
    out: list[int] = []
    for value in items:
        if (
            isinstance(value, bool | np.bool_)
            or not isinstance(value, int | np.integer)
            or not 0 <= value < d
        ):
            raise ValueError(
                f"{name} entries must be column indices in [0, {d - 1}], got {value!r}"
            )
        if int(value) in out:
            raise ValueError(f"{name} lists column {int(value)} more than once")
        out.append(int(value))
    return sorted(out)


def _standardise(values: np.ndarray) -> np.ndarray:
    """Column-wise (x - mean) / std, shape preserved; constant columns give 0."""
    centred = values - values.mean(axis=0)
    std = values.std(axis=0)
    safe = np.where(std > 0, std, 1.0)
    return np.where(std > 0, centred / safe, 0.0)


def make_missing(
    X: np.ndarray,
    mechanism: str,
    rate: float,
    *,
    random_state: int | np.random.SeedSequence | np.random.Generator,
    columns: Sequence[int] | None = None,
    strength: float = 2.0,
    drivers: Sequence[int] | None = None,
) -> MissingResult:
    """Make a fraction of the entries of a complete data matrix missing.

    Parameters
    ----------
    X : array-like, shape (n_samples, n_features)
        Complete, finite data (no NaN or infinity). Not modified.
    mechanism : {"none", "MCAR", "MAR", "MNAR"}
        Missingness mechanism (case-insensitive); see the module docstring.
    rate : float
        Requested fraction of **all** ``n_samples * n_features`` entries to mask, in
        [0, 1); exactly ``round(rate * n_samples * n_features)`` entries are masked.
        Must be 0 for ``"none"``.
    random_state : int, numpy.random.SeedSequence or numpy.random.Generator
        Source of randomness (required).
    columns : sequence of int, optional
        Target columns that may receive missing values. Default: every column for
        ``"MCAR"`` / ``"MNAR"``; every non-driver column for ``"MAR"``.
    strength : float, default 2.0
        Logistic slope on the standardised driver score (MAR) or own value (MNAR):
        the odds of being missing are multiplied by ``exp(strength)`` per standard
        deviation. Negative values reverse the direction; 0 makes the mechanism
        behave like MCAR. Ignored for ``"none"`` and ``"MCAR"``.
    drivers : sequence of int, optional
        MAR only: the fully observed columns that drive the missingness. Default
        ``[0]``. Must not overlap ``columns``.

    Returns
    -------
    MissingResult
        ``X_missing`` (n_samples, n_features), ``mask`` (n_samples, n_features),
        ``realised_rate`` (masked entries / all entries), the canonical ``mechanism``,
        the requested ``rate`` and the target / driver columns used.

    Raises
    ------
    ValueError
        Unknown mechanism (the known ones are listed); ``rate`` outside [0, 1) or
        nonzero for ``"none"``; a rate that is not achievable (the message gives the
        largest achievable rate); invalid, duplicated or overlapping column indices;
        ``drivers`` given for a mechanism other than MAR; MAR with fewer than two
        columns; non-finite ``strength``; ``X`` not 2-D, empty or not complete.
    """
    name = _canonical_mechanism(mechanism)
    try:
        rate_value = float(rate)
    except (TypeError, ValueError):
        rate_value = math.nan
    if not 0.0 <= rate_value < 1.0:
        raise ValueError(f"rate must be a number in [0, 1), got {rate!r}")
    try:
        slope = float(strength)
    except (TypeError, ValueError):
        slope = math.nan
    if not math.isfinite(slope):
        raise ValueError(f"strength must be a finite number, got {strength!r}")
    data = _check_matrix(X)
    n, d = data.shape
    n_entries = n * d
    rng = as_generator(random_state)

    if drivers is not None and name != "MAR":
        raise ValueError(f"drivers only apply to the MAR mechanism, not {name!r}")
    if name == "none":
        if rate_value != 0.0:
            raise ValueError(f"mechanism 'none' requires rate 0, got {rate!r}")
        return MissingResult(
            X_missing=data.copy(),
            mask=np.zeros((n, d), dtype=bool),
            realised_rate=0.0,
            mechanism=name,
            rate=rate_value,
            target_columns=(),
            driver_columns=(),
        )

    driver_cols: list[int] = []
    if name == "MAR":
        if d < 2:
            raise ValueError(
                "MAR needs at least two columns (a fully observed driver and a target), "
                f"got X with {d} column"
            )
        driver_cols = _check_columns([0] if drivers is None else drivers, d, "drivers")
        if columns is None:
            targets = [j for j in range(d) if j not in driver_cols]
            if not targets:
                raise ValueError("MAR: every column is a driver; no column left to mask")
        else:
            targets = _check_columns(columns, d, "columns")
            overlap = sorted(set(targets) & set(driver_cols))
            if overlap:
                raise ValueError(
                    f"MAR: column {overlap[0]} is both a driver (never masked) and a target"
                )
    else:
        targets = list(range(d)) if columns is None else _check_columns(columns, d, "columns")

    n_missing = int(round(rate_value * n_entries))
    protect = len(targets) == d and d > 1
    capacity = n * len(targets) - (n if protect else 0)
    if n_missing >= n_entries or n_missing > capacity:
        reason = (
            "the driver columns are never masked"
            if name == "MAR"
            else "at least one entry per row is kept"
            if protect
            else "only the target columns can be masked"
            if len(targets) < d
            else "not every entry can be masked"
        )
        max_rate = min(capacity, n_entries - 1) / n_entries
        raise ValueError(
            f"rate {rate_value!r} is not achievable for {name} on X of shape ({n}, {d}) with "
            f"target columns {targets}: {reason}, so at most {min(capacity, n_entries - 1)} "
            f"of {n_entries} entries (rate {max_rate:.6g}) can be masked"
        )

    # Latent scores, shape (n, len(targets)).
    if name == "MCAR" or slope == 0.0:
        z = np.zeros((n, len(targets)))
    elif name == "MAR":
        drive = _standardise(data[:, driver_cols]).sum(axis=1) / math.sqrt(len(driver_cols))
        z = np.repeat(_standardise(drive[:, None]), len(targets), axis=1)
    else:  # MNAR
        z = _standardise(data[:, targets])
    scores = slope * z + rng.logistic(size=(n, len(targets)))

    if protect:
        lowest = np.argmin(scores, axis=1)
        scores[np.arange(n), lowest] = -np.inf
    mask = np.zeros((n, d), dtype=bool)
    if n_missing > 0:
        flat = np.argsort(-scores, axis=None, kind="stable")[:n_missing]
        rows, cols = np.unravel_index(flat, scores.shape)
        mask[rows, np.asarray(targets)[cols]] = True
    X_missing = data.copy()
    X_missing[mask] = np.nan
    return MissingResult(
        X_missing=X_missing,
        mask=mask,
        realised_rate=float(mask.sum()) / n_entries,
        mechanism=name,
        rate=rate_value,
        target_columns=tuple(targets),
        driver_columns=tuple(driver_cols),
    )
