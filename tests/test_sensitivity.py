"""Sensitivity tables on hand-made result sets whose answers are known by construction."""

import json
import math

import numpy as np
import pytest
import xarray as xr

from em_lib import sensitivity

N_INIT = 10
KS = (1, 2, 3)
REPLICATES = (0, 1, 2, 3)
# K selected by BIC in each replicate: K=2 three times, K=3 once
SELECTED = {0: 2, 1: 2, 2: 2, 3: 3}


def toy_results(with_hmm: bool = False) -> xr.Dataset:
    """A results set with one data set ("toy", truth K = 2), models full (and hmm), K 1..3,
    one mechanism and rate, four replicates, methods em and mean_impute, ten starts.

    In every cell, starts 0-4 reach the best optimum (log-likelihood -100 - K, start 4 only
    0.5 nat below it), starts 5-8 a worse one (-110 - K) and start 9 failed with a spuriously
    high log-likelihood. The BIC of the best start is lowest at K = SELECTED[replicate].
    """
    models = ["full", "hmm"] if with_hmm else ["full"]
    coords = {
        "dataset": ["toy"],
        "model": models,
        "n_components": list(KS),
        "mechanism": ["MCAR"],
        "missing_rate": [0.2],
        "replicate": list(REPLICATES),
        "method": ["em", "mean_impute"],
        "init": list(range(N_INIT)),
    }
    shape = tuple(len(v) for v in coords.values())
    dims = tuple(coords)
    k_axis = np.array(KS, dtype=float)[None, None, :, None, None, None, None, None]
    log_likelihood = np.empty(shape)
    log_likelihood[..., :5] = -100.0
    log_likelihood[..., 4] = -100.5
    log_likelihood[..., 5:9] = -110.0
    log_likelihood[..., 9] = 50.0
    log_likelihood = log_likelihood - k_axis
    failed = np.zeros(shape, dtype=bool)
    failed[..., 9] = True
    bic = np.full(shape, 500.0)
    for replicate, chosen in SELECTED.items():
        for index, k in enumerate(KS):
            bic[:, :, index, :, :, replicate, :, :5] = 200.0 + 10.0 * abs(k - chosen)
    bic[..., 9] = -1e6  # a failed start must never be chosen
    n_iter = np.full(shape, 12, dtype=np.int64)
    means_rmse = np.full(shape, 0.1 * k_axis)
    means_rmse[..., 5:9] = 1.0
    per_method = tuple(len(coords[d]) for d in dims[:-1])
    in_design = np.ones(per_method, dtype=bool)
    config = {"datasets": {"toy": {"kind": "gaussian_mixture", "n_components": 2}}}

    def var(data, long_name, units="1"):
        return (dims, data, {"long_name": long_name, "units": units})

    return xr.Dataset(
        {
            "log_likelihood": var(log_likelihood, "log-likelihood", "nat"),
            "bic": var(bic, "BIC", "nat"),
            "aic": var(bic - 1.0, "AIC", "nat"),
            "icl": var(bic + 1.0, "ICL", "nat"),
            "n_iter": var(n_iter, "iterations"),
            "converged": var(~failed, "converged"),
            "failed": var(failed, "failed"),
            "failure_reason": var(np.where(failed, "collapse", "").astype(object), "reason"),
            "means_rmse": var(means_rmse, "mean error", "data unit"),
            "ari": var(np.full(shape, 0.9), "ARI"),
            "in_design": (dims[:-1], in_design, {"long_name": "fitted", "units": "1"}),
        },
        coords=coords,
        attrs={"config": json.dumps(config)},
    )


@pytest.fixture(scope="module")
def starts():
    return sensitivity.starts_table(toy_results())


def test_starts_needed_formula():
    # ceil(log(0.05) / log(0.5)) = ceil(4.32) and ceil(log(0.01) / log(0.5)) = ceil(6.64)
    assert sensitivity.starts_needed(0.5, 0.95) == 5
    assert sensitivity.starts_needed(0.5, 0.99) == 7
    assert sensitivity.starts_needed(0.1, 0.99) == 44  # 43.7
    assert sensitivity.starts_needed(1.0, 0.99) == 1
    assert math.isnan(sensitivity.starts_needed(0.0, 0.99))
    # exact ratio: share 0.9, p 0.99 -> log(0.01)/log(0.1) = 2 exactly
    assert sensitivity.starts_needed(0.9, 0.99) == 2


def test_initialisation_counts_optima_and_starts(starts):
    table = sensitivity.initialisation_table(starts, tol=1.0)
    assert len(table) == len(KS) * len(REPLICATES) * 2
    assert (table["n_starts"] == N_INIT).all()
    assert (table["n_failed"] == 1).all()
    assert (table["n_optima"] == 2).all()
    # five of ten starts (the failed one counts as a miss) reach the best optimum
    assert np.allclose(table["share_best"], 0.5)
    assert (table["starts_p95"] == 5).all() and (table["starts_p99"] == 7).all()
    assert np.allclose(table["ll_spread"], 10.0)
    # the failed start's spurious +50 is not the best
    expected = -100.0 - table["n_components"]
    assert np.allclose(table["ll_best"], expected)


def test_tighter_tolerance_splits_the_near_optimum(starts):
    table = sensitivity.initialisation_table(starts, tol=0.1)
    assert (table["n_optima"] == 3).all()
    assert np.allclose(table["share_best"], 0.4)


def test_optima_by_parameters():
    labels = sensitivity.cluster_optima([0.0, 0.0, -5.0], 1.0)
    assert labels.tolist() == [0, 0, 1]
    by_parameters = sensitivity.cluster_optima(
        [0.0, 0.0, -5.0], 1.0, signatures=[[0.1], [0.9], [0.1]], signature_tol=0.05
    )
    assert by_parameters.tolist() == [0, 1, 2]


def test_selection_frequency(starts):
    table = sensitivity.selection_table(starts)
    bic = table[(table["criterion"] == "bic") & (table["method"] == "em")]
    counts = dict(zip(bic["n_components"], bic["n_selected"], strict=True))
    assert counts == {1: 0, 2: 3, 3: 1}
    assert (bic["n_replicates"] == len(REPLICATES)).all()
    assert np.isclose(bic.loc[bic["n_components"] == 2, "share"].item(), 0.75)


def test_criteria_use_best_start_per_replicate(starts):
    table = sensitivity.criteria_table(starts)
    row = table[
        (table["criterion"] == "bic") & (table["n_components"] == 2) & (table["method"] == "em")
    ]
    # best-start BIC: 200 in replicates choosing K = 2, 210 in the one choosing K = 3
    assert np.isclose(row["mean"].item(), (3 * 200 + 210) / 4)
    assert row["min"].item() == 200 and row["max"].item() == 210
    assert row["n_replicates"].item() == 4


def test_missingness_at_true_k(starts):
    table = sensitivity.missingness_table(starts, {"toy": 2})
    em = table[table["method"] == "em"].set_index("metric")
    assert np.isclose(em.loc["means_rmse", "mean"], 0.2)  # 0.1 * K at K = 2
    assert np.isclose(em.loc["selected_k", "mean"], (3 * 2 + 3) / 4)
    assert np.isclose(em["share_true_k"].iloc[0], 0.75)


def test_cells_outside_design_and_models():
    ds = toy_results(with_hmm=True)
    ds["in_design"].loc[{"method": "mean_impute"}] = False
    starts = sensitivity.starts_table(ds, models=["hmm"])
    assert set(starts["model"]) == {"hmm"}
    assert set(starts["method"]) == {"em"}


def test_failures_table(starts):
    table = sensitivity.failures_table(starts)
    assert (table["n_failed"] == 1).all()
    assert set(table["reasons"]) == {"collapse"}


def test_true_components_and_labels():
    ds = toy_results()
    assert sensitivity.true_components(ds) == {"toy": 2}
    assert sensitivity.variable_labels(ds)["means_rmse"]["units"] == "data unit"


def test_tipping_point_on_a_constructed_sequence():
    deltas = [-2, -1, 0, 1, 2]
    assert sensitivity.tipping_point(deltas, [2, 3, 3, 3, 4]) == {"negative": -2.0, "positive": 2.0}
    assert sensitivity.tipping_point(deltas, [3, 3, 3, 4, 4])["positive"] == 1.0
    never = sensitivity.tipping_point(deltas, [True] * 5)
    assert math.isnan(never["negative"]) and math.isnan(never["positive"])
    with pytest.raises(ValueError, match="must contain 0"):
        sensitivity.tipping_point([1, 2], [1, 1])


def _two_clusters_with_missing(seed=0):
    """Clusters at (0, 0) and (8, 8), sd 0.5; x1 missing for half of the first cluster. Under
    MAR the missing x1 are imputed near 0; shifting them by a large delta moves them away
    from both clusters, so a third component appears."""
    rng = np.random.default_rng(seed)
    first = rng.normal(0.0, 0.5, size=(300, 2))
    second = rng.normal(8.0, 0.5, size=(300, 2))
    X = np.vstack([first, second])
    X[:150, 1] = np.nan
    return X


def test_delta_adjustment_tips_selected_k():
    X = _two_clusters_with_missing()
    table, tipping = sensitivity.delta_adjustment(
        X,
        variables=[1],
        deltas=[0.0, 0.5, 3.0],
        n_components=[2, 3],
        n_draws=2,
        random_state=0,
        fit_kwargs={"n_init": 2, "nested_starts": False},
    )
    per_delta = table.drop_duplicates("delta").set_index("delta")
    assert per_delta.loc[0.0, "selected_k"] == 2
    assert per_delta.loc[3.0, "selected_k"] == 3
    positive = tipping.set_index("side").loc["positive", "tipping_delta"]
    assert positive in (0.5, 3.0)
    assert tipping["n_missing"].iloc[0] == 150
    # weights of the reference K sum to one at every delta
    assert np.allclose(table.groupby("delta")["weight"].sum(), 1.0)


def test_delta_adjustment_weight_conclusion():
    X = _two_clusters_with_missing()
    table, tipping = sensitivity.delta_adjustment(
        X,
        variables=[1],
        deltas=[0.0, 3.0],
        n_components=[2],
        n_draws=0,
        conclusion="weight_above",
        component=0,
        threshold=0.99,
        random_state=0,
        fit_kwargs={"n_init": 2, "nested_starts": False},
    )
    # nothing crosses a weight of 0.99: the conclusion never changes
    assert tipping["tipping_delta"].isna().all()
    assert "weight of component 0 > 0.99: False" in tipping["conclusion_at_0"].iloc[0]
    with pytest.raises(ValueError, match="conclusion must be"):
        sensitivity.delta_adjustment(
            X, variables=[1], deltas=[0.0], n_components=[2], conclusion="other"
        )


def test_delta_target_defaults():
    config = {
        "datasets": {"seq": {"kind": "hmm_sequences"}, "blobs": {"kind": "gaussian_mixture"}},
        "sweep": {
            "dataset": None,
            "mechanism": ["none", "MAR"],
            "missing_rate": [0.0, 0.4],
            "replicate": [3],
            "n_components": [2, 3],
        },
        "sensitivity": {"delta": {"dataset": None, "mechanism": None, "missing_rate": None}},
    }
    target = sensitivity.delta_target(config)
    assert target["dataset"] == "blobs" and target["mechanism"] == "MAR"
    assert target["missing_rate"] == 0.4 and target["replicate"] == 3
    assert target["n_components"] == [2, 3]
