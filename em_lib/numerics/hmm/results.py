"""Per-start results of a batched Baum-Welch fit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..starts import EMRecord

__all__ = ["HMMFit"]


@dataclass(kw_only=True)
class HMMFit(EMRecord):
    """Results of every start of a batched Baum-Welch fit (init dimension first): the
    parameters, and the per-start record of :class:`~em_lib.numerics.starts.EMRecord` (the
    objective is per observed time step; ``converged`` only if ``|change| < tol`` was met).

    Attributes
    ----------
    covariance_type : str
    startprob : (I, K) array
    transmat : (I, K, K) array
    means : (I, K, d) array
    covariances : (I, K, d, d) full, (I, K, d) diag, (I, K) spherical, (I, d, d) tied
    """

    covariance_type: str
    startprob: np.ndarray
    transmat: np.ndarray
    means: np.ndarray
    covariances: np.ndarray

    PER_START = ("startprob", "transmat", "means", "covariances", *EMRecord.RECORDED)
