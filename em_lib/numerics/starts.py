"""What every batched fit shares: per-start result bookkeeping and seeding.

``PerStartResults`` gives a results dataclass (mixture or HMM) its best-start choice,
subsetting and concatenation over the start (init) axis; the class lists its per-start fields
in ``PER_START``.
"""

from __future__ import annotations

import numbers
from dataclasses import replace

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

    def select(self, index):
        """The fit restricted to the starts ``index`` (an int keeps a leading axis of 1)."""
        index = np.atleast_1d(index)
        return replace(self, **{name: getattr(self, name)[index] for name in self.PER_START})

    @classmethod
    def concatenate(cls, fits):
        """Starts of several fits of the same model and data, one after the other."""
        fits = list(fits)
        arrays = {name: np.concatenate([getattr(fit, name) for fit in fits])
                  for name in cls.PER_START}
        return replace(fits[0], **arrays)


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


def same_solution(weights_a, means_a, weights_b, means_b, scale, tolerance):
    """Whether two mixtures sit at the same solution up to component order: after matching
    components (Hungarian assignment on the largest per-feature mean difference, in units of
    ``scale``), every mean within ``tolerance`` and every weight within ``tolerance``."""
    from scipy.optimize import linear_sum_assignment

    cost = np.abs(means_a[:, None, :] / scale - means_b[None, :, :] / scale).max(axis=-1)
    rows, cols = linear_sum_assignment(cost)
    return bool(cost[rows, cols].max() < tolerance
                and np.abs(weights_a[rows] - weights_b[cols]).max() < tolerance)
