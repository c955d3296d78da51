"""Compiled small-matrix kernels of the EM step.

EM factorises I * K small covariance matrices (d of 2 to a few dozen) at every iteration,
builds the E-step's weight matrix from them and turns statistics into parameters. LAPACK
through numpy's batched gufuncs, einsum and fancy indexing spend most of that time in
per-call overhead (a batched ``np.linalg.solve`` for the triangular inverse of 80 10x10
factors: ~0.3 ms), so each is one compiled loop here. Cholesky factors are computed in the
Cholesky-Banachiewicz order; a matrix is "not positive definite" when a pivot is not strictly
positive (NaN included).
"""

from __future__ import annotations

import numba
import numpy as np

# ---------------------------------------------------------------------------------------------
# small per-component work of every EM step, one compiled loop each: with a few starts of a
# few components these are microseconds of arithmetic behind tens of microseconds of numpy
# call overhead (einsum, fancy indexing, batched LAPACK), which dominated an EM map at n = 500
# ---------------------------------------------------------------------------------------------

LOG_2PI = float(np.log(2.0 * np.pi))


@numba.njit(cache=True, boundscheck=False, error_model="numpy", nogil=True)
def _lower_cholesky(A, L):
    """The lower Cholesky factor of ``A`` (d, d) into ``L`` (its lower triangle; only ``A``'s
    lower triangle is read); False, ``L`` incomplete, when a pivot is not positive."""
    d = A.shape[0]
    for j in range(d):
        pivot = A[j, j]
        for k in range(j):
            pivot -= L[j, k] * L[j, k]
        if not pivot > 0.0:
            return False
        diagonal = np.sqrt(pivot)
        L[j, j] = diagonal
        for i in range(j + 1, d):
            value = A[i, j]
            for k in range(j):
                value -= L[i, k] * L[j, k]
            L[i, j] = value / diagonal
    return True


@numba.njit(cache=True, boundscheck=False, error_model="numpy", nogil=True)
def weight_matrix_triangular(log_weights, means, prec_chol, out):
    """``W`` of :func:`~em_lib.numerics.covariance.estep_weight_matrix` for full or tied
    factors: ``prec_chol`` (I, K, d, d) upper triangular, or (I, 1, d, d) shared by the K
    components (tied); ``out`` (1 + d + d(d+1)/2, I * K)."""
    n_init, n_comp, d = means.shape
    shared = prec_chol.shape[1] == 1
    precision = np.empty((d, d))
    product = np.empty(d)
    for i in range(n_init):
        for k in range(n_comp):
            U = prec_chol[i, 0 if shared else k]
            column = i * n_comp + k
            log_det = 0.0
            for a in range(d):
                log_det += np.log(U[a, a])
                for b in range(a, d):  # P = U U^T, U upper: sum over c >= max(a, b) = b
                    value = 0.0
                    for c in range(b, d):
                        value += U[a, c] * U[b, c]
                    precision[a, b] = value
                    precision[b, a] = value
            mahalanobis = 0.0
            for a in range(d):
                value = 0.0
                for b in range(d):
                    value += precision[a, b] * means[i, k, b]
                product[a] = value
                mahalanobis += means[i, k, a] * value
                out[1 + a, column] = value
            position = 1 + d
            for a in range(d):
                out[position, column] = -0.5 * precision[a, a]
                position += 1
                for b in range(a + 1, d):
                    out[position, column] = -precision[a, b]
                    position += 1
            out[0, column] = log_weights[i, k] + log_det - 0.5 * d * LOG_2PI - 0.5 * mahalanobis


@numba.njit(cache=True, boundscheck=False, error_model="numpy", nogil=True)
def weight_matrix_diagonal(log_weights, means, prec, spherical, out):
    """``W`` for diag factors ``prec`` (I, K, d) or spherical ones (I, K, 1): ``1 / sd``."""
    n_init, n_comp, d = means.shape
    for i in range(n_init):
        for k in range(n_comp):
            column = i * n_comp + k
            log_det = 0.0
            mahalanobis = 0.0
            for a in range(d):
                factor = prec[i, k, 0 if spherical else a]
                inverse = factor * factor
                log_det += np.log(factor)
                value = inverse * means[i, k, a]
                out[1 + a, column] = value
                mahalanobis += means[i, k, a] * value
                if not spherical:
                    out[1 + d + a, column] = -0.5 * inverse
            if spherical:
                factor = prec[i, k, 0]
                out[1 + d, column] = -0.5 * factor * factor
            out[0, column] = log_weights[i, k] + log_det - 0.5 * d * LOG_2PI - 0.5 * mahalanobis


@numba.njit(cache=True, boundscheck=False, error_model="numpy", nogil=True)
def pack_log_cholesky(matrices, out):
    """Lower Cholesky factors of ``matrices`` (M, d, d) in ``np.tril_indices`` order with
    the diagonal on the log scale, into ``out`` (M, d(d+1)/2); NaN for a matrix that is not
    positive definite."""
    n_matrices, d, _ = matrices.shape
    L = np.empty((d, d))
    for m in range(n_matrices):
        A = matrices[m]
        good = _lower_cholesky(A, L)
        position = 0
        for i in range(d):
            for j in range(i + 1):
                if not good:
                    out[m, position] = np.nan
                elif i == j:
                    out[m, position] = np.log(L[i, i])
                else:
                    out[m, position] = L[i, j]
                position += 1


@numba.njit(cache=True, boundscheck=False, error_model="numpy", nogil=True)
def unpack_log_cholesky(values, out):
    """Inverse of :func:`pack_log_cholesky`: ``out`` (M, d, d) = ``L L^T`` with ``L`` read
    from ``values`` (M, d(d+1)/2), its diagonal exponentiated."""
    n_matrices, d, _ = out.shape
    L = np.zeros((d, d))
    for m in range(n_matrices):
        position = 0
        for i in range(d):
            for j in range(i + 1):
                value = values[m, position]
                L[i, j] = np.exp(value) if i == j else value
                position += 1
        for a in range(d):
            for b in range(a + 1):
                total = 0.0
                for c in range(b + 1):
                    total += L[a, c] * L[b, c]
                out[m, a, b] = total
                out[m, b, a] = total


@numba.njit(cache=True, boundscheck=False, error_model="numpy", nogil=True)
def _weights_and_means(nk, first, weights, means):
    n_init, n_comp, d = first.shape
    for i in range(n_init):
        total = 0.0
        for k in range(n_comp):
            total += nk[i, k]
        for k in range(n_comp):
            weights[i, k] = nk[i, k] / total
            for a in range(d):
                means[i, k, a] = first[i, k, a] / nk[i, k]


@numba.njit(cache=True, boundscheck=False, error_model="numpy", nogil=True)
def mstep_triangular(nk, first, second, reg_covar, weights, means, covariances):
    """scikit-learn's M-step (no prior) from statistics ``nk`` (I, K) (already padded),
    ``first`` (I, K, d) and ``second`` (I, K, d, d): full covariances (I, K, d, d), or the
    tied one when ``covariances`` is (I, 1, d, d). Writes ``weights``, ``means``,
    ``covariances``."""
    _weights_and_means(nk, first, weights, means)
    n_init, n_comp, d = first.shape
    tied = covariances.shape[1] == 1
    for i in range(n_init):
        total = 0.0
        for k in range(n_comp):
            total += nk[i, k]
        for a in range(d):
            for b in range(d):
                if tied:
                    scatter = 0.0
                    for k in range(n_comp):
                        scatter += second[i, k, a, b] - nk[i, k] * means[i, k, a] * means[i, k, b]
                    value = scatter / total
                    covariances[i, 0, a, b] = value + reg_covar if a == b else value
                else:
                    for k in range(n_comp):
                        value = second[i, k, a, b] / nk[i, k] - means[i, k, a] * means[i, k, b]
                        covariances[i, k, a, b] = value + reg_covar if a == b else value


@numba.njit(cache=True, boundscheck=False, error_model="numpy", nogil=True)
def mstep_diagonal(nk, first, second, reg_covar, weights, means, covariances):
    """The same for diag variances (``second`` and ``covariances`` (I, K, d)) or spherical
    ones (both (I, K, 1): the mean of the d variances)."""
    _weights_and_means(nk, first, weights, means)
    n_init, n_comp, d = first.shape
    spherical = covariances.shape[2] == 1
    for i in range(n_init):
        for k in range(n_comp):
            if spherical:
                square = 0.0
                for a in range(d):
                    square += means[i, k, a] * means[i, k, a]
                covariances[i, k, 0] = (second[i, k, 0] / nk[i, k] - square) / d + reg_covar
            else:
                for a in range(d):
                    mean = means[i, k, a]
                    covariances[i, k, a] = second[i, k, a] / nk[i, k] - mean * mean + reg_covar


@numba.njit(cache=True, boundscheck=False, error_model="numpy", nogil=True)
def precision_factors(matrices, factors, ok):
    """Upper precision Cholesky factors ``U = L^-T`` of ``matrices`` (N, d, d) (``L`` their
    lower Cholesky factor, so that ``U U^T`` is the inverse) into ``factors``, and ``ok``
    (N,): False, with an identity factor, for a matrix that is not finite or not positive
    definite."""
    n_matrices, d, _ = matrices.shape
    L = np.empty((d, d))
    for b in range(n_matrices):
        A = matrices[b]
        U = factors[b]
        good = True
        for i in range(d):
            for j in range(d):
                if not np.isfinite(A[i, j]):
                    good = False
        if good:
            good = _lower_cholesky(A, L)
        U[:, :] = 0.0
        if good:  # (L^-1)^T by forward substitution, written transposed
            for j in range(d):
                U[j, j] = 1.0 / L[j, j]
                for i in range(j + 1, d):
                    value = 0.0
                    for k in range(j, i):
                        value -= L[i, k] * U[j, k]
                    U[j, i] = value / L[i, i]
        else:
            for j in range(d):
                U[j, j] = 1.0
        ok[b] = good
