"""Starting parameters of a batched HMM fit (``n_init`` starts from one Generator)."""

from __future__ import annotations

import numpy as np

from ..covariance import check_covariance_type
from ..criteria import logsumexp
from ..init import initial_parameters
from ..mixture_em import fit_mixture_em
from ..starts import as_generator
from .checks import check_sequences
from .emissions import column_centre, emission_log_prob

INIT_STRATEGIES = ("gmm", "random")

__all__ = ["INIT_STRATEGIES", "initial_hmm_parameters"]


def _data_covariance(X):
    """Covariance of data with NaN: observed variances on the diagonal, off-diagonal terms
    from mean-imputed data, plus a small ridge so that it is positive definite."""
    center = column_centre(X)
    filled = np.where(np.isnan(X), center, X)
    d = X.shape[1]
    cov = np.atleast_2d(np.cov(filled, rowvar=False, ddof=0)).reshape(d, d)
    observed = ~np.isnan(X)
    sq = np.where(observed, (X - center) ** 2, 0.0).sum(0) / np.maximum(observed.sum(0), 1)
    cov[np.diag_indices(d)] = sq
    scale = float(np.mean(sq)) if np.mean(sq) > 0 else 1.0
    cov[np.diag_indices(d)] += 1e-6 * scale
    cov[np.diag_indices(d)] = np.maximum(cov[np.diag_indices(d)], 1e-3 * scale)
    return cov


def _typed_from_full(cov, covariance_type, n_init, n_components):
    d = cov.shape[0]
    if covariance_type == "full":
        return np.broadcast_to(cov, (n_init, n_components, d, d)).copy()
    if covariance_type == "tied":
        return np.broadcast_to(cov, (n_init, d, d)).copy()
    if covariance_type == "diag":
        return np.broadcast_to(np.diag(cov), (n_init, n_components, d)).copy()
    return np.full((n_init, n_components), np.trace(cov) / d)


def _pair_rows(offsets):
    """Row indices t with t + 1 in the same sequence."""
    return np.concatenate(
        [np.arange(lo, hi - 1) for lo, hi in zip(offsets[:-1], offsets[1:], strict=True)]
    )


def initial_hmm_parameters(
    X,
    lengths,
    n_components,
    covariance_type,
    n_init,
    *,
    init="gmm",
    random_state=None,
    reg_covar=1e-6,
    gmm_init="kmeans",
    gmm_max_iter=20,
    gmm_tol=1e-3,
):
    """Starting parameters for ``n_init`` starts, all drawn from one explicit Generator.

    Strategies
    ----------
    ``"gmm"`` (the default of :class:`em_lib.hmm.GaussianHMM`): the mixture core's batched
        initialisation (:func:`em_lib.numerics.init.initial_parameters`, method ``gmm_init``,
        k-means++ seeds and Lloyd steps by default) on the pooled data, refined by a short
        batched run of em_lib's mixture EM (:func:`~em_lib.numerics.mixture_em.fit_mixture_em`,
        at most ``gmm_max_iter`` iterations). Emissions = the mixture components,
        ``startprob`` = mixture weights, ``transmat`` rows from the soft transition counts of
        consecutive mixture posteriors, ``sum_t r_tj r_{t+1,k} + 1`` normalised (the +1 keeps
        every transition possible: Baum-Welch can never revive a zero). A start whose
        mixture fit fails keeps its k-means means with the pooled data covariance.
        Default because the pooled mixture is the HMM's stationary marginal: it puts the
        emissions near a good optimum, the posterior-based transitions start the chain near
        the data's persistence, and the k-means++ seeding keeps the starts diverse.
    ``"random"``: means from distinct random rows (fully observed rows when there are at
        least ``K``, else rows with NaN replaced by column means), the pooled data covariance
        for every state, start and transition rows from a flat Dirichlet(1).

    Returns
    -------
    dict with ``startprob`` (I, K), ``transmat`` (I, K, K), ``means`` (I, K, d),
    ``covariances`` (typed).
    """
    if init not in INIT_STRATEGIES:
        raise ValueError(f"init must be one of {list(INIT_STRATEGIES)}, got {init!r}")
    check_covariance_type(covariance_type)
    X, lengths, offsets = check_sequences(X, lengths)
    k = int(n_components)
    n_init = int(n_init)
    rng = as_generator(random_state)
    pooled = X[~np.isnan(X).all(axis=1)]
    if pooled.shape[0] < k:
        raise ValueError(
            f"need at least n_components={k} observed time steps, got {pooled.shape[0]}"
        )
    cov = _data_covariance(pooled)
    data_covariances = _typed_from_full(cov, covariance_type, n_init, k)
    if init == "random":
        points = pooled[~np.isnan(pooled).any(axis=1)]
        if points.shape[0] < k:
            points = np.where(np.isnan(pooled), column_centre(pooled), pooled)
        means = np.stack(
            [points[rng.choice(points.shape[0], size=k, replace=False)] for _ in range(n_init)]
        )
        startprob = rng.dirichlet(np.ones(k), size=n_init)
        transmat = rng.dirichlet(np.ones(k), size=(n_init, k))
        return {
            "startprob": startprob,
            "transmat": transmat,
            "means": means,
            "covariances": data_covariances,
        }
    weights, means, covariances = initial_parameters(
        pooled, k, covariance_type, n_init, gmm_init, rng, reg_covar=reg_covar
    )
    gmm = fit_mixture_em(
        pooled,
        weights,
        means,
        covariances,
        covariance_type,
        tol=gmm_tol,
        max_iter=gmm_max_iter,
        reg_covar=reg_covar,
    )
    good = ~gmm.failed
    weights = np.where(good[:, None], gmm.weights, 1.0 / k)
    means = np.where(good[:, None, None], gmm.means, means)
    covariances = np.where(
        good.reshape((-1,) + (1,) * (data_covariances.ndim - 1)), gmm.covariances, data_covariances
    )
    weights = np.maximum(weights, 1e-12)
    weights /= weights.sum(-1, keepdims=True)
    center = column_centre(X)
    log_resp = emission_log_prob(X, means, covariances, covariance_type, center)
    log_resp += np.log(weights)[:, None, :]
    log_resp -= logsumexp(log_resp, axis=-1)[..., None]
    with np.errstate(under="ignore"):
        resp = np.exp(log_resp)
    first = _pair_rows(offsets)
    counts = np.einsum("inj,ink->ijk", resp[:, first], resp[:, first + 1]) + 1.0
    transmat = counts / counts.sum(-1, keepdims=True)
    return {"startprob": weights, "transmat": transmat, "means": means, "covariances": covariances}
