"""Unit tests of the workflow's glue (em_lib.experiment) and results (em_lib.results), without
Snakemake jobs: seeds, design, config checks, data / masks / fits, xarray assembly and netCDF."""

from __future__ import annotations

import copy
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

from em_lib import experiment as exp
from em_lib import results
from em_lib.numerics.gaussian import impute_mixture

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def validated(config):
    """The config as the workflow sees it: validated against the schema, defaults filled."""
    from snakemake.utils import validate

    config = copy.deepcopy(config)
    validate(config, str(SCHEMA))
    return config


def small_config(**sweep):
    config = {
        "root_seed": 3,
        "datasets": {
            "blobs": {
                "kind": "gaussian_mixture",
                "n_samples": 120,
                "n_features": 2,
                "n_components": 2,
                "separation": 4.0,
            }
        },
        "sweep": {
            "model": ["diag"],
            "n_components": [2],
            "mechanism": ["MCAR"],
            "missing_rate": [0.2],
            **sweep,
        },
        "fit": {"n_init": 4, "starts_per_job": 2, "max_iter": 50},
    }
    return validated(config)


def fit_settings(config, **changes):
    return {**config["fit"], **changes}


def run_job(config, data, mask, job, **fit_changes):
    return exp.fit_job(
        data,
        mask,
        job,
        fit_settings=fit_settings(config, **fit_changes),
        hmm_settings=config["hmm"],
        methods=config["sweep"]["method"],
        root_seed=config["root_seed"],
    )


@pytest.fixture(scope="module")
def blobs():
    config = small_config()
    data = exp.prepare_dataset("blobs", config["datasets"]["blobs"], config["root_seed"])
    mask = exp.make_mask(
        data["X"],
        dataset="blobs",
        mechanism="MCAR",
        missing_rate=0.2,
        replicate=0,
        root_seed=config["root_seed"],
        strength=2.0,
    )["mask"]
    return config, data, mask


# --------------------------------------------------------------------------------- seeds


def test_seed_key_is_sha256_of_sorted_json_labels():
    labels = {"dataset": "blobs", "missing_rate": 0.1, "replicate": 2}
    text = json.dumps(
        ["mask", [["dataset", "blobs"], ["missing_rate", 0.1], ["replicate", 2]]],
        separators=(",", ":"),
    )
    digest = hashlib.sha256(text.encode()).digest()
    expected = tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))
    assert exp.seed_key("mask", **labels) == expected
    assert exp.seed_key("mask", replicate=2, missing_rate=0.1, dataset="blobs") == expected


def test_seed_key_separates_purposes_values_and_types():
    keys = {
        exp.seed_key("mask", dataset="a", replicate=0),
        exp.seed_key("init", dataset="a", replicate=0),
        exp.seed_key("mask", dataset="a", replicate=1),
        exp.seed_key("mask", dataset="b", replicate=0),
        exp.seed_key("mask", dataset="a", replicate="0"),
    }
    assert len(keys) == 5
    assert exp.seed_key("x", rate=np.float64(0.1), k=np.int64(3)) == exp.seed_key(
        "x", rate=0.1, k=3
    )


def test_seed_key_does_not_depend_on_python_hash_seed():
    code = "from em_lib.experiment import seed_key; print(seed_key('init', dataset='a', init=3))"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "12345")
    }
    assert len(outputs) == 1


def test_seed_sequence_uses_root_seed_and_key():
    seq = exp.seed_sequence(7, "data", dataset="a", seed=0)
    assert seq.entropy == 7
    assert seq.spawn_key == exp.seed_key("data", dataset="a", seed=0)
    assert (
        exp.seed_sequence(8, "data", dataset="a", seed=0).generate_state(2).tolist()
        != seq.generate_state(2).tolist()
    )


def test_format_rate_round_trips_through_wildcards():
    for rate in (0.1, 0.3, 0.05, 1e-05, 0.0):
        assert float(exp.format_rate(rate)) == rate
    job = exp.FitJob("a", "full", 3, "MAR", 0.1, 2, 1)
    assert exp.FitJob.from_wildcards(job.wildcards) == job


# -------------------------------------------------------------------------------- design


def test_chunk_bounds_cover_every_start_once():
    assert exp.chunk_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert exp.chunk_bounds(3, 8) == [(0, 3)]


def test_design_counts_jobs_and_pairs_none_with_rate_zero():
    config = small_config(
        mechanism=["none", "MCAR", "MAR"],
        missing_rate=[0.0, 0.1, 0.3],
        n_components=[2, 3],
        replicate=[0, 1],
    )
    design = exp.design(config)
    pairs = exp.mechanism_rate_pairs(config)
    assert pairs == [("none", 0.0), ("MCAR", 0.1), ("MCAR", 0.3), ("MAR", 0.1), ("MAR", 0.3)]
    assert len(design["mask_jobs"]) == 5 * 2
    assert len(design["fit_jobs"]) == 1 * 2 * 5 * 2 * 2  # model, K, pairs, replicate, chunk
    assert len(set(design["fit_jobs"])) == len(design["fit_jobs"])
    assert design["coords"]["init"] == [0, 1, 2, 3]
    assert design["coords"]["iteration"][-1] == config["fit"]["max_iter"]


def test_hmm_model_only_for_sequence_data():
    config = validated(
        {
            "datasets": {"blobs": {"kind": "gaussian_mixture"}, "seq": {"kind": "hmm_sequences"}},
            "sweep": {"model": ["diag"]},
            "hmm": {"enabled": True},
        }
    )
    assert exp.dataset_models(config, "blobs") == ["diag"]
    assert exp.dataset_models(config, "seq") == ["diag", "hmm"]
    config["datasets"]["seq"]["models"] = ["hmm"]
    assert exp.dataset_models(config, "seq") == ["hmm"]
    config["hmm"]["enabled"] = False
    assert exp.dataset_models(config, "seq") == []
    assert exp.model_coordinate(config) == ["diag"]


# ------------------------------------------------------------------------ schema + checks


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


def test_default_config_validates_and_passes_checks():
    config = validated(yaml.safe_load((ROOT / "config.yaml").read_text()))
    exp.check_config(config)
    design = exp.design(config)
    assert len(design["fit_jobs"]) <= 60


def test_schema_fills_kind_specific_defaults():
    config = validated(
        {
            "datasets": {
                "g": {"kind": "gaussian_mixture"},
                "h": {"kind": "hmm_sequences"},
                "t": {"kind": "table", "path": "x.csv"},
            }
        }
    )
    assert config["datasets"]["g"]["n_samples"] == 500
    assert "n_sequences" not in config["datasets"]["g"]
    assert config["datasets"]["h"]["self_transition"] == 0.9
    assert config["datasets"]["t"]["columns"] is None
    assert config["fit"]["n_init"] == 8 and config["hmm"]["enabled"] is False


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"fit": {"n_inits": 3}}, "n_inits"),
        ({"fit": {"max_iter": "many"}}, "not of type 'integer'"),
        ({"sweep": {"missing_rate": [1.0]}}, "greater than or equal to the maximum of 1"),
        ({"sweep": {"mechanism": ["MBAR"]}}, "'MBAR' is not one of"),
        ({"datasets": {"g": {"kind": "gaussian_mixture", "path": "x.csv"}}}, "'path'"),
        ({"datasets": {"g": {"kind": "cloud"}}}, "'cloud' is not one of"),
    ],
)
def test_schema_rejects(change, needle):
    from snakemake.exceptions import WorkflowError

    config = {"datasets": {"g": {"kind": "gaussian_mixture"}}, **change}
    with pytest.raises(WorkflowError) as info:
        validated(config)
    assert needle in str(info.value)


def test_check_config_names_the_problem(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.csv").write_text("a,b,label\n1,2,x\n3,oops,y\n")
    (tmp_path / "good.csv").write_text("a,b,label\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n")
    cases = [
        ({"sweep": {"dataset": ["nope"]}}, "sweep.dataset: unknown dataset 'nope'"),
        (
            {"datasets": {"g": {"kind": "bundled", "name": "irises"}}},
            "datasets.g.name: unknown bundled dataset 'irises'",
        ),
        (
            {"datasets": {"g": {"kind": "table", "path": "missing.csv"}}},
            "datasets.g.path: file not found: missing.csv",
        ),
        (
            {"datasets": {"g": {"kind": "table", "path": "bad.csv", "label_column": "label"}}},
            "column 'b' is not numeric",
        ),
        (
            {"datasets": {"g": {"kind": "table", "path": "good.csv", "columns": ["a", "c"]}}},
            "column 'c' not found",
        ),
        ({"sweep": {"mechanism": ["none"], "missing_rate": [0.1]}}, "'none' needs missing_rate 0"),
        ({"sweep": {"mechanism": ["MCAR"], "missing_rate": [0.0]}}, "rate 0 is only run"),
        ({"sweep": {"mechanism": ["MAR"], "missing_rate": [0.9]}}, "not achievable"),
        (
            {
                "datasets": {"g": {"kind": "gaussian_mixture", "models": ["hmm"]}},
                "hmm": {"enabled": True},
            },
            "model 'hmm' needs sequence data",
        ),
    ]
    for change, needle in cases:
        config = validated({"datasets": {"g": {"kind": "gaussian_mixture"}}, **change})
        with pytest.raises(exp.ConfigError, match=None) as info:
            exp.check_config(config)
        assert needle in str(info.value), (change, str(info.value))


def test_check_config_when_hmm_core_is_missing(monkeypatch):
    config = validated({"datasets": {"s": {"kind": "hmm_sequences"}}, "hmm": {"enabled": True}})
    monkeypatch.setattr(exp, "hmm_available", lambda: (False, "ImportError: no module"))
    with pytest.raises(exp.ConfigError, match="hmm.enabled: the HMM core"):
        exp.check_config(config)


# ------------------------------------------------------------------------ data and masks


def test_prepare_dataset_kinds(tmp_path, monkeypatch):
    mixture = exp.prepare_dataset("g", small_config()["datasets"]["blobs"], 3)
    assert mixture["X"].shape == (120, 2) and mixture["true_means"].shape == (2, 2)
    again = exp.prepare_dataset("g", small_config()["datasets"]["blobs"], 3)
    assert np.array_equal(mixture["X"], again["X"])
    other = exp.prepare_dataset("h", small_config()["datasets"]["blobs"], 3)
    assert not np.array_equal(mixture["X"], other["X"])  # the name is part of the stream

    seq_spec = validated(
        {"datasets": {"s": {"kind": "hmm_sequences", "n_sequences": 3, "sequence_length": 20}}}
    )["datasets"]["s"]
    seq = exp.prepare_dataset("s", seq_spec, 3)
    assert seq["lengths"].tolist() == [20, 20, 20]
    assert seq["true_transmat"].shape == (3, 3)
    assert np.isclose(seq["true_weights"].sum(), 1.0)

    iris = exp.prepare_dataset("iris", {"kind": "bundled", "name": "iris"}, 3)
    assert iris["X"].shape == (150, 4) and iris["labels"].max() == 2

    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.csv").write_text("a,b,label\n1,2,x\n,4,y\n5,6,x\n")
    table = exp.prepare_dataset(
        "t", {"kind": "table", "path": "t.csv", "columns": None, "label_column": "label"}, 3
    )
    assert table["X"].tolist() == [[1.0, 2.0], [5.0, 6.0]]  # incomplete rows dropped
    assert table["labels"].tolist() == [0, 0]


def test_prepare_dataset_from_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    import pandas as pd

    path = tmp_path / "t.parquet"
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4.0, np.nan, 6.0], "y": ["u", "v", "u"]}).to_parquet(
        path
    )
    spec = {"kind": "table", "path": str(path), "columns": ["b", "a"], "label_column": "y"}
    arrays = exp.prepare_dataset("t", spec, 0)
    assert arrays["X"].tolist() == [[4.0, 1.0], [6.0, 3.0]]
    assert arrays["feature_names"].tolist() == ["b", "a"] and arrays["labels"].tolist() == [0, 0]


def test_make_mask_is_reproducible_and_exact(blobs):
    config, data, mask = blobs
    again = exp.make_mask(
        data["X"],
        dataset="blobs",
        mechanism="MCAR",
        missing_rate=0.2,
        replicate=0,
        root_seed=config["root_seed"],
        strength=2.0,
    )
    assert np.array_equal(mask, again["mask"])
    assert again["realised_rate"] == mask.sum() / mask.size == 0.2
    other = exp.make_mask(
        data["X"],
        dataset="blobs",
        mechanism="MCAR",
        missing_rate=0.2,
        replicate=1,
        root_seed=config["root_seed"],
        strength=2.0,
    )["mask"]
    assert not np.array_equal(mask, other)


def test_save_and_load_arrays(tmp_path):
    arrays = {"a": np.arange(3), "s": np.array(["x", ""])}
    exp.save_arrays(tmp_path / "f.npz", arrays)
    loaded = exp.load_arrays(tmp_path / "f.npz")
    assert loaded["a"].tolist() == [0, 1, 2] and loaded["s"].tolist() == ["x", ""]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.npz"]


def test_training_data_methods():
    X = np.array([[1.0, np.nan], [2.0, 3.0], [np.nan, 5.0], [4.0, 7.0], [5.0, 9.0]])
    em, _ = exp.training_data(X, None, "em")
    assert em is X
    cc, _ = exp.training_data(X, None, "complete_case")
    assert cc.tolist() == [[2.0, 3.0], [4.0, 7.0], [5.0, 9.0]]
    mi, _ = exp.training_data(X, None, "mean_impute")
    assert mi[0, 1] == pytest.approx(6.0) and mi[2, 0] == pytest.approx(3.0)
    cc, lengths = exp.training_data(X, np.array([2, 3]), "complete_case", min_length=2)
    assert lengths.tolist() == [2] and cc.tolist() == [[4.0, 7.0], [5.0, 9.0]]


# -------------------------------------------------------------------------------- fitting


def test_fit_job_shapes_and_method_consistency(blobs):
    config, data, mask = blobs
    job = exp.FitJob("blobs", "diag", 2, "MCAR", 0.2, 0, 1)
    out = run_job(config, data, mask, job)
    assert out["init"].tolist() == [2, 3]
    assert out["method"].tolist() == ["em", "complete_case", "mean_impute"]
    for name in exp.PER_INIT_VARIABLES:
        assert out[name].shape == (3, 2), name
    assert out["trace"].shape == (3, 2, config["fit"]["max_iter"])
    assert out["n_rows_used"].tolist() == [120, int((~mask.any(1)).sum()), 120]
    assert not out["failed"].any()
    # em is fitted to the masked data itself: its evaluation equals its training objective
    np.testing.assert_allclose(out["log_likelihood"][0], out["train_log_likelihood"][0], rtol=1e-10)
    assert np.all(out["log_likelihood"][0] >= out["log_likelihood"][1:].max(0) - 1e-6)
    assert np.all(out["bic"] > out["aic"])  # log(120) > 2
    assert np.all(out["icl"] >= out["bic"])
    assert np.all((out["ari"] > 0.5) & (out["ari"] <= 1))
    assert np.isfinite(out["imputation_rmse"]).all() and np.isnan(out["transmat_abs_error"]).all()
    for trace, n_iter in zip(out["trace"][0], out["n_iter"][0], strict=True):
        assert np.isfinite(trace[:n_iter]).all() and np.isnan(trace[n_iter:]).all()
        assert np.all(np.diff(trace[:n_iter]) >= -1e-12)  # EM never decreases the objective


def test_fit_job_is_deterministic_and_independent_of_chunking(blobs):
    config, data, mask = blobs
    whole = run_job(
        config, data, mask, exp.FitJob("blobs", "diag", 2, "MCAR", 0.2, 0, 0), starts_per_job=4
    )
    again = run_job(
        config, data, mask, exp.FitJob("blobs", "diag", 2, "MCAR", 0.2, 0, 0), starts_per_job=4
    )
    for name in (*exp.PER_INIT_VARIABLES, "trace"):
        assert np.array_equal(whole[name], again[name], equal_nan=whole[name].dtype.kind == "f")
    halves = [
        run_job(config, data, mask, exp.FitJob("blobs", "diag", 2, "MCAR", 0.2, 0, c))
        for c in (0, 1)
    ]
    assert np.array_equal(np.concatenate([h["init"] for h in halves]), whole["init"])
    for name in ("log_likelihood", "bic", "ari", "imputation_rmse"):
        joined = np.concatenate([h[name] for h in halves], axis=1)
        np.testing.assert_allclose(joined, whole[name], rtol=1e-9)
    assert np.array_equal(np.concatenate([h["n_iter"] for h in halves], axis=1), whole["n_iter"])


def test_fit_job_records_methods_that_cannot_fit(blobs):
    config, data, mask = blobs
    heavy = np.zeros_like(mask)
    heavy[:, 1] = True  # no complete row left
    heavy[0, 1] = False
    out = run_job(config, data, heavy, exp.FitJob("blobs", "diag", 2, "MCAR", 0.2, 0, 0))
    assert out["failed"][1].all() and not out["failed"][0].any()
    assert "complete_case: 1 rows to fit" in out["failure_reason"][1, 0]
    assert np.isnan(out["log_likelihood"][1]).all()


def test_posterior_imputation_matches_impute_mixture(blobs):
    config, data, mask = blobs
    X_obs = np.where(mask, np.nan, data["X"])
    weights = np.array([0.3, 0.7])
    means = np.array([[0.0, 1.0], [2.0, -1.0]])
    covariances = np.array([[1.0, 2.0], [0.5, 1.5]])
    from em_lib.numerics.covariance import any_to_full

    full = any_to_full(covariances[None], "diag", 2, 2)
    params = {"weights": weights[None], "means": means[None], "covariances": covariances[None]}
    _, post = exp._posteriors(X_obs, None, params, "diag", "diag")
    ours = exp.posterior_imputation(X_obs, post, means[None], full)[0]
    np.testing.assert_allclose(
        ours, impute_mixture(X_obs, weights, means, covariances, "diag"), rtol=1e-12, atol=1e-12
    )


def test_hmm_fit_job():
    ok, why = exp.hmm_available()
    if not ok:
        pytest.skip(f"HMM core not importable: {why}")
    config = validated(
        {
            "root_seed": 5,
            "datasets": {
                "s": {
                    "kind": "hmm_sequences",
                    "n_sequences": 4,
                    "sequence_length": 40,
                    "n_components": 2,
                }
            },
            "fit": {"n_init": 2, "max_iter": 30},
            "hmm": {"enabled": True},
        }
    )
    data = exp.prepare_dataset("s", config["datasets"]["s"], 5)
    mask = exp.make_mask(
        data["X"],
        dataset="s",
        mechanism="MCAR",
        missing_rate=0.1,
        replicate=0,
        root_seed=5,
        strength=2.0,
    )["mask"]
    out = run_job(config, data, mask, exp.FitJob("s", "hmm", 2, "MCAR", 0.1, 0, 0))
    assert out["log_likelihood"].shape == (3, 2)
    assert not out["failed"].any()
    np.testing.assert_allclose(out["log_likelihood"][0], out["train_log_likelihood"][0], rtol=1e-8)
    assert np.isfinite(out["transmat_abs_error"]).all() and np.isfinite(out["ari"]).all()


# -------------------------------------------------------------------------------- results


@pytest.fixture(scope="module")
def small_results(blobs):
    config, data, mask = blobs
    design = exp.design(config)
    records = [
        ({**job.labels, "chunk": job.chunk}, run_job(config, data, mask, job))
        for job in design["fit_jobs"]
    ]
    masks = [(vars(job), {"realised_rate": np.float64(0.2)}) for job in design["mask_jobs"]]
    attrs = results.provenance(config, commit="abc", seed_scheme=exp.SEED_SCHEME)
    ds = results.build_dataset(
        design["coords"], records, masks, attrs=attrs, chunks=design["chunks"]
    )
    return config, design, records, ds


def test_build_dataset_labels_and_values(small_results):
    config, design, records, ds = small_results
    assert ds["log_likelihood"].dims == results.PER_INIT_DIMS
    assert ds["trace"].dims[-1] == "iteration"
    assert set(ds.dims) == {*results.SWEEP_DIMS, "method", "init", "iteration", "chunk"}
    for name, var in ds.variables.items():
        assert var.attrs.get("long_name") and "units" in var.attrs, name
    labels, arrays = records[1]
    # "method" is also a keyword of .sel(): select that dimension with a dict
    cell = ds.sel(
        {
            "dataset": "blobs",
            "model": "diag",
            "n_components": 2,
            "mechanism": "MCAR",
            "missing_rate": 0.2,
            "replicate": 0,
            "method": "complete_case",
        }
    )
    assert cell["bic"].sel(init=arrays["init"]).values.tolist() == arrays["bic"][1].tolist()
    assert ds["chunk_of_init"].values.tolist() == [0, 0, 1, 1]
    assert bool(ds["in_design"].all())
    assert ds["fit_time"].notnull().all() and (ds["fit_cpu_time"] > 0).all()
    assert (results.best_start(ds) >= 0).all()


def test_netcdf_round_trip(small_results, tmp_path):
    config, _, _, ds = small_results
    results.write_netcdf(ds, tmp_path / "r.nc")
    back = results.open_results(tmp_path / "r.nc")
    xr.testing.assert_identical(back, ds)
    assert back["converged"].dtype == bool and back["n_iter"].dtype == np.int64
    assert back["failure_reason"].dtype.kind in "OU"
    assert json.loads(back.attrs["config"]) == json.loads(json.dumps(config))
    for key in (
        "em_lib_version",
        "numpy_version",
        "xarray_version",
        "git_commit",
        "creation_time",
        "root_seed",
    ):
        assert key in back.attrs


def test_cells_outside_the_design_are_marked():
    config = small_config(mechanism=["none", "MCAR"], missing_rate=[0.0, 0.2])
    design = exp.design(config)
    ds = results.build_dataset(design["coords"], [], [])
    assert not ds["in_design"].any() and (ds["n_iter"] == -1).all()
    assert ds["log_likelihood"].isnull().all() and (ds["failure_reason"] == "").all()


def test_deterministic_part_drops_run_times_and_creation_time(small_results):
    _, _, _, ds = small_results
    part = results.deterministic_part(ds)
    assert "fit_time" not in part and "fit_cpu_time" not in part and "fit_time" in ds
    assert "creation_time" not in part.attrs and "git_commit" in part.attrs
    assert set(ds.attrs["nondeterministic_variables"].split()) == set(
        results.NONDETERMINISTIC_VARIABLES
    )
