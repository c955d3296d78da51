"""Unit tests of the study layer's glue, without Snakemake: seeds (em_lib.study.seeds), the
sweep design (design), config checks (config; the full bad-config matrix is in
test_config.py), data / masks / fit jobs (jobs, evaluation) and the labelled aggregate with its
netCDF round trip (results)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
from helpers_study import (
    BLOBS,
    TABLE_EMPTY,
    TABLE_ROWS,
    tiny_config,
    tiny_study,
    write_table,
)

from em_lib import GaussianMixture
from em_lib.data import available_datasets, load_dataset
from em_lib.numerics.gaussian import impute_mixture
from em_lib.numerics.init import start_kinds
from em_lib.study import config as study_config
from em_lib.study import design, evaluation, jobs, results
from em_lib.study.seeds import SEED_SCHEME, format_rate, seed_key, seed_sequence

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


@pytest.fixture(scope="module")
def study():
    return tiny_study()


def mcar_job(dataset):
    return design.MaskJob(dataset, "MCAR", 0.2, 0)


def record(records, job):
    """The arrays of ``job`` among ``(labels, arrays)`` records."""
    return next(arrays for labels, arrays in records if labels == job.labels)


# ------------------------------------------------------------------------------------ seeds


def test_seed_key_is_sha256_of_sorted_json_labels():
    text = json.dumps(
        ["mask", [["dataset", "blobs"], ["missing_rate", 0.1], ["replicate", 2]]],
        separators=(",", ":"),
    )
    digest = hashlib.sha256(text.encode()).digest()
    expected = tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))
    assert seed_key("mask", dataset="blobs", missing_rate=0.1, replicate=2) == expected
    assert seed_key("mask", replicate=2, missing_rate=0.1, dataset="blobs") == expected


def test_seed_key_separates_purposes_values_and_types():
    keys = {
        seed_key("mask", dataset="a", replicate=0),
        seed_key("init", dataset="a", replicate=0),
        seed_key("mask", dataset="a", replicate=1),
        seed_key("mask", dataset="b", replicate=0),
        seed_key("mask", dataset="a", replicate="0"),
    }
    assert len(keys) == 5
    assert seed_key("x", rate=np.float64(0.1), k=np.int64(3)) == seed_key("x", rate=0.1, k=3)
    with pytest.raises(TypeError, match="seed labels must be str, int or float"):
        seed_key("x", rate=[0.1])


def test_seed_key_does_not_depend_on_python_hash_seed():
    code = (
        "from em_lib.study.seeds import seed_key; "
        "print(seed_key('init', dataset='a', missing_rate=0.1, replicate=3))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "12345")
    }
    assert outputs == {str(seed_key("init", dataset="a", missing_rate=0.1, replicate=3))}


def test_seed_sequence_uses_root_seed_and_key():
    seq = seed_sequence(7, "data", dataset="a", seed=0)
    assert seq.entropy == 7
    assert seq.spawn_key == seed_key("data", dataset="a", seed=0)
    assert (
        seed_sequence(8, "data", dataset="a", seed=0).generate_state(2).tolist()
        != seq.generate_state(2).tolist()
    )


def test_format_rate_round_trips_through_wildcards():
    for rate in (0.1, 0.3, 0.05, 1e-05, 0.0):
        assert float(format_rate(rate)) == rate
    job = design.MaskJob("a", "MAR", 0.1, 2)
    assert job.wildcards == {
        "dataset": "a",
        "mechanism": "MAR",
        "missing_rate": "0.1",
        "replicate": "2",
    }
    assert design.MaskJob.from_wildcards(job.wildcards) == job


# ----------------------------------------------------------------------------------- design


def test_mask_jobs_pair_none_with_rate_zero_only():
    config = tiny_config(
        {
            "sweep": {
                "mechanism": ["none", "MCAR", "MAR"],
                "missing_rate": [0.0, 0.1, 0.3],
                "replicate": [0, 1],
            }
        }
    )
    pairs = design.mechanism_rate_pairs(config)
    assert pairs == [("none", 0.0), ("MCAR", 0.1), ("MCAR", 0.3), ("MAR", 0.1), ("MAR", 0.3)]
    mask_jobs = design.mask_jobs(config)
    assert mask_jobs == [
        design.MaskJob("blobs", mechanism, rate, replicate)
        for mechanism, rate in pairs
        for replicate in (0, 1)
    ]
    assert len(set(mask_jobs)) == len(mask_jobs) == 5 * 2


def test_coordinates_follow_the_config():
    config = tiny_config(
        {"fit": {"n_init": 4, "max_iter": 7}, "sweep": {"method": ["em", "mean_impute"]}}
    )
    coords = design.coordinates(config)
    assert coords["dataset"] == ["blobs"]
    assert coords["model"] == ["full", "diag"]
    assert coords["n_components"] == [1, 2]
    assert coords["mechanism"] == ["none", "MCAR"] and coords["missing_rate"] == [0.0, 0.2]
    assert coords["method"] == ["em", "mean_impute"]
    assert coords["init"] == [0, 1, 2, 3]
    assert coords["iteration"] == list(range(1, 8))


def test_hmm_model_only_for_sequence_data():
    seq = {"kind": "hmm_sequences", "n_sequences": 3, "sequence_length": 20}
    config = tiny_config(
        {"datasets": {"seq": seq}, "sweep": {"model": ["diag"]}, "hmm": {"enabled": True}}
    )
    assert design.model_coordinate(config) == ["diag", "hmm"]
    assert design.dataset_models(config, "blobs") == ["diag"]
    assert design.dataset_models(config, "seq") == ["diag", "hmm"]
    config["datasets"]["seq"]["models"] = ["hmm"]
    assert design.dataset_models(config, "seq") == ["hmm"]
    config["hmm"]["enabled"] = False
    assert design.dataset_models(config, "seq") == []
    assert design.model_coordinate(config) == ["diag"]


def test_image_damage_and_delta_target_defaults():
    seq = {"kind": "hmm_sequences", "n_sequences": 3, "sequence_length": 20}
    config = tiny_config(
        {
            "datasets": {"seq": seq},
            "sweep": {
                "mechanism": ["none", "MAR", "MCAR"],
                "missing_rate": [0.0, 0.1, 0.3],
                "replicate": [3, 1],
            },
        }
    )
    # the first mechanism other than none, at its largest rate, first replicate
    assert design.image_damage(config) == design.MaskJob("", "MAR", 0.3, 3)
    target = design.delta_target(config)
    assert target["dataset"] == "blobs"  # the first simulated mixture, not the sequences
    assert (target["mechanism"], target["missing_rate"], target["replicate"]) == ("MAR", 0.3, 3)
    assert target["n_components"] == [1, 2] and target["model"] == "full"
    config["sensitivity"]["delta"].update(mechanism="MCAR", missing_rate=0.1)
    target = design.delta_target(config)
    assert (target["mechanism"], target["missing_rate"]) == ("MCAR", 0.1)
    only_none = tiny_config({"sweep": {"mechanism": ["none"], "missing_rate": [0.0]}})
    assert design.image_damage(only_none) == design.MaskJob("", "none", 0.0, 0)


# ------------------------------------------------------------------------- schema + checks


def walk_properties(schema, path=""):
    for key, sub in schema.get("properties", {}).items():
        yield f"{path}.{key}", sub
        yield from walk_properties(sub, f"{path}.{key}")
    for key, sub in schema.get("$defs", {}).items():
        yield from walk_properties(sub, f"$defs.{key}")


def test_every_schema_key_has_a_description_and_objects_are_closed():
    schema = yaml.safe_load(SCHEMA.read_text())
    for path, sub in walk_properties(schema):
        assert sub.get("description"), path
        if sub.get("type") == "object" and "properties" in sub:
            assert sub.get("additionalProperties") is False, path
    assert schema["additionalProperties"] is False


def test_default_config_completes_and_passes_checks():
    config = study_config.complete_config(yaml.safe_load((ROOT / "config.yaml").read_text()))
    assert config["report"]["method"] == "em"  # a default filled in
    assert len(design.mask_jobs(config)) == 3 * len(design.mechanism_rate_pairs(config))


def test_schema_fills_kind_specific_defaults():
    config = tiny_config(
        {"datasets": {"g": {"kind": "gaussian_mixture"}, "h": {"kind": "hmm_sequences"}}}
    )
    assert config["datasets"]["g"]["n_samples"] == 500
    assert "n_sequences" not in config["datasets"]["g"]
    assert config["datasets"]["h"]["self_transition"] == 0.9
    assert config["fit"]["init_params"] == "auto" and config["fit"]["reg_covar"] == 1e-6


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"fit": {"n_inits": 3}}, "'n_inits' was unexpected"),
        ({"sweep": {"dataset": ["nope"]}}, "sweep.dataset: unknown dataset 'nope'"),
        ({"sweep": {"mechanism": ["none"], "missing_rate": [0.1]}}, "'none' needs missing_rate 0"),
        ({"sweep": {"mechanism": ["MCAR"], "missing_rate": [0.0]}}, "rate 0 is only run"),
        (
            {"datasets": {"blobs": {"models": ["hmm"]}}, "hmm": {"enabled": True}},
            "model 'hmm' needs sequence data",
        ),
    ],
)
def test_config_errors_name_the_problem(change, needle):
    with pytest.raises(study_config.ConfigError) as info:
        tiny_config(change)
    assert needle in str(info.value)


# ---------------------------------------------------------------------------- data and masks


def test_prepare_simulated_data_is_reproducible_and_keeps_truth():
    mixture = jobs.prepare_dataset("g", BLOBS, 3)
    assert mixture["X"].shape == (80, 2) and mixture["true_means"].shape == (2, 2)
    assert int(mixture["true_n_components"]) == BLOBS["n_components"]
    assert mixture["feature_names"].tolist() == ["x0", "x1"]
    assert np.array_equal(mixture["X"], jobs.prepare_dataset("g", BLOBS, 3)["X"])
    # the name and the root seed are part of the stream
    assert not np.array_equal(mixture["X"], jobs.prepare_dataset("h", BLOBS, 3)["X"])
    assert not np.array_equal(mixture["X"], jobs.prepare_dataset("g", BLOBS, 4)["X"])

    seq_spec = tiny_config(
        {"datasets": {"s": {"kind": "hmm_sequences", "n_sequences": 3, "sequence_length": 20}}}
    )["datasets"]["s"]
    seq = jobs.prepare_dataset("s", seq_spec, 3)
    assert seq["lengths"].tolist() == [20, 20, 20]
    assert seq["true_transmat"].shape == (3, 3)
    # occupancy: the share of steps in each state
    expected = np.bincount(seq["labels"], minlength=3) / 60
    np.testing.assert_array_equal(seq["true_weights"], expected)


def test_prepare_bundled_data_sets():
    iris = jobs.prepare_dataset("iris", {"kind": "bundled", "name": "iris"}, 3)
    assert iris["X"].shape == (150, 4) and iris["labels"].max() == 2
    assert "airquality" in available_datasets()
    air = jobs.prepare_dataset("air", {"kind": "bundled", "name": "airquality"}, 3)
    assert air["X"].shape[0] == 153
    assert np.isnan(air["X"]).any()  # its own missing values are kept
    assert "true_n_components" not in air


def test_prepare_table_keeps_rows_with_empty_cells(tmp_path):
    path = write_table(tmp_path / "t.csv")
    spec = {"kind": "table", "path": str(path), "columns": None, "label_column": "label"}
    table = jobs.prepare_dataset("t", spec, 3)
    assert table["X"].shape == (TABLE_ROWS, 3)
    assert table["feature_names"].tolist() == ["a", "b", "c"]
    assert sorted(zip(*np.nonzero(np.isnan(table["X"])), strict=True)) == sorted(TABLE_EMPTY)
    assert table["labels"].tolist() == [0] * (TABLE_ROWS // 2) + [1] * (TABLE_ROWS // 2)


def test_prepare_table_drops_only_rows_with_nothing_observed(tmp_path):
    (tmp_path / "t.csv").write_text("a,b\n1,\n,\n3,4\n")
    spec = {"kind": "table", "path": str(tmp_path / "t.csv"), "columns": None, "label_column": None}
    with pytest.warns(UserWarning):
        table = jobs.prepare_dataset("t", spec, 0)
    np.testing.assert_array_equal(table["X"], [[1.0, np.nan], [3.0, 4.0]])


def test_prepare_dataset_from_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    import pandas as pd

    path = tmp_path / "t.parquet"
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4.0, np.nan, 6.0], "y": ["u", "v", "u"]}).to_parquet(
        path
    )
    spec = {"kind": "table", "path": str(path), "columns": ["b", "a"], "label_column": "y"}
    arrays = jobs.prepare_dataset("t", spec, 0)
    np.testing.assert_array_equal(arrays["X"], [[4.0, 1.0], [np.nan, 2.0], [6.0, 3.0]])
    assert arrays["feature_names"].tolist() == ["b", "a"]
    assert arrays["labels"].tolist() == [0, 1, 0]


def test_make_mask_is_reproducible_and_exact():
    X = jobs.prepare_dataset("blobs", BLOBS, 5)["X"]
    job = mcar_job("blobs")
    first = jobs.make_mask(X, job, root_seed=5, strength=2.0)
    again = jobs.make_mask(X, job, root_seed=5, strength=2.0)
    assert np.array_equal(first["mask"], again["mask"])
    n_masked = round(0.2 * X.size)
    assert first["mask"].sum() == n_masked
    assert first["realised_rate"] == first["total_missing_rate"] == n_masked / X.size
    other = jobs.make_mask(X, design.MaskJob("blobs", "MCAR", 0.2, 1), root_seed=5, strength=2.0)
    assert not np.array_equal(first["mask"], other["mask"])
    none = jobs.make_mask(X, design.MaskJob("blobs", "none", 0.0, 0), root_seed=5, strength=2.0)
    assert not none["mask"].any() and none["realised_rate"] == 0.0


def test_make_mask_on_data_with_own_missing_values():
    X = load_dataset("airquality").X
    own = np.isnan(X)
    assert own.any()
    result = jobs.make_mask(X, mcar_job("air"), root_seed=5, strength=2.0)
    mask = result["mask"]
    assert not (mask & own).any()  # only observed entries are masked
    n_masked = round(0.2 * X.size)
    assert mask.sum() == n_masked and result["realised_rate"] == n_masked / X.size
    assert result["total_missing_rate"] == pytest.approx((own.sum() + n_masked) / X.size, rel=1e-12)


def test_save_and_load_arrays(tmp_path):
    arrays = {"a": np.arange(3), "s": np.array(["x", ""])}
    jobs.save_arrays(tmp_path / "f.npz", arrays)
    loaded = jobs.load_arrays(tmp_path / "f.npz")
    assert loaded["a"].tolist() == [0, 1, 2] and loaded["s"].tolist() == ["x", ""]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.npz"]  # no temporary file left


def test_training_data_methods():
    X = np.array([[1.0, np.nan], [2.0, 3.0], [np.nan, 5.0], [4.0, 7.0], [5.0, 9.0]])
    em, _ = jobs.training_data(X, None, "em")
    assert em is X
    cc, _ = jobs.training_data(X, None, "complete_case")
    assert cc.tolist() == [[2.0, 3.0], [4.0, 7.0], [5.0, 9.0]]
    mi, _ = jobs.training_data(X, None, "mean_impute")
    assert mi[0, 1] == pytest.approx(6.0) and mi[2, 0] == pytest.approx(3.0)
    cc, lengths = jobs.training_data(X, np.array([2, 3]), "complete_case", min_length=2)
    assert lengths.tolist() == [2] and cc.tolist() == [[4.0, 7.0], [5.0, 9.0]]
    with pytest.raises(ValueError, match="method must be one of"):
        jobs.training_data(X, None, "median_impute")


# ------------------------------------------------------------------------------------- fits


def test_fit_job_shapes(study):
    config, _, data, fits, _ = study
    n_init, max_iter = config["fit"]["n_init"], config["fit"]["max_iter"]
    for labels, out in fits:
        models = design.dataset_models(config, labels["dataset"])
        shape = (len(models), 2, 3)  # (model, K, method)
        d = data[labels["dataset"]]["X"].shape[1]
        assert out["model"].tolist() == models
        assert out["n_components"].tolist() == [1, 2]
        assert out["method"].tolist() == ["em", "complete_case", "mean_impute"]
        assert out["fit_log_likelihood"].shape == shape
        assert out["start_log_likelihood"].shape == (*shape, n_init)
        assert out["trace"].shape == (*shape, n_init, max_iter)
        assert out["nested_origin"].shape == (*shape, jobs.N_NESTED)
        assert out["weights"].shape == (*shape, 2)
        assert out["means"].shape == (*shape, 2, d)
        assert out["covariances"].shape == (*shape, 2, d, d)
        assert not out["fit_failed"].any() and not out["start_failed"].any()
        # K = 1 fills the first component slot only
        np.testing.assert_array_equal(out["weights"][:, 0, :, 0], 1.0)
        assert np.isnan(out["weights"][:, 0, :, 1]).all()


def job_estimator(config, job, n_components, covariance_type):
    """The estimator a user would build for one cell of a fit job: the config's fit settings,
    nested starts, the mask's seed."""
    fit = config["fit"]
    return GaussianMixture(
        n_components,
        covariance_type=covariance_type,
        n_init=fit["n_init"],
        init_params=fit["init_params"],
        nested_starts=True,
        tol=fit["tol"],
        max_iter=fit["max_iter"],
        reg_covar=fit["reg_covar"],
        random_state=seed_sequence(config["root_seed"], "init", **job.labels),
    )


@pytest.mark.parametrize("dataset", ["blobs", "air"])
def test_fitted_models_equal_the_estimator(study, dataset):
    """Method em: the fitted model of every (model, K) cell is what GaussianMixture with
    nested starts and the mask's "init" SeedSequence returns on the damaged data."""
    config, _, data, fits, masks = study
    job = mcar_job(dataset)
    out = record(fits, job)
    mask = record(masks, job)["mask"]
    X_obs = np.where(mask, np.nan, data[dataset]["X"])
    assert mask.any() and (dataset == "blobs" or (np.isnan(X_obs) & ~mask).any())
    e = out["method"].tolist().index("em")
    for m, model in enumerate(out["model"].tolist()):
        for k, n_components in enumerate(out["n_components"].tolist()):
            estimator = job_estimator(config, job, n_components, model).fit(X_obs)
            cell = (m, k, e)
            np.testing.assert_allclose(
                out["weights"][cell][:n_components], estimator.weights_, rtol=1e-12, atol=1e-12
            )
            np.testing.assert_allclose(
                out["means"][cell][:n_components], estimator.means_, rtol=1e-12, atol=1e-12
            )
            assert out["fit_n_iter"][cell] == estimator.fit_result_.n_iter  # both stages


def test_baselines_equal_the_estimator_on_their_training_data(study):
    config, _, data, fits, masks = study
    job = mcar_job("blobs")
    out = record(fits, job)
    mask = record(masks, job)["mask"]
    X_obs = np.where(mask, np.nan, data["blobs"]["X"])
    m, k = out["model"].tolist().index("full"), 1  # K = 2
    for e, method in enumerate(out["method"].tolist()):
        X_train, _ = jobs.training_data(X_obs, None, method)
        assert out["n_rows_used"][m, k, e] == X_train.shape[0]
        estimator = job_estimator(config, job, 2, "full").fit(X_train)
        np.testing.assert_allclose(
            out["means"][m, k, e][:2], estimator.means_, rtol=1e-12, atol=1e-12
        )
    assert out["n_rows_used"][m, k].tolist() == [80, int((~mask.any(1)).sum()), 80]


def test_fit_job_measures_are_consistent(study):
    config, _, _, fits, _ = study
    out = record(fits, mcar_job("blobs"))
    em = out["method"].tolist().index("em")
    # em is fitted to the damaged data itself: its evaluation equals its training objective
    np.testing.assert_allclose(
        out["start_log_likelihood"][:, :, em],
        out["start_train_log_likelihood"][:, :, em],
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        out["fit_log_likelihood"][:, :, em], out["fit_train_log_likelihood"][:, :, em], rtol=1e-10
    )
    # the fitted model (best start, nested starts included, polished) is at least as good as
    # every random start, and em maximises the damaged data's likelihood: the baselines'
    # parameters score no higher on it
    best_random = out["start_log_likelihood"][:, :, em].max(-1)
    assert np.all(out["fit_log_likelihood"][:, :, em] >= best_random - 1e-9 * abs(best_random))
    assert np.all(
        out["fit_log_likelihood"][:, :, em][..., None] >= out["fit_log_likelihood"] - 1e-6
    )
    assert np.all(out["fit_bic"] > out["fit_aic"])  # log(80) > 2
    assert np.all(out["fit_icl"] >= out["fit_bic"])
    assert np.all(out["start_bic"] > out["start_aic"])
    assert np.isfinite(out["fit_imputation_rmse"]).all()
    assert np.isnan(out["fit_transmat_abs_error"]).all()
    # every random start's kind, in start order
    kinds = start_kinds(config["fit"]["init_params"], config["fit"]["n_init"])
    assert (out["start_kind"] == np.array(kinds)).all()
    for trace, n_iter in zip(
        out["trace"][:, :, em].reshape(-1, config["fit"]["max_iter"]),
        out["start_n_iter"][:, :, em].ravel(),
        strict=True,
    ):
        assert np.isfinite(trace[:n_iter]).all() and np.isnan(trace[n_iter:]).all()
        assert np.all(np.diff(trace[:n_iter]) >= -1e-12)  # EM never decreases the objective


def test_nested_starts_are_labelled_by_their_origin(study):
    _, _, _, fits, _ = study
    out = record(fits, mcar_job("blobs"))
    models = out["model"].tolist()
    full, diag = models.index("full"), models.index("diag")
    assert set(out["nested_origin"][full, 1, 0]) == {
        "nested:diag",
        "nested:tied",
        "split:K=1",
        "epsilon:K=1",
    }
    assert out["nested_origin"][diag, 0, 0].tolist() == ["nested:spherical", "", "", ""]
    used = out["nested_origin"] != ""
    assert np.isfinite(out["nested_log_likelihood"][used]).all()
    assert np.isnan(out["nested_log_likelihood"][~used]).all()
    origins = set(out["fit_origin"].ravel())
    assert origins <= set(out["start_kind"].ravel()) | set(out["nested_origin"].ravel())


def test_evaluation_imputation_is_the_mixtures_posterior_mean():
    rng = np.random.default_rng(0)
    X_true = rng.normal(size=(60, 2))
    mask = rng.random((60, 2)) < 0.2
    mask[mask.all(1), 0] = False
    X_obs = np.where(mask, np.nan, X_true)
    weights = np.array([0.3, 0.7])
    means = np.array([[0.0, 1.0], [2.0, -1.0]])
    covariances = np.array([[1.0, 2.0], [0.5, 1.5]])
    params = {"weights": weights[None], "means": means[None], "covariances": covariances[None]}
    measured = evaluation.evaluate(X_obs, mask, X_true, {}, params, "diag")
    filled = impute_mixture(X_obs, weights, means, covariances, "diag")
    expected = np.sqrt(np.mean((filled[mask] - X_true[mask]) ** 2))
    np.testing.assert_allclose(measured["imputation_rmse"], [expected], rtol=1e-12)
    assert np.isnan(measured["ari"]).all()  # no labels, no agreement


# ------------------------------------------------------------------------------- aggregate


def test_every_variable_and_coordinate_is_labelled(study):
    _, ds, _, _, _ = study
    for name, var in ds.variables.items():
        assert var.attrs.get("long_name") and var.attrs.get("units"), name
    assert set(ds.dims) <= set(ds.coords)
    for dim in ds.dims:
        assert ds[dim].dims == (dim,), dim
    assert set(ds.dims) >= {
        *results.SWEEP_DIMS,
        "method",
        "init",
        "iteration",
        "nested",
        "component",
        "feature",
        "feature_i",
        "feature_j",
    }


def test_feature_coordinate_holds_column_names(study):
    _, ds, data, _, _ = study
    blobs, air = data["blobs"]["feature_names"].tolist(), data["air"]["feature_names"].tolist()
    assert air == load_dataset("airquality").feature_names
    assert ds["feature"].values.tolist() == blobs + air
    assert ds["has_feature"].sel(dataset="blobs").values.tolist() == [True] * 2 + [False] * 4
    assert ds["has_feature"].sel(dataset="air").values.tolist() == [False] * 2 + [True] * 4


def test_truth_is_stored_as_data(study):
    _, ds, data, _, _ = study
    assert ds["true_n_components"].sel(dataset="blobs").item() == BLOBS["n_components"]
    assert ds["true_n_components"].sel(dataset="air").item() == -1
    truth = ds.sel(
        dataset="blobs", feature=["x0", "x1"], feature_i=["x0", "x1"], feature_j=["x0", "x1"]
    )
    np.testing.assert_array_equal(truth["true_means"].values, data["blobs"]["true_means"])
    np.testing.assert_array_equal(
        truth["true_covariances"].values, data["blobs"]["true_covariances"]
    )
    np.testing.assert_array_equal(truth["true_weights"].values, data["blobs"]["true_weights"])
    assert ds["true_means"].sel(dataset="blobs", feature="Ozone").isnull().all()
    assert ds["true_means"].sel(dataset="air").isnull().all()
    assert ds["true_transmat"].isnull().all()


def test_per_dataset_and_mask_records(study):
    _, ds, data, _, masks = study
    X = data["air"]["X"]
    assert ds["n_rows"].sel(dataset="air").item() == X.shape[0] == 153
    assert ds["own_missing_rate"].sel(dataset="air").item() == np.isnan(X).mean()
    assert ds["own_missing_rate"].sel(dataset="blobs").item() == 0.0
    for labels, arrays in masks:
        cell = ds.sel({key: labels[key] for key in results.MASK_DIMS})
        assert cell["realised_rate"].item() == arrays["realised_rate"]
        assert cell["total_missing_rate"].item() == arrays["total_missing_rate"]
    # mechanism none only at rate 0
    assert ds["realised_rate"].sel(mechanism="none", missing_rate=0.2).isnull().all()


def test_in_design_matches_the_design(study):
    config, ds, _, _, _ = study
    expected = {
        (name, model, k, mechanism, rate, replicate, method)
        for name in design.dataset_names(config)
        for model in design.dataset_models(config, name)
        for k in config["sweep"]["n_components"]
        for mechanism, rate in design.mechanism_rate_pairs(config)
        for replicate in config["sweep"]["replicate"]
        for method in config["sweep"]["method"]
    }
    frame = ds["in_design"].to_dataframe().reset_index()
    found = {tuple(row[:-1]) for row in frame.itertuples(index=False) if row.in_design}
    assert found == expected
    outside = ~ds["in_design"]
    assert ds["fit_log_likelihood"].where(outside).isnull().all()
    assert (ds["fit_n_iter"].where(outside, 0) <= 0).all()
    assert (ds["n_rows_used"].where(outside, -1) == -1).all()


def test_fit_records_land_in_their_cells(study):
    _, ds, data, fits, _ = study
    for labels, arrays in fits:
        columns = [str(f) for f in data[labels["dataset"]]["feature_names"]]
        for m, model in enumerate(arrays["model"].tolist()):
            for k, n_components in enumerate(arrays["n_components"].tolist()):
                for e, method in enumerate(arrays["method"].tolist()):
                    # "method" is also a keyword of .sel(): select with a dict
                    cell = ds.sel(
                        {**labels, "model": model, "n_components": n_components, "method": method}
                    )
                    assert cell["fit_bic"].item() == arrays["fit_bic"][m, k, e]
                    assert cell["fit_origin"].item() == arrays["fit_origin"][m, k, e]
                    np.testing.assert_array_equal(cell["bic"].values, arrays["start_bic"][m, k, e])
                    np.testing.assert_array_equal(
                        cell["start_kind"].values, arrays["start_kind"][m, k, e]
                    )
                    np.testing.assert_array_equal(cell["trace"].values, arrays["trace"][m, k, e])
                    np.testing.assert_array_equal(
                        cell["means"].sel(feature=columns).values, arrays["means"][m, k, e]
                    )
                    np.testing.assert_array_equal(
                        cell["covariances"].sel(feature_i=columns, feature_j=columns).values,
                        arrays["covariances"][m, k, e],
                    )
                    others = [f for f in ds["feature"].values.tolist() if f not in columns]
                    assert cell["means"].sel(feature=others).isnull().all()


def test_best_start(study):
    _, ds, _, _, _ = study
    best = results.best_start(ds)
    inside = ds["in_design"]
    assert (best.where(~inside, -1) == -1).all()
    expected = ds["log_likelihood"].where(~ds["failed"]).fillna(-np.inf).argmax("init")
    assert (best.where(inside, 0) == expected.where(inside, 0)).all()
    assert (best.where(inside, 0) >= 0).all()


def test_cells_outside_the_design_are_marked(study):
    config, _, data, _, _ = study
    ds = results.build_dataset(design.coordinates(config), data, [], [])
    assert not ds["in_design"].any() and (ds["n_iter"] == -1).all()
    assert ds["log_likelihood"].isnull().all() and (ds["failure_reason"] == "").all()
    assert not ds["fit_converged"].any() and (ds["fit_origin"] == "").all()
    # per-data-set records do not need fits
    assert ds["true_n_components"].values.tolist() == [2, -1]


def test_netcdf_round_trip(study, tmp_path):
    config, ds, _, _, _ = study
    results.write_netcdf(ds, tmp_path / "r.nc")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.nc"]
    back = results.open_results(tmp_path / "r.nc")
    xr.testing.assert_identical(back, ds)
    assert back["converged"].dtype == bool and back["n_iter"].dtype == np.int64
    assert back["failure_reason"].dtype.kind in "OU"
    assert back["feature"].values.tolist() == ds["feature"].values.tolist()
    assert json.loads(back.attrs["config"]) == json.loads(json.dumps(config))
    assert back.attrs["seed_scheme"] == SEED_SCHEME and back.attrs["git_commit"] == "abc"
    for key in ("em_lib_version", "numpy_version", "xarray_version", "creation_time", "root_seed"):
        assert key in back.attrs


def test_deterministic_part_drops_run_times_and_creation_time(study):
    _, ds, _, _, _ = study
    part = results.deterministic_part(ds)
    assert "fit_time" not in part and "fit_cpu_time" not in part and "fit_time" in ds
    assert "creation_time" not in part.attrs and "creation_time" in ds.attrs
    assert "git_commit" in part.attrs
    assert set(ds.attrs["nondeterministic_variables"].split()) == set(
        results.NONDETERMINISTIC_VARIABLES
    )
    assert set(ds.data_vars) - set(part.data_vars) == set(results.NONDETERMINISTIC_VARIABLES)
    # everything else is a function of the config: the same jobs give the same variables
    config, _, data, fits, masks = study
    again = results.build_dataset(
        design.coordinates(config), data, fits, masks, {**ds.attrs, "creation_time": "later"}
    )
    xr.testing.assert_identical(results.deterministic_part(again), part)
