"""Conjugate priors for MAP EM, in the manner of Fraley & Raftery (2007).

Fraley, C. and Raftery, A. E. (2007), "Bayesian regularization for normal mixture estimation
and model-based clustering", Journal of Classification 24, 155-181.

Each component mean has a normal prior given its covariance, ``mu_k | Sigma ~ N(m, Sigma/kappa)``,
and the covariance an inverse-Wishart (full, tied) or inverse-gamma (diag: per feature;
spherical: one variance) prior with ``nu`` degrees of freedom and scale ``Lambda``. The mixing
weights get no prior. The M-step then maximises the expected complete-data log-likelihood plus
the log prior exactly, so EM increases the penalised objective ``log L + log p(theta)``
monotonically. Closed forms (``xbar_k`` component mean, ``W_k`` scatter about it):

* means:     ``mu_k = (n_k xbar_k + kappa m) / (n_k + kappa)``
* full:      ``Sigma_k = (Lambda + W_k + S_k) / (nu + n_k + d + 2)``
* diag:      ``sigma2_kj = (lambda + W_kjj + S_kjj) / (nu + n_k + 3)``
* spherical: ``sigma2_k = (lambda + tr W_k + tr S_k) / (nu + n_k d + d + 2)``
* tied:      ``Sigma = (Lambda + sum_k (W_k + S_k)) / (nu + n + d + 1 + K)``

with ``S_k = kappa n_k / (n_k + kappa) (xbar_k - m)(xbar_k - m)^T``. The default
hyperparameters are mclust's ``defaultPrior``: ``m`` the data mean, ``kappa = 0.01``,
``nu = d + 2``, and scale ``cov(X) / K^(2/d)`` (full, tied) or ``tr(cov(X)) / d / K^(2/d)``
(diag, spherical).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln, multigammaln

LOG_2PI = np.log(2 * np.pi)


@dataclass(frozen=True)
class ConjugatePrior:
    """Hyperparameters of the conjugate prior.

    Attributes
    ----------
    mean : (d,) array
        Prior mean ``m`` of the component means.
    shrinkage : float
        ``kappa`` > 0.
    dof : float
        ``nu``; must exceed ``d - 1`` for full/tied (a proper inverse-Wishart) and 0 otherwise.
    scale : array
        ``Lambda``: (d, d) for full/tied, a scalar for diag and spherical.
    """

    mean: np.ndarray
    shrinkage: float
    dof: float
    scale: np.ndarray

    def shifted(self, center: np.ndarray) -> ConjugatePrior:
        """The same prior for data shifted by ``-center``."""
        return ConjugatePrior(self.mean - center, self.shrinkage, self.dof, self.scale)


def default_prior(
    X: np.ndarray, n_components: int, covariance_type: str, sample_weight=None
) -> ConjugatePrior:
    """mclust's default prior for data ``X`` (NaN allowed: column means / variances of the
    observed entries; off-diagonal covariances from mean-imputed data). ``sample_weight``
    (n,) counts rows as frequency weights (an integer weight as that many copies)."""
    n_features = X.shape[1]
    weights = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight)
    observed = ~np.isnan(X)
    column_weights = np.where(observed, weights[:, None], 0.0)
    totals = column_weights.sum(0)
    mean = np.where(observed, X, 0.0).T @ weights / totals
    centred = np.where(observed, X - mean, 0.0)
    total = weights.sum()
    cov = np.atleast_2d((centred * weights[:, None]).T @ centred / _unbiased(total))
    observed_var = (column_weights * centred**2).sum(0) / _unbiased(totals)
    cov[np.diag_indices(n_features)] = observed_var
    factor = n_components ** (2.0 / n_features)
    if covariance_type in ("full", "tied"):
        scale = cov / factor
        # a constant (or collinear) column makes the scale singular and every MAP covariance
        # with it; a ridge of 1e-6 of the average variance keeps the prior proper
        if np.linalg.eigvalsh(scale).min() <= 1e-12 * max(np.trace(scale), 1e-300):
            scale = scale + 1e-6 * np.trace(scale) / n_features * np.eye(n_features)
    else:
        scale = np.asarray(np.trace(cov) / n_features / factor)
    return ConjugatePrior(mean, 0.01, float(n_features + 2), scale)


def _unbiased(total):
    """The ``ddof=1`` denominator of frequency-weighted moments (the total when below 1)."""
    return np.where(total > 1, total - 1.0, total)


def map_update(nk, first, second, covariance_type, prior: ConjugatePrior, n_total):
    """MAP means and covariances from weighted statistics.

    Parameters
    ----------
    nk : (I, K) array
    first : (I, K, d) array, ``sum_n r_nk x_n``
    second : typed second moments, ``sum_n r_nk x_n x_n^T`` as (I, K, d, d) (full, tied),
        its diagonal (diag) or trace (spherical)
    n_total : (I,) array, ``sum_k n_k``
    """
    d = first.shape[-1]
    kappa, nu = prior.shrinkage, prior.dof
    xbar = first / nk[..., None]
    means = (first + kappa * prior.mean) / (nk + kappa)[..., None]
    offset = xbar - prior.mean
    shrink = kappa * nk / (nk + kappa)
    if covariance_type in ("full", "tied"):
        scatter = second - nk[..., None, None] * np.einsum("ikd,ike->ikde", xbar, xbar)
        total = scatter + shrink[..., None, None] * np.einsum("ikd,ike->ikde", offset, offset)
        if covariance_type == "full":
            covariances = (prior.scale + total) / (nu + nk + d + 2)[..., None, None]
        else:
            n_comp = nk.shape[-1]
            covariances = (prior.scale + total.sum(1)) / (nu + n_total + d + 1 + n_comp)[
                :, None, None
            ]
    elif covariance_type == "diag":
        scatter = second - nk[..., None] * xbar**2
        covariances = (prior.scale + scatter + shrink[..., None] * offset**2) / (nu + nk + 3)[
            ..., None
        ]
    else:
        scatter = second - nk * np.einsum("ikd,ikd->ik", xbar, xbar)
        shrink_term = shrink * np.einsum("ikd,ikd->ik", offset, offset)
        covariances = (prior.scale + scatter + shrink_term) / (nu + nk * d + d + 2)
    return means, covariances


def log_prior_density(means, covariances, prec_chol, covariance_type, prior: ConjugatePrior):
    """log p(means, covariances) under the prior, summed over components: shape (I,)."""
    n_init, n_comp, d = means.shape
    kappa, nu = prior.shrinkage, prior.dof
    offset = means - prior.mean
    if covariance_type in ("full", "tied"):
        precision = prec_chol @ np.swapaxes(prec_chol, -1, -2)
        log_det_cov = -2 * np.log(np.diagonal(prec_chol, axis1=-2, axis2=-1)).sum(-1)
        sign, log_det_scale = np.linalg.slogdet(prior.scale)
        trace_term = np.einsum("de,...ed->...", prior.scale, precision)
        log_iw = (
            0.5 * nu * log_det_scale
            - 0.5 * nu * d * np.log(2)
            - multigammaln(0.5 * nu, d)
            - 0.5 * (nu + d + 1) * log_det_cov
            - 0.5 * trace_term
        )
        if covariance_type == "full":
            mahal = np.einsum("ikd,ikde,ike->ik", offset, precision, offset)
            log_normal = -0.5 * d * LOG_2PI + 0.5 * d * np.log(kappa) - 0.5 * log_det_cov
            return (log_iw + log_normal - 0.5 * kappa * mahal).sum(-1)
        mahal = np.einsum("ikd,ide,ike->ik", offset, precision, offset)
        log_normal = (
            -0.5 * d * LOG_2PI + 0.5 * d * np.log(kappa) - 0.5 * log_det_cov[:, None]
        ) - 0.5 * kappa * mahal
        return log_iw + log_normal.sum(-1)
    shape, rate = 0.5 * nu, 0.5 * prior.scale
    if covariance_type == "diag":
        variances = covariances
        log_ig = shape * np.log(rate) - gammaln(shape) - (shape + 1) * np.log(variances)
        log_ig = log_ig - rate / variances
        log_normal = (
            -0.5 * LOG_2PI
            + 0.5 * np.log(kappa)
            - 0.5 * np.log(variances)
            - 0.5 * kappa * offset**2 / variances
        )
        return (log_ig + log_normal).sum(axis=(-2, -1))
    variances = covariances
    log_ig = shape * np.log(rate) - gammaln(shape) - (shape + 1) * np.log(variances)
    log_ig = log_ig - rate / variances
    sq = np.einsum("ikd,ikd->ik", offset, offset)
    log_normal = (
        -0.5 * d * LOG_2PI
        + 0.5 * d * np.log(kappa)
        - 0.5 * d * np.log(variances)
        - 0.5 * kappa * sq / variances
    )
    return (log_ig + log_normal).sum(-1)


def resolve_prior(prior, X, n_components, covariance_type, sample_weight=None):
    """The prior of one fit: None, the given :class:`ConjugatePrior`, or for ``"default"`` the
    :func:`default_prior` of ``X`` (rows weighted by ``sample_weight``) for ``n_components``
    and ``covariance_type``."""
    if prior is None or isinstance(prior, ConjugatePrior):
        return prior
    return default_prior(X, n_components, covariance_type, sample_weight)


class PriorSetting:
    """Mixin of a settings object with a ``prior`` attribute (None, ``"default"`` or a
    :class:`ConjugatePrior`)."""

    def prior_for(self, X, n_components, covariance_type, sample_weight=None):
        """The prior of a fit of ``X`` (:func:`resolve_prior`)."""
        return resolve_prior(self.prior, X, n_components, covariance_type, sample_weight)
