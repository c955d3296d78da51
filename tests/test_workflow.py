"""Whole-workflow tests: the Snakefile on tiny configs.

* one tiny config run with --cores 2, with --cores 1, and killed and resumed: bit-identical
  aggregates; ``snakemake --report`` packages it;
* a matrix of valid configs unlike the default (one data set, no HMM, only HMM, no synthetic
  mask, only MNAR, K = 1, one model, tables with their own missing values, a photograph without
  known regions) each runs to the report;
* the real incomplete table with its own missing values only: K = 1 full by EM reaches the
  maximum of the observed-data normal likelihood found by direct numerical optimisation;
* bad configs stop before any job with one short message;
* the workflow works as a Snakemake module.

Every snakemake process costs seconds to start, so independent runs go in parallel.
"""

from __future__ import annotations

import os
import signal
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from workflow_run import ROOT, SNAKEMAKE, TIMEOUT, command, finish, prepare, start

from em_lib.study import results

pytestmark = pytest.mark.slow
TARGET = Path("results") / "experiment.nc"


def tiny_config():
    return {
        "root_seed": 11,
        "datasets": {
            "blobs": {
                "kind": "gaussian_mixture",
                "n_samples": 150,
                "n_features": 2,
                "n_components": 2,
                "separation": 4.0,
            },
            "seq": {
                "kind": "hmm_sequences",
                "models": ["hmm"],
                "n_sequences": 4,
                "sequence_length": 40,
                "n_components": 2,
            },
        },
        "sweep": {
            "model": ["diag", "spherical"],
            "n_components": [2],
            "mechanism": ["MAR"],
            "missing_rate": [0.2],
            "replicate": [0, 1],
        },
        "fit": {"n_init": 4, "max_iter": 60},
        "hmm": {"enabled": True},
        "sensitivity": {"delta": {"deltas": [-1.0, 0.0, 1.0], "n_draws": 1, "n_init": 2}},
    }


def fit_files(workdir):
    return sorted((Path(workdir) / "results" / "fits").rglob("*.npz"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A: --cores 2; B: --cores 1; C: --cores 1 killed (SIGKILL to the whole process group)
    once a fit output exists, then unlocked and resumed."""
    base = tmp_path_factory.mktemp("workflow")
    config = tiny_config()
    dirs = {name: prepare(base / name, config) for name in "ABC"}
    n_fits = 4  # two data sets x one mask x two replicates
    proc_a = start(command(dirs["A"], "--cores", "2"))
    proc_b = start(command(dirs["B"], "--cores", "1"))
    proc_c = start(command(dirs["C"], "--cores", "1"))
    deadline = time.monotonic() + TIMEOUT
    while len(fit_files(dirs["C"])) < 1 and proc_c.poll() is None:
        assert time.monotonic() < deadline, "run C produced no fit output"
        time.sleep(0.05)
    if proc_c.poll() is not None:
        pytest.fail(f"run C ended before it could be killed:\n{finish(proc_c)[1][-5000:]}")
    os.killpg(proc_c.pid, signal.SIGKILL)
    rc_c, out_c = finish(proc_c)
    killed_with = len(fit_files(dirs["C"]))
    assert rc_c != 0 and killed_with < n_fits, f"run C was not interrupted:\n{out_c[-2000:]}"
    locked_rc, locked_out = finish(start(command(dirs["C"], "--cores", "1")))
    rc, out = finish(start(command(dirs["C"], "--unlock")))
    assert rc == 0, out[-3000:]
    proc_c = start(command(dirs["C"], "--cores", "2"))
    outcomes = {"A": finish(proc_a), "B": finish(proc_b), "C": finish(proc_c)}
    for name, (rc, out) in outcomes.items():
        assert rc == 0, f"run {name} failed:\n{out[-5000:]}"
    loaded = {name: results.open_results(d / TARGET) for name, d in dirs.items()}
    return {
        "dirs": dirs,
        "results": loaded,
        "n_fits": n_fits,
        "killed_with": killed_with,
        "locked": (locked_rc, locked_out),
    }


def assert_bit_identical(left, right):
    left, right = results.deterministic_part(left), results.deterministic_part(right)
    assert left.attrs == right.attrs
    assert set(left.variables) == set(right.variables)
    for name, var in left.variables.items():
        other = right.variables[name]
        assert var.dims == other.dims and var.dtype == other.dtype, name
        if var.dtype.kind in "fiub":
            assert (
                np.ascontiguousarray(var.values).tobytes()
                == np.ascontiguousarray(other.values).tobytes()
            ), name
        else:
            assert np.array_equal(var.values, other.values), name


def test_aggregate_is_complete_and_labelled(runs):
    ds = runs["results"]["A"]
    assert {*results.SWEEP_DIMS, "method", "init", "iteration", "component", "feature"} <= set(
        ds.dims
    )
    assert ds.sizes["init"] == 4 and ds.sizes["iteration"] == 60
    assert ds["feature"].values.tolist() == ["x0", "x1"]
    blobs = ds["in_design"].sel(dataset="blobs", mechanism="MAR", missing_rate=0.2)
    assert bool(blobs.sel(model=["diag", "spherical"]).all())
    assert int(ds["true_n_components"].sel(dataset="blobs")) == 2
    fitted = ds["in_design"]
    assert bool((ds["fit_time"].where(fitted) > 0).sum() == fitted.sum())
    assert float(ds["fit_ari"].sel({"method": "em", "dataset": "blobs"}).max()) > 0.5
    transmat = ds["transmat"].sel({"dataset": "seq", "model": "hmm", "method": "em"})
    assert np.isfinite(transmat.sel(state_from=[0, 1], state_to=[0, 1])).all()
    assert not ds["in_design"].sel(dataset="blobs", model="hmm").any()
    for name, var in ds.variables.items():
        assert "long_name" in var.attrs and "units" in var.attrs, name
    assert yaml.safe_load(ds.attrs["config"])["root_seed"] == 11
    assert (runs["dirs"]["A"] / "results" / "report.html").stat().st_size > 10_000


def test_jobs_run_with_one_blas_thread_and_log(runs):
    logs = sorted((runs["dirs"]["A"] / "results" / "logs" / "fits").rglob("*.log"))
    assert len(logs) == runs["n_fits"]
    for log in logs:
        text = log.read_text()
        assert "rule fit, 1 thread(s)" in text and "fitting CPU" in text, log


def test_cores_do_not_change_the_results(runs):
    assert_bit_identical(runs["results"]["A"], runs["results"]["B"])


def test_killed_and_resumed_run_gives_the_same_results(runs):
    assert runs["killed_with"] < runs["n_fits"]
    assert_bit_identical(runs["results"]["A"], runs["results"]["C"])
    # the README's resume advice: a rerun after kill -9 meets Snakemake's lock first
    rc, output = runs["locked"]
    assert rc != 0 and "--unlock" in output


def test_snakemake_report_packages_the_run(runs):
    workdir = runs["dirs"]["A"]
    rc, output = finish(start(command(workdir, "--report", "report.zip")))
    assert rc == 0, output[-3000:]
    with zipfile.ZipFile(workdir / "report.zip") as archive:
        names = archive.namelist()
    assert any(name.endswith("report.html") for name in names), names[:20]
    assert any(name.endswith("criteria.png") for name in names)


# ------------------------------------------------------------------------------------------
# valid configs unlike the default
# ------------------------------------------------------------------------------------------


def _photo(path):
    """A small 'photograph': a smooth colour field with a bright disc, saved as PNG."""
    import matplotlib.image

    rows, cols = np.mgrid[0:24, 0:28] / 24.0
    image = np.stack([0.2 + 0.5 * rows, 0.3 + 0.4 * cols, 0.5 + 0.0 * rows], axis=2)
    disc = (rows - 0.5) ** 2 + (cols - 0.6) ** 2 < 0.08
    image[disc] = [0.9, 0.8, 0.2]
    noise = np.random.default_rng(0).normal(0, 0.03, image.shape)
    matplotlib.image.imsave(path, np.clip(image + noise, 0, 1))


def _table(path):
    rng = np.random.default_rng(3)
    X = np.vstack([rng.normal(0, 1, (40, 3)), rng.normal(4, 1, (40, 3))])
    X[rng.random(X.shape) < 0.1] = np.nan
    lines = ["a,b,c"] + [",".join("" if np.isnan(v) else f"{v:.4f}" for v in row) for row in X]
    Path(path).write_text("\n".join(lines) + "\n")


SMALL_FIT = {"n_init": 3, "max_iter": 40}
VALID_CONFIGS = {
    "real_table_as_given_k1": {
        "datasets": {"air": {"kind": "bundled", "name": "airquality"}},
        "sweep": {
            "model": ["full"],
            "n_components": [1],
            "mechanism": ["none"],
            "missing_rate": [0.0],
            "method": ["em"],
        },
        "fit": {"n_init": 2, "max_iter": 200},
    },
    "one_dataset_only_mnar_one_model": {
        "datasets": {"g": {"kind": "gaussian_mixture", "n_samples": 120, "n_features": 2}},
        "sweep": {
            "model": ["diag"],
            "n_components": [1, 2],
            "mechanism": ["MNAR"],
            "missing_rate": [0.15],
        },
        "fit": SMALL_FIT,
    },
    "only_hmm": {
        "datasets": {
            "s": {
                "kind": "hmm_sequences",
                "models": ["hmm"],
                "n_sequences": 3,
                "sequence_length": 30,
                "n_components": 2,
            }
        },
        "sweep": {"n_components": [2], "mechanism": ["none", "MCAR"], "missing_rate": [0.0, 0.1]},
        "fit": SMALL_FIT,
        "hmm": {"enabled": True},
    },
    "own_table_and_simulation": {
        "datasets": {
            "mine": {"kind": "table", "path": "mine.csv"},
            "g": {"kind": "gaussian_mixture", "n_samples": 100, "n_features": 3},
        },
        "sweep": {
            "model": ["full", "spherical"],
            "n_components": [1, 2],
            "mechanism": ["none", "MAR"],
            "missing_rate": [0.0, 0.2],
        },
        "fit": SMALL_FIT,
    },
    "photograph": {
        "datasets": {"photo": {"kind": "image", "source": "photo.png", "max_pixels": 700}},
        "sweep": {
            "model": ["full"],
            "n_components": [2, 3],
            "mechanism": ["MCAR"],
            "missing_rate": [0.2],
        },
        "fit": SMALL_FIT,
    },
}


@pytest.fixture(scope="module")
def valid_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("valid")
    outcomes, procs = {}, {}
    names = list(VALID_CONFIGS)
    for name in names:
        workdir = prepare(base / name, {"root_seed": 5, **VALID_CONFIGS[name]})
        _table(workdir / "mine.csv")
        _photo(workdir / "photo.png")
        procs[name] = start(command(workdir, "--cores", "1"))
        if len(procs) == 2:  # two at a time on two cores
            for running, proc in procs.items():
                outcomes[running] = (base / running, *finish(proc))
            procs = {}
    for running, proc in procs.items():
        outcomes[running] = (base / running, *finish(proc))
    return outcomes


@pytest.mark.parametrize("name", list(VALID_CONFIGS))
def test_valid_config_runs_to_the_report(valid_runs, name):
    workdir, rc, output = valid_runs[name]
    assert rc == 0, f"{name} failed:\n{output[-5000:]}"
    page = (workdir / "results" / "report.html").read_text()
    assert "Methods" in page and "Traceback" not in page
    ds = results.open_results(workdir / TARGET)
    assert bool(ds["in_design"].any()) and not bool(
        ds["fit_failed"].where(ds["in_design"], False).all()
    )


def test_real_table_uses_every_row_and_reaches_the_direct_maximum(valid_runs):
    """airquality with its own missing values only, K = 1 full: the EM fit equals the maximum
    of the observed-data multivariate normal likelihood found by scipy.optimize."""
    from scipy import optimize

    from em_lib.data import load_dataset
    from em_lib.numerics.criteria import logsumexp  # noqa: F401 (library import check)

    workdir, rc, output = valid_runs["real_table_as_given_k1"]
    assert rc == 0, output[-3000:]
    ds = results.open_results(workdir / TARGET)
    cell = ds.sel(
        {
            "dataset": "air",
            "model": "full",
            "n_components": 1,
            "mechanism": "none",
            "missing_rate": 0.0,
            "replicate": 0,
            "method": "em",
        }
    )
    X = load_dataset("airquality").X
    assert int(cell["n_rows_used"]) == X.shape[0] == 153
    d = X.shape[1]
    rows = np.tril_indices(d)

    def negative_log_likelihood(theta):
        mean, lower = theta[:d], np.zeros((d, d))
        lower[rows] = theta[d:]
        lower[np.diag_indices(d)] = np.exp(np.diag(lower))
        cov = lower @ lower.T
        total = 0.0
        for x in X:
            seen = ~np.isnan(x)
            diff = x[seen] - mean[seen]
            sub = cov[np.ix_(seen, seen)]
            sign, logdet = np.linalg.slogdet(sub)
            total += -0.5 * (
                seen.sum() * np.log(2 * np.pi) + logdet + diff @ np.linalg.solve(sub, diff)
            )
        return -total

    start_mean = np.nanmean(X, axis=0)
    start_lower = np.diag(np.log(np.nanstd(X, axis=0)))[rows]
    best = optimize.minimize(
        negative_log_likelihood,
        np.concatenate([start_mean, start_lower]),
        method="BFGS",
        options={"gtol": 1e-8, "maxiter": 5000},
    )
    best = optimize.minimize(
        negative_log_likelihood,
        best.x,
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000},
    )
    direct = -best.fun
    em = float(cell["fit_log_likelihood"])
    assert em == pytest.approx(direct, rel=1e-6)
    assert em >= direct - 1e-6 * abs(direct)


def test_photograph_without_regions_shows_agreement_not_accuracy(valid_runs):
    workdir, rc, output = valid_runs["photograph"]
    assert rc == 0, output[-3000:]
    summary = yaml.safe_load((workdir / "results" / "figures" / "image_photo.json").read_text())
    assert summary["has_truth"] is False
    assert "undamaged segmentation" in summary["caption"]


def test_sections_that_do_not_apply_are_left_out_with_a_note(valid_runs):
    workdir, rc, _ = valid_runs["real_table_as_given_k1"]
    page = (workdir / "results" / "report.html").read_text()
    assert "no HMM runs in this experiment" in page
    assert "no synthetic missingness" in page
    workdir, rc, _ = valid_runs["only_hmm"]
    page = (workdir / "results" / "report.html").read_text()
    assert "no Gaussian-mixture" in page


# ------------------------------------------------------------------------------------------
# bad configs through Snakemake: one short message, no job
# ------------------------------------------------------------------------------------------

BAD_CONFIGS = {
    "unknown_key": ({"fit": {"n_inits": 4}}, ["fit", "n_inits"]),
    "k_too_large": ({"sweep": {"n_components": [500]}}, ["sweep.n_components", "K = 500"]),
    "no_zero_delta": (
        {"sensitivity": {"delta": {"deltas": [-1.0, 1.0]}}},
        ["sensitivity.delta.deltas", "must contain 0"],
    ),
}


def test_bad_configs_stop_before_any_job_with_one_short_message(tmp_path):
    procs = {}
    for name, (change, _) in BAD_CONFIGS.items():
        config = {"datasets": {"g": {"kind": "gaussian_mixture", "n_samples": 100}}, **change}
        procs[name] = start(command(prepare(tmp_path / name, config), "-n", "--cores", "1"))
    lint = start([SNAKEMAKE, "--lint", "--cores", "1"], cwd=ROOT)
    for name, proc in procs.items():
        rc, output = finish(proc)
        assert rc != 0, f"{name} did not fail:\n{output[-2000:]}"
        for needle in BAD_CONFIGS[name][1]:
            assert needle in output, f"{name}: {needle!r} not in:\n{output[-3000:]}"
        assert len(output.splitlines()) < 15, output  # no schema or config dump
        assert not (tmp_path / name / "results").exists()
    rc, output = finish(lint)
    assert rc == 0 and "Congratulations, your workflow is in a good condition!" in output, output


def test_module_use_from_another_workflow(tmp_path):
    """The example of workflow/MODULE.md, dry-run."""
    (tmp_path / "Snakefile").write_text(f"""\
module em:
    snakefile:
        "{ROOT / "Snakefile"}"
    config:
        config["em"]
    prefix:
        "em"


use rule * from em as em_*


rule all:
    default_target: True
    input:
        rules.em_all.input,
""")
    config = {
        "em": {
            **tiny_config(),
            "hmm": {"enabled": False},
            "datasets": {"iris": {"kind": "bundled", "name": "iris"}},
        }
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    rc, output = finish(
        start([SNAKEMAKE, "-n", "--cores", "1", "--configfile", "config.yaml"], cwd=tmp_path)
    )
    assert rc == 0, output[-3000:]
    assert "em/results/experiment.nc" in output
    for rule, count in (("em_dataset", 1), ("em_mask", 2), ("em_fit", 2), ("em_aggregate", 1)):
        assert any(line.split() == [rule, str(count)] for line in output.splitlines()), rule
