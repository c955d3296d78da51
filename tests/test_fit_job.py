"""A workflow fit job fits exactly what the library's estimators fit with the same settings and
seeds: one fitting path (em_lib.numerics.fitting / em_lib.numerics.hmm drivers)."""

from __future__ import annotations

import numpy as np
import pytest

from em_lib import GaussianHMM, GaussianMixture
from em_lib.numerics.fitting import MixtureLattice
from em_lib.study import config as study_config
from em_lib.study import design, jobs
from em_lib.study.seeds import seed_sequence

FIT = {"n_init": 5, "tol": 1e-3, "max_iter": 80, "reg_covar": 1e-6}


def _config(datasets, models, grid, hmm=False):
    return study_config.complete_config(
        {
            "root_seed": 7,
            "datasets": datasets,
            "sweep": {
                "model": models,
                "n_components": grid,
                "mechanism": ["MCAR"],
                "missing_rate": [0.15],
                "method": ["em", "complete_case"],
            },
            "fit": FIT,
            "hmm": {"enabled": hmm, "covariance_type": "diag"},
        }
    )


def _job_and_data(config):
    job = design.mask_jobs(config)[0]
    data = jobs.prepare_dataset(job.dataset, config["datasets"][job.dataset], config["root_seed"])
    mask = jobs.make_mask(data["X"], job, root_seed=config["root_seed"], strength=2.0)["mask"]
    return job, data, mask, np.where(mask, np.nan, data["X"])


def test_mixture_fit_job_equals_the_estimator_on_data_with_missing_values():
    config = _config(
        {"g": {"kind": "gaussian_mixture", "n_samples": 200, "n_features": 3, "n_components": 3}},
        ["full", "diag"],
        [2, 3],
    )
    job, data, mask, X_obs = _job_and_data(config)
    assert np.isnan(X_obs).any()
    out = jobs.fit_job(data, mask, job, config)
    seed = seed_sequence(config["root_seed"], "init", **job.labels)
    models, grid = out["model"].tolist(), out["n_components"].tolist()
    em = out["method"].tolist().index("em")
    m, k = models.index("full"), grid.index(3)
    estimator = GaussianMixture(
        3, covariance_type="full", nested_starts=True, random_state=seed, **FIT
    ).fit(X_obs)
    starts = estimator.starts_
    random = np.flatnonzero([":" not in kind for kind in estimator.start_origin_])
    assert random.size == FIT["n_init"]
    # every random start's final log-likelihood on the data it was fitted to, its iterations
    np.testing.assert_allclose(
        out["start_train_log_likelihood"][m, k, em],
        starts.log_likelihood[random],
        rtol=1e-12,
        atol=0,
    )
    np.testing.assert_array_equal(out["start_n_iter"][m, k, em], starts.n_iter[random])
    np.testing.assert_array_equal(
        out["start_kind"][m, k, em], estimator.start_origin_[random].astype(str)
    )
    # the fitted model's parameters
    np.testing.assert_allclose(out["weights"][m, k, em, :3], estimator.weights_, rtol=1e-12)
    np.testing.assert_allclose(out["means"][m, k, em, :3], estimator.means_, rtol=1e-12)
    np.testing.assert_allclose(out["covariances"][m, k, em, :3], estimator.covariances_, rtol=1e-12)
    assert out["fit_train_log_likelihood"][m, k, em] == pytest.approx(
        estimator.lower_bound_ * starts.n_samples, rel=1e-12
    )
    # every start's parameters: the lattice cell the job fits (jobs.fit_settings, one lattice
    # per method on the training data) holds the same per-start parameters as the estimator
    lattice = MixtureLattice(X_obs, jobs.fit_settings(config)["mixture"], seed)
    cell = lattice.fit(3, "full").starts
    for name in ("weights", "means", "covariances", "log_likelihood"):
        np.testing.assert_allclose(
            getattr(cell, name), getattr(starts, name), rtol=1e-12, atol=0, err_msg=name
        )


def test_hmm_fit_job_equals_the_estimator():
    config = _config(
        {
            "s": {
                "kind": "hmm_sequences",
                "models": ["hmm"],
                "n_sequences": 3,
                "sequence_length": 50,
                "n_components": 2,
            }
        },
        ["diag"],
        [2],
        hmm=True,
    )
    job, data, mask, X_obs = _job_and_data(config)
    out = jobs.fit_job(data, mask, job, config)
    seed = seed_sequence(config["root_seed"], "init", **job.labels)
    estimator = GaussianHMM(
        2,
        covariance_type="diag",
        init=config["hmm"]["init"],
        n_init=FIT["n_init"],
        tol=FIT["tol"],
        n_iter=FIT["max_iter"],
        random_state=seed,
    ).fit(X_obs, data["lengths"])
    em = out["method"].tolist().index("em")
    np.testing.assert_allclose(
        out["start_train_log_likelihood"][0, 0, em],
        estimator.starts_.log_likelihood,
        rtol=1e-12,
        atol=0,
    )
    np.testing.assert_allclose(out["transmat"][0, 0, em, :2, :2], estimator.transmat_, rtol=1e-12)
    np.testing.assert_allclose(out["means"][0, 0, em, :2], estimator.means_, rtol=1e-12)
    assert out["fit_train_log_likelihood"][0, 0, em] == pytest.approx(
        estimator.fit_result_.log_likelihood, rel=1e-12
    )
    np.testing.assert_array_equal(out["start_kind"][0, 0, em], estimator.start_origin_)


def test_fit_job_records_cells_it_cannot_fit():
    config = _config(
        {"g": {"kind": "gaussian_mixture", "n_samples": 12, "n_features": 4, "n_components": 2}},
        ["full"],
        [1, 2],
    )
    config["sweep"]["missing_rate"] = [0.5]
    job = design.MaskJob("g", "MCAR", 0.5, 0)
    data = jobs.prepare_dataset("g", config["datasets"]["g"], 7)
    mask = jobs.make_mask(data["X"], job, root_seed=7, strength=2.0)["mask"]
    out = jobs.fit_job(data, mask, job, config)
    cc = out["method"].tolist().index("complete_case")
    assert out["fit_failed"][0, 1, cc]
    assert "rows to fit" in out["fit_failure_reason"][0, 1, cc]


def test_fit_job_flags_degenerate_fits_on_tied_real_data(tmp_path):
    """Old Faithful's tied values: at large K a diag fit puts components on a few tied rows
    (the spurious maxima select_mixture passes over); the fit job flags them with the same
    rule (fit_degenerate), computed on the rows it fitted, and leaves K = 1 unflagged."""
    from em_lib.data import load_dataset
    from em_lib.selection import data_covariance, degenerate

    X = np.asarray(load_dataset("old_faithful").X, dtype=float)
    path = tmp_path / "faithful.csv"
    np.savetxt(path, X, delimiter=",", header="eruptions,waiting", comments="")
    config = study_config.complete_config(
        {
            "root_seed": 3,
            "datasets": {"faithful": {"kind": "table", "path": str(path)}},
            "sweep": {
                "model": ["diag"],
                "n_components": [1, 8],
                "mechanism": ["none"],
                "missing_rate": [0.0],
                "method": ["em"],
            },
            "fit": FIT,
            "hmm": {"enabled": False},
        }
    )
    job = design.mask_jobs(config)[0]
    data = jobs.prepare_dataset(job.dataset, config["datasets"][job.dataset], config["root_seed"])
    mask = np.zeros(data["X"].shape, dtype=bool)
    out = jobs.fit_job(data, mask, job, config)
    grid = out["n_components"].tolist()
    flags = out["fit_degenerate"][0, :, 0]
    covariance = data_covariance(data["X"])
    for k, flag in zip(grid, flags, strict=True):
        i = grid.index(k)
        full = out["covariances"][0, i, 0][:k]
        expected = degenerate(out["weights"][0, i, 0][:k], full, "full", covariance, len(X))
        if k == 1:
            assert not flag
        # the job used the diag rule (2 rows per component), the full rule needs more rows
        assert bool(flag) <= expected
    assert flags[grid.index(8)]
