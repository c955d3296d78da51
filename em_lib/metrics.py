"""Evaluation metrics for fitted mixtures: clustering agreement, parameter recovery, imputation.

Everything here compares an estimate against a known ground truth (simulation studies).
Mixture components are only identified up to relabelling, so most functions first align the
estimated components (or cluster labels) with the true ones through an optimal assignment
(:func:`scipy.optimize.linear_sum_assignment`) and then measure the error.

All functions are vectorised with numpy (no Python loop over samples) and raise
:class:`ValueError` with a message naming the offending argument on malformed input.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = [
    "adjusted_rand_index",
    "classification_accuracy_after_matching",
    "contingency_table",
    "imputation_rmse",
    "imputation_rmse_per_feature",
    "match_components",
    "match_labels",
    "parameter_errors",
]


# ---------------------------------------------------------------------------------------------
# Input validation helpers
# ---------------------------------------------------------------------------------------------


def _as_labels(labels, name: str) -> np.ndarray:
    """Validate a 1-D integer labelling and return it as an ``int64`` array of shape (n,)."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D with shape (n_samples,), got shape {arr.shape}")
    if arr.dtype == bool or np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.int64, copy=False)
    if arr.size == 0:
        # np.asarray([]) is float64; an empty labelling carries no values to check.
        return np.zeros(0, dtype=np.int64)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"{name} must contain integer labels; got non-integral floats")
        return arr.astype(np.int64)
    raise ValueError(f"{name} must contain integer labels, got dtype {arr.dtype}")


def _label_pair(labels_true, labels_pred) -> tuple[np.ndarray, np.ndarray]:
    """Validate two labellings of the same samples; returns two ``int64`` arrays (n,)."""
    t = _as_labels(labels_true, "labels_true")
    p = _as_labels(labels_pred, "labels_pred")
    if t.shape[0] != p.shape[0]:
        raise ValueError(
            f"labels_true and labels_pred must have the same length, got {t.shape[0]} and "
            f"{p.shape[0]}"
        )
    return t, p


def _as_float_array(x, name: str, ndim: int) -> np.ndarray:
    """Return ``x`` as a finite float64 array with exactly ``ndim`` dimensions."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite values")
    return arr


def _contingency_with_classes(
    t: np.ndarray, p: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Contingency table of validated labellings plus the sorted unique labels of each side."""
    classes_true, t_idx = np.unique(t, return_inverse=True)
    classes_pred, p_idx = np.unique(p, return_inverse=True)
    n_t, n_p = classes_true.shape[0], classes_pred.shape[0]
    flat = np.bincount(t_idx * n_p + p_idx, minlength=n_t * n_p)
    return flat.reshape(n_t, n_p).astype(np.int64), classes_true, classes_pred


# ---------------------------------------------------------------------------------------------
# Clustering agreement
# ---------------------------------------------------------------------------------------------


def contingency_table(labels_true, labels_pred) -> np.ndarray:
    """Cross-tabulate two labellings of the same samples.

    Parameters
    ----------
    labels_true : array_like of int, shape (n_samples,)
        Reference labels. Any integers (need not be contiguous or start at 0).
    labels_pred : array_like of int, shape (n_samples,)
        Predicted labels, same length as ``labels_true``.

    Returns
    -------
    table : ndarray of int64, shape (n_classes_true, n_classes_pred)
        ``table[i, j]`` is the number of samples whose true label is the ``i``-th smallest
        distinct value of ``labels_true`` and whose predicted label is the ``j``-th smallest
        distinct value of ``labels_pred``. Empty input gives shape (0, 0).

    Raises
    ------
    ValueError
        If an input is not 1-D, is not integer-valued, or the lengths differ.
    """
    t, p = _label_pair(labels_true, labels_pred)
    table, _, _ = _contingency_with_classes(t, p)
    return table


def adjusted_rand_index(labels_true, labels_pred) -> float:
    """Adjusted Rand index (Hubert & Arabie, 1985) between two labellings.

    With contingency counts ``n_ij``, row sums ``a_i``, column sums ``b_j`` and ``n`` samples,

    ``ARI = (sum_ij C(n_ij, 2) - E) / (M - E)``, where ``E = sum_i C(a_i, 2) sum_j C(b_j, 2)
    / C(n, 2)`` is the expected index under the permutation model and
    ``M = (sum_i C(a_i, 2) + sum_j C(b_j, 2)) / 2`` is its maximum.

    The pair counts are combined as exact Python integers, so there is no overflow for large
    ``n``. Degenerate cases follow :func:`sklearn.metrics.adjusted_rand_score`: whenever the
    two labellings agree on every pair (e.g. both are a single cluster, both are all
    singletons, fewer than two samples, or empty input) the result is 1.0.

    Arguments and errors as for :func:`contingency_table`. Returns a float in ``[-1, 1]``:
    1 for identical partitions (up to relabelling), about 0 for chance.
    """
    table = contingency_table(labels_true, labels_pred)
    n = int(table.sum())

    def pairs(counts: np.ndarray) -> int:
        c = counts.astype(np.int64)
        return int(np.sum(c * (c - 1) // 2))

    index = pairs(table)  # pairs together in both labellings
    sum_a = pairs(table.sum(axis=1))  # pairs together in labels_true
    sum_b = pairs(table.sum(axis=0))  # pairs together in labels_pred
    if index == sum_a and index == sum_b:
        # No pair is split differently by the two labellings: perfect (or vacuous) agreement.
        return 1.0
    n_pairs = n * (n - 1) // 2
    # (index - E) / (M - E) with numerator and denominator both multiplied by 2 * C(n, 2).
    numerator = 2 * (index * n_pairs - sum_a * sum_b)
    denominator = (sum_a + sum_b) * n_pairs - 2 * sum_a * sum_b
    return numerator / denominator


def match_labels(labels_true, labels_pred) -> dict[int, int]:
    """Map predicted labels to true labels by maximum-overlap assignment.

    Solves the linear assignment problem that maximises the total overlap (sum of matched
    contingency-table cells), each true label receiving at most one predicted label.
    Arguments as for :func:`contingency_table`.

    Returns
    -------
    mapping : dict of int to int
        One entry per distinct predicted label. A matched predicted label maps to its true
        label. If there are more predicted than true labels, the unmatched predicted labels
        map to fresh integers ``max(labels_true) + 1, max(labels_true) + 2, ...`` (in
        increasing order of the predicted label), so that they never coincide with a true
        label and count as errors after relabelling.

    Raises
    ------
    ValueError
        If an input is not 1-D, is not integer-valued, or the lengths differ.
    """
    t, p = _label_pair(labels_true, labels_pred)
    table, classes_true, classes_pred = _contingency_with_classes(t, p)
    rows, cols = linear_sum_assignment(table, maximize=True)
    mapping = {int(classes_pred[c]): int(classes_true[r]) for r, c in zip(rows, cols, strict=True)}
    unmatched = np.setdiff1d(np.arange(classes_pred.shape[0]), cols)
    if unmatched.size:
        start = int(classes_true.max()) + 1 if classes_true.size else 0
        for offset, c in enumerate(unmatched):
            mapping[int(classes_pred[c])] = start + offset
    return mapping


def classification_accuracy_after_matching(labels_true, labels_pred) -> float:
    """Fraction of samples correctly labelled after optimally relabelling the predictions.

    The predicted labels are relabelled with :func:`match_labels` (maximum-overlap one-to-one
    assignment); samples in unmatched predicted clusters count as errors. Arguments as for
    :func:`contingency_table`; the result is in ``[0, 1]``.

    Raises
    ------
    ValueError
        If an input is not 1-D, is not integer-valued, the lengths differ, or it is empty.
    """
    t, p = _label_pair(labels_true, labels_pred)
    if t.shape[0] == 0:
        raise ValueError("labels_true and labels_pred are empty; accuracy is undefined")
    table, _, _ = _contingency_with_classes(t, p)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / t.shape[0])


# ---------------------------------------------------------------------------------------------
# Parameter recovery
# ---------------------------------------------------------------------------------------------


def _check_weights(weights, name: str, n_components: int) -> np.ndarray:
    """Validate mixing weights of shape (n_components,): finite and non-negative."""
    w = _as_float_array(weights, name, 1)
    if w.shape[0] != n_components:
        raise ValueError(
            f"{name} must have shape ({n_components},) to match the means, got {w.shape}"
        )
    if np.any(w < 0):
        raise ValueError(f"{name} must be non-negative")
    return w


def _assignment(
    true_means, est_means, true_weights, est_weights
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Core of :func:`match_components`; returns ``(perm, true_idx, est_idx)``."""
    mu_t = _as_float_array(true_means, "true_means", 2)
    mu_e = _as_float_array(est_means, "est_means", 2)
    if mu_t.shape[1] != mu_e.shape[1]:
        raise ValueError(
            f"true_means and est_means must have the same dimension d, got {mu_t.shape[1]} "
            f"and {mu_e.shape[1]}"
        )
    if mu_t.shape[0] == 0 or mu_e.shape[0] == 0:
        raise ValueError("true_means and est_means must each have at least one component")
    if true_weights is not None:
        _check_weights(true_weights, "true_weights", mu_t.shape[0])
    w_e = None
    if est_weights is not None:
        w_e = _check_weights(est_weights, "est_weights", mu_e.shape[0])

    # Squared Euclidean distances, shape (K_true, K_est), via broadcasting.
    diff = mu_t[:, None, :] - mu_e[None, :, :]
    cost = np.einsum("ijk,ijk->ij", diff, diff)
    true_idx, est_idx = linear_sum_assignment(cost)  # true_idx is sorted ascending

    unmatched = np.setdiff1d(np.arange(mu_e.shape[0]), est_idx)
    if w_e is not None and unmatched.size:
        # Heaviest unmatched estimated components first; stable keeps index order on ties.
        unmatched = unmatched[np.argsort(-w_e[unmatched], kind="stable")]
    perm = np.concatenate([est_idx, unmatched]).astype(np.intp)
    return perm, true_idx.astype(np.intp), est_idx.astype(np.intp)


def match_components(
    true_means,
    est_means,
    *,
    true_weights=None,
    est_weights=None,
    return_pairs: bool = False,
):
    """Align estimated mixture components with the true ones.

    Solves the assignment problem minimising the total squared Euclidean distance between
    matched means (:func:`scipy.optimize.linear_sum_assignment`). ``K_est`` may differ from
    ``K_true``; then ``min(K_true, K_est)`` pairs are matched.

    Parameters
    ----------
    true_means : array_like, shape (K_true, d)
        Ground-truth component means.
    est_means : array_like, shape (K_est, d)
        Estimated component means.
    true_weights : array_like, shape (K_true,), optional
        True mixing weights. Only validated (finite, non-negative, right length); the matching
        itself uses the means alone.
    est_weights : array_like, shape (K_est,), optional
        Estimated mixing weights (validated likewise). When ``K_est > K_true`` they order the
        unmatched estimated components in ``perm`` by decreasing weight.
    return_pairs : bool, default False
        If True, also return the matched index pairs.

    Returns
    -------
    perm : ndarray of intp, shape (K_est,)
        A permutation of ``range(K_est)``. Its first ``n_matched = min(K_true, K_est)`` entries
        are the matched estimated components, ordered by the true component they are matched
        to (ascending true index). The remaining ``K_est - n_matched`` entries (only when
        ``K_est > K_true``) are the unmatched estimated components, by decreasing
        ``est_weights`` if given, else by ascending index.

        * ``K_est == K_true``: ``est_means[perm]`` is aligned row by row with ``true_means``.
        * ``K_est > K_true``: ``est_means[perm[:K_true]]`` is aligned with ``true_means``;
          the extra components ``perm[K_true:]`` have no counterpart.
        * ``K_est < K_true``: ``est_means[perm]`` is aligned with ``true_means[true_idx]``;
          the true components not in ``true_idx`` have no counterpart.
    true_idx, est_idx : ndarray of intp, shape (n_matched,)
        Only if ``return_pairs``: true component ``true_idx[m]`` is matched to estimated
        component ``est_idx[m]``; ``true_idx`` is ascending and ``est_idx == perm[:n_matched]``.

    Raises
    ------
    ValueError
        If the means are not 2-D, have different dimensions ``d``, are empty or non-finite,
        or if weights have the wrong shape or invalid values.
    """
    perm, true_idx, est_idx = _assignment(true_means, est_means, true_weights, est_weights)
    if return_pairs:
        return perm, true_idx, est_idx
    return perm


def parameter_errors(
    true_weights,
    true_means,
    true_covariances,
    est_weights,
    est_means,
    est_covariances,
) -> dict:
    """Errors of estimated mixture parameters after matching components.

    Components are matched with :func:`match_components` (on the means); the errors are then
    computed over the ``n_matched = min(K_true, K_est)`` matched pairs only.

    Parameters
    ----------
    true_weights : array_like, shape (K_true,)
        True mixing weights.
    true_means : array_like, shape (K_true, d)
        True component means.
    true_covariances : array_like, shape (K_true, d, d)
        True full covariance matrices; none may be the zero matrix.
    est_weights : array_like, shape (K_est,)
        Estimated mixing weights.
    est_means : array_like, shape (K_est, d)
        Estimated component means.
    est_covariances : array_like, shape (K_est, d, d)
        Estimated full covariance matrices.

    Returns
    -------
    errors : dict
        ``"weights_abs_error"`` : float
            Mean absolute weight error over matched pairs.
        ``"means_rmse"`` : float
            Root mean squared error over all ``n_matched * d`` matched mean entries.
        ``"covariances_rel_frobenius"`` : float
            Mean over matched pairs of ``||S_est - S_true||_F / ||S_true||_F``.
        ``"permutation"`` : ndarray of intp, shape (K_est,)
            ``perm`` from :func:`match_components`.
        ``"true_index"`` : ndarray of intp, shape (n_matched,)
            The matched true components (all of them unless ``K_est < K_true``).
        ``"n_matched"`` : int
            Number of matched pairs, ``min(K_true, K_est)``; smaller than ``K_true`` or
            ``K_est`` when the component counts differ.

    Raises
    ------
    ValueError
        On wrong dimensions, inconsistent ``K`` or ``d`` within the true or estimated set,
        non-finite or negative-weight inputs, or a zero true covariance matrix.
    """
    mu_t = _as_float_array(true_means, "true_means", 2)
    mu_e = _as_float_array(est_means, "est_means", 2)
    w_t = _check_weights(true_weights, "true_weights", mu_t.shape[0])
    w_e = _check_weights(est_weights, "est_weights", mu_e.shape[0])
    cov_t = _as_float_array(true_covariances, "true_covariances", 3)
    cov_e = _as_float_array(est_covariances, "est_covariances", 3)
    d_t = mu_t.shape[1]
    if cov_t.shape != (mu_t.shape[0], d_t, d_t):
        raise ValueError(
            f"true_covariances must have shape {(mu_t.shape[0], d_t, d_t)} (K_true, d, d), "
            f"got {cov_t.shape}"
        )
    d_e = mu_e.shape[1]
    if cov_e.shape != (mu_e.shape[0], d_e, d_e):
        raise ValueError(
            f"est_covariances must have shape {(mu_e.shape[0], d_e, d_e)} (K_est, d, d), "
            f"got {cov_e.shape}"
        )

    perm, true_idx, est_idx = _assignment(mu_t, mu_e, w_t, w_e)

    true_norms = np.linalg.norm(cov_t[true_idx], axis=(1, 2))
    if np.any(true_norms == 0):
        raise ValueError("true_covariances contains a zero matrix; relative error is undefined")

    weights_abs_error = float(np.mean(np.abs(w_e[est_idx] - w_t[true_idx])))
    means_rmse = float(np.sqrt(np.mean((mu_e[est_idx] - mu_t[true_idx]) ** 2)))
    cov_diff_norms = np.linalg.norm(cov_e[est_idx] - cov_t[true_idx], axis=(1, 2))
    covariances_rel_frobenius = float(np.mean(cov_diff_norms / true_norms))
    return {
        "weights_abs_error": weights_abs_error,
        "means_rmse": means_rmse,
        "covariances_rel_frobenius": covariances_rel_frobenius,
        "permutation": perm,
        "true_index": true_idx,
        "n_matched": int(true_idx.shape[0]),
    }


# ---------------------------------------------------------------------------------------------
# Imputation
# ---------------------------------------------------------------------------------------------


def _imputation_inputs(X_true, X_imputed, mask) -> tuple[np.ndarray, np.ndarray]:
    """Validate imputation inputs; return (squared errors of masked entries, their columns)."""
    xt = np.asarray(X_true, dtype=np.float64)
    xi = np.asarray(X_imputed, dtype=np.float64)
    m = np.asarray(mask)
    if xt.ndim != 2:
        raise ValueError(f"X_true must be 2-D with shape (n_samples, d), got shape {xt.shape}")
    if xi.shape != xt.shape:
        raise ValueError(f"X_imputed must have the same shape as X_true {xt.shape}, got {xi.shape}")
    if m.shape != xt.shape:
        raise ValueError(f"mask must have the same shape as X_true {xt.shape}, got {m.shape}")
    if m.dtype != bool:
        if not np.issubdtype(m.dtype, np.integer) or np.any((m != 0) & (m != 1)):
            raise ValueError("mask must be boolean (or 0/1 integers), True where X was missing")
        m = m.astype(bool)
    rows, cols = np.nonzero(m)
    truth = xt[rows, cols]
    imputed = xi[rows, cols]
    if not np.all(np.isfinite(truth)):
        raise ValueError("X_true must be finite at the masked (missing) entries")
    if not np.all(np.isfinite(imputed)):
        raise ValueError("X_imputed must be finite at the masked (missing) entries")
    return (imputed - truth) ** 2, cols


def imputation_rmse(X_true, X_imputed, mask) -> float:
    """Root mean squared imputation error over the missing entries only.

    Parameters
    ----------
    X_true : array_like, shape (n_samples, d)
        Complete ground-truth data.
    X_imputed : array_like, shape (n_samples, d)
        Data with the missing entries filled in; entries outside ``mask`` are ignored.
    mask : array_like of bool, shape (n_samples, d)
        True where the entry was missing (i.e. was imputed).

    Returns
    -------
    rmse : float
        ``sqrt(mean((X_imputed - X_true)[mask] ** 2))``; NaN if ``mask`` has no True entry.

    Raises
    ------
    ValueError
        If shapes disagree, ``X_true`` is not 2-D, ``mask`` is not boolean, or a masked entry
        of ``X_true`` or ``X_imputed`` is not finite.
    """
    sq, _ = _imputation_inputs(X_true, X_imputed, mask)
    if sq.size == 0:
        return float("nan")
    return float(np.sqrt(np.mean(sq)))


def imputation_rmse_per_feature(X_true, X_imputed, mask) -> np.ndarray:
    """:func:`imputation_rmse` per column: ``rmse[j]`` (shape (d,)) is the RMSE over the
    masked entries of column ``j``, NaN for a column with no masked entry. Same arguments and
    errors as :func:`imputation_rmse`."""
    sq, cols = _imputation_inputs(X_true, X_imputed, mask)
    d = np.asarray(X_true).shape[1]
    counts = np.bincount(cols, minlength=d)
    sums = np.bincount(cols, weights=sq, minlength=d)
    out = np.full(d, np.nan)
    has = counts > 0
    out[has] = np.sqrt(sums[has] / counts[has])
    return out
