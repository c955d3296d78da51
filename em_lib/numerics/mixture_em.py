"""Batched EM for Gaussian mixtures: every start of a fit runs in one vectorised loop.

The loop mirrors scikit-learn's so that trajectories can be compared step by step: at
iteration ``t`` the E-step evaluates the objective of the current parameters
``theta_{t-1}`` (stored in ``trace[:, t - 1]``), the M-step produces ``theta_t``, and a start
stops when the change of the objective between successive iterations is below ``tol``.
Converged and failed starts leave the active set and stop changing while the others go on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .covariance import check_covariance_type, collapsed_starts, precision_cholesky
from .gaussian import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_CACHE_BYTES,
    MissingDataEngine,
    PreparedData,
    run_estep,
)
from .monitor import EMMonitor, check_tol_type
from .prior import ConjugatePrior, log_prior_density, map_update
from .starts import PerStartResults

EPS = np.finfo(float).eps


@dataclass
class MixtureFit(PerStartResults):
    """Results of every start of a batched Gaussian-mixture fit (init dimension first).

    Attributes
    ----------
    weights : (I, K) array
    means : (I, K, d) array
    covariances : (I, K, d, d) full, (I, K, d) diag, (I, K) spherical, (I, d, d) tied
    precisions_cholesky : same shape as ``covariances``
    log_likelihood : (I,) array
        Observed-data log-likelihood of the final parameters, summed over the rows used.
    log_prior : (I,) array
        log prior density of the final parameters (0 without a prior).
    trace : (I, max_iter) array
        Objective per iteration (mean per-sample log-likelihood, plus log prior / n with a
        prior), of the parameters entering that iteration; NaN after a start stopped.
    n_iter : (I,) int array
    converged : (I,) bool array
        True only if the tolerance was met; never because ``max_iter`` was reached.
    failed : (I,) bool array
    failure_reason : (I,) object array of str ('' where the start did not fail)
    max_decrease : (I,) array
        Largest decrease of the objective between iterations (0 if none); beyond round-off
        this flags a numerical problem.
    n_samples : int
        Rows used (rows with at least one observed entry).
    """

    covariance_type: str
    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray
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
        "weights", "means", "covariances", "precisions_cholesky", "log_likelihood",
        "log_prior", "trace", "n_iter", "converged", "failed", "failure_reason",
        "max_decrease",
    )

    @property
    def n_init(self) -> int:
        return self.weights.shape[0]


def mstep(stats, covariance_type, reg_covar, prior: ConjugatePrior | None = None):
    """Weights, means and covariances from weighted statistics ``(nk, first, second)``.

    Without a prior this is scikit-learn's M-step (``nk`` padded by ``10 eps`` so empty
    components stay finite, ``reg_covar`` added to the diagonal). With a prior it is the MAP
    update of :mod:`em_lib.numerics.prior` and ``reg_covar`` is not added (the prior
    regularises, and adding it would break the monotone increase of the penalised objective).
    """
    nk, first, second = stats
    nk = nk + 10 * EPS
    weights = nk / nk.sum(-1, keepdims=True)
    d = first.shape[-1]
    if prior is not None:
        means, covariances = map_update(nk, first, second, covariance_type, prior, nk.sum(-1))
        return weights, means, covariances
    means = first / nk[..., None]
    if covariance_type == "full":
        covariances = second / nk[..., None, None] - np.einsum("ikd,ike->ikde", means, means)
        covariances += reg_covar * np.eye(d)
    elif covariance_type == "tied":
        scatter = second.sum(1) - np.einsum("ik,ikd,ike->ide", nk, means, means)
        covariances = scatter / nk.sum(-1)[:, None, None] + reg_covar * np.eye(d)
    elif covariance_type == "diag":
        covariances = second / nk[..., None] - means**2 + reg_covar
    else:
        covariances = (second / nk - np.einsum("ikd,ikd->ik", means, means)) / d + reg_covar
    return weights, means, covariances


def fit_mixture_em(
    X,
    weights,
    means,
    covariances,
    covariance_type,
    *,
    tol=1e-3,
    tol_type="absolute",
    max_iter=100,
    reg_covar=1e-6,
    prior: ConjugatePrior | None = None,
    block_size=DEFAULT_BLOCK_SIZE,
    cache_bytes=DEFAULT_CACHE_BYTES,
    force_missing=False,
    prepared: PreparedData | None = None,
) -> MixtureFit:
    """Run EM from ``I`` starting points at once.

    Parameters
    ----------
    X : (n_samples, n_features) array; NaN marks a missing entry. Rows with nothing observed
        are dropped (they add zero to the observed-data log-likelihood).
    weights : (I, K) array
    means : (I, K, d) array
    covariances : covariances of ``covariance_type``, init dimension first
    tol : float
        ``absolute``: stop when the mean per-sample objective changes by less than ``tol``
        (scikit-learn's meaning). ``relative``: stop when
        ``|L_t - L_{t-1}| / (1 + |L_t|) < tol`` on the summed objective (mclust's meaning).
    max_iter : int
    reg_covar : float
    prior : ConjugatePrior or None
        Hyperparameters in the data's original coordinates.
    force_missing : bool
        Use the missing-data engine even without NaN (for testing the two paths agree).
    prepared : PreparedData, optional
        The engine already built for ``X`` and ``covariance_type`` (shared with the
        initialisation and polishing of the same fit); built here if not given.

    Returns
    -------
    MixtureFit
    """
    check_covariance_type(covariance_type)
    check_tol_type(tol_type)
    if prepared is None or prepared.covariance_type != covariance_type:
        prepared = PreparedData(X, covariance_type, block_size, cache_bytes, force_missing)
    engine, center, keep = prepared.engine, prepared.center, prepared.keep
    n_samples = engine.n_samples
    prior_c = prior.shifted(center) if prior is not None else None
    feature_variances = np.nanvar(engine.X, axis=0)

    weights = np.array(weights, dtype=float)
    means = np.array(means, dtype=float) - center
    covariances = np.array(covariances, dtype=float)
    n_init = weights.shape[0]
    prec_chol, ok = precision_cholesky(covariances, covariance_type)

    monitor = EMMonitor(n_init, max_iter, tol=tol, tol_type=tol_type, n_samples=n_samples,
                        initial_ok=ok)

    def log_prior_of(index, mu, cov, pc):
        if prior_c is None:
            return np.zeros(len(index))
        return log_prior_density(mu, cov, pc, covariance_type, prior_c)

    for _ in range(max_iter):
        index = monitor.active_index()
        if index.size == 0:
            break
        result = run_estep(engine, np.log(weights[index]), means[index], covariances[index],
                           prec_chol[index], want_stats=True)
        total = result["loglik"] + log_prior_of(index, means[index], covariances[index],
                                                prec_chol[index])
        finite = monitor.observe(index, total)
        stats = tuple(part[finite] for part in result["stats"])
        idx = index[finite]
        new_w, new_mu, new_cov = mstep(stats, covariance_type, reg_covar, prior_c)
        new_pc, new_ok = precision_cholesky(new_cov, covariance_type)
        finite_params = (
            np.isfinite(new_mu).all(axis=(1, 2))
            & np.isfinite(new_w).all(axis=1)
            & np.isfinite(new_cov.reshape(len(idx), -1)).all(axis=1)
        )
        new_ok &= finite_params
        new_ok &= ~collapsed_starts(new_pc, covariance_type, feature_variances)
        good = idx[new_ok]
        weights[good] = new_w[new_ok]
        means[good] = new_mu[new_ok]
        covariances[good] = new_cov[new_ok]
        prec_chol[good] = new_pc[new_ok]
        monitor.advance(idx, new_ok)

    # final pass: the objective of the parameters actually returned
    valid = np.flatnonzero(ok)
    log_likelihood = np.full(n_init, -np.inf)
    log_prior = np.zeros(n_init)
    if valid.size:
        final = run_estep(engine, np.log(weights[valid]), means[valid], covariances[valid],
                          prec_chol[valid], want_stats=False)
        log_likelihood[valid] = final["loglik"]
        log_prior[valid] = log_prior_of(valid, means[valid], covariances[valid],
                                        prec_chol[valid])
    log_likelihood[~ok] = -np.inf
    settings = {
        "tol": tol, "tol_type": tol_type, "max_iter": max_iter, "reg_covar": reg_covar,
        "prior": prior is not None, "missing_data": isinstance(engine, MissingDataEngine),
        "n_empty_rows": int((~keep).sum()),
    }
    return MixtureFit(
        covariance_type=covariance_type,
        weights=weights,
        means=means + center,
        covariances=covariances,
        precisions_cholesky=prec_chol,
        log_likelihood=log_likelihood,
        log_prior=log_prior,
        **monitor.results(),
        n_samples=n_samples,
        settings=settings,
    )
