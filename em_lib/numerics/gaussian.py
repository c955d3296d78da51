"""Batched Gaussian kernels: log-densities, responsibilities and weighted statistics.

Two engines compute, for many starts at once, the E-step (per-sample log-likelihood and
responsibilities) fused with the M-step's sufficient statistics:

* :class:`CompleteDataEngine` for data without NaN: everything is two matrix products per
  block of rows, ``phi(X) @ W`` and ``phi(X).T @ resp`` (see ``covariance.FeatureLayout``);
* :class:`MissingDataEngine` for data with NaN: rows are grouped by missingness pattern; each
  pattern uses the observed-block marginal in the E-step and conditional expectations plus the
  conditional-covariance correction in the statistics (exact EM on the observed-data
  likelihood). Rows with nothing observed must be removed by the caller.

Both work on data centred by the caller (better conditioned second moments) and return
statistics ``(nk, first, second)`` with ``first = sum_n r_nk x_n`` (I, K, d) and ``second`` the
type's second moments: (I, K, d, d) for full and tied, (I, K, d) for diag, (I, K) for spherical.
"""

from __future__ import annotations

import numpy as np

from .covariance import (
    FeatureLayout,
    any_to_full,
    cholesky_solve,
    estep_weight_matrix,
    precision_cholesky,
    second_order_features,
    unpack_second_moments,
)

DEFAULT_BLOCK_SIZE = 1024
BLOCK_REFERENCE_COLUMNS = 80  # I * K for which ``block_size`` rows are meant (10 starts, K=8)
MIN_BLOCK_ROWS = 128
DEFAULT_CACHE_BYTES = 1 << 30


_NO_WEIGHTS = np.empty((0, 0))
_NO_INDEX = np.zeros(0, dtype=np.int64)


class WeightRows:
    """The row weights of some starts of a batch without copying them: start ``i`` has the
    weights ``table[index[i]]`` of a (B, n) table (:func:`start_weights` makes one)."""

    ndim = 2

    def __init__(self, table, index):
        self.table = table
        self.index = np.asarray(index, dtype=np.int64)

    def block(self, rows):
        """(I, len(rows)) weights of the rows ``rows`` (a slice or an index array)."""
        if isinstance(rows, slice):
            return self.table[self.index, rows]
        return self.table[np.ix_(self.index, rows)]


def start_weights(row_weights, index):
    """Row weights of the starts ``index`` of a batch: ``row_weights`` itself when it is
    None or shared (n,), otherwise a :class:`WeightRows` view of the (B, n) table."""
    if row_weights is None or np.ndim(row_weights) < 2:
        return row_weights
    if isinstance(row_weights, WeightRows):
        return WeightRows(row_weights.table, row_weights.index[index])
    return WeightRows(row_weights, np.arange(len(row_weights))[index])


def normalise_log_probs(
    weighted_t: np.ndarray,
    n_components: int,
    want_resp: bool,
    weights=None,
    loglik=None,
    offset=0,
):
    """Per-start logsumexp over components of a block of shape (I*K, B), in place.

    The block is laid out components x rows (row ``i * K + k`` for start i, component k) so
    that the compiled kernel (:mod:`em_lib.numerics._normalise`) runs over contiguous rows.
    Every (start, row) is shifted by its own maximum, so no start can spoil another's
    normalisation.

    ``weights``: row weights, None, (n,) shared, (I, n) or :class:`WeightRows`, of which
    columns ``offset`` to ``offset + B`` are the block's (so that a block needs no copy).
    ``loglik`` (I,), if given, is increased by each start's weighted sum of the rows'
    log-normalisers (a row of weight 0 adds nothing, even where its density underflows).

    Returns ``(log_norm, block)`` with ``log_norm`` of shape (I, B), unweighted; if
    ``want_resp`` the block is overwritten with the responsibilities times the row
    weights, otherwise with unnormalised exponentials.
    """
    from ._normalise import normalise_block

    n_columns, n_rows = weighted_t.shape
    n_init = n_columns // n_components
    if not weighted_t.flags.c_contiguous:
        weighted_t = np.ascontiguousarray(weighted_t)
    index = _NO_INDEX
    if weights is None:
        weights = _NO_WEIGHTS
    elif isinstance(weights, WeightRows):
        weights, index = weights.table, weights.index
    else:
        weights = np.asarray(weights, dtype=float)
        if weights.ndim == 2:
            index = np.arange(len(weights), dtype=np.int64)
        weights = weights.reshape(-1, weights.shape[-1])
    if weights.size and not weights.flags.c_contiguous:
        weights = np.ascontiguousarray(weights, dtype=float)
    if loglik is None:
        loglik = np.zeros(n_init)
    log_norm = np.empty((n_init, n_rows))
    normalise_block(
        weighted_t, n_init, n_components, bool(want_resp), log_norm, weights, index, offset, loglik
    )
    return log_norm, weighted_t


def _typed_second(second_full: np.ndarray, covariance_type: str) -> np.ndarray:
    if covariance_type in ("full", "tied"):
        return second_full
    if covariance_type == "diag":
        return np.diagonal(second_full, axis1=-2, axis2=-1).copy()
    return np.trace(second_full, axis1=-2, axis2=-1)


def block_weights(row_weights, rows):
    """The row weights of a block of rows: None, (B,) shared by every start, or (I, B)."""
    if row_weights is None:
        return None
    if isinstance(row_weights, WeightRows):
        return row_weights.block(rows)
    return row_weights[..., rows]


def weight_columns(row_weights, rows, n_init, n_comp):
    """Row weights of ``rows`` as a (B, I*K) or (B, 1) factor for one-hot or responsibility
    columns laid out start-major; None without weights."""
    weights = block_weights(row_weights, rows)
    if weights is None:
        return None
    if weights.ndim == 1:
        return weights[:, None]
    return np.repeat(weights.T, n_comp, axis=1)


def _scaled(columns, factor):
    return columns if factor is None else columns * factor


class CompleteDataEngine:
    """E-step + statistics for complete data (no NaN), blocked over samples.

    Parameters
    ----------
    X : (n_samples, n_features) array, centred, without NaN
    covariance_type : str
    block_size : int
        Rows per block; memory is ``O(block_size * I * K)`` besides the feature cache.
    cache_bytes : int
        The feature matrix ``phi(X)`` is kept between iterations if it fits in this budget,
        otherwise recomputed block by block.
    """

    def __init__(
        self, X, covariance_type, block_size=DEFAULT_BLOCK_SIZE, cache_bytes=DEFAULT_CACHE_BYTES
    ):
        self.X = X
        self.covariance_type = covariance_type
        self.layout = FeatureLayout(X.shape[1], covariance_type)
        self.block_size = int(block_size)
        n_bytes = X.shape[0] * self.layout.n_columns * 8
        self._phi = second_order_features(X, self.layout) if n_bytes <= cache_bytes else None

    @property
    def n_samples(self) -> int:
        return self.X.shape[0]

    def features(self) -> np.ndarray:
        """The whole feature matrix ``phi(X)`` (the cached one, or built now)."""
        if self._phi is not None:
            return self._phi
        return second_order_features(self.X, self.layout)

    def cached_features(self) -> np.ndarray | None:
        """The feature matrix ``phi(X)`` if it is kept between iterations, else None."""
        return self._phi

    def block_rows(self, n_outputs=None) -> int:
        """Rows per block for ``n_outputs`` (start, component) columns (see :meth:`_blocks`)."""
        size = self.block_size
        if n_outputs:
            smallest = min(size, MIN_BLOCK_ROWS)
            size = max(smallest, size * BLOCK_REFERENCE_COLUMNS // n_outputs)
        return size

    def _blocks(self, n_outputs=None):
        """Blocks of rows: a block holds about ``block_size * BLOCK_REFERENCE_COLUMNS``
        values of the (start, component) x rows block: more rows when few columns are active
        (so that the per-block overhead does not dominate for the last few starts), fewer
        (down to ``MIN_BLOCK_ROWS``) when many are (a batch of bootstrap replicates: a block
        that stays in cache between the passes over it is about 20 % faster at 600 columns
        than one of ``block_size`` rows)."""
        n = self.X.shape[0]
        size = self.block_rows(n_outputs)
        buffer = None
        for start in range(0, n, size):
            stop = min(start + size, n)
            if self._phi is not None:
                yield start, stop, self._phi[start:stop]
            else:
                if buffer is None or buffer.shape[0] != stop - start:
                    buffer = np.empty((stop - start, self.layout.n_columns))
                yield start, stop, second_order_features(self.X[start:stop], self.layout, buffer)

    def estep(
        self,
        log_weights,
        means,
        prec_chol,
        *,
        want_stats=True,
        want_log_prob=False,
        want_samples=False,
        row_weights=None,
    ):
        """One pass over the data.

        Returns a dict with ``loglik`` (I,) summed over samples, and on request ``stats``
        ``(nk, first, second)``, ``weighted_log_prob`` (I, n, K), ``log w_k + log N(x_n)``,
        and ``sample_loglik`` (I, n). ``row_weights`` (None, (n,) or (I, n)) weight each
        row's log-likelihood and statistics (``sample_loglik`` and ``weighted_log_prob`` stay
        per row, unweighted).
        """
        n_init, n_comp, d = means.shape
        W = estep_weight_matrix(log_weights, means, prec_chol, self.covariance_type)
        loglik = np.zeros(n_init)
        acc = np.zeros((self.layout.n_columns, n_init * n_comp)) if want_stats else None
        log_prob = np.empty((n_init, self.n_samples, n_comp)) if want_log_prob else None
        samples = np.empty((n_init, self.n_samples)) if want_samples else None
        W_t = np.ascontiguousarray(W.T)
        for start, stop, phi in self._blocks(n_init * n_comp):
            weighted_t = W_t @ phi.T  # (I*K, B)
            if want_log_prob:
                log_prob[:, start:stop] = np.swapaxes(
                    weighted_t.reshape(n_init, n_comp, stop - start), 1, 2
                )
            log_norm, resp_t = normalise_log_probs(
                weighted_t, n_comp, want_stats, row_weights, loglik, offset=start
            )
            if want_samples:
                samples[:, start:stop] = log_norm
            if want_stats:
                acc += phi.T @ resp_t.T
        out = {"loglik": loglik}
        if want_stats:
            out["stats"] = self._unpack(acc, n_init, n_comp, d)
        if want_log_prob:
            out["weighted_log_prob"] = log_prob
        if want_samples:
            out["sample_loglik"] = samples
        return out

    def estep_common(self, log_weights, means, prec_chol, row_weights):
        """The E-step of one start (parameters with a leading dimension of 1) under each row
        of ``row_weights`` (B, n): ``loglik`` (B,) and ``stats`` of B starts, at the cost of
        one start's densities plus the B weighted statistics (bootstrap replicates that all
        sit at the same point)."""
        single = self.estep(
            log_weights, means, prec_chol, want_stats=False, want_log_prob=True, want_samples=True
        )
        log_norm = single["sample_loglik"][0]
        resp = np.exp(single["weighted_log_prob"][0] - log_norm[:, None])
        if np.isfinite(log_norm).all():
            loglik = row_weights @ log_norm
        else:  # a row of weight 0 adds nothing, even where its density underflows
            loglik = np.where(row_weights > 0, row_weights * log_norm, 0.0).sum(1)
        stats = self.statistics_from_resp(resp[None], row_weights=row_weights)
        return {"loglik": loglik, "stats": stats}

    def _unpack(self, acc, n_init, n_comp, d):
        nk = acc[0].reshape(n_init, n_comp)
        first = acc[1 : 1 + d].T.reshape(n_init, n_comp, d)
        second = acc[1 + d :].T.reshape(n_init, n_comp, -1)
        if self.covariance_type in ("full", "tied"):
            second = unpack_second_moments(second, d)
        elif self.covariance_type == "spherical":
            second = second[..., 0]
        return nk, first, second

    def statistics_from_labels(self, labels, n_components, row_weights=None):
        """Statistics ``(nk, first, second)`` of hard partitions ``labels`` (I, n): one-hot
        responsibilities built block by block (never (I, n, K) at once), reusing the cached
        features; rows weighted by ``row_weights`` (None, (n,) or (I, n))."""
        n_init = labels.shape[0]
        offsets = (np.arange(n_init) * n_components)[None, :]
        acc = np.zeros((self.layout.n_columns, n_init * n_components))
        for start, stop, phi in self._blocks():
            onehot = np.zeros((stop - start, n_init * n_components))
            onehot[np.arange(stop - start)[:, None], labels[:, start:stop].T + offsets] = 1.0
            factor = weight_columns(row_weights, slice(start, stop), n_init, n_components)
            acc += phi.T @ _scaled(onehot, factor)
        return self._unpack(acc, n_init, n_components, self.X.shape[1])

    def statistics_from_resp(self, resp, row_weights=None):
        """Weighted statistics for given responsibilities ``resp`` (I, n, K), rows weighted
        by ``row_weights`` (None, (n,) or (I, n)). One set of responsibilities (1, n, K)
        with B rows of weights (B, n) gives B starts' statistics (one start's E-step under
        B weightings of the rows)."""
        n_resp, _, n_comp = resp.shape
        n_init = n_resp if np.ndim(row_weights) < 2 else len(row_weights)
        flat = np.transpose(resp, (1, 0, 2)).reshape(self.n_samples, -1)
        acc = np.zeros((self.layout.n_columns, n_init * n_comp))
        for start, stop, phi in self._blocks(n_init * n_comp):
            columns = flat[start:stop]
            if n_resp < n_init:
                columns = np.tile(columns, (1, n_init))
            factor = weight_columns(row_weights, slice(start, stop), n_init, n_comp)
            acc += phi.T @ _scaled(columns, factor)
        return self._unpack(acc, n_init, n_comp, self.X.shape[1])


def missing_patterns(X: np.ndarray):
    """Group rows by missingness pattern.

    Returns a list of ``(observed_columns, rows)`` index arrays, one per distinct pattern,
    in a deterministic order (sorted by pattern).
    """
    observed = ~np.isnan(X)
    packed = np.packbits(observed, axis=1)
    _, first_index, inverse = np.unique(packed, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(first_index) + 1))
    groups = []
    for pattern in range(len(first_index)):
        rows = order[bounds[pattern] : bounds[pattern + 1]]
        groups.append((np.flatnonzero(observed[rows[0]]), rows))
    return groups


class MissingDataEngine:
    """E-step + statistics for data with NaN by exact missing-data EM.

    Parameters
    ----------
    X : (n_samples, n_features) array, centred; NaN marks a missing entry. Every row must have
        at least one observed entry.
    covariance_type : str
    """

    def __init__(
        self, X, covariance_type, block_size=DEFAULT_BLOCK_SIZE, cache_bytes=DEFAULT_CACHE_BYTES
    ):
        self.X = X
        self.covariance_type = covariance_type
        self.block_size = int(block_size)
        self.patterns = []
        budget = cache_bytes
        for obs, rows in missing_patterns(X):
            if obs.size == 0:
                raise ValueError("rows with no observed entry must be removed before fitting")
            layout = FeatureLayout(obs.size, "full")
            n_bytes = rows.size * layout.n_columns * 8
            phi = None
            if n_bytes <= budget:
                phi = second_order_features(X[np.ix_(rows, obs)], layout)
                budget -= n_bytes
            self.patterns.append((obs, rows, layout, phi))

    @property
    def n_samples(self) -> int:
        return self.X.shape[0]

    def _pattern_blocks(self, obs, rows, layout, phi):
        for start in range(0, rows.size, self.block_size):
            stop = min(start + self.block_size, rows.size)
            if phi is not None:
                yield rows[start:stop], phi[start:stop]
            else:
                sub = self.X[np.ix_(rows[start:stop], obs)]
                yield rows[start:stop], second_order_features(sub, layout)

    def estep(
        self,
        log_weights,
        means,
        covariances,
        *,
        want_stats=True,
        want_log_prob=False,
        want_samples=False,
        covariance_type=None,
        row_weights=None,
    ):
        """As :meth:`CompleteDataEngine.estep`, but takes covariances (not their factors)."""
        covariance_type = covariance_type or self.covariance_type
        n_init, n_comp, d = means.shape
        full = any_to_full(covariances, covariance_type, n_comp, d)
        loglik = np.zeros(n_init)
        nk = np.zeros((n_init, n_comp))
        first = np.zeros((n_init, n_comp, d))
        second = np.zeros((n_init, n_comp, d, d))
        log_prob = np.empty((n_init, self.n_samples, n_comp)) if want_log_prob else None
        samples = np.empty((n_init, self.n_samples)) if want_samples else None
        for obs, rows, layout, phi_cache in self.patterns:
            miss = np.setdiff1d(np.arange(d), obs)
            cov_oo = full[:, :, obs[:, None], obs]
            prec_oo, ok = precision_cholesky(cov_oo, "full")
            W = estep_weight_matrix(log_weights, means[..., obs], prec_oo, "full")
            W_t = np.ascontiguousarray(W.T)
            acc = np.zeros((layout.n_columns, n_init * n_comp)) if want_stats else None
            for block_rows, phi in self._pattern_blocks(obs, rows, layout, phi_cache):
                weighted_t = W_t @ phi.T  # (I*K, B)
                if not ok.all():
                    weighted_t.reshape(n_init, n_comp, -1)[~ok] = np.nan
                if want_log_prob:
                    log_prob[:, block_rows] = np.swapaxes(
                        weighted_t.reshape(n_init, n_comp, len(block_rows)), 1, 2
                    )
                weights = block_weights(row_weights, block_rows)
                log_norm, resp_t = normalise_log_probs(
                    weighted_t, n_comp, want_stats, weights, loglik
                )
                if want_samples:
                    samples[:, block_rows] = log_norm
                if want_stats:
                    acc += phi.T @ resp_t.T
            if want_stats:
                self._accumulate(acc, obs, miss, means, full, cov_oo, nk, first, second)
        out = {"loglik": loglik}
        if want_stats:
            out["stats"] = (nk, first, _typed_second(second, covariance_type))
        if want_log_prob:
            out["weighted_log_prob"] = log_prob
        if want_samples:
            out["sample_loglik"] = samples
        return out

    @staticmethod
    def _accumulate(acc, obs, miss, means, full, cov_oo, nk, first, second):
        """Add one pattern's expected complete-data statistics.

        With ``B = Sigma_mo Sigma_oo^-1`` and ``c = mu_m - B mu_o`` the conditional mean of the
        missing block is ``c + B x_o`` and its conditional covariance
        ``C = Sigma_mm - B Sigma_om``; the sums over rows then follow from the observed-block
        sums ``n_p``, ``s_o = sum r x_o`` and ``S_oo = sum r x_o x_o^T``.
        """
        n_init, n_comp, d = means.shape
        n_obs = obs.size
        acc_nk = acc[0].reshape(n_init, n_comp)
        s_o = acc[1 : 1 + n_obs].T.reshape(n_init, n_comp, n_obs)
        s_oo = unpack_second_moments(acc[1 + n_obs :].T.reshape(n_init, n_comp, -1), n_obs)
        nk += acc_nk
        first[..., obs] += s_o
        second[..., obs[:, None], obs] += s_oo
        if miss.size == 0:
            return
        cov_mo = full[:, :, miss[:, None], obs]
        cov_mm = full[:, :, miss[:, None], miss]
        lower = np.linalg.cholesky(cov_oo)
        # B^T = Sigma_oo^-1 Sigma_om via two triangular solves
        b_t = cholesky_solve(lower, np.swapaxes(cov_mo, -1, -2))
        gain = np.swapaxes(b_t, -1, -2)  # (I, K, m, o)
        offset = means[..., miss] - np.einsum("ikmo,iko->ikm", gain, means[..., obs])
        gain_s = np.einsum("ikmo,iko->ikm", gain, s_o)
        cond_cov = cov_mm - gain @ np.swapaxes(cov_mo, -1, -2)
        first[..., miss] += acc_nk[..., None] * offset + gain_s
        cross = np.einsum("ikm,iko->ikmo", offset, s_o) + gain @ s_oo
        second[..., miss[:, None], obs] += cross
        second[..., obs[:, None], miss] += np.swapaxes(cross, -1, -2)
        mm = (
            acc_nk[..., None, None] * (np.einsum("ikm,ikl->ikml", offset, offset) + cond_cov)
            + np.einsum("ikm,ikl->ikml", offset, gain_s)
            + np.einsum("ikm,ikl->ikml", gain_s, offset)
            + gain @ s_oo @ np.swapaxes(gain, -1, -2)
        )
        second[..., miss[:, None], miss] += mm

    def statistics_from_resp(
        self, resp, means, covariances, covariance_type=None, row_weights=None
    ):
        """Expected complete-data statistics for given responsibilities ``resp`` (I, n, K),
        with conditional expectations under ``means``/``covariances`` (centred); rows
        weighted by ``row_weights`` (None, (n,) or (I, n))."""
        covariance_type = covariance_type or self.covariance_type
        n_init, n_comp, d = means.shape
        full = any_to_full(covariances, covariance_type, n_comp, d)
        nk = np.zeros((n_init, n_comp))
        first = np.zeros((n_init, n_comp, d))
        second = np.zeros((n_init, n_comp, d, d))
        for obs, rows, layout, phi_cache in self.patterns:
            miss = np.setdiff1d(np.arange(d), obs)
            cov_oo = full[:, :, obs[:, None], obs]
            acc = np.zeros((layout.n_columns, n_init * n_comp))
            for block_rows, phi in self._pattern_blocks(obs, rows, layout, phi_cache):
                flat = np.transpose(resp[:, block_rows], (1, 0, 2)).reshape(len(block_rows), -1)
                factor = weight_columns(row_weights, block_rows, n_init, n_comp)
                acc += phi.T @ _scaled(flat, factor)
            self._accumulate(acc, obs, miss, means, full, cov_oo, nk, first, second)
        return nk, first, _typed_second(second, covariance_type)


def conditional_means(x_obs, obs, miss, means, full):
    """Per-component conditional means of the missing block: (I, K, n, m)."""
    cov_oo = full[:, :, obs[:, None], obs]
    cov_mo = full[:, :, miss[:, None], obs]
    lower = np.linalg.cholesky(cov_oo)
    diff = x_obs[None, None] - means[..., None, obs]  # (I, K, n, o)
    solved = cholesky_solve(lower, np.swapaxes(diff, -1, -2))  # (I, K, o, n)
    return means[..., None, miss] + np.swapaxes(cov_mo @ solved, -1, -2)


def make_engine(
    X,
    covariance_type,
    block_size=DEFAULT_BLOCK_SIZE,
    cache_bytes=DEFAULT_CACHE_BYTES,
    force_missing=False,
):
    """The complete-data engine for data without NaN, the missing-data engine otherwise."""
    if force_missing or np.isnan(X).any():
        return MissingDataEngine(X, covariance_type, block_size, cache_bytes)
    return CompleteDataEngine(X, covariance_type, block_size, cache_bytes)


class PreparedData:
    """Data ready for fitting: which rows are used, their centre and the engine built on the
    centred rows. Building the engine (the feature matrix ``phi(X)``) is a pass over the data,
    so one object is shared by the initialisation, the EM run and the polishing of a fit.

    ``keep`` marks rows with at least one observed entry; ``center`` is their column mean
    (NaN ignored; weighted by ``sample_weight`` when given); ``engine`` works on
    ``X[keep] - center``; ``feature_variances`` are the kept rows' column variances (the
    scale of the collapse test and of the distance between solutions), weighted likewise.
    ``sample_weight`` (n,) are row weights shared by every start of the fits that use this
    object; weights that differ per start are passed to the fits themselves.
    """

    def __init__(
        self,
        X,
        covariance_type,
        block_size=DEFAULT_BLOCK_SIZE,
        cache_bytes=DEFAULT_CACHE_BYTES,
        force_missing=False,
        sample_weight=None,
    ):
        X = np.asarray(X, dtype=float)
        self.keep = ~np.isnan(X).all(axis=1)
        kept = X[self.keep]
        self.row_weights = None if sample_weight is None else sample_weight[self.keep]
        self.center, self.feature_variances = weighted_moments(kept, self.row_weights)
        self.covariance_type = covariance_type
        self.engine = make_engine(
            kept - self.center, covariance_type, block_size, cache_bytes, force_missing
        )

    @property
    def missing(self) -> bool:
        return isinstance(self.engine, MissingDataEngine)

    def rows(self, sample_weight):
        """``sample_weight`` (None, (n,) or (I, n) over the rows of ``X``) restricted to the
        kept rows, with the total weight of each start (a number, or (I,))."""
        if sample_weight is None:
            return None, self.engine.n_samples
        weights = np.asarray(sample_weight, dtype=float)
        if not self.keep.all():
            weights = weights[..., self.keep]
        return weights, weights.sum(-1)


def weighted_moments(X, weights=None):
    """Column means and variances of ``X`` ignoring NaN, rows weighted by ``weights``."""
    if weights is None:
        return np.nanmean(X, axis=0), np.nanvar(X, axis=0)
    observed = ~np.isnan(X)
    column_weights = np.where(observed, weights[:, None], 0.0)
    totals = column_weights.sum(0)
    filled = np.where(observed, X, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (column_weights * filled).sum(0) / totals
        spread = np.where(observed, filled - means, 0.0)
        variances = (column_weights * spread**2).sum(0) / totals
    return means, variances


def check_sample_weight(sample_weight, n_samples, n_init=None):
    """Row weights as a float array of shape (n,) or, when ``n_init`` is given, (n_init, n)
    as well; finite and >= 0 with a positive total per start. None stays None."""
    if sample_weight is None:
        return None
    weights = np.asarray(sample_weight, dtype=float)
    shapes = [(n_samples,)] + ([(n_init, n_samples)] if n_init is not None else [])
    if weights.shape not in shapes:
        wanted = " or ".join(str(shape) for shape in shapes)
        raise ValueError(f"sample_weight must have shape {wanted}, got {weights.shape}")
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise ValueError("sample_weight must be finite and >= 0")
    if (weights.sum(-1) <= 0).any():
        raise ValueError("sample_weight must not be all zero: the weights need a positive sum")
    return weights


def run_estep(engine, log_weights, means, covariances, prec_chol, **kwargs):
    """Dispatch an E-step to either engine (complete data takes factors, missing takes
    covariances)."""
    if isinstance(engine, MissingDataEngine):
        return engine.estep(log_weights, means, covariances, **kwargs)
    return engine.estep(log_weights, means, prec_chol, **kwargs)


def log_gaussian_density(X, means, covariances, covariance_type):
    """log N(x_n | mu_ik, Sigma_ik) for every start, sample and component: (I, n, K).

    NaN entries of ``X`` are marginalised out (the observed-block marginal); a row with
    nothing observed gets 0. This is the emission kernel shared with the HMM.

    Parameters
    ----------
    X : (n_samples, n_features) array
    means : (I, K, d) array
    covariances : covariances of ``covariance_type`` with the init dimension first
    """
    X = np.asarray(X, dtype=float)
    n_init, n_comp, _ = means.shape
    empty = np.isnan(X).all(axis=1)
    out = np.zeros((n_init, X.shape[0], n_comp))
    keep = ~empty
    if not keep.any():
        return out
    engine = make_engine(X[keep], covariance_type)
    zeros = np.zeros((n_init, n_comp))
    prec_chol, _ = precision_cholesky(covariances, covariance_type)
    result = run_estep(
        engine, zeros, means, covariances, prec_chol, want_stats=False, want_log_prob=True
    )
    out[:, keep] = result["weighted_log_prob"]
    return out


def impute_posterior_means(X, posteriors, means, full_covariances):
    """``sum_k p(k | row) E[x_miss | x_obs, k]`` in the NaN entries of ``X``, for every start:
    the one conditional-mean imputation of em_lib (the estimator's ``impute`` and the
    workflow's imputation error use it).

    Parameters
    ----------
    X : (n_samples, n_features) array; NaN marks a missing entry
    posteriors : (I, n_samples, K) component (or state) posteriors of every row
    means : (I, K, d) array
    full_covariances : (I, K, d, d) array

    Returns
    -------
    (I, n_samples, n_features) array
    """
    X = np.asarray(X, dtype=float)
    n_init, n_comp = means.shape[:2]
    d = X.shape[1]
    filled = np.broadcast_to(X, (n_init,) + X.shape).copy()
    for obs, rows in missing_patterns(X):
        miss = np.setdiff1d(np.arange(d), obs)
        if miss.size == 0:
            continue
        if obs.size:
            cond = conditional_means(X[np.ix_(rows, obs)], obs, miss, means, full_covariances)
        else:  # (I, K, n, m)
            cond = np.broadcast_to(means[:, :, None, miss], (n_init, n_comp, rows.size, miss.size))
        filled[:, rows[:, None], miss] = np.einsum("ink,iknm->inm", posteriors[:, rows], cond)
    return filled


def impute_mixture(X, weights, means, covariances, covariance_type, *, n_draws=0, rng=None):
    """Fill the NaN entries of ``X`` under a fitted mixture (a single start).

    Parameters
    ----------
    X : (n_samples, n_features) array; NaN marks a missing entry
    weights : (K,) array, means : (K, d) array, covariances of ``covariance_type`` without
        the init dimension
    n_draws : int
        0: return the conditional expectation ``E[x_m | x_o]`` (n, d). Otherwise return
        ``n_draws`` random draws from ``p(x_m | x_o)`` (n_draws, n, d) for multiple
        imputation: first a component from its posterior, then the missing block from that
        component's conditional normal.
    """
    X = np.asarray(X, dtype=float)
    n, d = X.shape
    n_comp = weights.shape[0]
    full = any_to_full(covariances[None], covariance_type, n_comp, d)[0]
    if not n_draws:
        log_joint = log_gaussian_density(X, means[None], covariances[None], covariance_type)[0]
        log_joint = log_joint + np.log(weights)
        log_joint -= log_joint.max(axis=1, keepdims=True)
        posteriors = np.exp(log_joint)
        posteriors /= posteriors.sum(axis=1, keepdims=True)
        return impute_posterior_means(X, posteriors[None], means[None], full[None])[0]
    filled = np.broadcast_to(X, (n_draws,) + X.shape).copy()
    log_weights = np.log(weights)
    for obs, rows in missing_patterns(X):
        miss = np.setdiff1d(np.arange(d), obs)
        if miss.size == 0:
            continue
        if obs.size:
            x_obs = X[np.ix_(rows, obs)]
            sub_cov = full[:, obs[:, None], obs][None]
            log_prob = log_gaussian_density(x_obs, means[None][..., obs], sub_cov, "full")[0]
            cond = conditional_means(x_obs, obs, miss, means[None], full[None])[0]  # (K, n, m)
            cov_oo = full[:, obs[:, None], obs]
            cov_mo = full[:, miss[:, None], obs]
            gain_t = cholesky_solve(np.linalg.cholesky(cov_oo), np.swapaxes(cov_mo, -1, -2))
            cond_cov = full[:, miss[:, None], miss] - cov_mo @ gain_t
        else:
            log_prob = np.zeros((rows.size, n_comp))
            cond = np.broadcast_to(means[:, None, miss], (n_comp, rows.size, miss.size))
            cond_cov = full[:, miss[:, None], miss]
        log_post = log_prob + log_weights
        log_post -= log_post.max(axis=1, keepdims=True)
        post = np.exp(log_post)
        post /= post.sum(axis=1, keepdims=True)  # (n_p, K)
        cum = np.cumsum(post, axis=1)
        uniform = rng.random((n_draws, rows.size, 1))
        comp = np.minimum((uniform > cum[None]).sum(axis=2), n_comp - 1)  # (n_draws, n_p)
        lower = np.linalg.cholesky(cond_cov)  # (K, m, m)
        noise = rng.standard_normal((n_draws, rows.size, miss.size))
        chosen_mean = cond[comp, np.arange(rows.size)[None, :]]  # (n_draws, n_p, m)
        draws = chosen_mean + np.einsum("dnml,dnl->dnm", lower[comp], noise)
        filled[:, rows[:, None], miss] = draws
    return filled
