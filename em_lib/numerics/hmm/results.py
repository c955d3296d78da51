"""Per-start results of a batched Baum-Welch fit."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..starts import PerStartResults

__all__ = ["HMMFit"]


@dataclass
class HMMFit(PerStartResults):
    """Results of every start of a batched Baum-Welch fit (init dimension first).

    Attributes
    ----------
    covariance_type : str
    startprob : (I, K) array
    transmat : (I, K, K) array
    means : (I, K, d) array
    covariances : (I, K, d, d) full, (I, K, d) diag, (I, K) spherical, (I, d, d) tied
    log_likelihood : (I,) array
        Observed-data log-likelihood of the returned parameters, summed over sequences.
    log_prior : (I,) array
        Log prior of the returned parameters (Dirichlet terms unnormalised; 0 without priors).
    trace : (I, max_iter) array
        Objective per iteration (mean per-observed-step log-likelihood, plus log prior / n
        with priors) of the parameters entering that iteration; NaN after a start stopped.
    n_iter : (I,) int array
    converged : (I,) bool array
        True only if ``|change| < tol`` was met; never because ``max_iter`` was reached.
    failed : (I,) bool array
    failure_reason : (I,) object array of str ('' where the start did not fail)
    max_decrease : (I,) array
        Largest decrease of the objective between iterations (0 if none).
    n_samples : int
        Observed time steps (at least one non-NaN feature).
    settings : dict
    """

    covariance_type: str
    startprob: np.ndarray
    transmat: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
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

    PER_START = (
        "startprob", "transmat", "means", "covariances", "log_likelihood", "log_prior",
        "trace", "n_iter", "converged", "failed", "failure_reason", "max_decrease",
    )

    @property
    def n_init(self) -> int:
        return self.startprob.shape[0]
