"""Gaussian emissions of the HMM: log-densities and the emission M-step.

The emission kernels are the mixture core's, built once per fit (see :class:`Emissions`).
With NaN in ``X`` a :class:`~em_lib.numerics.gaussian.MissingDataEngine` gives the
log-emissions (an all-NaN step gets log-emission 0, a partially observed step the marginal
density of its observed features) and the emission statistics with the state posteriors as
responsibilities and the current parameters (exact missing-data EM). Without NaN the feature
matrix ``phi(X)`` is built once and the steps are ``estep_weight_matrix``,
``CompleteDataEngine.statistics_from_resp`` and ``mstep``.

Everything is computed on data centred by :func:`column_centre` (the density is translation
invariant; centring conditions the quadratic forms).
"""

from __future__ import annotations

import numpy as np

from ..covariance import estep_weight_matrix
from ..gaussian import CompleteDataEngine, MissingDataEngine, log_gaussian_density
from ..mixture_em import mstep

__all__ = ["Emissions", "column_centre", "emission_log_prob"]


def column_centre(X):
    """Mean of the observed entries of every column (0 for a column with none)."""
    observed = ~np.isnan(X)
    count = observed.sum(0)
    total = np.where(observed, X, 0.0).sum(0)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def emission_log_prob(X, means, covariances, covariance_type, center=None):
    """log N(x_t | mu_k, Sigma_k) for every start, step and state: (I, n, K).

    A thin wrapper of :func:`em_lib.numerics.gaussian.log_gaussian_density` that centres the
    data first (by ``center``, default :func:`column_centre`). All-NaN steps get 0, partially
    observed steps the marginal of the observed features.
    """
    X = np.asarray(X, dtype=float)
    if center is None:
        center = column_centre(X)
    means = np.asarray(means, dtype=float)
    return log_gaussian_density(X - center, means - center, covariances, covariance_type)


class Emissions:
    """The mixture core's Gaussian kernels for the emissions of one fit, on centred data.

    Without NaN the feature matrix ``phi(X)`` is built once: log-densities are ``phi @ W``
    (:func:`~em_lib.numerics.covariance.estep_weight_matrix`), the M-step statistics come from
    :meth:`~em_lib.numerics.gaussian.CompleteDataEngine.statistics_from_resp` and the update
    from :func:`~em_lib.numerics.mixture_em.mstep`. With NaN, a
    :class:`~em_lib.numerics.gaussian.MissingDataEngine` over the steps with something
    observed is also built once (missingness patterns grouped, features cached) and gives the
    observed-block log-densities and the exact missing-data statistics; an all-NaN step has
    log-density 0 and no statistics. Log-densities are returned time first, (n, I, K).
    """

    def __init__(self, Xc, covariance_type, reg_covar, prior_c):
        self.X = Xc
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.prior = prior_c
        self.missing = bool(np.isnan(Xc).any())
        if self.missing:
            self.keep = ~np.isnan(Xc).all(axis=1)
            self.engine = MissingDataEngine(Xc[self.keep], covariance_type)
        else:
            self.engine = CompleteDataEngine(Xc, covariance_type)
            self.phi = self.engine.features()

    def log_density(self, means, covariances, prec_chol, out=None):
        """Time-first log-emissions (n, I, K) of the (centred) parameters, written into
        ``out`` (a C-contiguous (n, I, K) array, e.g. a reused buffer) when given."""
        n_init, n_states, _ = means.shape
        shape = (self.X.shape[0], n_init, n_states)
        if out is None:
            out = np.empty(shape)
        if self.missing:
            out[~self.keep] = 0.0
            if self.keep.any():
                result = self.engine.estep(
                    np.zeros((n_init, n_states)),
                    means,
                    covariances,
                    want_stats=False,
                    want_log_prob=True,
                )
                out[self.keep] = np.transpose(result["weighted_log_prob"], (1, 0, 2))
            return out
        W = estep_weight_matrix(
            np.zeros((n_init, n_states)), means, prec_chol, self.covariance_type
        )
        np.matmul(self.phi, W, out=out.reshape(shape[0], n_init * n_states))
        return out

    def mstep(self, resp, means, covariances):
        """New (means, covariances) from posteriors ``resp`` (I, n, K), any memory layout."""
        if self.missing:
            stats = self.engine.statistics_from_resp(resp[:, self.keep], means, covariances)
        else:
            stats = self.engine.statistics_from_resp(resp)
        _, new_means, new_cov = mstep(stats, self.covariance_type, self.reg_covar, self.prior)
        return new_means, new_cov
