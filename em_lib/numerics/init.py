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
    ``hierarchical_max_rows`` rows, cut at ``K`` clusters; deterministic for small data.
``"short-em"``
    Biernacki, Celeux & Govaert (2003): ``short_em_runs`` short EM runs (``short_em_iter``
    iterations) from k-means++ starts per start; the best short run becomes the start.
``"auto"`` (the default of :class:`em_lib.GaussianMixture`)
    start 0 from ``"hierarchical"`` on the data, start 1 (with three or more starts) from
    ``"hierarchical"`` on the whitened principal components (mclust's "SVD" transformation),
    the others from ``"kmeans"``: the hierarchical starts reproduce the kind of start R's
    mclust relies on, while the k-means starts explore other optima.

Missing entries are replaced by column means for the purpose of initialisation only.
"""

from __future__ import annotations

import numpy as np

from .covariance import check_covariance_type
from .gaussian import CompleteDataEngine
from .mixture_em import mstep

INIT_METHODS = ("auto", "kmeans", "k-means++", "random", "random_from_data", "hierarchical",
                "short-em")


def check_init(method: str) -> str:
    if method not in INIT_METHODS:
        raise ValueError(f"init_params must be one of {list(INIT_METHODS)}, got {method!r}")
    return method


def _squared_distances(X, sq_norms, centers):
    """|x_n - c_ik|^2 for X (n, d) and centers (I, K, d): (n, I, K)."""
    n_init, n_comp, d = centers.shape
    flat = centers.reshape(-1, d)
    dist = sq_norms[:, None] - 2 * (X @ flat.T) + np.einsum("cd,cd->c", flat, flat)[None]
    np.maximum(dist, 0, out=dist)
    return dist.reshape(X.shape[0], n_init, n_comp)


def kmeans_plusplus(X, n_components, n_init, rng, n_trials=None):
    """Greedy k-means++ seeds for every start: (I, K, d)."""
    n, d = X.shape
    n_trials = n_trials or 2 + int(np.log(n_components))
    sq_norms = np.einsum("nd,nd->n", X, X)
    centers = np.empty((n_init, n_components, d))
    first = rng.integers(n, size=n_init)
    centers[:, 0] = X[first]
    closest = _squared_distances(X, sq_norms, centers[:, :1])[:, :, 0].T  # (I, n)
    for comp in range(1, n_components):  # seeding is sequential by nature
        cumulative = np.cumsum(closest, axis=1)
        totals = cumulative[:, -1]
        draws = rng.random((n_init, n_trials)) * totals[:, None]
        cand = np.empty((n_init, n_trials), dtype=int)
        for trial in range(n_trials):
            cand[:, trial] = np.minimum(
                (cumulative < draws[:, trial : trial + 1]).sum(axis=1), n - 1
            )
        cand_points = X[cand]  # (I, T, d)
        cand_dist = _squared_distances(X, sq_norms, cand_points)  # (n, I, T)
        merged = np.minimum(closest.T[:, :, None], cand_dist)
        potential = merged.sum(axis=0)  # (I, T)
        best = np.argmin(potential, axis=1)
        centers[:, comp] = cand_points[np.arange(n_init), best]
        closest = merged[:, np.arange(n_init), best].T
    return centers


def assign(X, centers, block_size=4096):
    """Nearest-centre labels (I, n), in blocks of rows (``|x|^2`` is the same for every
    centre, so only ``|c|^2 - 2 x.c`` is compared)."""
    n_init, n_comp, d = centers.shape
    flat = centers.reshape(-1, d)
    offsets = np.einsum("cd,cd->c", flat, flat)
    labels = np.empty((n_init, X.shape[0]), dtype=int)
    for start in range(0, X.shape[0], block_size):
        block = X[start:start + block_size] @ (-2 * flat.T) + offsets
        labels[:, start:start + block_size] = block.reshape(-1, n_init, n_comp).argmin(2).T
    return labels


def lloyd_centers(X, centers, max_iter):
    """Batched Lloyd iterations; a start stops when none of its assignments changes (at most
    ``max_iter`` iterations); empty clusters keep their previous centre. Returns (I, K, d)."""
    n_comp = centers.shape[1]
    centers = centers.copy()
    labels = assign(X, centers)
    active = np.arange(centers.shape[0])
    for _ in range(max_iter):
        n_active = active.size
        offsets = (np.arange(n_active) * n_comp)[:, None]
        size = n_active * n_comp
        flat = (labels[active] + offsets).ravel()
        counts = np.bincount(flat, minlength=size).reshape(n_active, n_comp)
        totals = np.stack(
            [np.bincount(flat, weights=np.tile(column, n_active), minlength=size)
             for column in X.T], axis=-1).reshape(n_active, n_comp, -1)
        nonempty = counts > 0
        updated = centers[active]
        updated[nonempty] = totals[nonempty] / counts[nonempty][:, None]
        centers[active] = updated
        new_labels = assign(X, updated)
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


def hierarchical_labels(X, n_components, rng, max_rows=1000):
    """Ward clustering cut at K clusters; rows outside the subsample go to the nearest centre."""
    from scipy.cluster.hierarchy import fcluster, linkage

    n = X.shape[0]
    if n_components == 1 or n < 2:
        return np.zeros(n, dtype=int)
    rows = np.arange(n) if n <= max_rows else np.sort(rng.choice(n, max_rows, replace=False))
    tree = linkage(X[rows], method="ward")
    cut = fcluster(tree, t=n_components, criterion="maxclust") - 1
    n_found = cut.max() + 1
    centers = np.stack([X[rows][cut == c].mean(axis=0) for c in range(n_found)])
    if n_found < n_components:  # ties: pad with the points farthest from their centre
        far = np.argsort(-((X[rows] - centers[cut]) ** 2).sum(axis=1))
        centers = np.concatenate([centers, X[rows][far[: n_components - n_found]]])
    return assign(X, centers[None])[0]


def initial_parameters(X, n_components, covariance_type, n_init, method, rng, *, reg_covar=1e-6,
                       prior=None, kmeans_iter=10, hierarchical_max_rows=1000,
                       kmeans_max_rows=2000,
                       short_em_runs=10, short_em_iter=5):
    """Starting weights, means and covariances for ``n_init`` starts.

    Parameters
    ----------
    X : (n_samples, n_features) array; NaN allowed (mean-imputed for initialisation)
    rng : numpy.random.Generator

    Returns
    -------
    weights : (I, K), means : (I, K, d), covariances of ``covariance_type``
    """
    check_covariance_type(covariance_type)
    check_init(method)
    X = np.asarray(X, dtype=float)
    X = X[~np.isnan(X).all(axis=1)]
    if np.isnan(X).any():
        X = np.where(np.isnan(X), np.nanmean(X, axis=0), X)
    center = X.mean(axis=0)
    Xc = X - center
    n, d = X.shape
    engine = CompleteDataEngine(Xc, covariance_type)

    if method == "short-em":
        from .mixture_em import fit_mixture_em

        n_runs = n_init * short_em_runs
        w0, m0, c0 = initial_parameters(X, n_components, covariance_type, n_runs, "k-means++",
                                        rng, reg_covar=reg_covar, prior=prior)
        short = fit_mixture_em(X, w0, m0, c0, covariance_type, tol=0.0, max_iter=short_em_iter,
                               reg_covar=reg_covar, prior=prior)
        score = np.where(short.failed, -np.inf, short.objective).reshape(n_init, short_em_runs)
        chosen = np.arange(n_init) * short_em_runs + np.argmax(score, axis=1)
        return short.weights[chosen], short.means[chosen], short.covariances[chosen]

    if method == "random":
        resp = rng.uniform(size=(n_init, n, n_components))
        resp /= resp.sum(axis=2, keepdims=True)
        stats = engine.statistics_from_resp(resp)
    else:
        # k-means style seeding runs on at most ``kmeans_max_rows`` rows (a random subsample
        # for large data); every row is then assigned to its nearest centre once.
        fit_rows = Xc if n <= kmeans_max_rows else Xc[rng.choice(n, kmeans_max_rows,
                                                                  replace=False)]
        labels = np.empty((n_init, n), dtype=int)
        if method == "auto":
            labels[0] = hierarchical_labels(Xc, n_components, rng, hierarchical_max_rows)
            n_hier = 1
            if n_init > 2:
                labels[1] = hierarchical_labels(whiten(Xc), n_components, rng,
                                                hierarchical_max_rows)
                n_hier = 2
            if n_init > n_hier:
                seeds = kmeans_plusplus(fit_rows, n_components, n_init - n_hier, rng)
                labels[n_hier:] = assign(Xc, lloyd_centers(fit_rows, seeds, kmeans_iter))
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
        stats = engine.statistics_from_labels(labels, n_components)
    prior_c = prior.shifted(center) if prior is not None else None
    weights, means, covariances = mstep(stats, covariance_type, reg_covar, prior_c)
    return weights, means + center, covariances
