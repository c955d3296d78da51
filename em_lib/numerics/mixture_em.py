"""Batched EM for Gaussian mixtures: every start of a fit runs in one vectorised loop.

The loop mirrors scikit-learn's so that trajectories can be compared step by step: at
iteration ``t`` the E-step evaluates the objective of the current parameters
``theta_{t-1}`` (stored in ``trace[:, t - 1]``), the M-step produces ``theta_t``, and a start
stops when the change of the objective between successive iterations is below ``tol``.
Converged and failed starts leave the active set and stop changing while the others go on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .covariance import check_covariance_type, collapsed_starts, precision_cholesky
from .gaussian import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_CACHE_BYTES,
    MissingDataEngine,
    PreparedData,
    run_estep,
    start_weights,
)
from .monitor import EMMonitor, check_tol_type
from .prior import ConjugatePrior, log_prior_density, map_update
from .starts import EMRecord

EPS = np.finfo(float).eps
# complete data without a prior: each iteration one compiled batched EM map
# (:func:`em_lib.numerics._polish.em_maps`); False runs the numpy steps (the tests compare them)
COMPILED_MAPS = True


@dataclass(kw_only=True)
class MixtureFit(EMRecord):
    """Results of every start of a batched Gaussian-mixture fit (init dimension first): the
    parameters, and the per-start record of :class:`~em_lib.numerics.starts.EMRecord`.

    Attributes
    ----------
    weights : (I, K) array
    means : (I, K, d) array
    covariances : (I, K, d, d) full, (I, K, d) diag, (I, K) spherical, (I, d, d) tied
    precisions_cholesky : same shape as ``covariances``
    """

    covariance_type: str
    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray

    PER_START = ("weights", "means", "covariances", "precisions_cholesky", *EMRecord.RECORDED)


def mstep(stats, covariance_type, reg_covar, prior: ConjugatePrior | None = None):
    """Weights, means and covariances from weighted statistics ``(nk, first, second)``.

    Without a prior this is scikit-learn's M-step (``nk`` padded by ``10 eps`` so empty
    components stay finite, ``reg_covar`` added to the diagonal). With a prior it is the MAP
    update of :mod:`em_lib.numerics.prior` and ``reg_covar`` is not added (the prior
    regularises, and adding it would break the monotone increase of the penalised objective).
    """
    nk, first, second = stats
    nk = nk + 10 * EPS
    d = first.shape[-1]
    if prior is not None:
        weights = nk / nk.sum(-1, keepdims=True)
        means, covariances = map_update(nk, first, second, covariance_type, prior, nk.sum(-1))
        return weights, means, covariances
    from ._linalg import mstep_diagonal, mstep_triangular

    n_init, n_comp = nk.shape
    weights = np.empty((n_init, n_comp))
    means = np.empty((n_init, n_comp, d))
    nk = np.ascontiguousarray(nk)
    first = np.ascontiguousarray(first, dtype=float)
    second = np.ascontiguousarray(second, dtype=float)
    if covariance_type in ("full", "tied"):
        shape = (n_init, n_comp if covariance_type == "full" else 1, d, d)
        covariances = np.empty(shape)
        mstep_triangular(nk, first, second, float(reg_covar), weights, means, covariances)
        return weights, means, covariances if covariance_type == "full" else covariances[:, 0]
    if covariance_type == "diag":
        covariances = np.empty((n_init, n_comp, d))
        mstep_diagonal(nk, first, second, float(reg_covar), weights, means, covariances)
        return weights, means, covariances
    covariances = np.empty((n_init, n_comp, 1))
    mstep_diagonal(nk, first, second[..., None], float(reg_covar), weights, means, covariances)
    return weights, means, covariances[..., 0]


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
    sample_weight=None,
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
    sample_weight : None, (n_samples,) or (I, n_samples) array
        Row weights (frequency weights: an integer weight counts a row that many times),
        shared by every start or one row of weights per start (a batch of bootstrap
        replicates). The objective is the weighted sum of the rows' log-likelihoods; the
        per-sample trace and the ``absolute`` tolerance divide it by each start's total
        weight, so scaling all weights changes neither. ``n_samples`` of the result is that
        total (one number, or (I,) with per-start weights).

    Returns
    -------
    MixtureFit
    """
    check_covariance_type(covariance_type)
    check_tol_type(tol_type)
    if prepared is None or prepared.covariance_type != covariance_type:
        shared = sample_weight if np.ndim(sample_weight) == 1 else None
        prepared = PreparedData(
            X, covariance_type, block_size, cache_bytes, force_missing, sample_weight=shared
        )
    engine, center, keep = prepared.engine, prepared.center, prepared.keep
    row_weights, n_samples = prepared.rows(sample_weight)
    prior_c = prior.shifted(center) if prior is not None else None
    feature_variances = prepared.feature_variances

    weights = np.array(weights, dtype=float)
    means = np.array(means, dtype=float) - center
    covariances = np.array(covariances, dtype=float)
    n_init = weights.shape[0]
    prec_chol, ok = precision_cholesky(covariances, covariance_type)

    monitor = EMMonitor(
        n_init, max_iter, tol=tol, tol_type=tol_type, n_samples=n_samples, initial_ok=ok
    )

    def log_prior_of(index, mu, cov, pc):
        if prior_c is None:
            return np.zeros(len(index))
        return log_prior_density(mu, cov, pc, covariance_type, prior_c)

    def estep(index, want_stats):
        return run_estep(
            engine,
            np.log(weights[index]),
            means[index],
            covariances[index],
            prec_chol[index],
            want_stats=want_stats,
            row_weights=start_weights(row_weights, index),
        )

    inputs = None
    if COMPILED_MAPS:
        from ._polish import compiled_inputs

        inputs = compiled_inputs(prepared, row_weights, prior, weights.size)
    if inputs is not None:
        _compiled_iterations(monitor, inputs, (weights, means, covariances), reg_covar)
        prec_chol, _ = precision_cholesky(covariances, covariance_type)
    else:
        for _ in range(max_iter):
            index = monitor.active_index()
            if index.size == 0:
                break
            result = estep(index, want_stats=True)
            total = result["loglik"] + log_prior_of(
                index, means[index], covariances[index], prec_chol[index]
            )
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
            monitor.advance(
                idx,
                new_ok,
                ((weights, new_w), (means, new_mu), (covariances, new_cov), (prec_chol, new_pc)),
            )

    # final pass: the objective of the parameters actually returned
    valid = np.flatnonzero(ok)
    log_likelihood = np.full(n_init, -np.inf)
    log_prior = np.zeros(n_init)
    if valid.size:
        final = estep(valid, want_stats=False)
        log_likelihood[valid] = final["loglik"]
        log_prior[valid] = log_prior_of(valid, means[valid], covariances[valid], prec_chol[valid])
    log_likelihood[~ok] = -np.inf
    settings = {
        "tol": tol,
        "tol_type": tol_type,
        "max_iter": max_iter,
        "reg_covar": reg_covar,
        "prior": prior is not None,
        "missing_data": isinstance(engine, MissingDataEngine),
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


def _compiled_iterations(monitor, inputs, parameters, reg_covar):
    """The EM iterations of :func:`fit_mixture_em` with one compiled batched EM map of the
    active starts each (:func:`~em_lib.numerics._polish.em_maps`: the same E-step, M-step
    and checks as the numpy steps); ``parameters`` (weights, centred means, covariances) are
    updated in place."""
    from ._polish import em_maps

    code, phi, row_weights, block, floor = inputs
    weights, means, covariances = parameters
    flat = covariances.reshape(weights.shape[0], -1)  # a view: updates reach ``covariances``
    for _ in range(monitor.trace.shape[1]):
        index = monitor.active_index()
        if index.size == 0:
            break
        point = (weights[index], means[index], flat[index])
        mapped = tuple(np.empty_like(part) for part in point)
        objective, good = em_maps(code, phi, row_weights, block, reg_covar, floor, point, mapped)
        finite = monitor.observe(index, objective)
        monitor.advance(
            index[finite],
            good[finite],
            tuple(
                (target, part[finite])
                for target, part in zip(parameters[:2] + (flat,), mapped, strict=True)
            ),
        )
