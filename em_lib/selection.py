"""Model selection over a grid in one call: Gaussian mixtures (:func:`select_mixture`) and
Gaussian HMMs (:func:`select_hmm`).

Every ``(covariance_type, n_components)`` cell of the grid is fitted once on one shared
:class:`~em_lib.numerics.fitting.MixtureLattice` with nested starts on, so a richer model
starts from the solutions of the models it contains and its best log-likelihood is never below
theirs (full >= diag >= spherical, full >= tied, K >= K - 1, up to round-off): the criteria
compare optima that are consistent with one another rather than whatever each isolated fit
happened to reach. NaN entries of ``X`` are missing values (exact missing-data EM).

:func:`select_hmm` does the same for hidden Markov models on one
:class:`~em_lib.numerics.hmm.driver.HMMLattice`: the ``K`` fit also starts from the ``K - 1``
solution (a state split, and a new state of tiny probability) and the full fit from the diag
solution of the same ``K`` (when the grid has both), so K >= K - 1 and full >= diag hold for
the fitted log-likelihoods.

Criteria follow scikit-learn's sign: ``bic``, ``aic`` and ``icl`` are ``-2 log L + penalty``,
lower is better. pandas (for the table) is imported when the function runs, never with
:mod:`em_lib`.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._estimator import check_mixture_data, convergence_warning_class, validate_X
from .mixture import GaussianMixture, _fit_dtype
from .numerics.covariance import COVARIANCE_TYPES, any_to_full
from .numerics.criteria import information_criteria
from .numerics.fitting import MixtureLattice
from .numerics.gaussian import weighted_moments
from .numerics.starts import as_generator

__all__ = ["CRITERIA", "HMM_CRITERIA", "SelectionResult", "select_hmm", "select_mixture"]

CRITERIA = ("bic", "aic", "icl")
HMM_CRITERIA = ("bic", "aic")
# GaussianHMM parameters select_hmm passes through as **settings
HMM_SETTINGS = (
    "n_iter",
    "tol",
    "init",
    "reg_covar",
    "prior",
    "startprob_prior",
    "transmat_prior",
    "engine",
)
HMM_TABLE_COLUMNS = (
    "covariance_type",
    "n_components",
    "log_likelihood",
    "n_parameters",
    "bic",
    "aic",
    "converged",
    "n_iter",
    "n_samples",
    "origin",
)
# GaussianMixture parameters select_mixture passes through as **settings
SETTINGS = (
    "tol",
    "reg_covar",
    "max_iter",
    "init_params",
    "tol_type",
    "prior",
    "polish_tol",
    "polish_starts",
)
TABLE_COLUMNS = (
    "covariance_type",
    "n_components",
    "log_likelihood",
    "n_parameters",
    "bic",
    "aic",
    "icl",
    "converged",
    "n_iter",
    "n_samples",
    "degenerate",
)
# a fitted component is degenerate (a spurious maximum of the likelihood, McLachlan & Peel
# 2000, section 3.10) when some variance is below this fraction of the feature's variance ...
DEGENERATE_VARIANCE = 1e-4
# ... (or the smallest eigenvalue, of the data covariance's), or when it holds fewer rows than
# this (expected count: weight times n; d + 1 for a full covariance)
DEGENERATE_SIZE = 2.0


@dataclass
class SelectionResult:
    """What :func:`select_mixture` (or :func:`select_hmm`) found.

    Attributes
    ----------
    best_estimator : GaussianMixture (GaussianHMM for select_hmm)
        The fitted model of the cell with the lowest criterion (first in table order on a tie).
    estimators : dict
        ``(covariance_type, n_components)`` -> fitted :class:`~em_lib.GaussianMixture`, one per
        cell; each one's parameters (``nested_starts=True``, the seed, ``n_init``, the
        settings) refit exactly that cell on the same data.
    table : pandas.DataFrame
        One row per cell, in grid order (covariance types as given, K ascending): columns
        ``covariance_type``, ``n_components``, ``log_likelihood``, ``n_parameters``, ``bic``,
        ``aic``, ``icl``, ``converged``, ``n_iter``, ``n_samples`` (rows with at least one
        observed value), ``degenerate`` (see :func:`select_mixture`). Lower criteria are
        better. :func:`select_hmm`'s table is described
        there.
    criterion : {"bic", "aic", "icl"}
    """

    best_estimator: Any
    estimators: dict
    table: Any
    criterion: str

    @property
    def best_cell(self) -> tuple[str, int]:
        """``(covariance_type, n_components)`` of :attr:`best_estimator`."""
        best = self.best_estimator
        return best.covariance_type, int(best.n_components)


def _grid_components(n_components):
    values = [n_components] if isinstance(n_components, numbers.Integral) else n_components
    try:
        values = list(values)
    except TypeError:
        raise ValueError(
            f"n_components must be an int or a sequence of ints, got {n_components!r}"
        ) from None
    if not values:
        raise ValueError("n_components is empty: give at least one number of components")
    bad = [k for k in values if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1]
    if bad:
        raise ValueError(f"n_components must hold integers >= 1, got {bad}")
    return sorted({int(k) for k in values})


def _grid_types(covariance_types):
    values = [covariance_types] if isinstance(covariance_types, str) else covariance_types
    try:
        values = list(values)
    except TypeError:
        raise ValueError(
            f"covariance_types must be a string or a sequence of strings, got {covariance_types!r}"
        ) from None
    if not values:
        raise ValueError("covariance_types is empty: give at least one covariance type")
    unknown = [value for value in values if value not in COVARIANCE_TYPES]
    if unknown:
        raise ValueError(
            f"unknown covariance type(s) {unknown}; covariance_types must be drawn from "
            f"{list(COVARIANCE_TYPES)}"
        )
    return list(dict.fromkeys(values))


def _seed(random_state):
    """One seed for every cell: ints and SeedSequences as given (each fit gets the same
    stream, as an isolated fit with that seed); None, a Generator or a RandomState is drawn
    from once, so that every estimator's ``random_state`` reproduces its cell."""
    if isinstance(random_state, np.random.SeedSequence):
        return random_state
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        as_generator(random_state)  # rejects negative seeds with its message
        return int(random_state)
    return int(as_generator(random_state).integers(0, 2**63 - 1))


def _check_settings(settings):
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        fixed = {
            "n_components",
            "covariance_type",
            "n_init",
            "random_state",
            "nested_starts",
        } & set(unknown)
        hint = (
            f"; {sorted(fixed)} are select_mixture's own arguments or fixed "
            "(nested_starts is always True)"
            if fixed
            else ""
        )
        raise TypeError(
            f"select_mixture() got unexpected setting(s) {unknown}; the GaussianMixture "
            f"settings it passes through are {list(SETTINGS)}{hint}"
        )


def _check_data(X, largest):
    X, n_used = check_mixture_data(X, "select_mixture", stacklevel=4)
    if largest >= n_used:
        raise ValueError(
            f"n_components up to {largest} needs more usable rows than that: X has {n_used} "
            "row(s) with at least one observed value; every K must be below it"
        )
    return X


def _selection(rows, columns, estimators, criterion, not_converged, limit, knob):
    """The table of a grid, the warning for cells that did not converge, and the result with
    the best cell by ``criterion`` (lowest; among the cells not marked ``degenerate`` when the
    table has that column and such a cell exists)."""
    import pandas as pd

    if not_converged:
        warnings.warn(
            f"the kept start of {len(not_converged)} cell(s) did not converge in {limit}: "
            f"{not_converged}; increase {knob} or tol.",
            convergence_warning_class(),
            stacklevel=3,
        )
    table = pd.DataFrame(rows, columns=list(columns))
    scores = table[criterion].to_numpy(dtype=float)
    flags = table["degenerate"].to_numpy(dtype=bool) if "degenerate" in table else None
    best, passed = lowest_usable(scores, flags)
    best = max(best, 0)  # no finite criterion at all: the first cell
    if passed:
        lowest = _cell(table, int(np.nanargmin(np.where(np.isfinite(scores), scores, np.nan))))
        chosen = f"the best cell without one is {_cell(table, best)}"
    elif flags is not None and flags[best]:
        lowest = _cell(table, best)
        chosen = "every cell has one, so it is kept"
    if passed or (flags is not None and flags[best]):
        warnings.warn(
            f"the lowest {criterion} is that of {lowest}, which has a degenerate component (a "
            f"variance below {DEGENERATE_VARIANCE:g} of the data's, or fewer rows than its "
            f"covariance needs: a spurious maximum); {chosen}. See "
            "table['degenerate'], or fit with prior='default'.",
            UserWarning,
            stacklevel=3,
        )
    best_key = _cell(table, best)
    return SelectionResult(
        best_estimator=estimators[best_key], estimators=estimators, table=table, criterion=criterion
    )


def lowest_usable(scores, degenerate_flags=None) -> tuple[int, int]:
    """The rule by which a best fit is chosen from fits scored by a criterion (lower is
    better), in :func:`select_mixture` and in the workflow: the lowest finite score among the
    fits not flagged degenerate (:func:`degenerate`) when such a fit exists, else the lowest
    finite score.

    ``scores``: array of any shape (NaN or inf: not fitted or failed); ``degenerate_flags``:
    bool array of the same shape, or None. Returns ``(flat index, passed)``: -1 when no score
    is finite, and the number of degenerate fits with a lower score than the chosen one."""
    scores = np.asarray(scores, dtype=float).ravel()
    finite = np.isfinite(scores)
    if not finite.any():
        return -1, 0
    clean = finite.copy()
    if degenerate_flags is not None:
        clean &= ~np.asarray(degenerate_flags, dtype=bool).ravel()
    pool = clean if clean.any() else finite
    best = int(np.argmin(np.where(pool, scores, np.inf)))
    passed = int((finite & ~clean & (scores < scores[best])).sum()) if clean.any() else 0
    return best, passed


def data_covariance(X, sample_weight=None):
    """Covariance matrix of the rows (weighted by ``sample_weight``), each entry over the
    rows where both of its features are observed, around the columns' observed means."""
    X = np.asarray(X, dtype=float)
    weights = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, float)
    means, _ = weighted_moments(X, weights)
    observed = ~np.isnan(X)
    centred = np.where(observed, X - means, 0.0)
    counts = (observed * weights[:, None]).T @ observed
    with np.errstate(invalid="ignore", divide="ignore"):
        return (centred * weights[:, None]).T @ centred / counts


def _cell(table, row):
    return (table["covariance_type"].iloc[row], int(table["n_components"].iloc[row]))


def degenerate(weights, covariances, covariance_type, data_covariance, n_samples) -> bool:
    """Whether a fitted mixture (``weights`` (K,), ``covariances`` of ``covariance_type``)
    has a degenerate component, given the data's covariance matrix (d, d) and size:

    * a variance (diagonal entry) below ``DEGENERATE_VARIANCE`` times that feature's
      variance, or a smallest eigenvalue below ``DEGENERATE_VARIANCE`` times the data
      covariance's smallest one (flat in some direction);
    * or fewer rows (weight times ``n_samples``) than its covariance needs: ``d + 1`` for
      ``full``, ``DEGENERATE_SIZE`` (2) otherwise.

    Such a component sits on a few (often tied) values, its covariance singular but for
    ``reg_covar``: the likelihood, and with it every criterion, grows beyond what the data
    support."""
    weights = np.asarray(weights, dtype=float)
    data_covariance = np.atleast_2d(np.asarray(data_covariance, dtype=float))
    k, d = weights.shape[0], data_covariance.shape[0]
    full = any_to_full(np.asarray(covariances, dtype=float)[None], covariance_type, k, d)[0]
    variances = np.diagonal(full, axis1=-2, axis2=-1)
    small = (variances < DEGENERATE_VARIANCE * np.diagonal(data_covariance)).any()
    flat = (
        np.linalg.eigvalsh(full).min()
        < DEGENERATE_VARIANCE * np.linalg.eigvalsh(data_covariance).min()
    )
    needed = d + 1 if covariance_type == "full" else DEGENERATE_SIZE
    return bool(small or flat or (weights * n_samples < needed).any())


def select_mixture(
    X,
    n_components=range(1, 10),
    covariance_types=("full", "diag", "spherical", "tied"),
    criterion="bic",
    *,
    n_init=10,
    random_state=None,
    sample_weight=None,
    **settings,
) -> SelectionResult:
    """Fit every ``(covariance_type, K)`` of a grid once and pick the best by a criterion.

    Parameters
    ----------
    X : (n_samples, n_features) array-like; NaN marks a missing entry
    n_components : int or iterable of int, default ``range(1, 10)``
        Every K must be below the number of rows with at least one observed value.
    covariance_types : str or iterable of str, default all four
        Any of ``"full"``, ``"diag"``, ``"spherical"``, ``"tied"``.
    criterion : {"bic", "aic", "icl"}, default "bic"
        Lower is better (scikit-learn's sign); ICL is BIC plus twice the entropy of the hard
        classification.
    n_init : int, default 10
        Random starts per cell (besides the nested starts from the contained models).
    random_state : None, int, SeedSequence or Generator
        The seed of every cell (an int gives each cell the starts of
        ``GaussianMixture(K, covariance_type=t, n_init=n_init, random_state=that int,
        nested_starts=True)``, so each cell equals that isolated fit). None or a Generator is
        drawn from once for an int seed, recorded in the estimators' ``random_state``.
    sample_weight : (n_samples,) array, optional
        Frequency weights of the rows, as in :meth:`GaussianMixture.fit`: every cell is fitted
        with them, and the criteria count ``n`` as their sum (``n_samples`` in the table).
    **settings
        Other :class:`~em_lib.GaussianMixture` settings: ``tol``, ``reg_covar``, ``max_iter``,
        ``init_params``, ``tol_type``, ``prior``, ``polish_tol``, ``polish_starts``.

    Returns
    -------
    SelectionResult

    Notes
    -----
    Fitting a cell fits the models it contains (through the lattice) even when they are not in
    the grid: ``K = 1 .. max(n_components)`` of the grid's types, and diag, tied and spherical
    under full. A ConvergenceWarning lists the cells whose kept start did not converge.

    Degenerate cells: with many starts and nested starts, large K reaches spurious maxima of
    the likelihood, components on a few (often tied) values whose variance only ``reg_covar``
    keeps positive (on Old Faithful and iris every cell from K = 5 on for diag, K = 6-9 for
    full); their log-likelihood, and so every criterion, then rewards them. A cell is marked
    ``degenerate`` in the table (:func:`degenerate`: some variance below 1e-4 of the
    feature's, a direction flatter than 1e-4 of the data's flattest, or fewer rows than
    the covariance needs) and is not chosen as the best while a
    cell without one exists (a UserWarning says so when it had the lowest criterion), much as
    mclust reports no BIC for a fit with a singular covariance. ``prior="default"`` (mclust's
    conjugate prior; Fraley & Raftery 2007) regularises the fits instead.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {list(CRITERIA)}, got {criterion!r}")
    components = _grid_components(n_components)
    types = _grid_types(covariance_types)
    _check_settings(settings)
    dtype = _fit_dtype(X)
    X = _check_data(X, components[-1])
    seed = _seed(random_state)
    template = GaussianMixture(n_init=n_init, random_state=seed, nested_starts=True, **settings)
    lattice = MixtureLattice(X, template._settings(), seed, sample_weight)

    estimators, rows, not_converged = {}, [], []
    covariance = data_covariance(X, sample_weight)
    for covariance_type in types:
        for k in components:
            result = lattice.fit(k, covariance_type)
            estimator = GaussianMixture(
                **{**template.get_params(), "n_components": k, "covariance_type": covariance_type}
            )
            estimator._set_result(result, X.shape[1], dtype=dtype)
            values = estimator.criteria(X, sample_weight)
            estimators[covariance_type, k] = estimator
            if not result.converged and result.settings.max_iter > 0:
                not_converged.append((covariance_type, k))
            rows.append(
                {
                    "covariance_type": covariance_type,
                    "n_components": k,
                    "log_likelihood": result.log_likelihood,
                    "n_parameters": estimator._n_parameters(),
                    "bic": float(values["bic"]),
                    "aic": float(values["aic"]),
                    "icl": float(values["icl"]),
                    "converged": bool(result.converged),
                    "n_iter": int(result.n_iter),
                    "n_samples": result.n_samples,
                    "degenerate": degenerate(
                        estimator.weights_,
                        estimator.covariances_,
                        covariance_type,
                        covariance,
                        result.n_samples,
                    ),
                }
            )
    limit = f"{template.max_iter} iterations"
    return _selection(rows, TABLE_COLUMNS, estimators, criterion, not_converged, limit, "max_iter")


def _check_hmm_settings(settings):
    unknown = sorted(set(settings) - set(HMM_SETTINGS))
    if unknown:
        own = {"n_components", "covariance_type", "n_init", "random_state"} & set(unknown)
        fixed = {"init_params", "params"} & set(unknown)
        hints = []
        if own:
            hints.append(f"{sorted(own)} are select_hmm's own arguments")
        if fixed:
            hints.append(f"{sorted(fixed)} are fixed ('stmc': every parameter is fitted)")
        hint = f"; {'; '.join(hints)}" if hints else ""
        raise TypeError(
            f"select_hmm() got unexpected setting(s) {unknown}; the GaussianHMM settings it "
            f"passes through are {list(HMM_SETTINGS)}{hint}"
        )
    if "n_iter" in settings and settings["n_iter"] == 0:
        raise ValueError("select_hmm needs n_iter >= 1: every cell is fitted by Baum-Welch")


def _hmm_estimator(params, result, n_features):
    """A GaussianHMM with ``params`` holding the fit ``result``."""
    from .hmm import GaussianHMM

    estimator = GaussianHMM(**params)
    estimator._set_result(result, n_features)
    return estimator


def select_hmm(
    X,
    lengths=None,
    n_components=range(1, 6),
    covariance_types=("full", "diag"),
    criterion="bic",
    *,
    n_init=10,
    random_state=None,
    **settings,
) -> SelectionResult:
    """Fit a Gaussian HMM for every ``(covariance_type, K)`` of a grid and pick the best by a
    criterion, with nested starts so that richer models are never worse fitted.

    Parameters
    ----------
    X : (n_samples, n_features) array-like; NaN marks a missing entry
    lengths : sequence of int or None
        Lengths of the sequences stacked in ``X`` (None: one sequence); every sequence needs
        at least 2 steps.
    n_components : int or iterable of int, default ``range(1, 6)``
        Every K must be below the number of steps with at least one observed value.
    covariance_types : str or iterable of str, default ``("full", "diag")``
        Any of ``"full"``, ``"diag"``, ``"spherical"``, ``"tied"``.
    criterion : {"bic", "aic"}, default "bic"
        Lower is better (scikit-learn's sign; ``n`` counts the steps with an observed value).
    n_init : int, default 10
        Drawn starts per cell (besides the nested starts).
    random_state : None, int, SeedSequence or Generator
        The seed of every cell: an int gives each cell the drawn starts of
        ``GaussianHMM(K, covariance_type=t, n_init=n_init, random_state=that int)``; None or a
        Generator is drawn from once for an int seed, recorded in the estimators'
        ``random_state``.
    **settings
        Other :class:`~em_lib.GaussianHMM` settings: ``n_iter``, ``tol``, ``init``,
        ``reg_covar``, ``prior``, ``startprob_prior``, ``transmat_prior``, ``engine``
        (``init_params`` and ``params`` are ``"stmc"``: every parameter is fitted).

    Returns
    -------
    SelectionResult
        ``estimators`` maps ``(covariance_type, K)`` to a fitted :class:`~em_lib.GaussianHMM`;
        ``table`` has one row per cell in grid order (covariance types as given, K ascending)
        with ``covariance_type``, ``n_components``, ``log_likelihood`` (the estimator's
        ``score(X, lengths)``), ``n_parameters``, ``bic``, ``aic``, ``converged``, ``n_iter``,
        ``n_samples`` (steps with an observed value) and ``origin`` (the kind of start the
        fit came from: a drawn kind, ``nested:diag``, ``split:K=<K-1>`` or
        ``epsilon:K=<K-1>``).

    Notes
    -----
    The cells are fitted on one :class:`~em_lib.numerics.hmm.driver.HMMLattice`: the cell
    ``(t, K)`` runs the ``n_init`` drawn starts of the isolated fit together with starts
    from the cells it contains, fitted first: ``(t, K - 1)`` with its largest state split in
    two and with a new state of probability 1e-8, and the same K of every type the grid
    holds under ``t`` (``diag`` and ``tied`` under ``full``, ``spherical`` under ``diag``),
    written in type ``t``. Every ``K = 1 .. max(n_components)`` is fitted. Baum-Welch never lowers the
    likelihood of a start, so ``log L(t, K) >= log L(t, K - 1)`` and, with both types in the
    grid, ``log L(full, K) >= log L(diag, K)`` up to round-off and a loss of at most about ``T * 1e-8`` (without a
    prior; with one, the same holds for the penalised objective). A cell's estimator holds
    that fit; refitting it with its parameters runs the drawn starts alone, which reach a
    log-likelihood no higher, up to polishing. A ConvergenceWarning lists the cells whose
    kept start did not converge.
    """
    from .numerics.hmm import check_sequences
    from .numerics.hmm.driver import HMMLattice

    if criterion not in HMM_CRITERIA:
        raise ValueError(f"criterion must be one of {list(HMM_CRITERIA)}, got {criterion!r}")
    components = _grid_components(n_components)
    types = _grid_types(covariance_types)
    _check_hmm_settings(settings)
    X = validate_X(X, estimator_name="select_hmm")
    X, lengths, _ = check_sequences(X, lengths, min_length=2)
    n_used = int((~np.isnan(X).all(axis=1)).sum())
    if components[-1] >= n_used:
        raise ValueError(
            f"n_components up to {components[-1]} needs more observed steps than that: X has "
            f"{n_used} step(s) with at least one observed value; every K must be below it"
        )
    seed = _seed(random_state)
    from .hmm import GaussianHMM

    template = GaussianHMM(n_init=n_init, random_state=seed, **settings)
    lattice = HMMLattice(X, lengths, template._settings(), seed, covariance_types=types)

    estimators, rows, not_converged = {}, [], []
    for covariance_type in types:
        for k in components:
            result = lattice.fit(k, covariance_type)
            params = {
                **template.get_params(),
                "n_components": k,
                "covariance_type": covariance_type,
            }
            estimator = _hmm_estimator(params, result, X.shape[1])
            log_likelihood = estimator.score(X, lengths)
            values = information_criteria(log_likelihood, estimator._n_parameters(), n_used)
            estimators[covariance_type, k] = estimator
            if not result.converged:
                not_converged.append((covariance_type, k))
            rows.append(
                {
                    "covariance_type": covariance_type,
                    "n_components": k,
                    "log_likelihood": log_likelihood,
                    "n_parameters": estimator._n_parameters(),
                    "bic": float(values["bic"]),
                    "aic": float(values["aic"]),
                    "converged": bool(result.converged),
                    "n_iter": int(result.n_iter),
                    "n_samples": n_used,
                    "origin": str(result.origin[result.best_start]),
                }
            )
    limit = f"{template.n_iter} iterations"
    return _selection(
        rows, HMM_TABLE_COLUMNS, estimators, criterion, not_converged, limit, "n_iter"
    )
