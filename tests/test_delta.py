"""The delta-adjustment analysis (em_lib.study.delta): Rubin's rules against a hand
computation, tipping points on constructed curves and on data built so that the conclusion
flips, smooth monotone curves on simulated MNAR data with a known shift, and the workflow's
step on a real table with its own missing values."""

import math
import warnings

import numpy as np
import pytest
from helpers_study import tiny_study
from scipy import stats

from em_lib.numerics.fitting import MixtureSettings, fit_mixture
from em_lib.numerics.gaussian import impute_mixture
from em_lib.study import delta, design

SETTINGS = MixtureSettings.from_config(
    {"n_init": 3, "tol": 1e-3, "max_iter": 100, "reg_covar": 1e-6, "nested_starts": False}
)


def mar_reference(X, n_components=2):
    """The MAR fit as delta.reference_model returns it: (K, weights, means, full covs)."""
    fit = fit_mixture(X, n_components, "full", SETTINGS, 0)
    return n_components, fit.weights, fit.means, fit.covariances


# ------------------------------------------------------------------------------ Rubin's rules


def test_rubin_pool_matches_a_hand_computation():
    estimates = np.array([1.0, 2.0, 3.0, 4.0])
    variances = np.array([0.5, 0.5, 1.0, 1.0])
    pooled = delta.rubin_pool(estimates, variances, complete_df=10.0, level=0.9)
    # by hand: mean 2.5; W = 0.75; B = (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5 / 3;
    # T = 0.75 + (5 / 4)(5 / 3) = 0.75 + 25 / 12 = 17 / 6; lambda = (25 / 12) / (17 / 6) = 25 / 34
    total, fmi = 17 / 6, 25 / 34
    nu_old = 3 / fmi**2
    nu_obs = 11 / 13 * 10 * (1 - fmi)
    df = 1 / (1 / nu_old + 1 / nu_obs)
    half = stats.t.ppf(0.95, df) * math.sqrt(total)
    assert pooled["estimate"] == pytest.approx(2.5)
    assert pooled["within"] == pytest.approx(0.75)
    assert pooled["between"] == pytest.approx(5 / 3)
    assert pooled["total"] == pytest.approx(total)
    assert pooled["fmi"] == pytest.approx(fmi)
    assert pooled["df"] == pytest.approx(df)
    assert (pooled["lower"], pooled["upper"]) == pytest.approx((2.5 - half, 2.5 + half))
    # pooled elementwise over the trailing axes
    stacked = delta.rubin_pool(
        np.stack([estimates, 2 * estimates], axis=1), np.stack([variances] * 2, axis=1)
    )
    assert stacked["estimate"] == pytest.approx([2.5, 5.0])
    assert stacked["between"] == pytest.approx([5 / 3, 20 / 3])


def test_rubin_pool_without_between_variance_is_the_complete_data_interval():
    # one imputation (or m identical ones): B = 0, df = nu_obs of the complete data
    pooled = delta.rubin_pool(np.array([3.0]), np.array([4.0]), complete_df=20.0)
    df = 21 / 23 * 20
    assert pooled["between"] == 0 and pooled["total"] == pytest.approx(4.0)
    assert pooled["df"] == pytest.approx(df)
    assert pooled["upper"] == pytest.approx(3.0 + stats.t.ppf(0.975, df) * 2.0)
    large = delta.rubin_pool(np.array([3.0, 3.0]), np.array([4.0, 4.0]))
    assert large["upper"] == pytest.approx(3.0 + stats.norm.ppf(0.975) * 2.0)


# ------------------------------------------------------------------------------ tipping point


def test_tipping_point_interpolates_estimate_and_interval():
    deltas = [-2.0, -1.0, 0.0, 1.0, 2.0]
    estimate = np.array([0.2, 0.6, 0.8, 0.7, 0.65])
    lower, upper = estimate - 0.1, estimate + 0.1
    points = delta.tipping_point(deltas, (estimate, 0.5), (lower, 0.5), (upper, 0.5))
    # negative side: the estimate falls through 0.5 between -1 (0.6) and -2 (0.2): -1.25;
    # the lower edge (0.5 at -1) reaches it at -1, the upper edge (0.3 at -2) at -1.5
    assert points["negative"] == pytest.approx((-1.25, -1.5, -1.0))
    # positive side: never crosses, the lower edge reaches 0.5 only past the grid
    tip, low, high = points["positive"]
    assert math.isnan(tip) and math.isnan(low) and math.isnan(high)
    # a conclusion false at 0 tips when the curve rises above the threshold
    rising = delta.tipping_point(deltas, (-estimate, -0.7), (-estimate, -0.7), (-estimate, -0.7))
    assert rising["positive"][0] == pytest.approx(1.0)  # -0.7 is not above -0.7
    assert rising["negative"][0] == pytest.approx(-0.5)  # -0.8 at 0, -0.6 at -1
    with pytest.raises(ValueError, match="must contain 0"):
        delta.tipping_point([1.0, 2.0], ([1, 1], 0), ([1, 1], 0), ([1, 1], 0))


def thin_line_and_blob(seed=0, n=150):
    """A: n rows on a thin line along x0 (centre (0, 0), sd 2 along x0, 0.3 across); B: 2n
    rows around (4, 4), sd 0.2; x1 missing for half of B (x0 = 4 tells B apart, so the MAR
    imputations of x1 are ~4 with sd ~0.2). Under MAR B holds about 2/3 of the rows. Shifting
    the imputations down to x1 ~ 0 puts the n rows on A's line: A then holds 2/3, B 1/3."""
    rng = np.random.default_rng(seed)
    line = np.column_stack([rng.normal(0.0, 2.0, n), rng.normal(0.0, 0.3, n)])
    X = np.vstack([line, rng.normal([4.0, 4.0], 0.2, size=(2 * n, 2))])
    X[n : 2 * n, 1] = np.nan
    return X


def test_weight_conclusion_tips_on_one_side_with_an_interval():
    X = thin_line_and_blob()
    reference = mar_reference(X)
    blob = int(np.argmax(reference[2][:, 1]))  # the component of B (mean x1 ~ 4)
    missing = np.isnan(X[:, 1])
    imputed = impute_mixture(X, *reference[1:], "full")[missing, 1]
    # the shift (in SDs of the observed x1) that brings the imputations to x1 = 0
    onto_line = -imputed.mean() / np.nanstd(X[:, 1])
    deltas = onto_line * np.array([1.0, 0.75, 0.5, 0.25, 0.0, -0.5, -1.0])
    table, tipping = delta.delta_adjustment(
        X,
        reference,
        variables=[1],
        deltas=deltas,
        n_components=[2],
        covariance_type="full",
        settings=SETTINGS,
        n_draws=20,
        n_init=1,
        conclusion="weight_above",
        component=blob,
        threshold=0.5,
        random_state=0,
    )
    weight = table[table["component"] == blob].set_index("delta")
    # at delta = 0 the pooled weight is the MAR fit's (a little under 2/3: A's wide line
    # claims some of B's rows); shifting onto the line moves B's missing rows to A, shifting
    # up only stretches B
    mar_weight = reference[1][blob]
    assert weight.loc[0.0, "weight"] == pytest.approx(mar_weight, abs=0.01)
    assert weight.loc[onto_line, "weight"] == pytest.approx(1 / 3, abs=0.05)
    assert weight.loc[-onto_line, "weight"] == pytest.approx(mar_weight, abs=0.02)
    assert (weight["weight_lower"] < weight["weight"]).all()
    assert (weight["weight"] < weight["weight_upper"]).all()
    sides = tipping.set_index("side")
    tip, low, high = sides.loc["negative", ["tipping_delta", "tipping_lower", "tipping_upper"]]
    # the pooled weight falls from 2/3 to 1/3 between onto_line / 2 and onto_line: it crosses
    # 1/2 there, inside an interval of positive width (its outer end may lie off the grid)
    assert onto_line < tip < onto_line / 2
    assert tip < high < 0 and (np.isnan(low) or onto_line <= low < tip)
    below = weight.loc[weight["weight"] <= 0.5].index
    assert below.max() <= tip  # the grid points already tipped lie beyond the estimate
    assert sides.loc["positive", ["tipping_delta", "tipping_lower", "tipping_upper"]].isna().all()
    assert set(tipping["conclusion_at_0"]) == {f"the weight of component {blob} is above 0.5"}
    assert set(tipping["n_imputations"]) == {20}
    per_delta = table.drop_duplicates("delta").set_index("delta")
    assert per_delta["conclusion_value"].to_numpy() == pytest.approx(weight["weight"].to_numpy())
    assert per_delta.loc[onto_line, "conclusion"] == False  # noqa: E712 (numpy bool)


def two_clusters_with_missing(seed=0):
    """Clusters at (0, 0) and (8, 8), sd 0.5, 200 rows each; x1 missing for half of the first.
    The observed x1 have sd ~3.8 (a third near 0, two thirds near 8), so a shift of delta SD
    moves the imputations by ~3.8 delta: 0.19 (0.4 cluster sd: still one cluster) at
    |delta| = 0.05, 11 (22 cluster sd from both clusters: a third one) at |delta| = 3."""
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(0.0, 0.5, size=(200, 2)), rng.normal(8.0, 0.5, size=(200, 2))])
    X[:100, 1] = np.nan
    return X


def test_selected_k_tips_on_both_sides():
    X = two_clusters_with_missing()
    table, tipping = delta.delta_adjustment(
        X,
        mar_reference(X),
        variables=[1],
        deltas=[-3.0, -0.05, 0.0, 0.05, 3.0],
        n_components=[2, 3],
        covariance_type="full",
        settings=SETTINGS,
        n_draws=5,
        n_init=1,
        random_state=0,
    )
    per_delta = table.drop_duplicates("delta").set_index("delta")
    assert per_delta["selected_k"].to_dict() == {-3.0: 3, -0.05: 2, 0.0: 2, 0.05: 2, 3.0: 3}
    assert per_delta["conclusion_value"].to_dict() == {
        -3.0: 0.0,
        -0.05: 1.0,
        0.0: 1.0,
        0.05: 1.0,
        3.0: 0.0,
    }
    sides = tipping.set_index("side")
    columns = ["tipping_lower", "tipping_delta", "tipping_upper"]
    # every imputation tips between the grid points 0.05 and 3 (linear interpolation of the
    # share: half at the middle, 2.5% / 97.5% near the ends)
    assert sides.loc["positive", columns].tolist() == pytest.approx(
        [0.05 + 0.025 * 2.95, 1.525, 0.05 + 0.975 * 2.95]
    )
    assert sides.loc["negative", columns].tolist() == pytest.approx(
        [-0.05 - 0.975 * 2.95, -1.525, -0.05 - 0.025 * 2.95]
    )
    assert set(tipping["conclusion_at_0"]) == {"BIC selects K = 2 in 100% of the imputations"}
    assert tipping["n_missing"].iloc[0] == 100 and tipping["reference_k"].iloc[0] == 2
    # weights of the reference K sum to one at every delta; one row per component
    assert np.allclose(table.groupby("delta")["weight"].sum(), 1.0)
    assert (table.groupby("delta").size() == 2).all()


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
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\)"):
        delta.delta_adjustment(X, reference, level=1.0, **common)
    constant = X.copy()
    constant[100:, 1] = 3.0
    with pytest.raises(ValueError, match="column 1 has no spread"):
        delta.delta_adjustment(constant, reference, **common)


# ----------------------------------------------------------- simulated MNAR, known shift


def mnar_two_components(seed=0, n=150):
    """Two components at (0, 0, 0) and (6, 6, 6) with identity covariances, n rows each; x2 is
    missing with probability 1 / (1 + exp(-2 (x2 - centre))): within each component the
    larger values go missing more often (MNAR, about half of them). The MAR fit imputes the
    missing x2 too low and so underestimates both component means of x2 (truth 0 and 6)."""
    rng = np.random.default_rng(seed)
    centres = np.repeat([0.0, 6.0], n)
    X = centres[:, None] + rng.standard_normal((2 * n, 3))
    gone = rng.random(2 * n) < 1.0 / (1.0 + np.exp(-2.0 * (X[:, 2] - centres)))
    X[gone, 2] = np.nan
    return X


def test_curves_are_smooth_and_monotone_on_mnar_data_with_a_known_shift():
    X = mnar_two_components()
    reference = mar_reference(X)
    deltas = [-1.0, -0.5, 0.0, 0.25, 0.5, 1.0]
    table, tipping = delta.delta_adjustment(
        X,
        reference,
        variables=[2],
        deltas=deltas,
        n_components=[2],
        covariance_type="full",
        settings=SETTINGS,
        n_draws=20,
        n_init=1,
        conclusion="weight_above",
        component=0,
        threshold=0.5,
        random_state=1,
    )
    truth = {0: 0.0, 1: 6.0}
    low = int(np.argmin(reference[2][:, 0]))  # the reference component at (0, 0, 0)
    for component in range(2):
        line = table[table["component"] == component].sort_values("delta")
        curve = line["mean_2"].to_numpy()
        # aligned: every delta's component is the reference's (x0 is not shifted)
        expected = truth[0] if component == low else truth[1]
        assert np.abs(line["mean_0"] - expected).max() < 0.3
        # monotone and smooth: the slopes between grid points (second differences scaled by
        # the step) agree to 2% (the same imputations at every delta; fresh draws per delta
        # give ~10%)
        assert (np.diff(curve) > 0).all()
        slopes = np.diff(curve) / np.diff(deltas)
        assert np.ptp(slopes) < 0.02 * np.abs(slopes).mean()
        # the MAR estimate is too low; a positive shift reaches the truth, a negative never
        true_mean = truth[0] if component == low else truth[1]
        at = dict(zip(line["delta"], curve, strict=True))
        assert at[0.0] < true_mean - 0.2
        assert at[1.0] > true_mean and at[-1.0] < true_mean
        inside = line[(line["mean_2_lower"] <= true_mean) & (true_mean <= line["mean_2_upper"])]
        assert not inside.empty and (inside["delta"] > 0).all()
        assert (line["mean_2_lower"] < line["mean_2"]).all()
        assert (line["mean_2"] < line["mean_2_upper"]).all()
    # shifting x2 does not move the weights (the components are far apart in x0 and x1)
    weights = table.pivot(index="delta", columns="component", values="weight")
    assert np.ptp(weights.to_numpy(), axis=0).max() < 0.02
    assert tipping["tipping_delta"].isna().all()


def test_same_seed_same_tables_and_draws_shared_across_deltas():
    X = mnar_two_components(n=60)
    reference = mar_reference(X)
    options = {
        "variables": [2],
        "n_components": [2],
        "covariance_type": "full",
        "settings": SETTINGS,
        "n_draws": 4,
        "n_init": 1,
        "conclusion": "weight_above",
        "random_state": 7,
    }
    first, _ = delta.delta_adjustment(X, reference, deltas=[-0.5, 0.0, 0.5], **options)
    again, _ = delta.delta_adjustment(X, reference, deltas=[-0.5, 0.0, 0.5], **options)
    assert first.equals(again)
    other, _ = delta.delta_adjustment(
        X, reference, deltas=[-0.5, 0.0, 0.5], **{**options, "random_state": 8}
    )
    assert not first.equals(other)


def test_one_completion_gives_complete_data_intervals():
    # n_draws = 0: one completion by conditional expectations, n_draws = 1: one draw; either
    # way no between-imputation variance, so the weight interval is the complete-data one
    X = mnar_two_components(n=60)
    reference = mar_reference(X)
    for n_draws in (0, 1):
        table, tipping = delta.delta_adjustment(
            X,
            reference,
            variables=[2],
            deltas=[0.0, 0.5],
            n_components=[1, 2],
            covariance_type="full",
            settings=SETTINGS,
            n_draws=n_draws,
            n_init=1,
            random_state=3,
        )
        weight = table["weight"].to_numpy()
        n = len(X)
        df = n / (n + 2) * (n - 1)  # nu_obs of the complete data, nu_com = n - 1
        half = stats.t.ppf(0.975, df) * np.sqrt(weight * (1 - weight) / n)
        assert table["weight_upper"].to_numpy() == pytest.approx(weight + half)
        assert set(tipping["n_imputations"]) == {n_draws}
        assert set(table["conclusion_value"]) <= {0.0, 1.0}


# -------------------------------------------------------------- the workflow's step on data


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
    assert sorted(delta.mar_fits(ds, target)) == target["n_components"]
    # air was fitted with diag only: no full reference there
    assert delta.reference_model(ds, {**target, "dataset": "air"}) is None


def test_workflow_step_on_a_real_table_with_its_own_missing_values():
    config, ds, data, _, _ = tiny_study()
    X = data["air"]["X"].astype(float)  # airquality: Ozone and Solar.R have their own NaN
    target = {
        **design.delta_target(config),
        "dataset": "air",
        "mechanism": "none",
        "missing_rate": 0.0,
        "model": "diag",
    }
    settings = {
        **config["sensitivity"]["delta"],
        "deltas": [-1.0, 0.0, 1.0],
        "n_draws": 20,
        "n_init": 1,
    }
    table, tipping = delta.delta_analysis(X, ds, target, settings, config["fit"], 5)
    ref_k = delta.reference_model(ds, target)[0]
    assert len(table) == 3 * ref_k and "note" not in tipping
    assert tipping["variables"].iloc[0] == "0,1"  # the columns with missing values
    assert tipping["n_missing"].iloc[0] == int(np.isnan(X[:, :2]).sum())
    assert set(tipping["n_imputations"]) == {20}
    bounds = ["weight_lower", "weight_upper", "mean_0_lower", "mean_0_upper"]
    assert np.isfinite(table[["weight", "mean_0", *bounds]].to_numpy()).all()
    for _, line in table.groupby("component"):
        assert line.sort_values("delta")["mean_0"].is_monotonic_increasing
    again, _ = delta.delta_analysis(X, ds, target, settings, config["fit"], 5)
    assert table.equals(again)
    # nothing missing on the target: a note, not a crash
    complete = X[~np.isnan(X).any(axis=1)]
    _, note = delta.delta_analysis(complete, ds, target, settings, config["fit"], 5)
    assert note["note"].iloc[0] == "the data set has no missing value on this mask"


@pytest.mark.filterwarnings("ignore:Setting an item of incompatible dtype")  # see below
def test_empty_tables_carry_the_reason():
    table, tipping = delta.empty_tables("no missing value")
    assert table.empty and list(table.columns) == [*delta.TABLE_COLUMNS, "note"]
    assert tipping.to_dict("records") == [{"side": "not run", "note": "no missing value"}]


def test_empty_tables_use_no_deprecated_pandas_upcast():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        delta.empty_tables("no missing value")


def test_selected_k_passes_over_degenerate_refits(monkeypatch):
    """In each imputation the K chosen by BIC follows select_mixture's rule: a refit with a
    degenerate component (em_lib.selection.degenerate, here made to flag every K = 2 refit)
    is passed over while another K is not degenerate; when every K is flagged, the lowest
    BIC stands."""
    X = two_clusters_with_missing()
    arguments = {
        "variables": [1],
        "deltas": [0.0],
        "n_components": [2, 3],
        "covariance_type": "full",
        "settings": SETTINGS,
        "n_draws": 3,
        "n_init": 1,
        "random_state": 0,
    }
    table, _ = delta.delta_adjustment(X, mar_reference(X), **arguments)
    assert int(table["selected_k"].iloc[0]) == 2
    calls = []

    def flag_two(weights, covariances, covariance_type, covariance, n_rows):
        calls.append(len(weights))
        return len(weights) == 2

    monkeypatch.setattr(delta, "degenerate", flag_two)
    table, _ = delta.delta_adjustment(X, mar_reference(X), **arguments)
    assert int(table["selected_k"].iloc[0]) == 3 and sorted(set(calls)) == [2, 3]
    monkeypatch.setattr(delta, "degenerate", lambda *args: True)
    table, _ = delta.delta_adjustment(X, mar_reference(X), **arguments)
    assert int(table["selected_k"].iloc[0]) == 2
