"""Covariance types: shapes, parameter counts, Cholesky factors and second-order features.

The four covariance types form a closed set (``COVARIANCE_TYPES``). The type-specific shape
handling, factorisations and second-order features live here; the M-step
(:func:`em_lib.numerics.mixture_em.mstep`) and the prior hold the type-specific updates.

Shapes (``I`` starts, ``K`` components, ``d`` features):

============  ==================
type          covariances
============  ==================
full          (I, K, d, d)
diag          (I, K, d)
spherical     (I, K)
tied          (I, d, d)
============  ==================

Precision Cholesky factors follow scikit-learn's convention: an upper-triangular ``U`` with
``precision = U @ U.T`` (full, tied), ``1 / sqrt(variance)`` for diag and spherical.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")


def check_covariance_type(covariance_type: str) -> str:
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(
            f"covariance_type must be one of {list(COVARIANCE_TYPES)}, got {covariance_type!r}"
        )
    return covariance_type


# ---------------------------------------------------------------------------------------------
# conversions
# ---------------------------------------------------------------------------------------------


def to_full(covariances: np.ndarray, covariance_type: str, n_components: int) -> np.ndarray:
    """Expand covariances of any type to full matrices of shape (I, K, d, d)."""
    check_covariance_type(covariance_type)
    if covariance_type == "full":
        return covariances
    if covariance_type == "tied":
        n_init, d, _ = covariances.shape
        return np.broadcast_to(covariances[:, None], (n_init, n_components, d, d)).copy()
    if covariance_type == "diag":
        return covariances[..., :, None] * np.eye(covariances.shape[-1])
    raise ValueError("spherical covariances need n_features; use spherical_to_full")


def spherical_to_full(covariances: np.ndarray, n_features: int) -> np.ndarray:
    """(I, K) spherical variances -> (I, K, d, d)."""
    return covariances[..., None, None] * np.eye(n_features)


def any_to_full(covariances, covariance_type, n_components, n_features) -> np.ndarray:
    if covariance_type == "spherical":
        return spherical_to_full(covariances, n_features)
    return to_full(covariances, covariance_type, n_components)


def from_full(full: np.ndarray, covariance_type: str, weights: np.ndarray) -> np.ndarray:
    """Project full (I, K, d, d) matrices to a covariance type (tied: weight-averaged)."""
    check_covariance_type(covariance_type)
    if covariance_type == "full":
        return full
    if covariance_type == "diag":
        return np.diagonal(full, axis1=-2, axis2=-1).copy()
    if covariance_type == "spherical":
        return np.trace(full, axis1=-2, axis2=-1) / full.shape[-1]
    return np.einsum("ik,ikde->ide", weights / weights.sum(-1, keepdims=True), full)


# ---------------------------------------------------------------------------------------------
# Cholesky factors with per-start failure reporting
# ---------------------------------------------------------------------------------------------


def triangular_inverse(factor: np.ndarray) -> np.ndarray:
    """Inverse of a batch of triangular (Cholesky) factors (..., d, d).

    numpy's batched solver runs as one gufunc call; scipy's ``solve_triangular`` loops over
    the batch in Python, which costs milliseconds per matrix with a threaded BLAS.
    """
    eye = np.broadcast_to(np.eye(factor.shape[-1]), factor.shape)
    return np.linalg.solve(factor, eye)


def cholesky_solve(lower: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve ``(L L^T) x = rhs`` for batches of lower Cholesky factors ``L``."""
    half = np.linalg.solve(lower, rhs)
    return np.linalg.solve(np.swapaxes(lower, -1, -2), half)


def precision_cholesky(covariances: np.ndarray, covariance_type: str):
    """Precision Cholesky factors of a batch of covariances.

    Parameters
    ----------
    covariances : array
        Covariances of the given type, init dimension first.
    covariance_type : {"full", "diag", "spherical", "tied"}

    Returns
    -------
    precisions_cholesky : array, same shape as ``covariances``
        Upper-triangular ``U`` with ``precision = U U^T`` (full, tied) or
        ``1 / sqrt(variance)`` (diag, spherical). Failed starts hold identity factors.
    ok : bool array of shape (I,)
        False for a start with a covariance that is not positive definite or not finite.
    """
    check_covariance_type(covariance_type)
    if covariance_type in ("full", "tied"):
        from ._linalg import precision_factors

        shape = covariances.shape
        flat = np.ascontiguousarray(covariances, dtype=float).reshape((-1,) + shape[-2:])
        prec = np.empty_like(flat)
        ok = np.empty(flat.shape[0], dtype=np.bool_)
        precision_factors(flat, prec, ok)
        ok = ok.reshape(shape[:-2])
        ok_start = ok if covariance_type == "tied" else ok.all(axis=-1)
        return prec.reshape(shape), ok_start
    positive = np.isfinite(covariances) & (covariances > 0)
    safe = np.where(positive, covariances, 1.0)
    prec = 1.0 / np.sqrt(safe)
    axes = tuple(range(1, covariances.ndim))
    return prec, positive.all(axis=axes)


COLLAPSE_RELATIVE = 1e-12


def collapsed_starts(prec_chol, covariance_type, feature_variances, relative=COLLAPSE_RELATIVE):
    """Starts with a component variance below ``relative`` times the data's variance.

    The squared diagonal of the covariance's Cholesky factor (``1 / diag(U)^2``) is each
    feature's variance given the preceding ones; a value below ``relative * var(x_j)`` means
    the component has shrunk onto a point or a lower-dimensional subspace (a likelihood
    singularity). Returns a bool array (I,).
    """
    if covariance_type in ("full", "tied"):
        conditional = 1.0 / np.diagonal(prec_chol, axis1=-2, axis2=-1) ** 2
        floor = relative * feature_variances
    elif covariance_type == "diag":
        conditional = 1.0 / prec_chol**2
        floor = relative * feature_variances
    else:
        conditional = 1.0 / prec_chol**2
        floor = relative * feature_variances.mean()
    small = conditional < floor
    return small.reshape(small.shape[0], -1).any(axis=1)


def covariances_from_precision_cholesky(prec_chol: np.ndarray, covariance_type: str):
    """Inverse of :func:`precision_cholesky` (for user-given ``precisions_init``)."""
    if covariance_type in ("full", "tied"):
        # cov = (U U^T)^-1 = U^-T U^-1, with U upper triangular
        inv_upper = triangular_inverse(prec_chol)
        return np.swapaxes(inv_upper, -1, -2) @ inv_upper
    return 1.0 / prec_chol**2


# ---------------------------------------------------------------------------------------------
# second-order features: quadratic forms and second moments as matrix products
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def upper_triangle(n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.triu_indices(n_features)``, computed once per size (read-only arrays)."""
    rows, cols = np.triu_indices(n_features)
    rows.setflags(write=False)
    cols.setflags(write=False)
    return rows, cols


@dataclass(frozen=True)
class FeatureLayout:
    """Column layout of the feature matrix ``phi(X) = [1, X, q(X)]``.

    ``q`` holds the type's second-order terms: ``x_d x_e`` for ``d <= e`` (full, tied),
    ``x_d^2`` (diag) or ``|x|^2`` (spherical). Quadratic forms ``(x - mu)^T P (x - mu)`` for
    every (start, component) then become one product ``phi @ W``, and weighted second moments
    one product ``phi.T @ resp``.
    """

    n_features: int
    covariance_type: str

    @property
    def n_second(self) -> int:
        d = self.n_features
        return {"full": d * (d + 1) // 2, "tied": d * (d + 1) // 2, "diag": d, "spherical": 1}[
            self.covariance_type
        ]

    @property
    def n_columns(self) -> int:
        return 1 + self.n_features + self.n_second

    @property
    def triu(self) -> tuple[np.ndarray, np.ndarray]:
        return upper_triangle(self.n_features)


def second_order_features(X: np.ndarray, layout: FeatureLayout, out: np.ndarray | None = None):
    """phi(X) of shape (n, 1 + d + n_second); see :class:`FeatureLayout`."""
    n, d = X.shape
    if out is None:
        out = np.empty((n, layout.n_columns))
    out[:, 0] = 1.0
    out[:, 1 : 1 + d] = X
    second = out[:, 1 + d :]
    kind = layout.covariance_type
    if kind in ("full", "tied"):
        rows, cols = layout.triu
        np.multiply(X[:, rows], X[:, cols], out=second)
    elif kind == "diag":
        np.multiply(X, X, out=second)
    else:
        second[:, 0] = np.einsum("nd,nd->n", X, X)
    return out


def estep_weight_matrix(
    log_weights: np.ndarray,
    means: np.ndarray,
    prec_chol: np.ndarray,
    covariance_type: str,
) -> np.ndarray:
    """Matrix ``W`` with ``phi(X) @ W = log w_k + log N(x | mu_k, Sigma_k)``.

    Column ``i * K + k`` holds, for start i and component k with precision ``P``: the
    constant ``log w_k + log det U - d/2 log(2 pi) - mu^T P mu / 2``, then ``P mu``, then
    ``-P / 2`` in the layout's second-order terms (off-diagonal entries doubled, so that
    ``q(x) . w = -x^T P x / 2``). Filled by one compiled loop
    (:mod:`em_lib.numerics._linalg`).

    Parameters
    ----------
    log_weights : (I, K) array (zeros for plain log-densities)
    means : (I, K, d) array
    prec_chol : precision Cholesky factors of the covariance type
    covariance_type : str

    Returns
    -------
    W : (1 + d + n_second, I * K) array, column ``i * K + k`` for start i, component k.
    """
    from ._linalg import weight_matrix_diagonal, weight_matrix_triangular

    n_init, n_components, d = means.shape
    layout = FeatureLayout(d, covariance_type)
    W = np.empty((layout.n_columns, n_init * n_components))
    log_weights = np.ascontiguousarray(log_weights, dtype=float)
    means = np.ascontiguousarray(means, dtype=float)
    prec_chol = np.ascontiguousarray(prec_chol, dtype=float)
    if covariance_type == "full":
        weight_matrix_triangular(log_weights, means, prec_chol, W)
    elif covariance_type == "tied":
        weight_matrix_triangular(log_weights, means, prec_chol[:, None], W)
    elif covariance_type == "diag":
        weight_matrix_diagonal(log_weights, means, prec_chol, False, W)
    else:
        weight_matrix_diagonal(log_weights, means, prec_chol[..., None], True, W)
    return W


def unpack_second_moments(second: np.ndarray, n_features: int) -> np.ndarray:
    """(..., d(d+1)/2) upper-triangle second moments -> symmetric (..., d, d)."""
    rows, cols = upper_triangle(n_features)
    full = np.empty(second.shape[:-1] + (n_features, n_features))
    full[..., rows, cols] = second
    full[..., cols, rows] = second
    return full
