"""Tests for em_lib.metrics (scikit-learn is used here only as a reference implementation)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score

from em_lib.metrics import (
    adjusted_rand_index,
    classification_accuracy_after_matching,
    contingency_table,
    imputation_rmse,
    imputation_rmse_per_feature,
    match_components,
    match_labels,
    parameter_errors,
)

# Labellings drawn from a small alphabet of arbitrary (negative, large, non-contiguous) integers,
# so that degenerate cases (single cluster, all singletons, n <= 1) come up often.
_ALPHABET = st.sampled_from([-7, 0, 3, 10, 1_000_003])


@st.composite
def label_pairs(draw, max_size=40):
    n = draw(st.integers(min_value=0, max_value=max_size))
    true = draw(st.lists(_ALPHABET, min_size=n, max_size=n))
    pred = draw(st.lists(st.integers(min_value=-5, max_value=5), min_size=n, max_size=n))
    return np.array(true, dtype=np.int64), np.array(pred, dtype=np.int64)


# ------------------------------------------------------------------ contingency / ARI


def test_contingency_table_non_contiguous_labels():
    t = [5, 5, -2, 9, 9, 9]
    p = [1, 0, 0, 1, 1, 7]
    # rows: true labels -2, 5, 9; columns: predicted labels 0, 1, 7
    expected = np.array([[1, 0, 0], [1, 1, 0], [0, 2, 1]])
    np.testing.assert_array_equal(contingency_table(t, p), expected)
    assert contingency_table([], []).shape == (0, 0)


@settings(max_examples=300, deadline=None)
@given(label_pairs())
def test_ari_matches_sklearn(pair):
    t, p = pair
    assert math.isclose(adjusted_rand_index(t, p), adjusted_rand_score(t, p), abs_tol=1e-12)


@pytest.mark.parametrize(
    ("t", "p"),
    [
        ([], []),  # empty
        ([4], [9]),  # single sample
        ([1, 1, 1], [0, 0, 0]),  # both a single cluster
        ([0, 1, 2], [5, 6, 7]),  # both all singletons
        ([0, 0, 0, 0], [0, 1, 2, 3]),  # one cluster vs singletons
        ([3, 3, 3], [1, 1, 2]),  # one side a single cluster
        ([0, 0, 1, 1], [0, 1, 0, 1]),  # negative ARI
    ],
)
def test_ari_degenerate_cases_match_sklearn(t, p):
    assert math.isclose(adjusted_rand_index(t, p), adjusted_rand_score(t, p), abs_tol=1e-12)


def test_ari_single_cluster_both_is_one():
    assert adjusted_rand_index([2, 2, 2, 2], [8, 8, 8, 8]) == 1.0


@settings(max_examples=100, deadline=None)
@given(label_pairs(), st.randoms(use_true_random=False))
def test_ari_invariant_to_label_permutation(pair, rnd):
    t, p = pair
    uniq = np.unique(p)
    shuffled = list(uniq)
    rnd.shuffle(shuffled)
    relabel = dict(zip(uniq.tolist(), (np.array(shuffled) * 13 + 100).tolist(), strict=True))
    p2 = np.array([relabel[v] for v in p.tolist()], dtype=np.int64)
    assert math.isclose(adjusted_rand_index(t, p), adjusted_rand_index(t, p2), abs_tol=1e-12)
    assert math.isclose(adjusted_rand_index(t, p), adjusted_rand_index(p, t), abs_tol=1e-12)


@settings(max_examples=100, deadline=None)
@given(label_pairs())
def test_ari_identical_labelings_is_one(pair):
    t, _ = pair
    assert adjusted_rand_index(t, t) == 1.0


def test_ari_large_n_no_overflow():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 3, size=200_000)
    p = np.where(rng.random(200_000) < 0.9, t, rng.integers(0, 3, size=200_000))
    assert math.isclose(adjusted_rand_index(t, p), adjusted_rand_score(t, p), rel_tol=1e-12)


# ------------------------------------------------------------------ label matching / accuracy


def test_match_labels_and_accuracy():
    t = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    p = np.array([7, 7, 5, 5, 5, 9, 9, 7])
    # overlaps: true 0 <- 7 (2), true 1 <- 5 (2), true 2 <- 9 (2): 6 of 8 correct
    assert match_labels(t, p) == {7: 0, 5: 1, 9: 2}
    assert classification_accuracy_after_matching(t, p) == pytest.approx(6 / 8)


def test_match_labels_extra_predicted_cluster_maps_to_fresh_label():
    t = [1, 1, 4, 4]
    p = [0, 0, 2, 3]
    mapping = match_labels(t, p)
    assert mapping[0] == 1
    assert {mapping[2], mapping[3]} == {4, 5}  # one matched to 4, the other gets fresh 5
    assert classification_accuracy_after_matching(t, p) == pytest.approx(3 / 4)


def test_accuracy_is_one_under_relabelling():
    rng = np.random.default_rng(1)
    t = rng.integers(0, 4, size=500)
    p = np.array([30, 10, 20, 40])[t]
    assert classification_accuracy_after_matching(t, p) == 1.0


# ------------------------------------------------------------------ component matching


@pytest.mark.parametrize("seed", range(5))
def test_match_components_recovers_random_permutation(seed):
    rng = np.random.default_rng(seed)
    k, d = 6, 3
    true_means = rng.normal(scale=5.0, size=(k, d))
    shuffle = rng.permutation(k)
    est_means = true_means[shuffle] + rng.normal(scale=1e-3, size=(k, d))
    perm = match_components(true_means, est_means)
    # est_means[j] is true_means[shuffle[j]], so est_means[argsort(shuffle)] == true_means
    np.testing.assert_array_equal(perm, np.argsort(shuffle))
    np.testing.assert_allclose(est_means[perm], true_means, atol=1e-2)


def test_match_components_more_estimated_than_true():
    true_means = np.array([[0.0, 0.0], [10.0, 0.0]])
    est_means = np.array([[50.0, 50.0], [10.1, 0.0], [-40.0, 0.0], [0.1, 0.0]])
    est_weights = np.array([0.1, 0.4, 0.3, 0.2])
    perm, ti, ei = match_components(
        true_means, est_means, est_weights=est_weights, return_pairs=True
    )
    np.testing.assert_array_equal(ti, [0, 1])
    np.testing.assert_array_equal(ei, [3, 1])
    # unmatched components follow, heaviest first
    np.testing.assert_array_equal(perm, [3, 1, 2, 0])


def test_match_components_fewer_estimated_than_true():
    true_means = np.array([[0.0], [5.0], [10.0]])
    est_means = np.array([[10.2], [0.1]])
    perm, ti, ei = match_components(true_means, est_means, return_pairs=True)
    np.testing.assert_array_equal(ti, [0, 2])
    np.testing.assert_array_equal(perm, [1, 0])
    np.testing.assert_array_equal(ei, perm)


# ------------------------------------------------------------------ parameter errors


def _random_params(rng, k=4, d=3):
    w = rng.dirichlet(np.ones(k))
    mu = rng.normal(scale=5.0, size=(k, d))
    a = rng.normal(size=(k, d, d))
    cov = a @ np.swapaxes(a, 1, 2) + np.eye(d)
    return w, mu, cov


def test_parameter_errors_zero_for_permuted_identical():
    rng = np.random.default_rng(3)
    w, mu, cov = _random_params(rng)
    s = rng.permutation(4)
    err = parameter_errors(w, mu, cov, w[s], mu[s], cov[s])
    assert err["weights_abs_error"] == 0.0
    assert err["means_rmse"] == 0.0
    assert err["covariances_rel_frobenius"] == 0.0
    assert err["n_matched"] == 4
    np.testing.assert_array_equal(err["permutation"], np.argsort(s))


def test_parameter_errors_positive_for_perturbed():
    rng = np.random.default_rng(4)
    w, mu, cov = _random_params(rng)
    w_e = (w + 0.01) / (w + 0.01).sum()
    err = parameter_errors(w, mu, cov, w_e, mu + 0.1, cov * 1.1)
    assert err["weights_abs_error"] > 0
    assert err["means_rmse"] == pytest.approx(0.1)
    assert err["covariances_rel_frobenius"] == pytest.approx(0.1)


def test_parameter_errors_hand_computed_two_components():
    true_w = [0.3, 0.7]
    true_mu = [[0.0, 0.0], [10.0, 0.0]]
    true_cov = [np.eye(2), 2.0 * np.eye(2)]
    # Estimates listed in swapped order: est 0 <-> true 1, est 1 <-> true 0, so perm = [1, 0].
    est_w = [0.6, 0.4]
    est_mu = [[10.0, 1.0], [0.0, 0.0]]
    est_cov = [np.diag([2.0, 4.0]), np.eye(2)]
    # weights: |0.4 - 0.3| = 0.1, |0.6 - 0.7| = 0.1             -> mean 0.1
    # means: entry errors (0, 0) for comp 0, (0, 1) for comp 1   -> sqrt(1 / 4) = 0.5
    # covs: comp 0: ||I - I||_F / ||I||_F = 0;
    #       comp 1: ||diag(0, 2)||_F / ||2 I||_F = 2 / sqrt(8) = 1 / sqrt(2)
    #       -> mean (0 + 1/sqrt(2)) / 2 = sqrt(2) / 4 ~= 0.353553
    err = parameter_errors(true_w, true_mu, true_cov, est_w, est_mu, est_cov)
    np.testing.assert_array_equal(err["permutation"], [1, 0])
    assert err["weights_abs_error"] == pytest.approx(0.1)
    assert err["means_rmse"] == pytest.approx(0.5)
    assert err["covariances_rel_frobenius"] == pytest.approx(math.sqrt(2) / 4)
    assert err["n_matched"] == 2


def test_parameter_errors_different_k_uses_matched_pairs():
    rng = np.random.default_rng(5)
    w, mu, cov = _random_params(rng, k=4)
    # drop true component 2: the three estimates are exact, so errors over matches are zero
    keep = [3, 0, 1]
    err = parameter_errors(w, mu, cov, w[keep], mu[keep], cov[keep])
    assert err["n_matched"] == 3
    np.testing.assert_array_equal(err["true_index"], [0, 1, 3])
    assert err["means_rmse"] == 0.0
    assert err["covariances_rel_frobenius"] == 0.0


# ------------------------------------------------------------------ imputation


def test_imputation_rmse_hand_checked():
    X_true = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    X_imp = np.array([[1.0, 2.5], [0.0, 4.0], [5.0, 99.0]])
    mask = np.array([[False, True], [True, False], [False, False]])
    # masked errors: 0.5 (row 0, col 1) and -3 (row 1, col 0); the 99 is not masked
    # RMSE = sqrt((0.25 + 9) / 2) = sqrt(4.625)
    assert imputation_rmse(X_true, X_imp, mask) == pytest.approx(math.sqrt(4.625))
    # per feature: col 0 -> |-3| = 3, col 1 -> 0.5
    np.testing.assert_allclose(imputation_rmse_per_feature(X_true, X_imp, mask), [3.0, 0.5])


def test_imputation_rmse_empty_mask_is_nan():
    X = np.ones((3, 2))
    mask = np.zeros((3, 2), dtype=bool)
    assert math.isnan(imputation_rmse(X, X, mask))
    assert np.all(np.isnan(imputation_rmse_per_feature(X, X, mask)))
    mask[0, 1] = True
    out = imputation_rmse_per_feature(X, X + 1.0, mask)
    assert math.isnan(out[0]) and out[1] == 1.0


def test_imputation_ignores_nan_outside_mask():
    X_true = np.array([[1.0, 2.0]])
    X_imp = np.array([[np.nan, 4.0]])
    assert imputation_rmse(X_true, X_imp, [[False, True]]) == 2.0


# ------------------------------------------------------------------ bad inputs


def test_bad_label_inputs():
    with pytest.raises(ValueError, match="same length"):
        adjusted_rand_index([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="labels_true must be 1-D"):
        contingency_table([[0, 1]], [0, 1])
    with pytest.raises(ValueError, match="labels_pred must contain integer labels"):
        match_labels([0, 1], [0.5, 1.0])
    with pytest.raises(ValueError, match="empty"):
        classification_accuracy_after_matching([], [])


def test_bad_component_inputs():
    mu = np.zeros((2, 3))
    with pytest.raises(ValueError, match="true_means must be 2-D"):
        match_components(np.zeros(3), mu)
    with pytest.raises(ValueError, match="same dimension d"):
        match_components(mu, np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"est_weights must have shape \(2,\)"):
        match_components(mu, mu, est_weights=[1.0])
    cov = np.broadcast_to(np.eye(3), (2, 3, 3))
    w = [0.5, 0.5]
    with pytest.raises(ValueError, match="true_covariances must have shape"):
        parameter_errors(w, mu, np.eye(3)[None], w, mu, cov)
    with pytest.raises(ValueError, match="est_covariances must be 3-D"):
        parameter_errors(w, mu, cov, w, mu, np.eye(3))
    with pytest.raises(ValueError, match="zero matrix"):
        parameter_errors(w, mu, np.zeros((2, 3, 3)), w, mu, cov)


def test_bad_imputation_inputs():
    X = np.zeros((2, 2))
    with pytest.raises(ValueError, match="X_true must be 2-D"):
        imputation_rmse(np.zeros(4), np.zeros(4), np.zeros(4, dtype=bool))
    with pytest.raises(ValueError, match="X_imputed must have the same shape"):
        imputation_rmse(X, np.zeros((3, 2)), np.zeros((2, 2), dtype=bool))
    with pytest.raises(ValueError, match="mask must have the same shape"):
        imputation_rmse_per_feature(X, X, np.zeros((2, 3), dtype=bool))
    with pytest.raises(ValueError, match="mask must be boolean"):
        imputation_rmse(X, X, np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="X_imputed must be finite"):
        imputation_rmse(X, np.full((2, 2), np.nan), np.ones((2, 2), dtype=bool))
