"""Compiled batched Cholesky factorisation with the inverse of the factor.

EM factorises I * K small covariance matrices (d of 2 to a few dozen) at every iteration.
LAPACK through numpy's batched gufuncs spends most of that time in per-matrix call overhead
(a batched ``np.linalg.solve`` for the triangular inverse of 80 10x10 factors: ~0.3 ms), so
both steps are done here in one compiled loop: the lower factor ``L`` (the Cholesky-Banachiewicz
order, reading only the lower triangle like LAPACK's ``potrf`` with ``uplo='L'``) and
``L^-1`` by forward substitution. A matrix is "not positive definite" when a pivot is not
strictly positive (NaN included); its factor and inverse are set to the identity.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, boundscheck=False, error_model="numpy", nogil=True)
def cholesky_inverse(matrices, lower, inverse, ok):
    """``matrices`` (N, d, d) -> ``lower`` (N, d, d), ``inverse`` (N, d, d), ``ok`` (N,)."""
    n_matrices, d, _ = matrices.shape
    for b in range(n_matrices):
        A = matrices[b]
        L = lower[b]
        V = inverse[b]
        L[:, :] = 0.0
        V[:, :] = 0.0
        good = True
        for j in range(d):
            pivot = A[j, j]
            for k in range(j):
                pivot -= L[j, k] * L[j, k]
            if not pivot > 0.0:
                good = False
                break
            diagonal = np.sqrt(pivot)
            L[j, j] = diagonal
            for i in range(j + 1, d):
                value = A[i, j]
                for k in range(j):
                    value -= L[i, k] * L[j, k]
                L[i, j] = value / diagonal
        if good:
            for j in range(d):
                V[j, j] = 1.0 / L[j, j]
                for i in range(j + 1, d):
                    value = 0.0
                    for k in range(j, i):
                        value -= L[i, k] * V[k, j]
                    V[i, j] = value / L[i, i]
        else:
            L[:, :] = 0.0
            for j in range(d):
                L[j, j] = 1.0
                V[j, j] = 1.0
        ok[b] = good


def batched_cholesky_inverse(matrices: np.ndarray):
    """Lower Cholesky factors, their inverses and per-matrix success of (..., d, d) matrices.

    Non-finite matrices count as failures (a factor of inf entries would pass the pivot
    test)."""
    shape = matrices.shape
    flat = np.ascontiguousarray(matrices, dtype=float).reshape((-1,) + shape[-2:])
    finite = np.isfinite(flat).all(axis=(1, 2))
    safe = flat if finite.all() else np.where(finite[:, None, None], flat, np.eye(shape[-1]))
    lower = np.empty_like(safe)
    inverse = np.empty_like(safe)
    ok = np.empty(safe.shape[0], dtype=np.bool_)
    cholesky_inverse(safe, lower, inverse, ok)
    ok &= finite
    return lower.reshape(shape), inverse.reshape(shape), ok.reshape(shape[:-2])
