"""Correctness of the fast paths of em_lib.numerics.init (compiled assignment and cluster
sums, in-place k-means++ distances, cached Ward trees) against straightforward references."""

import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage

from em_lib.numerics import init


def _blobs(n, d, k, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(k, d))
    return centres[rng.integers(k, size=n)] + rng.normal(size=(n, d))


def _reference_assign(X, centers):
    dist = ((X[None, :, None, :] - centers[:, None, :, :]) ** 2).sum(-1)  # (I, n, K)
    return dist.argmin(axis=2)


def _reference_lloyd(X, centers, max_iter):
    """One start at a time, plain loops."""
    out = centers.copy()
    for start in range(out.shape[0]):
        c = out[start]
        labels = _reference_assign(X, c[None])[0]
        for _ in range(max_iter):
            for k in range(c.shape[0]):
                members = X[labels == k]
                if len(members):
                    c[k] = members.sum(axis=0) / len(members)
            new = _reference_assign(X, c[None])[0]
            if np.array_equal(new, labels):
                break
            labels = new
    return out


def _reference_kmeans_plusplus(X, n_components, n_init, rng, n_trials=None):
    """The previous implementation (candidate = count of cumulative sums below the draw)."""
    n, d = X.shape
    n_trials = n_trials or 2 + int(np.log(n_components))
    sq_norms = np.einsum("nd,nd->n", X, X)

    def sqd(centers):
        flat = centers.reshape(-1, d)
        dist = sq_norms[:, None] - 2 * (X @ flat.T) + np.einsum("cd,cd->c", flat, flat)[None]
        np.maximum(dist, 0, out=dist)
        return dist.reshape(n, centers.shape[0], centers.shape[1])

    centers = np.empty((n_init, n_components, d))
    centers[:, 0] = X[rng.integers(n, size=n_init)]
    closest = sqd(centers[:, :1])[:, :, 0].T
    for comp in range(1, n_components):
        cumulative = np.cumsum(closest, axis=1)
        draws = rng.random((n_init, n_trials)) * cumulative[:, -1:]
        cand = np.empty((n_init, n_trials), dtype=int)
        for trial in range(n_trials):
            cand[:, trial] = np.minimum((cumulative < draws[:, trial : trial + 1]).sum(1), n - 1)
        cand_points = X[cand]
        merged = np.minimum(closest.T[:, :, None], sqd(cand_points))
        best = np.argmin(merged.sum(axis=0), axis=1)
        centers[:, comp] = cand_points[np.arange(n_init), best]
        closest = merged[:, np.arange(n_init), best].T
    return centers


@pytest.mark.parametrize("use_numba", [True, False])
@pytest.mark.parametrize("n,d,k,n_init", [(1, 2, 3, 1), (57, 3, 4, 5), (5000, 6, 7, 3)])
def test_assign_matches_reference(monkeypatch, use_numba, n, d, k, n_init):
    if not use_numba:
        monkeypatch.setattr(init, "_KERNELS", False)
    rng = np.random.default_rng(n + d)
    X = rng.normal(size=(n, d))
    centers = rng.normal(size=(n_init, k, d))
    labels = init.assign(X, centers, block_size=1000)
    ref = _reference_assign(X, centers)
    # ties aside (none with continuous data) the nearest centre is unique
    np.testing.assert_array_equal(labels, ref)


def test_assign_ties_and_nan_follow_numpy_argmin():
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    centers = np.array([[[1.0], [1.0], [3.0]], [[5.0], [-1.0], [1.0]]])  # duplicated centre
    np.testing.assert_array_equal(init.assign(X, centers), _reference_assign(X, centers))
    assert (init.assign(X, centers)[0, :2] == 0).all()  # first of two equal centres
    kernel = init._kernels()[0]
    block = np.array(
        [
            [3.0, np.nan, 1.0, 0.5, 2.0, 7.0],
            [np.inf, -np.inf, 2.0, 1.0, 1.0, 1.0],
            [1.0, 1.0, 0.0, np.nan, np.nan, 4.0],
        ]
    )
    labels = np.full((2, 3), -1, dtype=np.int64)
    kernel(block, np.zeros(6), 3, labels, 0)
    np.testing.assert_array_equal(labels, block.reshape(3, 2, 3).argmin(2).T)


def test_assign_uses_scratch_without_changing_result():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 4))
    centers = rng.normal(size=(2, 5, 4))
    scratch = np.full(300 * 10 + 7, np.nan)
    np.testing.assert_array_equal(
        init.assign(X, centers, block_size=128, scratch=scratch),
        init.assign(X, centers, block_size=128),
    )


@pytest.mark.parametrize("use_numba", [True, False])
def test_cluster_sums_match_bincount(monkeypatch, use_numba):
    if not use_numba:
        monkeypatch.setattr(init, "_KERNELS", False)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(777, 5))
    labels = rng.integers(6, size=(4, 777))
    labels[2] = 0  # a start with empty clusters
    counts, sums = init.cluster_sums(X, labels, 6)
    ref_counts, ref_sums = init._cluster_sums_numpy(X, labels, 6)
    np.testing.assert_array_equal(counts, ref_counts)
    np.testing.assert_array_equal(sums, ref_sums)  # rows are added in the same order
    for start in range(4):
        for k in range(6):
            members = X[labels[start] == k]
            assert counts[start, k] == len(members)
            np.testing.assert_allclose(sums[start, k], members.sum(axis=0), atol=1e-12)


@pytest.mark.parametrize("use_numba", [True, False])
def test_lloyd_matches_reference(monkeypatch, use_numba):
    if not use_numba:
        monkeypatch.setattr(init, "_KERNELS", False)
    X = _blobs(600, 3, 5, seed=1)
    rng = np.random.default_rng(2)
    seeds = X[rng.integers(600, size=(6, 5))] + 0.01
    seeds[3, 4] = 1e6  # a centre that never gets a member (kept as is)
    for max_iter in (1, 3, 50):
        got = init.lloyd_centers(X, seeds, max_iter)
        np.testing.assert_allclose(got, _reference_lloyd(X, seeds, max_iter), rtol=0, atol=1e-12)
    assert got[3, 4, 0] == 1e6


def test_kmeans_plusplus_identical_to_previous_search_and_picks_rows():
    X = _blobs(900, 4, 6, seed=5)
    for seed in range(4):
        got = init.kmeans_plusplus(X, 6, 7, np.random.default_rng(seed))
        ref = _reference_kmeans_plusplus(X, 6, 7, np.random.default_rng(seed))
        np.testing.assert_array_equal(got, ref)
        rows = {tuple(row) for row in X}
        assert all(tuple(c) in rows for c in got.reshape(-1, 4))
        # greedy seeding never repeats a row with non-zero potential left
        for start in got:
            assert len({tuple(c) for c in start}) == 6


def test_kmeans_plusplus_duplicate_rows_stay_in_range():
    X = np.repeat(np.array([[0.0, 0.0], [1.0, 1.0]]), 20, axis=0)
    centers = init.kmeans_plusplus(X, 4, 3, np.random.default_rng(0))
    assert np.isin(centers, [0.0, 1.0]).all()


@pytest.mark.parametrize("n", [40, 1500])
def test_ward_cache_same_labels_and_random_stream(n):
    X = _blobs(n, 3, 4, seed=n)
    init._WARD_CACHE.clear()
    results = []
    for _ in range(2):  # cold, then from the cache
        rng = np.random.default_rng(11)
        labels = init.hierarchical_labels(X, 4, rng, max_rows=1000)
        results.append((labels, rng.random()))
    assert len(init._WARD_CACHE) == 1
    np.testing.assert_array_equal(results[0][0], results[1][0])
    assert results[0][1] == results[1][1]  # the subsample draw consumed the same stream
    # an uncached direct computation
    rng = np.random.default_rng(11)
    rows = np.arange(n) if n <= 1000 else np.sort(rng.choice(n, 1000, replace=False))
    cut = fcluster(linkage(X[rows], method="ward"), t=4, criterion="maxclust") - 1
    centres = np.stack([X[rows][cut == c].mean(axis=0) for c in range(cut.max() + 1)])
    np.testing.assert_array_equal(results[0][0], _reference_assign(X, centres[None])[0])
    # other K on the same data reuse the tree
    for k in (2, 3, 5):
        labels = init.hierarchical_labels(X, k, np.random.default_rng(11), max_rows=1000)
        assert labels.max() == k - 1
    assert len(init._WARD_CACHE) == 1


def test_ward_cache_is_bounded_and_keyed_by_content():
    init._WARD_CACHE.clear()
    rng = np.random.default_rng(0)
    for i in range(init.WARD_CACHE_SIZE + 5):
        init.ward_tree(rng.normal(size=(10 + i % 3, 2)))
    assert len(init._WARD_CACHE) == init.WARD_CACHE_SIZE
    Y = rng.normal(size=(30, 2))
    tree = init.ward_tree(Y)
    np.testing.assert_array_equal(tree, linkage(Y, method="ward"))
    assert init.ward_tree(Y.copy()) is tree
    assert init.ward_tree(Y.reshape(20, 3)) is not tree  # same bytes, other shape
    Z = Y.copy()
    Z[0, 0] += 1e-9
    assert init.ward_tree(Z) is not tree


@pytest.mark.parametrize(
    "method", ["kmeans", "auto", "hierarchical", "k-means++", "random_from_data"]
)
def test_initial_parameters_same_with_and_without_kernels(monkeypatch, method):
    X = _blobs(2500, 3, 4, seed=9)
    fast = init.initial_parameters(X, 4, "full", 6, method, np.random.default_rng(4))
    monkeypatch.setattr(init, "_KERNELS", False)
    init._WARD_CACHE.clear()
    slow = init.initial_parameters(X, 4, "full", 6, method, np.random.default_rng(4))
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(a, b)


def test_kmeans_plusplus_seeds_are_rows_and_spread_over_separated_clusters():
    """Property of k-means++ (Arthur & Vassilvitskii 2007), not a comparison with an older
    implementation: every seed is a data row, and with three tight clusters 100 standard
    deviations apart the D^2 sampling puts the K = 3 seeds in three different clusters (a
    second seed in an occupied cluster has probability below 1e-3 per draw here)."""
    rng = np.random.default_rng(5)
    centres = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]])
    X = np.vstack([c + rng.normal(0, 1, (200, 2)) for c in centres])
    seeds = init.kmeans_plusplus(X, 3, 50, np.random.default_rng(1))
    assert seeds.shape == (50, 3, 2)
    rows = {tuple(row) for row in X}
    assert all(tuple(seed) in rows for seed in seeds.reshape(-1, 2))
    cluster = np.argmin(((seeds[:, :, None, :] - centres) ** 2).sum(-1), axis=-1)  # (50, 3)
    assert all(len(set(row)) == 3 for row in cluster)
