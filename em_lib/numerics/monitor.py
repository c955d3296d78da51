"""The one EM monitor: per-start convergence bookkeeping shared by every batched EM loop.

Mixture EM (:func:`em_lib.numerics.mixture_em.fit_mixture_em`), Baum-Welch
(:func:`em_lib.numerics.hmm.baum_welch.fit_hmm_em`) and SQUAREM polishing
(:func:`em_lib.numerics.squarem.polish_em`) all hand their per-start objectives to an
:class:`EMMonitor`, which keeps

* the trace of the objective per iteration (mean per-sample, NaN after a start stopped),
* ``n_iter``, the frozen set of converged starts (they leave the active set and stop changing
  while the others go on), ``converged`` (true only if the tolerance was met, never because
  ``max_iter`` was reached),
* failures with a reason (a non-finite objective, a collapsed covariance) and
* the largest decrease of the objective between iterations, recorded and never hidden: beyond
  round-off it flags a numerical problem.

Tolerances of both kinds: ``"absolute"`` compares the change of the mean per-sample objective
with ``tol`` (scikit-learn's rule, hmmlearn's divided by the number of samples), ``"relative"``
compares ``|L_t - L_{t-1}| / (1 + |L_t|)`` on the summed objective (mclust's rule).

One iteration of a loop is::

    index = monitor.active_index()
    finite = monitor.observe(index, total)         # objective of the parameters entering it
    ... M-step for index[finite] ...
    monitor.advance(index[finite], new_ok)          # count it, fail ~new_ok, test convergence
"""

from __future__ import annotations

import numpy as np

TOL_TYPES = ("absolute", "relative")
COLLAPSE_REASON = "covariance collapsed (not positive definite after the M-step)"
INITIAL_REASON = "initial covariance not positive definite"


def check_tol_type(tol_type: str) -> str:
    if tol_type not in TOL_TYPES:
        raise ValueError(f"tol_type must be one of {list(TOL_TYPES)}, got {tol_type!r}")
    return tol_type


class EMMonitor:
    """Per-start state of a batched EM run over ``n_init`` starts.

    Parameters
    ----------
    n_init : int
    max_iter : int
        Columns of the trace.
    tol : float
    tol_type : {"absolute", "relative"}
    n_samples : float or (I,) array
        Divides the summed objective into the per-sample trace (and the absolute test): the
        number of samples, or the total row weight of each start in a weighted fit.
    initial_ok : (I,) bool array, optional
        Starts whose parameters are usable at all; the others fail at once.
    """

    def __init__(self, n_init, max_iter, *, tol, tol_type="absolute", n_samples=1, initial_ok=None):
        self.tol = float(tol)
        self.tol_type = check_tol_type(tol_type)
        totals = np.broadcast_to(np.asarray(n_samples, dtype=float), (n_init,))
        self.n_samples = np.where(totals > 0, totals, 1.0)
        self.trace = np.full((n_init, max_iter), np.nan)
        self.n_iter = np.zeros(n_init, dtype=int)
        self.converged = np.zeros(n_init, dtype=bool)
        self.failed = np.zeros(n_init, dtype=bool)
        self.failure_reason = np.array([""] * n_init, dtype=object)
        self.max_decrease = np.zeros(n_init)
        self.active = np.ones(n_init, dtype=bool)
        self._previous = np.full(n_init, -np.inf)  # per-sample objective of the last iteration
        self._latest = np.full(n_init, -np.inf)
        if initial_ok is not None:
            self.fail(np.flatnonzero(~np.asarray(initial_ok, dtype=bool)), INITIAL_REASON)

    # ------------------------------------------------------------------ state
    def active_index(self) -> np.ndarray:
        return np.flatnonzero(self.active)

    def fail(self, starts, reason: str) -> None:
        """Mark ``starts`` failed with ``reason`` and take them out of the active set."""
        starts = np.asarray(starts, dtype=int)
        self.failed[starts] = True
        self.failure_reason[starts] = reason
        self.active[starts] = False

    def stop(self, starts) -> None:
        """Take ``starts`` out of the active set without a verdict (pruned, out of budget)."""
        self.active[np.asarray(starts, dtype=int)] = False

    # ------------------------------------------------------------------ one iteration
    def observe(self, index, total) -> np.ndarray:
        """Record the summed objective ``total`` (len(index),) of the parameters entering the
        next iteration of ``index``; starts with a non-finite objective fail. Returns the mask
        of finite objectives."""
        index = np.asarray(index, dtype=int)
        total = np.asarray(total, dtype=float)
        objective = total / self.n_samples[index]
        finite = np.isfinite(objective)
        column = self.n_iter[index]
        everyone = finite.all()
        if everyone and column.max(initial=0) < self.trace.shape[1]:
            self.trace[index, column] = objective
        else:
            inside = finite & (column < self.trace.shape[1])
            self.trace[index[inside], column[inside]] = objective[inside]
            for start, count in zip(index[~finite], column[~finite], strict=True):
                self.fail([start], f"log-likelihood not finite at iteration {count + 1}")
        with np.errstate(invalid="ignore"):  # -inf - -inf on the first iteration
            change = objective - self._previous[index]
        drop = -change if everyone else np.where(finite, -change, 0.0)
        # NaN (first iteration) and negative drops leave the record as it is
        self.max_decrease[index] = np.fmax(self.max_decrease[index], np.fmax(drop, 0.0))
        self._latest[index] = objective
        return finite

    def is_converged(self, new, old, index=None) -> np.ndarray:
        """The tolerance test between per-sample objectives ``old`` and ``new`` (arrays) of
        starts ``index`` (all starts when None)."""
        if self.tol_type == "absolute":
            return np.abs(new - old) < self.tol
        size = self.n_samples if index is None else self.n_samples[np.asarray(index, dtype=int)]
        new_total, old_total = new * size, old * size
        return np.abs(new_total - old_total) / (1.0 + np.abs(new_total)) < self.tol

    def advance(self, index, ok, updates=()) -> np.ndarray:
        """Close the iteration of ``index`` (starts whose objective was finite): store the new
        parameters of the starts whose M-step was usable (``updates``: pairs of a parameter
        array over all starts and its new values for ``index``), count the iteration, fail the
        starts whose new parameters are unusable (``~ok``), freeze the converged ones.
        Returns the mask of starts that converged now."""
        index = np.asarray(index, dtype=int)
        ok = np.asarray(ok, dtype=bool)
        for target, values in updates:
            target[index[ok]] = values[ok]
        self.n_iter[index] += 1
        for start in index[~ok]:
            self.fail([start], f"{COLLAPSE_REASON} at iteration {self.n_iter[start]}")
        latest = self._latest[index]
        done = self.is_converged(latest, self._previous[index], index) & ok
        self.converged[index[done]] = True
        self.active[index[done]] = False
        self._previous[index] = latest
        return done

    def record(self, index, total) -> np.ndarray:
        """:meth:`observe` and count one iteration, without a convergence test (for loops
        with a rule of their own, such as polishing's test on one plain EM step)."""
        index = np.asarray(index, dtype=int)
        finite = self.observe(index, total)
        self.n_iter[index[finite]] += 1
        self._previous[index[finite]] = self._latest[index[finite]]
        return finite

    def mark_converged(self, starts) -> None:
        """Freeze ``starts`` as converged (their own rule was met)."""
        starts = np.asarray(starts, dtype=int)
        self.converged[starts] = True
        self.active[starts] = False

    # ------------------------------------------------------------------ results
    def results(self) -> dict[str, np.ndarray]:
        """The per-start arrays of a results dataclass (``trace`` ... ``max_decrease``)."""
        return {
            "trace": self.trace,
            "n_iter": self.n_iter,
            "converged": self.converged,
            "failed": self.failed,
            "failure_reason": self.failure_reason,
            "max_decrease": self.max_decrease,
        }
