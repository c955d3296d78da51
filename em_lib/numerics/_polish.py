"""Compiled SQUAREM cycles for polishing complete-data mixture fits.

:func:`~em_lib.numerics.squarem.polish_em` spent most of a polish at a few hundred rows in
Python: each EM map is a dozen numpy calls of microseconds of arithmetic each, and each SQUAREM
cycle (two EM maps, an extrapolation, a proposal's EM map and sometimes a step back) another
few dozen. For complete data without a prior (the defaults of ``GaussianMixture`` and
``select_mixture``) one call here runs a whole cycle of every running start, each stage (the
proposals, the steps back, the point's EM map, that map's map) one batched EM map like
:class:`~em_lib.numerics.gaussian.CompleteDataEngine`'s (the weight matrix, ``W^T phi^T`` per
block of rows, the compiled normalisation, ``phi^T R``, scikit-learn's M-step; the kernels of
:mod:`~em_lib.numerics._linalg` and :mod:`~em_lib.numerics._normalise` themselves) and the
same S3 extrapolation in the coordinates of :func:`~em_lib.numerics.squarem.to_vector`. The
driver in :mod:`~em_lib.numerics.squarem` keeps the convergence test, the pruning and the
monitor, so those rules exist once.

Covariances travel flat, one row per start: ``K d d`` values (full), ``d d`` (tied), ``K d``
(diag) or ``K`` (spherical).

numba compiles these functions, with the kernels they call, on first use (about 25 s) and
caches them on disk. Its cache of a function is keyed on the function's own file: after an
edit of ``_linalg.py`` or ``_normalise.py`` during development, delete this module's cache
files (``__pycache__/_polish*.nb*``) so that the cycles are compiled with the new kernels.
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


def compiled_inputs(prepared, row_weights, prior, n_columns):
    """The arguments of :func:`em_maps` but the parameters, ``(code, phi, row_weights,
    block, floor)``, for up to ``n_columns`` (start, component) columns; None where the
    compiled map does not apply (missing data, a prior, rows weighted per start, a feature
    matrix too large to keep)."""
    from .covariance import COLLAPSE_RELATIVE
    from .gaussian import CompleteDataEngine

    engine = prepared.engine
    if prior is not None or np.ndim(row_weights) == 2:
        return None
    if not isinstance(engine, CompleteDataEngine) or engine.cached_features() is None:
        return None
    covariance_type = prepared.covariance_type
    variances = prepared.feature_variances
    floor = COLLAPSE_RELATIVE * (
        np.array([variances.mean()]) if covariance_type == "spherical" else variances
    )
    if row_weights is None:
        row_weights = np.empty((0, 0))
    else:
        row_weights = np.ascontiguousarray(row_weights, dtype=float).reshape(1, -1)
    # rows per block for each number of columns, as the engine's E-step
    block = np.array([engine.block_rows(max(columns, 1)) for columns in range(n_columns + 1)])
    return TYPE_CODES[covariance_type], engine.cached_features(), row_weights, block, floor


@numba.njit(**_JIT)
def _triangular(code):
    """Whether covariances of this type are matrices (full, tied)."""
    return code == FULL or code == TIED


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
    if _triangular(code):
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
    if _triangular(code):
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
    if _triangular(code):
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
def em_maps(code, phi, row_weights, block, reg_covar, floor, params, out):
    """One EM map of each of M starts on the feature matrix ``phi`` (n, P) of the centred
    data, the usable ones in one batch (one ``W^T phi^T`` and one ``phi^T R`` per block of
    ``block(columns)`` rows, as the engine's E-step).

    ``params`` = (weights (M, K), means (M, K, d), flat covariances (M, C)); ``out`` the
    same for the M-step's output (a copy of the input for a start that cannot be evaluated);
    ``row_weights``: (0, 0) for none or (1, n); ``block``: rows per block for each number of
    columns (array indexed by columns); ``floor``: the collapse thresholds. Returns each
    input's log-likelihood (-inf when it cannot be evaluated or is not finite) and whether
    each output can be evaluated next.
    """
    weights, means, cov = params
    w_out, mu_out, cov_out = out
    n_starts, n_comp, d = means.shape
    prec = np.empty_like(cov)
    usable = np.zeros(n_starts, dtype=np.bool_)
    for j in range(n_starts):
        usable[j] = _factors(code, weights[j], means[j], cov[j], floor, prec[j])
    objective = np.full(n_starts, -np.inf)
    good = np.zeros(n_starts, dtype=np.bool_)
    picks = np.flatnonzero(usable)
    for j in range(n_starts):
        if not usable[j]:
            w_out[j] = weights[j]
            mu_out[j] = means[j]
            cov_out[j] = cov[j]
    m = picks.size
    if m == 0:
        return objective, good
    n, n_columns = phi.shape
    log_weights = np.empty((m, n_comp))
    centres = np.empty((m, n_comp, d))
    factors = np.empty((m, cov.shape[1]))
    for q in range(m):
        j = picks[q]
        log_weights[q] = np.log(weights[j])
        centres[q] = means[j]
        factors[q] = prec[j]
    W = np.empty((n_columns, m * n_comp))
    if _triangular(code):
        n_mat = _n_matrices(code, n_comp)
        weight_matrix_triangular(log_weights, centres, factors.reshape((m, n_mat, d, d)), W)
    else:
        width = _n_variances(code, d)
        spherical = code == SPHERICAL
        weight_matrix_diagonal(
            log_weights, centres, factors.reshape((m, n_comp, width)), spherical, W
        )
    W_t = np.ascontiguousarray(W.T)
    acc = np.zeros((n_columns, m * n_comp))
    loglik = np.zeros(m)
    index = np.zeros(1, dtype=np.int64)
    rows_per_block = block[min(m * n_comp, block.size - 1)]
    for start in range(0, n, rows_per_block):
        stop = min(start + rows_per_block, n)
        rows = phi[start:stop]
        weighted_t = np.dot(W_t, rows.T)
        log_norm = np.empty((m, stop - start))
        normalise_block(weighted_t, m, n_comp, True, log_norm, row_weights, index, start, loglik)
        acc += np.dot(rows.T, weighted_t.T)
    nk = np.empty((m, n_comp))
    first = np.empty((m, n_comp, d))
    for q in range(m):
        for k in range(n_comp):
            column = q * n_comp + k
            nk[q, k] = acc[0, column] + PAD
            for a in range(d):
                first[q, k, a] = acc[1 + a, column]
    w_new = np.empty((m, n_comp))
    mu_new = np.empty((m, n_comp, d))
    cov_new = np.empty((m, cov.shape[1]))
    if _triangular(code):
        second = np.empty((m, n_comp, d, d))
        for q in range(m):
            for k in range(n_comp):
                column = q * n_comp + k
                position = 1 + d
                for a in range(d):
                    for b in range(a, d):
                        second[q, k, a, b] = acc[position, column]
                        second[q, k, b, a] = acc[position, column]
                        position += 1
        n_mat = _n_matrices(code, n_comp)
        mstep_triangular(
            nk, first, second, reg_covar, w_new, mu_new, cov_new.reshape((m, n_mat, d, d))
        )
    else:
        width = _n_variances(code, d)
        second = np.empty((m, n_comp, width))
        for q in range(m):
            for k in range(n_comp):
                for a in range(width):
                    second[q, k, a] = acc[1 + d + a, q * n_comp + k]
        mstep_diagonal(
            nk, first, second, reg_covar, w_new, mu_new, cov_new.reshape((m, n_comp, width))
        )
    scratch = np.empty(cov.shape[1])
    for q in range(m):
        j = picks[q]
        w_out[j] = w_new[q]
        mu_out[j] = mu_new[q]
        cov_out[j] = cov_new[q]
        finite = True
        for k in range(n_comp):
            if not np.isfinite(w_new[q, k]):
                finite = False
        good[j] = _factors(code, w_new[q], mu_new[q], cov_new[q], floor, scratch) and finite
        value = loglik[q]
        objective[j] = value if np.isfinite(value) else -np.inf
    return objective, good


# ---------------------------------------------------------------------------------------------
# one SQUAREM cycle of every running start
# ---------------------------------------------------------------------------------------------


@numba.njit(**_JIT)
def _gather(source, index):
    """Copies of the rows ``index`` of a parameter triple."""
    weights, means, cov = source
    return weights[index], means[index], cov[index]


@numba.njit(**_JIT)
def _record(objective, index, params, best, best_loglik, roundoff):
    """The evaluated inputs ``params`` (rows for the starts ``index``) become their start's
    best unless their objective is worse than the best beyond round-off (see
    ``polish_em``)."""
    best_w, best_mu, best_cov, best_objective = best
    for q in range(index.size):
        i = index[q]
        previous = best_objective[i]
        floor = previous - roundoff * (1.0 + abs(previous))
        if not np.isfinite(floor):
            floor = -np.inf
        value = objective[q]
        if np.isfinite(value) and value >= floor:
            best_w[i] = params[0][q]
            best_mu[i] = params[1][q]
            best_cov[i] = params[2][q]
            best_objective[i] = value
            best_loglik[i] = value


@numba.njit(**_JIT)
def _log(index, best_objective, log, counts, positions):
    """Each start at ``positions`` of ``index`` logs its best objective after an evaluation."""
    for q in range(positions.size):
        p = positions[q]
        log[index[p], counts[p]] = best_objective[index[p]]
        counts[p] += 1


@numba.njit(**_JIT)
def _extrapolated(t0, t1, t2, alpha):
    """S3's point ``t0 - 2 a r + a^2 v`` per row (``r = t1 - t0``, ``v = t2 - 2 t1 + t0``)
    and whether each is finite."""
    out = np.empty_like(t0)
    finite = np.ones(t0.shape[0], dtype=np.bool_)
    for q in range(t0.shape[0]):
        a = alpha[q]
        for p in range(t0.shape[1]):
            r = t1[q, p] - t0[q, p]
            v = t2[q, p] - t1[q, p] - r
            out[q, p] = t0[q, p] - 2.0 * a * r + a * a * v
            if not np.isfinite(out[q, p]):
                finite[q] = False
    return out, finite


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
    """One cycle of every start in ``index``, each stage one batched EM map.

    ``states`` = (current, step1, step2): parameter triples (weights (I, K), means (I, K, d),
    flat covariances (I, C)) of the point a start is at, its EM map and that map's. With
    ``extrapolate`` the cycle first extrapolates from the three (scheme S3 with the step
    back of ``BACKTRACK_FROM``), evaluates the proposals and moves ``current`` to a
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
    m = index.size
    n_comp, d = current[1].shape[1], current[1].shape[2]
    width = current[2].shape[1]
    size = n_comp + n_comp * d + width
    if _triangular(code):
        size = n_comp + n_comp * d + _n_matrices(code, n_comp) * d * (d + 1) // 2
    counts = np.zeros(m, dtype=np.int64)
    t = np.empty((3, m, size))
    alpha = np.full(m, -1.0)
    accept = np.zeros(m, dtype=np.bool_)
    chosen = (np.empty((m, n_comp)), np.empty((m, n_comp, d)), np.empty((m, width)))
    rows = np.arange(m)
    steps = alpha
    finite = np.ones(m, dtype=np.bool_)
    point = _gather(current, index)
    mapped = point
    # stages: 0 the proposals, 1 the steps back, 2 the EM map of the point, 3 that map's
    # map; the EM map has one call site (each call site is compiled in full)
    for stage in range(4):
        if stage < 2 and not extrapolate:
            continue
        if stage == 0:
            for source in range(3):
                params = _gather(states[source], index)
                vectors(code, params[0], params[1], params[2], t[source])
            for q in range(m):
                r_norm = 0.0
                v_norm = 0.0
                for p in range(size):
                    r = t[1, q, p] - t[0, q, p]
                    v = t[2, q, p] - t[1, q, p] - r
                    r_norm += r * r
                    v_norm += v * v
                value = -np.sqrt(r_norm) / np.sqrt(v_norm) if v_norm > 0 else -1.0
                alpha[q] = min(value, -1.0)
            rows = np.arange(m)
            steps = alpha
        elif stage == 1:
            rows = np.flatnonzero(~accept & (alpha < -backtrack_from))
            if rows.size == 0:
                continue
            steps = (alpha[rows] - 1.0) / 2.0  # one step back toward the plain EM step
        elif stage == 2:
            if extrapolate:  # the cycle's point: an accepted proposal's map, or F(F(t))
                for q in range(m):
                    i = index[q]
                    if accept[q]:
                        current[0][i] = chosen[0][q]
                        current[1][i] = chosen[1][q]
                        current[2][i] = chosen[2][q]
                    else:
                        current[0][i] = step2[0][i]
                        current[1][i] = step2[1][i]
                        current[2][i] = step2[2][i]
            rows = np.arange(m)
            point = _gather(current, index)
        else:
            point = mapped
        if stage < 2:
            proposal, finite = _extrapolated(t[0][rows], t[1][rows], t[2][rows], steps)
            point = (
                np.empty((rows.size, n_comp)),
                np.empty((rows.size, n_comp, d)),
                np.empty((rows.size, width)),
            )
            parameters(code, proposal, point[0], point[1], point[2])
        mapped = (np.empty_like(point[0]), np.empty_like(point[1]), np.empty_like(point[2]))
        value, good = em_maps(code, phi, row_weights, block, reg_covar, floor, point, mapped)
        if stage >= 2:  # the point is an EM step's output (or the start): a candidate
            _record(value, index, point, best, best_loglik, roundoff)
        _log(index, best_objective, log, counts, rows)
        if stage < 2:
            for r in range(rows.size):
                q = rows[r]
                ok = finite[r] and good[r] and np.isfinite(value[r])
                if ok and value[r] >= objective1[index[q]]:
                    accept[q] = True
                    chosen[0][q] = mapped[0][r]
                    chosen[1][q] = mapped[1][r]
                    chosen[2][q] = mapped[2][r]
            continue
        target = step1 if stage == 2 else step2
        for q in range(m):
            i = index[q]
            target[0][i] = mapped[0][q]
            target[1][i] = mapped[1][q]
            target[2][i] = mapped[2][q]
            if stage == 2:
                objective0[i], ok1[i] = value[q], good[q]
            else:
                objective1[i], ok2[i] = value[q], good[q]
    return counts
