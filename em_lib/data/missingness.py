"""Impose missing values on data under MCAR, MAR or MNAR mechanisms.

The data may already have missing values of its own (``NaN``): synthetic missingness
is imposed *on top of* them. Entries that are already missing stay missing and are
never candidates; only entries that are still observed can be masked.

All mechanisms share one latent-logistic model. Each candidate entry ``(i, j)`` (row
``i``, target column ``j``, ``X[i, j]`` observed) gets a score::

    score[i, j] = strength * z[i, j] + eps[i, j],    eps ~ Logistic(0, 1) i.i.d.

and the ``m = round(rate * n_samples * n_features)`` candidate entries with the largest
scores are made missing. Thresholding a logistic latent variable is the logistic model
``P(missing) = expit(strength * z - t)``; choosing ``t`` as the order statistic that
leaves exactly ``m`` entries above it is the intercept calibrated by sorting, so exactly
``m`` entries are newly masked (``rate`` up to rounding).

Rates
-----
All rates share the denominator ``n_samples * n_features`` (every entry of ``X``, not
only the target columns):

* ``rate`` (requested) and ``realised_rate = m / (n_samples * n_features)``: the share
  of all entries that the mechanism makes missing **in addition** to the data's own
  missing values.
* ``own_missing_rate``: the share of all entries already missing in the input.
* ``total_missing_rate = own_missing_rate + realised_rate`` (computed as
  ``(own + new) / (n_samples * n_features)``): the realised rate counting both the
  data's own and the imposed missing values. With an own rate ``r0`` the total is
  ``r0 + rate`` up to rounding.

On complete data ``own_missing_rate`` is 0 and ``total_missing_rate`` equals
``realised_rate``; the masks are exactly those the complete-data algorithm gives.

Mechanisms
----------
* ``"none"``: nothing is masked (``rate`` must be 0); the data is returned as it is,
  with its own missing values.
* ``"MCAR"``: ``z = 0``; the ``m`` masked entries form a uniformly random subset of the
  candidate entries (subject to the row rule below).
* ``"MAR"``: ``z[i, j]`` is the standardised *driver score* of row ``i`` (the sum of the
  standardised driver columns divided by the square root of their number, then
  standardised again), the same for every target column of the row. Driver columns
  (by default column 0) are never masked, so on complete data the missingness of each
  target depends only on fully observed values. If a driver column has missing values
  of its own, it is standardised over its observed values and a missing driver value
  counts as 0, i.e. as the column mean (a row whose drivers are all missing gets the
  average driver score).
* ``"MNAR"``: self-masking; ``z[i, j]`` is entry ``(i, j)`` standardised within its own
  column over the column's observed values, so with ``strength > 0`` large values are
  more likely to go missing. Entries already missing are not candidates.

Standardisation uses the mean and population standard deviation of the observed values
of a column; a constant column, or one with no observed value, gets ``z = 0``.

Row rule
--------
No row is ever made entirely missing when ``n_features > 1``, counting the data's own
missing values: in a row whose observed entries are all candidates (for example every
column is a target), the candidate with the *lowest* score is protected, so a row with
only one observed entry left never loses it. This is exactly what greedily taking
entries by decreasing score while skipping any that would empty a row gives. A row
that still has an observed non-target entry needs no protection; a row that the data
itself leaves entirely missing stays so. With ``n_features == 1`` the rule is
impossible; masked rows are then entirely missing, but at least one entry of ``X``
stays observed. Because of the protection, the data's own missing values and MAR
drivers never being masked, high rates are not achievable; :func:`make_missing` raises
a ``ValueError`` giving the maximum achievable ``rate``.

The randomness is only through ``random_state``: the same seed and inputs give the same
mask. The logistic noise is drawn for every (row, target column) pair, candidate or
not, so the draws do not depend on where the data's own values are missing.
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
    """Data with imposed missingness, on top of the data's own missing values.

    All rates have the denominator ``n_samples * n_features`` (every entry of ``X``).

    Attributes
    ----------
    X_missing : numpy.ndarray of float64, shape (n_samples, n_features)
        A copy of the input with the newly masked entries set to ``NaN``; the data's
        own missing entries are ``NaN`` too.
    mask : numpy.ndarray of bool, shape (n_samples, n_features)
        ``True`` only where an entry was newly made missing; disjoint from the data's
        own missing entries (see :attr:`own_mask`).
    realised_rate : float
        ``mask.sum() / (n_samples * n_features)``: the share of *all* entries of ``X``
        (not only of the target columns) newly made missing, in addition to the data's
        own missing values.
    mechanism : str
        Canonical mechanism name, one of :data:`MECHANISMS`.
    rate : float
        The requested rate of newly masked entries (same denominator as
        ``realised_rate``).
    target_columns : tuple of int
        Columns that were allowed to receive missing values.
    driver_columns : tuple of int
        MAR driver columns (never masked); empty for other mechanisms.
    own_missing_rate : float
        Share of all entries that were already missing (``NaN``) in the input.
    total_missing_rate : float
        The realised rate counting both the data's own and the newly masked entries:
        ``(own + new) / (n_samples * n_features)``, i.e. ``isnan(X_missing).mean()``.
        Defaults to ``own_missing_rate + realised_rate`` when not given.
    """

    X_missing: np.ndarray
    mask: np.ndarray
    realised_rate: float
    mechanism: str
    rate: float
    target_columns: tuple[int, ...] = ()
    driver_columns: tuple[int, ...] = ()
    own_missing_rate: float = 0.0
    total_missing_rate: float | None = None

    def __post_init__(self) -> None:
        if self.total_missing_rate is None:
            total = float(self.own_missing_rate) + float(self.realised_rate)
            object.__setattr__(self, "total_missing_rate", total)

    @property
    def own_mask(self) -> np.ndarray:
        """``True`` where the input itself was missing, shape (n_samples, n_features)."""
        return np.isnan(self.X_missing) & ~self.mask


def _canonical_mechanism(mechanism: object) -> str:
    if isinstance(mechanism, str):
        for name in MECHANISMS:
            if mechanism.strip().lower() == name.lower():
                return name
    raise ValueError(f"unknown missingness mechanism {mechanism!r}; known mechanisms: {MECHANISMS}")


def _check_matrix(X: object) -> np.ndarray:
    """``X`` as a float64 array (n, d); ``NaN`` (missing) allowed, infinities not."""
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"X must be a 2-D array (n_samples, n_features), got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"X must have at least one row and one column, got shape {arr.shape}")
    infinite = np.isinf(arr)
    if infinite.any():
        i, j = np.argwhere(infinite)[0]
        raise ValueError(
            f"X must be finite where observed (NaN marks a missing value); X[{i}, {j}] is "
            f"{float(arr[i, j])!r}"
        )
    if np.isnan(arr).all():
        raise ValueError(f"X of shape {arr.shape} has no observed entry (every entry is NaN)")
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
    """Column-wise (x - mean) / std over observed values, shape preserved.

    Constant columns and columns without an observed value give 0; a missing (``NaN``)
    entry gives 0, i.e. it counts as the column mean.
    """
    observed = ~np.isnan(values)
    if observed.all():
        # Complete data: the original computation, bit for bit.
        centred = values - values.mean(axis=0)
        std = values.std(axis=0)
        safe = np.where(std > 0, std, 1.0)
        return np.where(std > 0, centred / safe, 0.0)
    count = observed.sum(axis=0)
    filled = np.where(observed, values, 0.0)
    mean = filled.sum(axis=0) / np.maximum(count, 1)
    centred = np.where(observed, values - mean, 0.0)
    std = np.sqrt((centred**2).sum(axis=0) / np.maximum(count, 1))
    safe = np.where(std > 0, std, 1.0)
    return np.where(observed & (std > 0), centred / safe, 0.0)


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
    """Make a fraction of the entries of a data matrix missing, on top of its own NaN.

    Parameters
    ----------
    X : array-like, shape (n_samples, n_features)
        The data; ``NaN`` marks the data's own missing values (kept as they are), every
        observed value must be finite. At least one entry must be observed. Not
        modified.
    mechanism : {"none", "MCAR", "MAR", "MNAR"}
        Missingness mechanism (case-insensitive); see the module docstring.
    rate : float
        Requested share of **all** ``n_samples * n_features`` entries to make missing
        *in addition* to the data's own missing values, in [0, 1); exactly
        ``round(rate * n_samples * n_features)`` still observed entries are masked, so
        the total missing share is ``own_missing_rate + rate`` up to rounding. Must be
        0 for ``"none"``.
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
        MAR only: the columns that drive the missingness (never masked). Default
        ``[0]``. Must not overlap ``columns``. Missing driver values count as the
        driver's observed mean.

    Returns
    -------
    MissingResult
        ``X_missing`` (n_samples, n_features) with the own and the new missing values,
        ``mask`` (n_samples, n_features) marking only the newly masked entries,
        ``realised_rate`` (newly masked / all entries), ``own_missing_rate``,
        ``total_missing_rate`` ((own + new) / all entries), the canonical
        ``mechanism``, the requested ``rate`` and the target / driver columns used.

    Raises
    ------
    ValueError
        Unknown mechanism (the known ones are listed); ``rate`` outside [0, 1) or
        nonzero for ``"none"``; a rate that is not achievable given the row rule, the
        target columns and the data's own missing values (the message gives the
        largest achievable rate); invalid, duplicated or overlapping column indices;
        ``drivers`` given for a mechanism other than MAR; MAR with fewer than two
        columns; non-finite ``strength``; ``X`` not 2-D, empty, with an infinite value
        or with no observed entry.
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
    own = np.isnan(data)
    n_own = int(own.sum())
    own_rate = n_own / n_entries
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
            own_missing_rate=own_rate,
            total_missing_rate=own_rate,
        )

    driver_cols: list[int] = []
    if name == "MAR":
        if d < 2:
            raise ValueError(
                "MAR needs at least two columns (a driver that is never masked and a "
                f"target), got X with {d} column"
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
    target_idx = np.asarray(targets)

    # Candidates: observed entries of the target columns, shape (n, len(targets)).
    candidate = ~own[:, target_idx]
    # Row rule (d > 1): a row whose observed entries are all candidates keeps one.
    non_target = np.ones(d, dtype=bool)
    non_target[target_idx] = False
    has_other = (~own[:, non_target]).any(axis=1)
    has_candidate = candidate.any(axis=1)
    protected_rows = has_candidate & ~has_other if d > 1 else np.zeros(n, dtype=bool)

    n_missing = int(round(rate_value * n_entries))
    capacity = int(candidate.sum()) - int(protected_rows.sum())
    max_new = max(0, min(capacity, n_entries - 1 - n_own))
    if n_missing > max_new:
        reasons = []
        if n_own:
            reasons.append(
                f"the data's own {n_own} missing entries (own missing rate "
                f"{own_rate:.6g}) cannot be masked again"
            )
        if name == "MAR":
            reasons.append("the driver columns are never masked")
        elif len(targets) < d:
            reasons.append("only the target columns can be masked")
        if protected_rows.any():
            reasons.append(
                "at least one entry per row is kept"
                + (" (counting the data's own missing entries)" if n_own else "")
            )
        if not reasons or n_entries - 1 - n_own <= capacity:
            reasons.append("not every entry can be missing")
        max_rate = max_new / n_entries
        total = (
            f"; total missing rate counting the own missing values at most "
            f"{(max_new + n_own) / n_entries:.6g}"
            if n_own
            else ""
        )
        raise ValueError(
            f"rate {rate_value!r} is not achievable for {name} on X of shape ({n}, {d}) with "
            f"target columns {targets}: {', '.join(reasons)}, so at most {max_new} "
            f"of {n_entries} entries (rate {max_rate:.6g}) can be masked{total}"
        )

    # Latent scores, shape (n, len(targets)); noise for every pair, candidate or not.
    if name == "MCAR" or slope == 0.0:
        z = np.zeros((n, len(targets)))
    elif name == "MAR":
        drive = _standardise(data[:, driver_cols]).sum(axis=1) / math.sqrt(len(driver_cols))
        z = np.repeat(_standardise(drive[:, None]), len(targets), axis=1)
    else:  # MNAR
        z = _standardise(data[:, targets])
    scores = slope * z + rng.logistic(size=(n, len(targets)))
    scores[~candidate] = -np.inf

    if protected_rows.any():
        rows = np.flatnonzero(protected_rows)
        lowest = np.argmin(np.where(candidate[rows], scores[rows], np.inf), axis=1)
        scores[rows, lowest] = -np.inf
    mask = np.zeros((n, d), dtype=bool)
    if n_missing > 0:
        flat = np.argsort(-scores, axis=None, kind="stable")[:n_missing]
        rows, cols = np.unravel_index(flat, scores.shape)
        mask[rows, target_idx[cols]] = True
    X_missing = data.copy()
    X_missing[mask] = np.nan
    n_new = int(mask.sum())
    return MissingResult(
        X_missing=X_missing,
        mask=mask,
        realised_rate=float(n_new) / n_entries,
        mechanism=name,
        rate=rate_value,
        target_columns=tuple(targets),
        driver_columns=tuple(driver_cols),
        own_missing_rate=own_rate,
        total_missing_rate=float(n_new + n_own) / n_entries,
    )
