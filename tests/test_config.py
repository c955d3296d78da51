"""Config checks (em_lib.study.config): every bad config stops with one short message naming
the key and the value; every valid config passes. The same function runs in the Snakefile
before any job (tests/test_workflow.py checks that path end to end for a few of them)."""

from __future__ import annotations

import copy

import pytest

from em_lib.study import config as study_config
from em_lib.study import jobs

BASE = {"datasets": {"g": {"kind": "gaussian_mixture", "n_samples": 100, "n_features": 2}}}


def merged(change):
    config = copy.deepcopy(BASE)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


SEQ = {"kind": "hmm_sequences", "n_sequences": 2, "sequence_length": 20}
BAD = {
    "unknown_key": ({"fit": {"n_inits": 4}}, ["fit:", "'n_inits' was unexpected"]),
    "wrong_type": ({"fit": {"max_iter": "many"}}, ["fit.max_iter", "is not of type"]),
    "rate_range": ({"sweep": {"missing_rate": [0.1, 1.5]}}, ["sweep.missing_rate.1", "1.5"]),
    "unknown_mechanism": (
        {"sweep": {"mechanism": ["MCAR", "MBAR"]}},
        ["sweep.mechanism.1", "'MBAR'"],
    ),
    "unknown_bundled": (
        {"datasets": {"f": {"kind": "bundled", "name": "irises"}}},
        ["datasets.f.name", "'irises'", "airquality"],
    ),
    "missing_file": (
        {"datasets": {"mine": {"kind": "table", "path": "nothere.csv"}}},
        ["datasets.mine.path: file not found: nothere.csv"],
    ),
    "non_numeric": (
        {"datasets": {"mine": {"kind": "table", "path": "bad.csv"}}},
        ["datasets.mine", "bad.csv", "'b'", "oops"],
    ),
    "one_row_csv": (
        {"datasets": {"mine": {"kind": "table", "path": "one.csv"}}},
        ["sweep.n_components", "dataset 'mine' has 1"],
    ),
    "k_too_large": (
        {"sweep": {"n_components": [2, 100]}},
        ["sweep.n_components", "K = 100", "'g' has 100"],
    ),
    "delta_without_zero": (
        {"sensitivity": {"delta": {"deltas": [-1.0, 1.0]}}},
        ["sensitivity.delta.deltas", "must contain 0"],
    ),
    "unknown_sweep_dataset": (
        {"sweep": {"dataset": ["h"]}},
        ["sweep.dataset: unknown dataset 'h'"],
    ),
    "unknown_delta_dataset": (
        {"sensitivity": {"delta": {"dataset": "h"}}},
        ["sensitivity.delta.dataset: unknown dataset 'h'"],
    ),
    "unknown_report_dataset": (
        {"report": {"dataset": "h"}},
        ["report.dataset: unknown dataset 'h'"],
    ),
    "report_method": (
        {"sweep": {"method": ["em"]}, "report": {"method": "mean_impute"}},
        ["report.method", "'mean_impute'", "['em']"],
    ),
    "report_model": ({"report": {"model": "tied"}}, ["report.model", "'tied'"]),
    "none_without_zero": (
        {"sweep": {"mechanism": ["none", "MAR"]}},
        ["sweep.mechanism", "'none' needs missing_rate 0"],
    ),
    "zero_without_none": (
        {"sweep": {"missing_rate": [0.0, 0.2]}},
        ["sweep.missing_rate", "rate 0"],
    ),
    "delta_mechanism": (
        {"sensitivity": {"delta": {"mechanism": "MNAR"}}},
        ["sensitivity.delta.mechanism", "MNAR"],
    ),
    "delta_replicate": (
        {"sensitivity": {"delta": {"replicate": 3}}},
        ["sensitivity.delta.replicate", "3"],
    ),
    "delta_variables": (
        {"sensitivity": {"delta": {"variables": [5]}}},
        ["sensitivity.delta.variables", "column 5"],
    ),
    "delta_component": (
        {"sensitivity": {"delta": {"conclusion": "weight_above", "component": 4}}},
        ["sensitivity.delta.component", "4"],
    ),
    "delta_level": (
        {"sensitivity": {"delta": {"level": 1.0}}},
        ["sensitivity.delta.level", "1.0"],
    ),
    "delta_negative_draws": (
        {"sensitivity": {"delta": {"n_draws": -1}}},
        ["sensitivity.delta.n_draws", "-1"],
    ),
    "delta_model": (
        {"sensitivity": {"delta": {"model": "tied"}}},
        ["sensitivity.delta.model", "'tied'"],
    ),
    "hmm_on_table": (
        {
            "datasets": {"g": {"kind": "gaussian_mixture", "models": ["hmm"]}},
            "hmm": {"enabled": True},
        },
        ["datasets.g.models", "sequence data"],
    ),
    "hmm_disabled": (
        {"datasets": {"s": {**SEQ, "models": ["hmm"]}}},
        ["datasets.s.models", "hmm.enabled"],
    ),
    "model_not_swept": (
        {"datasets": {"g": {"kind": "gaussian_mixture", "models": ["tied"]}}},
        ["datasets.g.models", "'tied' is not in sweep.model"],
    ),
    "missing_image": (
        {"datasets": {"p": {"kind": "image", "source": "nothere.png"}}},
        ["datasets.p.source: file not found: nothere.png"],
    ),
    "rate_unreachable": (
        {
            "datasets": {"g": {"kind": "gaussian_mixture", "n_features": 1}},
            "sweep": {"missing_rate": [0.9999], "mechanism": ["MAR"]},
        },
        ["sweep.missing_rate", "MAR"],
    ),
}


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.csv").write_text("a,b\n1.0,2.0\n3.0,oops\n")
    (tmp_path / "one.csv").write_text("a,b\n1.0,2.0\n")
    return tmp_path


@pytest.mark.parametrize("name", list(BAD))
def test_bad_config_names_key_and_value(in_tmp, name):
    change, needles = BAD[name]
    with pytest.raises(study_config.ConfigError) as caught:
        study_config.validate_config(merged(change))
    message = str(caught.value)
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    assert "\n" not in message and len(message) < 400


VALID = {
    "one_probability": {"sensitivity": {"probabilities": [0.95]}},
    "k1_one_model": {"sweep": {"model": ["full"], "n_components": [1]}},
    "none_only": {"sweep": {"mechanism": ["none"], "missing_rate": [0.0]}},
    "only_mnar": {"sweep": {"mechanism": ["MNAR"], "missing_rate": [0.2]}},
    "only_hmm": {"datasets": {"s": {**SEQ, "models": ["hmm"]}}, "hmm": {"enabled": True}},
    "airquality": {"datasets": {"air": {"kind": "bundled", "name": "airquality"}}},
}


@pytest.mark.parametrize("name", list(VALID))
def test_valid_configs_pass(in_tmp, name):
    config = study_config.validate_config(merged(VALID[name]))
    assert config["fit"]["n_init"] >= 1  # the schema's defaults are filled in


def test_broken_image_is_reported_by_the_job_naming_the_file(in_tmp):
    (in_tmp / "broken.png").write_bytes(b"not an image at all")
    spec = {"kind": "image", "source": "broken.png", "max_pixels": 100, "coordinate_weight": 0.0}
    with pytest.raises(study_config.ConfigError, match="broken.png"):
        jobs.prepare_dataset("p", spec, 0)
