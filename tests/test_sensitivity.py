"""Sensitivity tables (em_lib.study.sensitivity) on a hand-made result set whose answers are
known by construction, and the delta adjustment (em_lib.study.delta) on data built so that the
tipping points are known."""

import math
import warnings

import numpy as np
import pytest
from helpers_study import (
    FAILED_FIT,
    KS,
    N_INIT,
    REPLICATES,
    SELECTED,
    TRUE_K,
    tiny_study,
    toy_results,
)

from em_lib.numerics.fitting import MixtureSettings, fit_mixture
from em_lib.numerics.gaussian import impute_mixture
from em_lib.study import delta, design, sensitivity

METHODS = ("em", "mean_impute")


@pytest.fixture(scope="module")
def toy():
    return toy_results()


@pytest.fixture(scope="module")
def starts(toy):
    return sensitivity.starts_table(toy)


@pytest.fixture(scope="module")
def fits(toy):
    return sensitivity.fits_table(toy)


# ------------------------------------------------------------------------------ the frames


def test_starts_and_fits_tables(starts, fits):
    assert len(starts) == len(KS) * len(REPLICATES) * len(METHODS) * N_INIT
    assert len(fits) == len(KS) * len(REPLICATES) * len(METHODS)
    assert "init" in starts.columns and "init" not in fits.columns
    # the fit_ prefix is dropped
    assert {"log_likelihood", "bic", "aic", "icl", "failed", "means_rmse"} <= set(fits.columns)
    assert not any(c.startswith("fit_") for c in fits.columns)
    failed = fits[fits["failed"]]
    assert failed[["n_components", "replicate"]].drop_duplicates().to_dict("records") == [
        FAILED_FIT
    ]


def test_cells_outside_design_and_models():
    ds = toy_results(with_hmm=True)
    ds["in_design"].loc[{"method": "mean_impute"}] = False
    starts = sensitivity.starts_table(ds, models=["hmm"])
    assert set(starts["model"]) == {"hmm"}
    assert set(starts["method"]) == {"em"}
    fits = sensitivity.fits_table(ds, models=["full"])
    assert set(fits["model"]) == {"full"} and set(fits["method"]) == {"em"}


def test_true_components_and_labels(toy):
    assert sensitivity.true_components(toy) == {"toy": TRUE_K}
    unknown = toy.assign(true_n_components=("dataset", np.array([-1])))
    assert sensitivity.true_components(unknown) == {}
    assert sensitivity.variable_labels(toy)["means_rmse"]["units"] == "data unit"
    assert sensitivity.variable_labels(toy)["fit_bic"]["long_name"] == "BIC of the fitted model"


def test_true_components_of_a_real_aggregate():
    _, ds, _, _, _ = tiny_study()
    assert sensitivity.true_components(ds) == {"blobs": 2}  # airquality: unknown


# -------------------------------------------------------------------------- initialisation


def test_starts_needed_formula():
    # ceil(log(0.05) / log(0.5)) = ceil(4.32) and ceil(log(0.01) / log(0.5)) = ceil(6.64)
    assert sensitivity.starts_needed(0.5, 0.95) == 5
    assert sensitivity.starts_needed(0.5, 0.99) == 7
    assert sensitivity.starts_needed(0.1, 0.99) == 44  # 43.7
    assert sensitivity.starts_needed(1.0, 0.99) == 1
    assert math.isnan(sensitivity.starts_needed(0.0, 0.99))
    # exact ratio: share 0.9, p 0.99 -> log(0.01)/log(0.1) = 2 exactly
    assert sensitivity.starts_needed(0.9, 0.99) == 2
    assert sensitivity.starts_needed_label(0.0, 0.99) == "never"
    assert sensitivity.starts_needed_label(0.5, 0.95) == "5"


def test_initialisation_counts_optima_and_starts(starts):
    table = sensitivity.initialisation_table(starts, tol=1.0)
    assert len(table) == len(KS) * len(REPLICATES) * len(METHODS)
    assert (table["n_starts"] == N_INIT).all()
    assert (table["n_failed"] == 1).all()
    assert (table["n_optima"] == 2).all()
    # five of ten starts (the failed one counts as a miss) reach the best optimum
    assert np.allclose(table["share_best"], 0.5)
    assert (table["starts_p95"] == 5).all() and (table["starts_p99"] == 7).all()
    assert np.allclose(table["ll_spread"], 10.0)
    # the failed start's spurious +50 is not the best
    assert np.allclose(table["ll_best"], -100.0 - table["n_components"])


def test_initialisation_table_of_no_starts_keeps_its_columns(starts, fits):
    none = starts.iloc[:0]
    assert not sensitivity.failures_table(none).columns.empty  # as the other tables do
    assert not sensitivity.criteria_table(fits.iloc[:0], none).columns.empty
    table = sensitivity.initialisation_table(none)
    assert table.empty
    assert {
        "dataset",
        "model",
        "n_components",
        "method",
        "n_starts",
        "share_best",
        "starts_p95",
    } <= set(table.columns)


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
    assert sensitivity.cluster_optima([np.nan, 1.0], 1.0).tolist() == [-1, 0]


def test_failures_table(starts):
    table = sensitivity.failures_table(starts)
    assert len(table) == len(KS) * len(REPLICATES) * len(METHODS)
    assert (table["n_failed"] == 1).all() and (table["n_not_converged"] == 0).all()
    assert set(table["reasons"]) == {"collapse"}
    clean = sensitivity.failures_table(starts[~starts["failed"]])
    assert clean.empty and "reasons" in clean.columns


# ----------------------------------------------------------------------- number of components


def test_selection_uses_fitted_models_and_skips_failed_ones(fits):
    table = sensitivity.selection_table(fits)
    bic = table[(table["criterion"] == "bic") & (table["method"] == "em")]
    counts = dict(zip(bic["n_components"], bic["n_selected"], strict=True))
    # the failed fit (K = 3, replicate 1, BIC -1e6) would otherwise be selected there
    assert counts == {k: list(SELECTED.values()).count(k) for k in KS} == {1: 0, 2: 3, 3: 1}
    assert (bic["n_replicates"] == len(REPLICATES)).all()
    assert np.isclose(bic.loc[bic["n_components"] == 2, "share"].item(), 0.75)
    assert set(table["criterion"]) == {"bic", "aic", "icl"}


def test_criteria_summarise_fitted_models_and_starts(fits, starts):
    table = sensitivity.criteria_table(fits, starts)
    bic = table[(table["criterion"] == "bic") & (table["method"] == "em")].set_index("n_components")
    # fitted BIC 200 + 10 |K - selected|: K = 2 is 200 in three replicates and 210 in one
    assert np.isclose(bic.loc[2, "mean"], (3 * 200 + 210) / 4)
    assert bic.loc[2, "min"] == 200 and bic.loc[2, "max"] == 210
    assert bic.loc[2, "n_replicates"] == 4
    # K = 3: 210 in replicates 0 and 2, 200 in replicate 3; replicate 1 failed
    assert bic.loc[3, "n_replicates"] == 3
    assert np.isclose(bic.loc[3, "mean"], (210 + 210 + 200) / 3)
    # random starts of K = 2, over replicates: 15 at 200, 5 at 210, 16 at 500 (failed out)
    pooled = np.repeat([200.0, 210.0, 500.0], [15, 5, 16])
    assert bic.loc[2, "start_q10"] == np.quantile(pooled, 0.1) == 200.0
    assert bic.loc[2, "start_median"] == np.quantile(pooled, 0.5) == 210.0
    assert bic.loc[2, "start_q90"] == np.quantile(pooled, 0.9) == 500.0
    without_starts = sensitivity.criteria_table(fits)
    assert without_starts["start_median"].isna().all()


def test_missingness_at_true_k(fits):
    table = sensitivity.missingness_table(fits, {"toy": TRUE_K})
    em = table[table["method"] == "em"].set_index("metric")
    assert np.isclose(em.loc["means_rmse", "mean"], 0.1 * TRUE_K)
    assert em.loc["means_rmse", "n"] == len(REPLICATES)
    assert np.isclose(em.loc["selected_k", "mean"], np.mean(list(SELECTED.values())))
    assert np.isclose(em["share_true_k"].iloc[0], 0.75)


def test_missingness_at_selected_k_without_truth(fits):
    table = sensitivity.missingness_table(fits, {})
    em = table[table["method"] == "em"].set_index("metric")
    # means_rmse is 0.1 K at the selected K of each replicate
    assert np.isclose(em.loc["means_rmse", "mean"], np.mean([0.1 * k for k in SELECTED.values()]))
    assert em["share_true_k"].isna().all()


def test_tables_of_nothing_fitted_are_empty(fits):
    none_ok = fits.assign(failed=True)
    assert sensitivity.criteria_table(none_ok).empty
    assert sensitivity.selection_table(none_ok).empty
    assert sensitivity.missingness_table(none_ok, {"toy": 2}).empty


# -------------------------------------------------------------------------- delta adjustment


def test_tipping_point_on_a_constructed_sequence():
    deltas = [-2, -1, 0, 1, 2]
    assert delta.tipping_point(deltas, [2, 3, 3, 3, 4]) == {"negative": -2.0, "positive": 2.0}
    assert delta.tipping_point(deltas, [3, 3, 3, 4, 4])["positive"] == 1.0
    never = delta.tipping_point(deltas, [True] * 5)
    assert math.isnan(never["negative"]) and math.isnan(never["positive"])
    with pytest.raises(ValueError, match="must contain 0"):
        delta.tipping_point([1, 2], [1, 1])


SETTINGS = MixtureSettings.from_config(
    {"n_init": 3, "tol": 1e-3, "max_iter": 100, "reg_covar": 1e-6, "nested_starts": False}
)


def mar_reference(X, n_components=2):
    """The MAR fit as delta.reference_model returns it: (K, weights, means, full covs)."""
    fit = fit_mixture(X, n_components, "full", SETTINGS, 0)
    return n_components, fit.weights, fit.means, fit.covariances


def two_clusters_with_missing(seed=0):
    """Clusters at (0, 0) and (8, 8), sd 0.5, 200 rows each; x1 missing for half of the first.
    The observed x1 have sd ~3.8 (a third near 0, two thirds near 8), so a shift of delta SD
    moves the imputations by ~3.8 delta: 0.19 (0.4 cluster sd: still one cluster) at
    |delta| = 0.05, 11 (22 cluster sd from both clusters: a third one) at |delta| = 3."""
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(0.0, 0.5, size=(200, 2)), rng.normal(8.0, 0.5, size=(200, 2))])
    X[:100, 1] = np.nan
    return X


def test_delta_adjustment_tips_selected_k_on_both_sides():
    X = two_clusters_with_missing()
    table, tipping = delta.delta_adjustment(
        X,
        mar_reference(X),
        variables=[1],
        deltas=[-3.0, -0.05, 0.0, 0.05, 3.0],
        n_components=[2, 3],
        covariance_type="full",
        settings=SETTINGS,
        n_draws=2,
        random_state=0,
    )
    per_delta = table.drop_duplicates("delta").set_index("delta")["selected_k"]
    assert per_delta.to_dict() == {-3.0: 3, -0.05: 2, 0.0: 2, 0.05: 2, 3.0: 3}
    points = tipping.set_index("side")["tipping_delta"]
    assert points["positive"] == 3.0 and points["negative"] == -3.0
    assert set(tipping["conclusion_at_0"]) == {"BIC selects K = 2"}
    assert tipping["n_missing"].iloc[0] == 100 and tipping["reference_k"].iloc[0] == 2
    # weights of the reference K sum to one at every delta; one row per component
    assert np.allclose(table.groupby("delta")["weight"].sum(), 1.0)
    assert (table.groupby("delta").size() == 2).all()


def thin_line_and_blob(seed=0, n=150):
    """A: n rows on a thin line along x0 (centre (0, 0), sd 3 along x0, 0.3 across); B: 2n
    rows around (4, 4), sd 0.5; x1 missing for half of B (x0 = 4 tells B apart, so the MAR
    imputations of x1 are ~4). Under MAR B holds 2n / 3n = 2/3 of the rows. Shifting the
    imputations down to x1 ~ 0 puts the n rows on A's line: A then holds 2/3, B 1/3."""
    rng = np.random.default_rng(seed)
    line = np.column_stack([rng.normal(0.0, 3.0, n), rng.normal(0.0, 0.3, n)])
    X = np.vstack([line, rng.normal([4.0, 4.0], 0.5, size=(2 * n, 2))])
    X[n : 2 * n, 1] = np.nan
    return X


def test_delta_adjustment_weight_conclusion_tips_on_one_side():
    X = thin_line_and_blob()
    reference = mar_reference(X)
    blob = int(np.argmax(reference[2][:, 1]))  # the component of B (mean x1 ~ 4)
    missing = np.isnan(X[:, 1])
    imputed = impute_mixture(X, *reference[1:], "full")[missing, 1]
    # the shift (in SDs of the observed x1) that brings the imputations to x1 = 0
    onto_line = -imputed.mean() / np.nanstd(X[:, 1])
    assert onto_line < 0
    deltas = [onto_line, onto_line / 8, 0.0, -onto_line / 8, -onto_line]
    table, tipping = delta.delta_adjustment(
        X,
        reference,
        variables=[1],
        deltas=deltas,
        n_components=[2],
        covariance_type="full",
        settings=SETTINGS,
        n_draws=0,
        conclusion="weight_above",
        component=blob,
        threshold=0.5,
        random_state=0,
    )
    weight = table[table["component"] == blob].set_index("delta")["weight"]
    assert weight[0.0] == pytest.approx(2 / 3, abs=0.01)
    assert weight[onto_line] == pytest.approx(1 / 3, abs=0.01)
    # shifting up only stretches B: its weight stays
    assert weight[-onto_line] == pytest.approx(2 / 3, abs=0.01)
    points = tipping.set_index("side")["tipping_delta"]
    assert points["negative"] == onto_line  # the largest negative shift that tips
    assert math.isnan(points["positive"])
    assert set(tipping["conclusion_at_0"]) == {f"weight of component {blob} > 0.5: True"}


def test_delta_adjustment_rejects_bad_arguments():
    X = two_clusters_with_missing()
    reference = (
        2,
        np.array([0.5, 0.5]),
        np.array([[0.0, 0.0], [8.0, 8.0]]),
        np.stack([0.25 * np.eye(2)] * 2),
    )
    common = {
        "variables": [1],
        "deltas": [0.0, 1.0],
        "n_components": [2],
        "covariance_type": "full",
        "settings": SETTINGS,
    }
    with pytest.raises(ValueError, match="conclusion must be"):
        delta.delta_adjustment(X, reference, conclusion="other", **common)
    with pytest.raises(ValueError, match="component 2 does not exist at the reference K = 2"):
        delta.delta_adjustment(X, reference, conclusion="weight_above", component=2, **common)
    with pytest.raises(ValueError, match="must contain 0"):
        delta.delta_adjustment(X, reference, **{**common, "deltas": [1.0, 2.0]})


def test_reference_model_is_the_stored_fit_with_the_lowest_bic():
    config, ds, _, _, _ = tiny_study()
    target = design.delta_target(config)
    assert (target["dataset"], target["mechanism"], target["model"]) == ("blobs", "MCAR", "full")
    k, weights, means, covariances = delta.reference_model(ds, target)
    cells = ds.sel(
        {
            "dataset": "blobs",
            "model": "full",
            "mechanism": "MCAR",
            "missing_rate": target["missing_rate"],
            "replicate": target["replicate"],
            "method": "em",
        }
    )
    bic = cells["fit_bic"].sel(n_components=target["n_components"])
    assert k == int(bic.idxmin("n_components"))
    chosen = cells.sel(
        n_components=k, feature=["x0", "x1"], feature_i=["x0", "x1"], feature_j=["x0", "x1"]
    )
    np.testing.assert_array_equal(weights, chosen["weights"].values[:k])
    np.testing.assert_array_equal(means, chosen["means"].values[:k])
    np.testing.assert_array_equal(covariances, chosen["covariances"].values[:k])
    # air was fitted with diag only: no full reference there
    assert delta.reference_model(ds, {**target, "dataset": "air"}) is None


@pytest.mark.filterwarnings("ignore:Setting an item of incompatible dtype")  # see below
def test_empty_tables_carry_the_reason():
    table, tipping = delta.empty_tables("no missing value")
    assert table.empty and list(table.columns) == [*delta.TABLE_COLUMNS, "note"]
    assert tipping.to_dict("records") == [{"side": "not run", "note": "no missing value"}]


def test_empty_tables_use_no_deprecated_pandas_upcast():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        delta.empty_tables("no missing value")
