"""Batched initialisation of Gaussian-mixture starts.

Every strategy draws from an explicitly passed ``numpy.random.Generator`` and produces the
starting parameters of all ``n_init`` starts at once:

``"kmeans"``
    k-means++ seeding (greedy, ``2 + log K`` candidates per step) followed by Lloyd steps until
    the assignment stops changing (at most ``kmeans_iter``); parameters from the partition.
    Seeding and Lloyd steps use at most ``kmeans_max_rows`` rows (a random subsample of
    larger data), then every row goes to its nearest centre.
``"k-means++"``
    k-means++ seeding only; each row assigned to its nearest seed.
``"random"``
    random responsibilities (uniform, normalised per row), as scikit-learn's ``"random"``.
``"random_from_data"``
    ``K`` distinct random rows as centres, each row assigned to its nearest centre.
``"hierarchical"``
    Ward agglomerative clustering (the model-based hierarchical clustering of the spherical
    equal-volume model, mclust's style of start) of the data, or of a random subsample of
    ``hierarchical_max_rows`` rows (default 500), cut at ``K`` clusters; deterministic for
    small data. Ward's cost grows faster than quadratically with the rows (scipy: about 4 ms
    for 500 rows, 10 ms for 750, 17-30 ms for 1,000), and two trees are built per ``"auto"``
    fit. On synthetic mixtures (``make_gaussian_mixture``, separation 2.5; n = 5,000 and
    50,000, d 2-10, K 3-8, full and diag, n_init = 10; 144 fits) 500 instead of 1,000 rows left
    the final log-likelihood unchanged (within 1e-6 per sample) in 141 fits; another subsample
    led one fit to a better optimum (+2.4e-3 per sample) and two to worse ones (-3.7e-3 and
    -6.9e-3): a subsample is a random start either way.
    The Ward tree does not depend on ``K``: trees are cached by the content of the clustered
    rows (a few dozen), so fits of several ``K`` on the same rows build it once.
``"short-em"``
    Biernacki, Celeux & Govaert (2003): ``short_em_runs`` short EM runs (``short_em_iter``
    iterations) from k-means++ starts per start; the best short run becomes the start.
``"auto"`` (the default of :class:`em_lib.GaussianMixture`)
    start 0 from ``"hierarchical"`` on the data, start 1 (with three or more starts) from
    ``"hierarchical"`` on the whitened principal components (mclust's "SVD" transformation),
    of the others a third (rounded down) from ``"random_from_data"`` and the rest from
    ``"kmeans"``: the hierarchical starts reproduce the kind of start R's mclust relies on,
    the k-means starts explore other optima, and the random-centre starts keep some starts
    away from the k-means basins (on old_faithful with 20 % missing, spherical K = 4, only
    random-centre and short-EM starts found the better of two optima, by 5.7 in
    log-likelihood).

Missing entries are replaced by column means for the purpose of initialisation only.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np

from .covariance import check_covariance_type
from .gaussian import CompleteDataEngine
from .mixture_em import mstep

INIT_METHODS = (
    "auto",
    "kmeans",
    "k-means++",
    "random",
    "random_from_data",
    "hierarchical",
    "short-em",
)


def check_init(method: str) -> str:
    if method not in INIT_METHODS:
        raise ValueError(f"init_params must be one of {list(INIT_METHODS)}, got {method!r}")
    return method


def start_kinds(method: str, n_init: int) -> list[str]:
    """What each of the ``n_init`` starts of ``method`` is made from, in start order; for
    ``"auto"``: ``hierarchical``, ``hierarchical-whitened`` (with three or more starts), then
    ``kmeans`` and a third (rounded down) of the rest ``random_from_data``."""
    check_init(method)
    if method != "auto":
        return [method] * n_init
    kinds = ["hierarchical"] + (["hierarchical-whitened"] if n_init > 2 else [])
    kinds = kinds[:n_init]
    n_random = (n_init - len(kinds)) // 3
    n_kmeans = n_init - len(kinds) - n_random
    return kinds + ["kmeans"] * n_kmeans + ["random_from_data"] * n_random


def _squared_distances(X, sq_norms, centers):
    """|x_n - c_ik|^2 for X (n, d) and centers (I, K, d): (n, I, K)."""
    n_init, n_comp, d = centers.shape
    flat = centers.reshape(-1, d)
    # (|x|^2 - 2 x.c) + |c|^2, evaluated in place (same operations as the expression)
    dist = X @ flat.T
    dist *= 2
    np.subtract(sq_norms[:, None], dist, out=dist)
    dist += np.einsum("cd,cd->c", flat, flat)
    np.maximum(dist, 0, out=dist)
    return dist.reshape(X.shape[0], n_init, n_comp)


# ---------------------------------------------------------------------------------------
# Compiled kernels (numba, compiled on first use and cached on disk; built inside a function
# so that importing this module does not compile them). The numpy versions below are the
# readable references the tests compare the kernels with (``_kernels`` patched to False):
# both do the same floating-point operations in the same order, so results are bit-identical.
_KERNELS = None


def _kernels():
    global _KERNELS
    if _KERNELS is None:
        import numba

        @numba.njit(cache=True, nogil=True)
        def grouped_argmin(block, offsets, n_comp, labels, start):
            # labels[i, start + r] = argmin_k (block + offsets)[r, i * n_comp + k], numpy.argmin's
            # ties (first minimum) and NaN (first NaN) rules; branch-free main loop, a NaN
            # anywhere in a group makes ``check`` NaN and sends it to the slow path
            n_rows, width = block.shape
            n_init = width // n_comp
            for r in range(n_rows):
                for i in range(n_init):
                    base = i * n_comp
                    best = block[r, base] + offsets[base]
                    best_k = 0
                    check = best
                    for k in range(1, n_comp):
                        value = block[r, base + k] + offsets[base + k]
                        check += value
                        lower = value < best
                        best = value if lower else best
                        best_k = k if lower else best_k
                    if check != check:
                        for k in range(n_comp):
                            value = block[r, base + k] + offsets[base + k]
                            if value != value:
                                best_k = k
                                break
                    labels[i, start + r] = best_k

        @numba.njit(cache=True, nogil=True)
        def cluster_sums(X, labels, n_comp):
            # per start: counts (A, K) and coordinate sums (A, K, d), rows added in order
            n_starts, n = labels.shape
            d = X.shape[1]
            counts = np.zeros((n_starts, n_comp), dtype=np.int64)
            sums = np.zeros((n_starts, n_comp, d))
            for a in range(n_starts):
                for r in range(n):
                    k = labels[a, r]
                    counts[a, k] += 1
                    for j in range(d):
                        sums[a, k, j] += X[r, j]
            return counts, sums

        @numba.njit(cache=True, nogil=True)
        def candidate_potentials(products, sq_norms, center_norms, closest, merged, potential):
            # merged[r, c] = min(closest[c // T, r], max((|x_r|^2 - 2 products[r, c]) + |c|^2, 0))
            # and potential[c] = sum_r merged[r, c], rows added in order (numpy's axis-0 sum)
            n_rows, width = products.shape
            n_trials = width // closest.shape[0]
            for c in range(width):
                potential[c] = 0.0
            for r in range(n_rows):
                for c in range(width):
                    value = (sq_norms[r] - products[r, c] * 2.0) + center_norms[c]
                    if value < 0.0:
                        value = 0.0
                    current = closest[c // n_trials, r]
                    if current < value or current != current:
                        value = current
                    merged[r, c] = value
                    potential[c] += value

        _KERNELS = (grouped_argmin, cluster_sums, candidate_potentials)
    return _KERNELS


def _cluster_sums_numpy(X, labels, n_comp):
    n_starts = labels.shape[0]
    offsets = (np.arange(n_starts) * n_comp)[:, None]
    size = n_starts * n_comp
    flat = (labels + offsets).ravel()
    counts = np.bincount(flat, minlength=size).reshape(n_starts, n_comp)
    sums = np.stack(
        [np.bincount(flat, weights=np.tile(column, n_starts), minlength=size) for column in X.T],
        axis=-1,
    ).reshape(n_starts, n_comp, -1)
    return counts, sums


def cluster_sums(X, labels, n_comp):
    """Counts (I, K) and coordinate sums (I, K, d) of the partitions ``labels`` (I, n)."""
    kernels = _kernels()
    if kernels:
        return kernels[1](
            np.ascontiguousarray(X, dtype=float),
            np.ascontiguousarray(labels, dtype=np.int64),
            int(n_comp),
        )
    return _cluster_sums_numpy(X, labels, n_comp)


def kmeans_plusplus(X, n_components, n_init, rng, n_trials=None):
    """Greedy k-means++ seeds for every start: (I, K, d)."""
    n, d = X.shape
    n_trials = n_trials or 2 + int(np.log(n_components))
    sq_norms = np.einsum("nd,nd->n", X, X)
    centers = np.empty((n_init, n_components, d))
    first = rng.integers(n, size=n_init)
    centers[:, 0] = X[first]
    closest = _squared_distances(X, sq_norms, centers[:, :1])[:, :, 0].T  # (I, n)
    starts = np.arange(n_init)
    kernels = _kernels()
    if kernels:
        width = n_init * n_trials
        products = np.empty((n, width))
        merged = np.empty((n, width))
        potential = np.empty(width)
    for comp in range(1, n_components):  # seeding is sequential by nature
        cumulative = np.cumsum(closest, axis=1)
        totals = cumulative[:, -1]
        draws = rng.random((n_init, n_trials)) * totals[:, None]
        # candidate = number of cumulative sums below the draw (cumulative is non-decreasing)
        cand = np.empty((n_init, n_trials), dtype=np.intp)
        for start in range(n_init):
            cand[start] = np.searchsorted(cumulative[start], draws[start], side="left")
        np.minimum(cand, n - 1, out=cand)
        cand_points = X[cand]  # (I, T, d)
        if kernels:
            flat = cand_points.reshape(-1, d)
            np.matmul(X, flat.T, out=products)
            kernels[2](
                products,
                sq_norms,
                np.einsum("cd,cd->c", flat, flat),
                np.ascontiguousarray(closest),
                merged,
                potential,
            )
            best = np.argmin(potential.reshape(n_init, n_trials), axis=1)
            closest = merged.reshape(n, n_init, n_trials)[:, starts, best].T
        else:
            cand_dist = _squared_distances(X, sq_norms, cand_points)  # (n, I, T)
            merged_np = np.minimum(closest.T[:, :, None], cand_dist)
            best = np.argmin(merged_np.sum(axis=0), axis=1)  # (I,)
            closest = merged_np[:, starts, best].T
        centers[:, comp] = cand_points[starts, best]
    return centers


def assign(X, centers, block_size=4096, scratch=None):
    """Nearest-centre labels (I, n), in blocks of rows (``|x|^2`` is the same for every
    centre, so only ``|c|^2 - 2 x.c`` is compared). ``scratch``: optional 1-d float buffer of
    at least ``min(n, block_size) * I * K`` entries, reused for the blocks."""
    n_init, n_comp, d = centers.shape
    flat = centers.reshape(-1, d)
    offsets = np.einsum("cd,cd->c", flat, flat)
    scaled = -2 * flat.T
    n = X.shape[0]
    labels = np.empty((n_init, n), dtype=np.int64)
    kernels = _kernels()
    if not kernels:
        for start in range(0, n, block_size):
            block = X[start : start + block_size] @ scaled + offsets
            labels[:, start : start + block_size] = block.reshape(-1, n_init, n_comp).argmin(2).T
        return labels
    # one buffer for all blocks (fresh multi-megabyte temporaries cost page faults); the
    # kernel adds the offsets and takes the argmin in one pass
    width = n_init * n_comp
    size = min(n, block_size) * width
    if scratch is None or scratch.size < size:
        scratch = np.empty(size)
    for start in range(0, n, block_size):
        rows = X[start : start + block_size]
        block = scratch[: rows.shape[0] * width].reshape(rows.shape[0], width)
        np.matmul(rows, scaled, out=block)
        kernels[0](block, offsets, n_comp, labels, start)
    return labels


def lloyd_centers(X, centers, max_iter):
    """Batched Lloyd iterations; a start stops when none of its assignments changes (at most
    ``max_iter`` iterations); empty clusters keep their previous centre. Returns (I, K, d)."""
    n_comp = centers.shape[1]
    centers = centers.copy()
    scratch = np.empty(min(X.shape[0], 4096) * centers.shape[0] * n_comp)
    labels = assign(X, centers, scratch=scratch)
    active = np.arange(centers.shape[0])
    for _ in range(max_iter):
        counts, totals = cluster_sums(X, labels[active], n_comp)
        nonempty = counts > 0
        updated = centers[active]
        updated[nonempty] = totals[nonempty] / counts[nonempty][:, None]
        centers[active] = updated
        new_labels = assign(X, updated, scratch=scratch)
        changed = (new_labels != labels[active]).any(axis=1)
        labels[active] = new_labels
        active = active[changed]
        if active.size == 0:
            break
    return centers


def whiten(X):
    """Scaled principal components (mclust's "SVD" transformation before hierarchical
    clustering): every direction of the data gets unit variance."""
    centred = X - X.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    keep = singular > singular[0] * 1e-10
    return centred @ vt[keep].T / singular[keep] * np.sqrt(max(len(X) - 1, 1))


# Ward trees by content of the clustered rows: the tree does not depend on K, so fits of
# several K on the same data (an estimator's contained models) build it once. Bounded LRU.
_WARD_CACHE: OrderedDict = OrderedDict()
_WARD_CACHE_LOCK = threading.Lock()
WARD_CACHE_SIZE = 32


def ward_tree(Y):
    """Ward linkage of the rows of ``Y`` (scipy's ``linkage(Y, "ward")`` matrix, computed by
    :func:`~em_lib.numerics._ward.ward_linkage` in about 40 % of scipy's time), cached by a
    SHA-1 of the rows' bytes and their shape (read-only array; at most ``WARD_CACHE_SIZE``
    trees are kept)."""
    from ._ward import ward_linkage

    Y = np.ascontiguousarray(Y, dtype=float)
    key = (hashlib.sha1(Y.view(np.uint8).ravel()).hexdigest(), Y.shape)
    with _WARD_CACHE_LOCK:
        tree = _WARD_CACHE.get(key)
        if tree is not None:
            _WARD_CACHE.move_to_end(key)
            return tree
    tree = ward_linkage(Y)
    tree.flags.writeable = False
    with _WARD_CACHE_LOCK:
        _WARD_CACHE[key] = tree
        while len(_WARD_CACHE) > WARD_CACHE_SIZE:
            _WARD_CACHE.popitem(last=False)
    return tree


def hierarchical_labels(X, n_components, rng, max_rows=500):
    """Ward clustering cut at K clusters; rows outside the subsample go to the nearest centre."""
    from ._ward import maxclust_labels

    n = X.shape[0]
    if n_components == 1 or n < 2:
        return np.zeros(n, dtype=int)
    rows = np.arange(n) if n <= max_rows else np.sort(rng.choice(n, max_rows, replace=False))
    sub = X[rows]
    tree = ward_tree(sub)
    cut = maxclust_labels(tree, n_components)
    n_found = cut.max() + 1
    centers = np.stack([sub[cut == c].mean(axis=0) for c in range(n_found)])
    if n_found < n_components:  # ties: pad with the points farthest from their centre
        far = np.argsort(-((sub - centers[cut]) ** 2).sum(axis=1))
        centers = np.concatenate([centers, sub[far[: n_components - n_found]]])
    return assign(X, centers[None])[0]


def initial_parameters(
    X,
    n_components,
    covariance_type,
    n_init,
    method,
    rng,
    *,
    reg_covar=1e-6,
    prior=None,
    kmeans_iter=10,
    hierarchical_max_rows=500,
    kmeans_max_rows=2000,
    short_em_runs=10,
    short_em_iter=5,
    prepared=None,
    sample_weight=None,
):
    """Starting weights, means and covariances for ``n_init`` starts.

    Parameters
    ----------
    X : (n_samples, n_features) array; NaN allowed (mean-imputed for initialisation)
    rng : numpy.random.Generator
    prepared : em_lib.numerics.gaussian.PreparedData, optional
        The fit's engine for the same ``X`` (complete data): its centred data and cached
        features are reused instead of being built again.
    sample_weight : (n_samples,) array, optional
        Row weights: the partitions (Ward, k-means, random rows) are drawn from the rows as
        they are, and the starting parameters are the weighted moments of each part.

    Returns
    -------
    weights : (I, K), means : (I, K, d), covariances of ``covariance_type``
    """
    check_covariance_type(covariance_type)
    check_init(method)
    if (
        prepared is not None
        and not prepared.missing
        and prepared.covariance_type == covariance_type
    ):
        engine, center = prepared.engine, prepared.center
        Xc = engine.X
        row_weights = None if sample_weight is None else np.asarray(sample_weight)[prepared.keep]
    else:
        X = np.asarray(X, dtype=float)
        keep = ~np.isnan(X).all(axis=1)
        X = X[keep]
        row_weights = None if sample_weight is None else np.asarray(sample_weight)[keep]
        if np.isnan(X).any():
            X = np.where(np.isnan(X), np.nanmean(X, axis=0), X)
        center = X.mean(axis=0)
        Xc = X - center
        engine = CompleteDataEngine(Xc, covariance_type)
    n, d = Xc.shape

    if method == "short-em":
        from .mixture_em import fit_mixture_em

        n_runs = n_init * short_em_runs
        X = Xc + center
        w0, m0, c0 = initial_parameters(
            X,
            n_components,
            covariance_type,
            n_runs,
            "k-means++",
            rng,
            reg_covar=reg_covar,
            prior=prior,
            sample_weight=row_weights,
        )
        short = fit_mixture_em(
            X,
            w0,
            m0,
            c0,
            covariance_type,
            tol=0.0,
            max_iter=short_em_iter,
            reg_covar=reg_covar,
            prior=prior,
            sample_weight=row_weights,
        )
        score = np.where(short.failed, -np.inf, short.objective).reshape(n_init, short_em_runs)
        chosen = np.arange(n_init) * short_em_runs + np.argmax(score, axis=1)
        return short.weights[chosen], short.means[chosen], short.covariances[chosen]

    if method == "random":
        resp = rng.uniform(size=(n_init, n, n_components))
        resp /= resp.sum(axis=2, keepdims=True)
        stats = engine.statistics_from_resp(resp, row_weights)
    else:
        # k-means style seeding runs on at most ``kmeans_max_rows`` rows (a random subsample
        # for large data); every row is then assigned to its nearest centre once.
        fit_rows = Xc if n <= kmeans_max_rows else Xc[rng.choice(n, kmeans_max_rows, replace=False)]
        labels = np.empty((n_init, n), dtype=int)
        if method == "auto":
            labels[0] = hierarchical_labels(Xc, n_components, rng, hierarchical_max_rows)
            n_hier = 1
            if n_init > 2:
                labels[1] = hierarchical_labels(
                    whiten(Xc), n_components, rng, hierarchical_max_rows
                )
                n_hier = 2
            n_random = (n_init - n_hier) // 3
            n_kmeans = n_init - n_hier - n_random
            if n_kmeans:
                seeds = kmeans_plusplus(fit_rows, n_components, n_kmeans, rng)
                labels[n_hier : n_hier + n_kmeans] = assign(
                    Xc, lloyd_centers(fit_rows, seeds, kmeans_iter)
                )
            if n_random:
                picks = np.stack(
                    [rng.choice(n, n_components, replace=False) for _ in range(n_random)]
                )
                labels[n_hier + n_kmeans :] = assign(Xc, Xc[picks])
        elif method == "hierarchical":
            labels[:] = hierarchical_labels(Xc, n_components, rng, hierarchical_max_rows)
        elif method == "kmeans":
            seeds = kmeans_plusplus(fit_rows, n_components, n_init, rng)
            labels = assign(Xc, lloyd_centers(fit_rows, seeds, kmeans_iter))
        elif method == "k-means++":
            labels = assign(Xc, kmeans_plusplus(fit_rows, n_components, n_init, rng))
        else:  # random_from_data
            picks = np.argsort(rng.random((n_init, n)), axis=1)[:, :n_components]
            labels = assign(Xc, Xc[picks])
        stats = engine.statistics_from_labels(labels, n_components, row_weights)
    prior_c = prior.shifted(center) if prior is not None else None
    weights, means, covariances = mstep(stats, covariance_type, reg_covar, prior_c)
    return weights, means + center, covariances
