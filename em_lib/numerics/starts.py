"""What every batched fit shares: the best-start choice, seeding and matching solutions.

``PerStartResults`` gives a results dataclass (mixture or HMM) its best-start choice over the
start (init) axis; the class lists its per-start fields in ``PER_START``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np


class PerStartResults:
    """Mixin for dataclasses whose per-start arrays have the start dimension first."""

    PER_START: tuple[str, ...] = ()

    @property
    def objective(self) -> np.ndarray:
        """Penalised (with a prior) or plain log-likelihood, summed over the data: (I,)."""
        return self.log_likelihood + self.log_prior

    @property
    def best(self) -> int:
        """Index of the start with the highest objective among those that did not fail."""
        score = np.where(self.failed | ~np.isfinite(self.objective), -np.inf, self.objective)
        if not np.isfinite(score).any():
            raise RuntimeError(
                "every start failed: " + "; ".join(sorted(set(self.failure_reason.tolist())))
            )
        return int(np.argmax(score))

    def best_or_raise(self) -> int:
        """:attr:`best`, or a ValueError naming every failure reason when all starts failed
        (the estimators' message to users)."""
        if self.failed.all():
            raise ValueError(
                "every start failed: "
                + "; ".join(sorted(set(self.failure_reason.tolist())))
                + ". Increase reg_covar or use prior='default'."
            )
        return self.best


@dataclass(kw_only=True)
class EMRecord(PerStartResults):
    """The per-start record every batched EM run returns (the fields of the EM monitor,
    :class:`em_lib.numerics.monitor.EMMonitor`, plus the final objective); a model's results
    dataclass adds its parameters and lists them first in ``PER_START``.

    Attributes
    ----------
    log_likelihood : (I,) array
        Observed-data log-likelihood of the returned parameters, summed over the data.
    log_prior : (I,) array
        Log prior density of the returned parameters (0 without a prior).
    trace : (I, max_iter) array
        Objective per iteration (mean per-sample log-likelihood, plus log prior / n with a
        prior) of the parameters entering that iteration; NaN after a start stopped.
    n_iter : (I,) int array
    converged : (I,) bool array
        True only if the tolerance was met; never because ``max_iter`` was reached.
    failed : (I,) bool array
    failure_reason : (I,) object array of str ('' where the start did not fail)
    max_decrease : (I,) array
        Largest decrease of the objective between iterations (0 if none); beyond round-off
        this flags a numerical problem.
    n_samples : int
        Rows (time steps) used: those with at least one observed entry.
    settings : dict
    """

    log_likelihood: np.ndarray
    log_prior: np.ndarray
    trace: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray
    failed: np.ndarray
    failure_reason: np.ndarray
    max_decrease: np.ndarray
    n_samples: int
    settings: dict = field(default_factory=dict)

    RECORDED = (
        "log_likelihood",
        "log_prior",
        "trace",
        "n_iter",
        "converged",
        "failed",
        "failure_reason",
        "max_decrease",
    )

    @property
    def n_init(self) -> int:
        return self.log_likelihood.shape[0]


def as_generator(random_state) -> np.random.Generator:
    """A Generator from None (fresh OS entropy: not reproducible), a non-negative int, a
    SeedSequence, a Generator (used as is) or a legacy RandomState (seeds a new Generator).
    numpy's global random state is never used."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.SeedSequence):
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be non-negative, got {random_state}")
        return np.random.default_rng(int(random_state))
    raise ValueError(
        "random_state must be None, an int, a numpy.random.SeedSequence or a "
        f"numpy.random.Generator, got {random_state!r}"
    )


def components_close(weights_a, scaled_a, weights_b, scaled_b, tolerance):
    """Necessary for :func:`same_solution`, against many mixtures at once: whether every
    component of mixture a (``weights_a`` (K,), ``scaled_a`` (K, d), means in units of the
    scale) has one of mixture j (``weights_b`` (J, K), ``scaled_b`` (J, K, d)) within
    ``tolerance`` in weight and in every mean coordinate, and the reverse. Returns (J,)."""
    gap = np.abs(scaled_a[None, :, None, :] - scaled_b[:, None, :, :]).max(axis=-1)
    close = gap < tolerance  # (J, a's component, j's component)
    close &= np.abs(weights_a[None, :, None] - weights_b[:, None, :]) < tolerance
    return close.any(axis=2).all(axis=1) & close.any(axis=1).all(axis=1)


def same_solution(weights_a, means_a, weights_b, means_b, scale, tolerance):
    """Whether two mixtures sit at the same solution up to component order: after matching
    components (em_lib's one component matching, :func:`em_lib.metrics.match_components`, on
    the means in units of ``scale``), every mean coordinate and every weight within
    ``tolerance``."""
    scaled_a, scaled_b = means_a / scale, means_b / scale
    # a cheap necessary condition first (most pairs of distinct solutions fail it, and skip
    # the matching)
    if not components_close(weights_a, scaled_a, weights_b[None], scaled_b[None], tolerance)[0]:
        return False
    from em_lib.metrics import match_components

    order = match_components(scaled_a, scaled_b)
    gap = np.abs(scaled_a - scaled_b[order]).max()
    return bool(gap < tolerance and np.abs(weights_a - weights_b[order]).max() < tolerance)


SAME_SOLUTION_TOLERANCE = 0.1  # data standard deviations: starts stopped at a loose ``tol``
# in one basin differ by less (0.01-0.07 on the benchmark data), distinct optima by more
POLISH_SLACK = 1e-12  # relative: a polished optimum this close below the unpolished one is kept


def distinct_best(objective, weights, means, scale, limit):
    """Up to ``limit`` starts at distinct optima (:func:`same_solution` on ``weights`` (I, K)
    and ``means`` (I, K, d) within :data:`SAME_SOLUTION_TOLERANCE`), best ``objective`` first;
    starts with a non-finite objective are never chosen. The choice of the starts both
    drivers polish."""
    chosen = []
    for start in np.argsort(-objective, kind="stable"):
        if not np.isfinite(objective[start]) or len(chosen) == limit:
            break
        if not any(
            same_solution(
                weights[start],
                means[start],
                weights[other],
                means[other],
                scale,
                SAME_SOLUTION_TOLERANCE,
            )
            for other in chosen
        ):
            chosen.append(int(start))
    return np.array(chosen, dtype=int)


def best_polished(polish, reference):
    """Row of the best polished start, or None when polishing found nothing usable at least as
    good (within :data:`POLISH_SLACK`) as the unpolished ``reference`` objective."""
    score = np.where(polish.failed, -np.inf, polish.objective)
    row = int(np.argmax(score))
    if not np.isfinite(score[row]) or score[row] < reference - POLISH_SLACK * (1 + abs(reference)):
        return None
    return row


def stage_trace(trace_row):
    """A start's per-iteration objectives without the NaN after it stopped."""
    return trace_row[~np.isnan(trace_row)]


def choose_fit(fit, best, polished):
    """The fitted start after the batch (best start ``best`` of ``fit``) and an optional
    polishing (``polished``: None or ``(polish fit, rows of fit polished, best polished row)``):
    a dict with ``chosen`` (the results object holding it) and ``row`` (its row there),
    ``best_start`` (its row in ``fit``), ``polish``, ``polished_starts``, and the start's
    ``trace`` over both stages, ``converged`` (either stage met its tolerance) and ``n_iter``."""
    pick = {
        "chosen": fit,
        "row": best,
        "best_start": best,
        "polish": None,
        "polished_starts": np.zeros(0, dtype=int),
        "trace": stage_trace(fit.trace[best]),
        "converged": bool(fit.converged[best]),
        "n_iter": int(fit.n_iter[best]),
    }
    if polished is not None:
        polish, rows, row = polished
        start = int(rows[row])
        pick.update(
            chosen=polish,
            row=row,
            best_start=start,
            polish=polish,
            polished_starts=rows,
            trace=np.concatenate([stage_trace(fit.trace[start]), stage_trace(polish.trace[row])]),
            converged=bool(fit.converged[start] or polish.converged[row]),
            n_iter=int(fit.n_iter[start] + polish.n_iter[row]),
        )
    return pick
