"""Compiled SQUAREM cycles for polishing complete-data mixture fits.

:func:`~em_lib.numerics.squarem.polish_em` spends most of a polish at a few hundred rows in
Python: each EM map is a dozen numpy calls of microseconds of arithmetic each, and each SQUAREM
cycle (two EM maps, an extrapolation, a proposal's EM map and sometimes a step back) another
few dozen. For complete data without a prior (the defaults of ``GaussianMixture`` and
``select_mixture``) one call here runs a whole cycle of one start: the same EM map as
:class:`~em_lib.numerics.gaussian.CompleteDataEngine` (the weight matrix, ``W^T phi^T``, the
compiled normalisation, ``phi^T R``, scikit-learn's M-step; the kernels of
:mod:`~em_lib.numerics._linalg` and :mod:`~em_lib.numerics._normalise` themselves) and the
same S3 extrapolation in the coordinates of :func:`~em_lib.numerics.squarem.to_vector`. The
driver in :mod:`~em_lib.numerics.squarem` keeps the convergence test, the pruning and the
monitor, so the rules exist once.

Covariances travel flat, one row per start: ``K d d`` values (full), ``d d`` (tied), ``K d``
(diag) or ``K`` (spherical).
"""

from __future__ import annotations

import numba
import numpy as np

from ._linalg import (
    mstep_diagonal,
    mstep_triangular,
    pack_log_cholesky,
    precision_factors,
    unpack_log_cholesky,
    weight_matrix_diagonal,
    weight_matrix_triangular,
)
from ._normalise import normalise_block

FULL, TIED, DIAG, SPHERICAL = 0, 1, 2, 3
TYPE_CODES = {"full": FULL, "tied": TIED, "diag": DIAG, "spherical": SPHERICAL}
PAD = 10 * np.finfo(float).eps  # the M-step's padding of the component weights

_JIT = {"cache": True, "boundscheck": False, "error_model": "numpy", "nogil": True}


@numba.njit(**_JIT)
def _n_matrices(code, n_comp):
    return 1 if code == TIED else n_comp


@numba.njit(**_JIT)
def _n_variances(code, d):
    """Values per component of a diag (d) or spherical (1) covariance."""
    return 1 if code == SPHERICAL else d


# ---------------------------------------------------------------------------------------------
# coordinates of the extrapolation
# ---------------------------------------------------------------------------------------------


@numba.njit(**_JIT)
def vector_of(code, weights, means, cov, out):
    """One start's coordinates (``to_vector``) into ``out``: log-weights, means, and the
    log-variances (diag, spherical) or packed log-Cholesky factors (full, tied)."""
    n_comp, d = means.shape
    for k in range(n_comp):
        out[k] = np.log(weights[k])
        for a in range(d):
            out[n_comp + k * d + a] = means[k, a]
    rest = out[n_comp + n_comp * d :]
    if code == FULL or code == TIED:
        m = _n_matrices(code, n_comp)
        pack_log_cholesky(cov.reshape((m, d, d)), rest.reshape((m, d * (d + 1) // 2)))
    else:
        for j in range(cov.size):
            rest[j] = np.log(cov[j])


@numba.njit(**_JIT)
def parameters_of(code, vector, weights, means, cov):
    """Inverse of :func:`vector_of`: weights (renormalised), means and covariances."""
    n_comp, d = means.shape
    top = vector[0]
    for k in range(1, n_comp):
        top = max(top, vector[k])
    total = 0.0
    for k in range(n_comp):
        weights[k] = np.exp(vector[k] - top)
        total += weights[k]
    for k in range(n_comp):
        weights[k] /= total
        for a in range(d):
            means[k, a] = vector[n_comp + k * d + a]
    rest = vector[n_comp + n_comp * d :]
    if code == FULL or code == TIED:
        m = _n_matrices(code, n_comp)
        packed = np.ascontiguousarray(rest).reshape((m, d * (d + 1) // 2))
        unpack_log_cholesky(packed, cov.reshape((m, d, d)))
    else:
        for j in range(cov.size):
            cov[j] = np.exp(rest[j])


@numba.njit(**_JIT)
def vectors(code, weights, means, cov, out):
    """:func:`vector_of` for every start (rows of the arguments)."""
    for i in range(weights.shape[0]):
        vector_of(code, weights[i], means[i], cov[i], out[i])


@numba.njit(**_JIT)
def parameters(code, vector, weights, means, cov):
    """:func:`parameters_of` for every start."""
    for i in range(vector.shape[0]):
        parameters_of(code, vector[i], weights[i], means[i], cov[i])


# ---------------------------------------------------------------------------------------------
# one EM map of one start
# ---------------------------------------------------------------------------------------------


@numba.njit(**_JIT)
def _factors(code, weights, means, cov, floor, prec):
    """Precision factors of a start's covariances into ``prec`` (flat like ``cov``) and
    whether the start can be evaluated: positive weights, finite means, covariances finite,
    positive definite and not collapsed (a conditional variance below ``floor``: per feature,
    or one value for spherical), as :func:`~em_lib.numerics.squarem.usable_parameters`."""
    n_comp, d = means.shape
    good = True
    for k in range(n_comp):
        if not weights[k] > 0.0:
            good = False
        for a in range(d):
            if not np.isfinite(means[k, a]):
                good = False
    if code == FULL or code == TIED:
        m = _n_matrices(code, n_comp)
        factors = prec.reshape((m, d, d))
        ok = np.empty(m, dtype=np.bool_)
        precision_factors(cov.reshape((m, d, d)), factors, ok)
        for j in range(m):
            if not ok[j]:
                good = False
            for a in range(d):
                u = factors[j, a, a]
                if 1.0 / u**2 < floor[a]:
                    good = False
    else:
        width = _n_variances(code, d)
        for j in range(cov.size):
            value = cov[j]
            if np.isfinite(value) and value > 0.0:
                factor = 1.0 / np.sqrt(value)
            else:
                factor = 1.0
                good = False
            prec[j] = factor
            if 1.0 / factor**2 < floor[j % width]:
                good = False
    return good


@numba.njit(**_JIT)
def em_map(code, phi, row_weights, block, reg_covar, floor, weights, means, cov, out):
    """One EM map of one start on the feature matrix ``phi`` (n, P) of the centred data.

    ``row_weights``: (0, 0) for none or (1, n); ``block``: rows per pass; ``floor``: the
    collapse thresholds. ``out`` = (weights, means, cov) receives the M-step's output, or a
    copy of the input when the input cannot be evaluated. Returns the input's log-likelihood
    (-inf when the input cannot be evaluated or it is not finite) and whether the output can
    be evaluated next.
    """
    w_out, mu_out, cov_out = out
    n_comp, d = means.shape
    prec = np.empty_like(cov)
    if not _factors(code, weights, means, cov, floor, prec):
        w_out[:] = weights
        mu_out[:, :] = means
        cov_out[:] = cov
        return -np.inf, False
    n, n_columns = phi.shape
    W = np.empty((n_columns, n_comp))
    log_weights = np.log(weights).reshape((1, n_comp))
    means_1 = np.ascontiguousarray(means).reshape((1, n_comp, d))
    if code == FULL or code == TIED:
        m = _n_matrices(code, n_comp)
        weight_matrix_triangular(log_weights, means_1, prec.reshape((1, m, d, d)), W)
    else:
        width = _n_variances(code, d)
        spherical = code == SPHERICAL
        weight_matrix_diagonal(log_weights, means_1, prec.reshape((1, n_comp, width)), spherical, W)
    W_t = np.ascontiguousarray(W.T)
    acc = np.zeros((n_columns, n_comp))
    loglik = np.zeros(1)
    index = np.zeros(1, dtype=np.int64)
    for start in range(0, n, block):
        stop = min(start + block, n)
        rows = phi[start:stop]
        weighted_t = np.dot(W_t, rows.T)
        log_norm = np.empty((1, stop - start))
        normalise_block(weighted_t, 1, n_comp, True, log_norm, row_weights, index, start, loglik)
        acc += np.dot(rows.T, weighted_t.T)
    nk = np.empty((1, n_comp))
    first = np.empty((1, n_comp, d))
    for k in range(n_comp):
        nk[0, k] = acc[0, k] + PAD
        for a in range(d):
            first[0, k, a] = acc[1 + a, k]
    w_1 = w_out.reshape((1, n_comp))
    mu_1 = mu_out.reshape((1, n_comp, d))
    if code == FULL or code == TIED:
        second = np.empty((1, n_comp, d, d))
        for k in range(n_comp):
            position = 1 + d
            for a in range(d):
                for b in range(a, d):
                    second[0, k, a, b] = acc[position, k]
                    second[0, k, b, a] = acc[position, k]
                    position += 1
        m = _n_matrices(code, n_comp)
        mstep_triangular(nk, first, second, reg_covar, w_1, mu_1, cov_out.reshape((1, m, d, d)))
    else:
        width = _n_variances(code, d)
        second = np.empty((1, n_comp, width))
        for k in range(n_comp):
            for a in range(width):
                second[0, k, a] = acc[1 + d + a, k]
        mstep_diagonal(nk, first, second, reg_covar, w_1, mu_1, cov_out.reshape((1, n_comp, width)))
    good = True
    for k in range(n_comp):
        if not np.isfinite(w_out[k]):
            good = False
    good = _factors(code, w_out, mu_out, cov_out, floor, prec) and good
    value = loglik[0]
    return (value if np.isfinite(value) else -np.inf), good


# ---------------------------------------------------------------------------------------------
# one SQUAREM cycle of each start
# ---------------------------------------------------------------------------------------------


@numba.njit(**_JIT)
def _record(objective, loglik, start, params, best, roundoff):
    """The input ``params`` of an evaluation become the start's best unless its objective is
    worse than the best beyond round-off (see ``polish_em``)."""
    best_w, best_mu, best_cov, best_objective = best
    previous = best_objective[start]
    floor = previous - roundoff * (1.0 + abs(previous))
    if not np.isfinite(floor):
        floor = -np.inf
    if np.isfinite(objective) and objective >= floor:
        best_w[start] = params[0]
        best_mu[start] = params[1]
        best_cov[start] = params[2]
        best_objective[start] = objective
        loglik[start] = objective


@numba.njit(**_JIT)
def cycles(
    code,
    phi,
    row_weights,
    block,
    reg_covar,
    floor,
    roundoff,
    backtrack_from,
    index,
    extrapolate,
    states,
    best,
    best_loglik,
    results,
    log,
):
    """One cycle of each start in ``index``.

    ``states`` = (current, step1, step2): parameter triples (weights (I, K), means (I, K, d),
    flat covariances (I, C)) of the point the start is at, its EM map and that map's. With
    ``extrapolate`` the cycle first extrapolates from the three (scheme S3 with the step
    back of ``BACKTRACK_FROM``), evaluates the proposal and moves ``current`` to the
    proposal's EM map if its objective is at least the second map's, else to the second
    map. Every cycle then evaluates ``current`` (recorded as the best when it is) and its
    map (recorded likewise). ``results`` (objective0, objective1, ok1, ok2) receive, per
    start, the two objectives and whether each map's output can be evaluated; row ``i`` of
    ``log`` (I, 4) the start's best objective after each of its evaluations. Returns the
    number of evaluations of each start of ``index`` (2 to 4).
    """
    current, step1, step2 = states
    objective0, objective1, ok1, ok2 = results
    best_objective = best[3]
    n_comp, d = current[1].shape[1], current[1].shape[2]
    size = n_comp + n_comp * d + current[2].shape[1]
    if code == FULL or code == TIED:
        m = _n_matrices(code, n_comp)
        size = n_comp + n_comp * d + m * d * (d + 1) // 2
    counts = np.zeros(index.size, dtype=np.int64)
    t0 = np.empty(size)
    t1 = np.empty(size)
    t2 = np.empty(size)
    proposal = np.empty(size)
    trial = (np.empty(n_comp), np.empty((n_comp, d)), np.empty(current[2].shape[1]))
    mapped = (np.empty(n_comp), np.empty((n_comp, d)), np.empty(current[2].shape[1]))
    for position in range(index.size):
        i = index[position]
        count = 0
        if extrapolate:
            vector_of(code, current[0][i], current[1][i], current[2][i], t0)
            vector_of(code, step1[0][i], step1[1][i], step1[2][i], t1)
            vector_of(code, step2[0][i], step2[1][i], step2[2][i], t2)
            r_norm = 0.0
            v_norm = 0.0
            for p in range(size):
                r = t1[p] - t0[p]
                v = t2[p] - t1[p] - r
                r_norm += r * r
                v_norm += v * v
            alpha = -np.sqrt(r_norm) / np.sqrt(v_norm) if v_norm > 0 else -1.0
            alpha = min(alpha, -1.0)
            attempts = 2 if alpha < -backtrack_from else 1
            accepted = False
            for attempt in range(attempts):
                if attempt == 1:
                    alpha = (alpha - 1.0) / 2.0
                finite = True
                for p in range(size):
                    r = t1[p] - t0[p]
                    v = t2[p] - t1[p] - r
                    proposal[p] = t0[p] - 2.0 * alpha * r + alpha * alpha * v
                    if not np.isfinite(proposal[p]):
                        finite = False
                parameters_of(code, proposal, trial[0], trial[1], trial[2])
                value, good = em_map(
                    code,
                    phi,
                    row_weights,
                    block,
                    reg_covar,
                    floor,
                    trial[0],
                    trial[1],
                    trial[2],
                    mapped,
                )
                log[i, count] = best_objective[i]
                count += 1
                if finite and good and np.isfinite(value) and value >= objective1[i]:
                    accepted = True
                    break
            if accepted:
                current[0][i] = mapped[0]
                current[1][i] = mapped[1]
                current[2][i] = mapped[2]
            else:
                current[0][i] = step2[0][i]
                current[1][i] = step2[1][i]
                current[2][i] = step2[2][i]
        params = (current[0][i], current[1][i], current[2][i])
        out = (step1[0][i], step1[1][i], step1[2][i])
        value, good = em_map(
            code, phi, row_weights, block, reg_covar, floor, params[0], params[1], params[2], out
        )
        _record(value, best_loglik, i, params, best, roundoff)
        log[i, count] = best_objective[i]
        count += 1
        objective0[i], ok1[i] = value, good
        out2 = (step2[0][i], step2[1][i], step2[2][i])
        value, good = em_map(
            code, phi, row_weights, block, reg_covar, floor, out[0], out[1], out[2], out2
        )
        _record(value, best_loglik, i, out, best, roundoff)
        log[i, count] = best_objective[i]
        count += 1
        objective1[i], ok2[i] = value, good
        counts[position] = count
    return counts
