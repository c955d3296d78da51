"""Sensitivity tables (em_lib.study.sensitivity) on a hand-made result set whose answers are
known by construction (the delta adjustment is tested in tests/test_delta.py)."""

import math

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

from em_lib.study import sensitivity

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


def test_selection_passes_over_degenerate_fits(fits):
    """The rule of em_lib.select_mixture (selection.lowest_usable): within a cell, a fit
    flagged ``degenerate`` is not selected while a fit without one exists; a cell whose fits
    are all degenerate keeps its lowest criterion."""
    marked = fits.copy()
    marked["degenerate"] = False
    em = marked["method"] == "em"
    plain = sensitivity.selection_table(marked)
    plain = plain[(plain["criterion"] == "bic") & (plain["method"] == "em")]
    # flag every K = 2 fit: the replicates that selected 2 now select their next best K
    marked.loc[em & (marked["n_components"] == 2), "degenerate"] = True
    table = sensitivity.selection_table(marked)
    bic = table[(table["criterion"] == "bic") & (table["method"] == "em")]
    counts = dict(zip(bic["n_components"], bic["n_selected"], strict=True))
    assert counts[2] == 0 and plain.loc[plain["n_components"] == 2, "n_selected"].item() == 3
    assert sum(counts.values()) == len(REPLICATES)
    # every fit degenerate: the same choice as without flags
    marked.loc[em, "degenerate"] = True
    every = sensitivity.selection_table(marked)
    every = every[(every["criterion"] == "bic") & (every["method"] == "em")]
    assert every["n_selected"].tolist() == plain["n_selected"].tolist()
