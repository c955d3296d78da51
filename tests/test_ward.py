"""The compiled Ward linkage (em_lib.numerics._ward) against scipy's linkage(Y, "ward").

The implementation repeats scipy's floating-point operations in scipy's order, so the
matrices are expected to be identical, ties included: merges, labels and sizes are compared
exactly, heights to a relative 1e-12 (they agree bitwise on the platforms tested; the tolerance
only spares a platform whose compilers contract multiply-adds differently), and the
``fcluster`` cuts (what the library uses) must give the same partitions for K = 1..10.
"""

import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage

from em_lib.data import load_dataset
from em_lib.numerics._ward import maxclust_labels, ward_linkage


def _same_partition(a, b):
    """Whether two label vectors split the rows the same way (labels may be renamed)."""
    pairs = np.unique(np.stack([a, b]), axis=1)
    return pairs.shape[1] == np.unique(a).size == np.unique(b).size


def _same_tree(tree, reference):
    assert tree.shape == reference.shape
    assert tree.dtype == np.float64
    np.testing.assert_array_equal(tree[:, [0, 1, 3]], reference[:, [0, 1, 3]])
    np.testing.assert_allclose(tree[:, 2], reference[:, 2], rtol=1e-12, atol=0.0)


def _check(Y):
    tree = ward_linkage(Y)
    reference = linkage(Y, method="ward")
    assert tree.shape == (len(Y) - 1, 4)
    _same_tree(tree, reference)
    for k in range(1, 11):
        ours = fcluster(tree, t=k, criterion="maxclust")
        theirs = fcluster(reference, t=k, criterion="maxclust")
        assert _same_partition(ours, theirs), k
    return tree, reference


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("d", [1, 2, 5, 13])
@pytest.mark.parametrize("n", [2, 3, 4, 7, 25, 100, 257, 600])
def test_gaussian_rows_match_scipy(n, d, seed):
    Y = np.random.default_rng(seed).normal(size=(n, d))
    _check(Y)


@pytest.mark.parametrize("seed", [0, 1])
def test_clustered_and_scaled_rows_match_scipy(seed):
    """Well-separated blobs (large heights at the top) and columns on very different scales."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=6.0, size=(5, 3))
    Y = centres[rng.integers(5, size=400)] + rng.normal(size=(400, 3))
    Y *= np.array([1e-3, 1.0, 1e4])
    _check(Y)


def _tied_cases():
    rng = np.random.default_rng(7)
    base = rng.normal(size=(60, 2))
    duplicated = np.repeat(base, 3, axis=0)[rng.permutation(180)]
    lattice = np.stack(np.meshgrid(np.arange(12.0), np.arange(10.0)), axis=-1).reshape(-1, 2)
    faithful = np.asarray(load_dataset("old_faithful").X, dtype=float)
    return {
        "rounded-integers": np.round(rng.normal(scale=3.0, size=(300, 2))),
        "rounded-one-decimal": np.round(rng.normal(size=(500, 2)), 1),
        "rounded-5d": np.round(rng.normal(size=(200, 5))),
        "few-distinct-values-1d": rng.integers(0, 6, size=(150, 1)).astype(float),
        "duplicated-rows": duplicated,
        "lattice": lattice,
        "lattice-shuffled": lattice[rng.permutation(len(lattice))],
        "all-identical": np.ones((20, 3)),
        "two-points-identical": np.array([[1.0, 2.0], [1.0, 2.0]]),
        "old_faithful": faithful,
        "old_faithful-standardised": (faithful - faithful.mean(0)) / faithful.std(0),
        "old_faithful-stacked": np.concatenate([faithful, faithful]),
        "iris": np.asarray(load_dataset("iris").X, dtype=float),
    }


@pytest.mark.parametrize("name", list(_tied_cases()))
def test_tied_rows_match_scipy(name):
    """Exact ties: scipy's chain settles them by cluster order and a stable sort of the
    heights; the same rules here give the same matrix, not just the same partitions."""
    Y = _tied_cases()[name]
    _check(Y)


def test_heights_are_ward_merge_costs():
    """Height of a merge = sqrt(2 n_a n_b / (n_a + n_b)) * distance between the centroids."""
    Y = np.random.default_rng(3).normal(size=(40, 3))
    n = len(Y)
    tree = ward_linkage(Y)
    members = {i: [i] for i in range(n)}
    for row, (a, b, height, size) in enumerate(tree):
        first, second = members.pop(int(a)), members.pop(int(b))
        n_a, n_b = len(first), len(second)
        gap = np.linalg.norm(Y[first].mean(axis=0) - Y[second].mean(axis=0))
        assert height == pytest.approx(np.sqrt(2.0 * n_a * n_b / (n_a + n_b)) * gap, rel=1e-12)
        assert size == n_a + n_b
        members[n + row] = first + second
    assert np.all(np.diff(tree[:, 2]) >= 0)
    assert np.all(tree[:, 0] < tree[:, 1])


def test_input_conversion_matches_scipy():
    rng = np.random.default_rng(11)
    Y = rng.normal(size=(50, 4))
    reference = linkage(Y, method="ward")
    _same_tree(ward_linkage(np.asfortranarray(Y)), reference)
    _same_tree(ward_linkage(Y[:, ::-1][:, ::-1]), reference)
    single = Y.astype(np.float32)
    _same_tree(ward_linkage(single), linkage(single, method="ward"))
    integers = rng.integers(-5, 5, size=(60, 3))
    _same_tree(ward_linkage(integers), linkage(integers, method="ward"))


@pytest.mark.parametrize(
    "Y",
    [
        np.zeros(5),
        np.zeros((1, 3)),
        np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 1.0]]),
        np.array([[0.0, 1.0], [np.inf, 2.0], [1.0, 1.0]]),
        np.array([[0.0], [1e200], [1.0]]),
    ],
)
def test_invalid_input_raises(Y):
    with pytest.raises(ValueError):
        ward_linkage(Y)


@pytest.mark.parametrize("name", ["gaussian", "rounded", "old_faithful", "iris", "repeated"])
def test_maxclust_labels_are_fclusters(name):
    """Same labels as ``fcluster(..., "maxclust") - 1``, numbering included, for every K
    (ties in the heights can leave fewer clusters than asked, as in fcluster)."""
    rng = np.random.default_rng(5)
    Y = {
        "gaussian": rng.normal(size=(300, 3)),
        "rounded": np.round(rng.normal(size=(200, 2)), 1),
        "old_faithful": np.asarray(load_dataset("old_faithful").X, dtype=float),
        "iris": np.asarray(load_dataset("iris").X, dtype=float),
        "repeated": np.repeat(rng.normal(size=(10, 2)), 5, axis=0),
    }[name]
    tree = ward_linkage(Y)
    for k in range(1, 16):
        expected = fcluster(tree, t=k, criterion="maxclust") - 1
        np.testing.assert_array_equal(maxclust_labels(tree, k), expected)
    for k in (len(Y), len(Y) + 3):  # at least as many clusters as rows: scipy's answer
        expected = fcluster(tree, t=k, criterion="maxclust") - 1
        np.testing.assert_array_equal(maxclust_labels(tree, k), expected)
