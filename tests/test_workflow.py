"""Whole-workflow tests: the Snakefile on one tiny config, run with --cores 2, with --cores 1 and
killed-and-resumed, must give bit-identical aggregates; bad configurations must stop before any
job runs; the workflow must work as a Snakemake module.

Every snakemake process costs several seconds to start, so independent runs go in parallel.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from em_lib import experiment as exp
from em_lib import results

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
HMM_OK, _ = exp.hmm_available()
TIMEOUT = 300


def tiny_config():
    datasets = {
        "blobs": {
            "kind": "gaussian_mixture",
            "n_samples": 150,
            "n_features": 2,
            "n_components": 2,
            "separation": 4.0,
        }
    }
    if HMM_OK:
        datasets["seq"] = {
            "kind": "hmm_sequences",
            "models": ["hmm"],
            "n_sequences": 4,
            "sequence_length": 40,
            "n_components": 2,
        }
    return {
        "root_seed": 11,
        "datasets": datasets,
        "sweep": {
            "model": ["diag", "spherical"],
            "n_components": [2],
            "mechanism": ["MAR"],
            "missing_rate": [0.2],
            "replicate": [0],
        },
        "fit": {"n_init": 4, "starts_per_job": 2, "max_iter": 60},
        "hmm": {"enabled": HMM_OK},
    }


def command(workdir, *args):
    return [
        SNAKEMAKE,
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(Path(workdir) / "experiment.yaml"),
        *args,
    ]


def prepare(workdir, config):
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "experiment.yaml").write_text(yaml.safe_dump(config))
    return workdir


def start(cmd, **kwargs):
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        **kwargs,
    )


def finish(proc, timeout=TIMEOUT):
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"snakemake timed out:\n{output[-3000:]}")
    return proc.returncode, output


def fit_files(workdir):
    return sorted((Path(workdir) / "results" / "fits").rglob("*.npz"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A: --cores 2; B: --cores 1; C: --cores 1 killed (SIGKILL to the whole process group)
    once two fit outputs exist, then unlocked and resumed with --rerun-incomplete."""
    base = tmp_path_factory.mktemp("workflow")
    config = tiny_config()
    dirs = {name: prepare(base / name, config) for name in "ABC"}
    n_fits = len(exp.design(exp_config(config))["fit_jobs"])
    proc_a = start(command(dirs["A"], "--cores", "2"))
    proc_b = start(command(dirs["B"], "--cores", "1"))
    proc_c = start(command(dirs["C"], "--cores", "1"))
    deadline = time.monotonic() + TIMEOUT
    while len(fit_files(dirs["C"])) < 2 and proc_c.poll() is None:
        assert time.monotonic() < deadline, "run C produced no fit output"
        time.sleep(0.1)
    if proc_c.poll() is not None:
        pytest.fail(f"run C ended before it could be killed:\n{finish(proc_c)[1][-5000:]}")
    os.killpg(proc_c.pid, signal.SIGKILL)
    rc_c, out_c = finish(proc_c)
    killed_with = len(fit_files(dirs["C"]))
    assert rc_c != 0 and killed_with < n_fits, f"run C was not interrupted:\n{out_c[-2000:]}"
    rc, out = finish(start(command(dirs["C"], "--unlock")))
    assert rc == 0, out[-3000:]
    proc_c = start(command(dirs["C"], "--cores", "2", "--rerun-incomplete"))
    outcomes = {"A": finish(proc_a), "B": finish(proc_b), "C": finish(proc_c)}
    for name, (rc, out) in outcomes.items():
        assert rc == 0, f"run {name} failed:\n{out[-5000:]}"
    loaded = {
        name: results.open_results(d / "results" / "experiment.nc") for name, d in dirs.items()
    }
    return {
        "dirs": dirs,
        "results": loaded,
        "config": config,
        "n_fits": n_fits,
        "killed_with": killed_with,
        "resume_log": outcomes["C"][1],
    }


def exp_config(config):
    from snakemake.utils import validate

    config = yaml.safe_load(yaml.safe_dump(config))
    validate(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    return config


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
    assert set(ds.dims) == {*results.SWEEP_DIMS, "method", "init", "iteration", "chunk"}
    assert ds.sizes["init"] == 4 and ds.sizes["chunk"] == 2 and ds.sizes["iteration"] == 60
    blobs = ds["in_design"].sel(dataset="blobs", mechanism="MAR", missing_rate=0.2)
    assert bool(blobs.sel(model=["diag", "spherical"]).all())
    assert ds["in_design"].sum().item() == runs["n_fits"] // 2 * 3  # 2 chunks, 3 methods
    fitted = ds["in_design"].broadcast_like(ds["fit_time"])
    assert bool((ds["fit_time"].where(fitted) > 0).sum() == fitted.sum())
    assert float(ds["ari"].sel({"method": "em", "dataset": "blobs"}).max()) > 0.5
    if HMM_OK:
        assert np.isfinite(ds["transmat_abs_error"].sel(dataset="seq", model="hmm")).all()
        assert not ds["in_design"].sel(dataset="blobs", model="hmm").any()
    for name, var in ds.variables.items():
        assert "long_name" in var.attrs and "units" in var.attrs, name
    assert yaml.safe_load(ds.attrs["config"])["root_seed"] == 11
    assert ds.attrs["git_commit"] and ds.attrs["numpy_version"] == np.__version__


def test_jobs_run_with_one_blas_thread_and_log(runs):
    logs = sorted((runs["dirs"]["A"] / "results" / "logs" / "fits").rglob("*.log"))
    assert len(logs) == runs["n_fits"]
    for log in logs:
        text = log.read_text()
        assert "with 1 BLAS thread(s)" in text and "em: fit" in text, log


def test_cores_do_not_change_the_results(runs):
    assert_bit_identical(runs["results"]["A"], runs["results"]["B"])


def test_killed_and_resumed_run_gives_the_same_results(runs):
    assert runs["killed_with"] < runs["n_fits"]
    assert_bit_identical(runs["results"]["A"], runs["results"]["C"])
    # run times are real measurements and differ between runs
    assert not np.array_equal(
        runs["results"]["A"]["fit_time"].values, runs["results"]["C"]["fit_time"].values
    )


BAD_CONFIGS = {
    "unknown_key": ({"fit": {"n_inits": 4}}, ["n_inits", "Additional properties"]),
    "wrong_type": ({"fit": {"max_iter": "many"}}, ["max_iter", "is not of type 'integer'"]),
    "rate_range": (
        {"sweep": {"missing_rate": [0.1, 1.5]}},
        ["missing_rate", "1.5 is greater than or equal to the maximum of 1"],
    ),
    "unknown_mechanism": (
        {"sweep": {"mechanism": ["MCAR", "MBAR"]}},
        ["mechanism", "'MBAR' is not one of"],
    ),
    "unknown_dataset": (
        {"datasets": {"flowers": {"kind": "bundled", "name": "irises"}}},
        ["datasets.flowers.name: unknown bundled dataset 'irises'"],
    ),
    "missing_file": (
        {"datasets": {"mine": {"kind": "table", "path": "nothere.csv"}}},
        ["datasets.mine.path: file not found: nothere.csv"],
    ),
    "non_numeric": (
        {"datasets": {"mine": {"kind": "table", "path": "bad.csv"}}},
        ["datasets.mine", "bad.csv", "column 'b' is not numeric", "'oops'"],
    ),
}


def test_bad_configs_stop_before_any_job_and_lint_is_clean(tmp_path):
    procs = {}
    for name, (change, _) in BAD_CONFIGS.items():
        config = {"datasets": {"g": {"kind": "gaussian_mixture"}}, **change}
        workdir = prepare(tmp_path / name, config)
        (workdir / "bad.csv").write_text("a,b\n1.0,2.0\n3.0,oops\n")
        procs[name] = start(command(workdir, "-n", "--cores", "1"))
    lint = start([SNAKEMAKE, "--lint", "--cores", "1"], cwd=ROOT)
    for name, proc in procs.items():
        rc, output = finish(proc)
        assert rc != 0, f"{name} did not fail:\n{output[-2000:]}"
        for needle in BAD_CONFIGS[name][1]:
            assert needle in output, f"{name}: {needle!r} not in:\n{output[-3000:]}"
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
    for rule, count in (("em_dataset", 1), ("em_mask", 1), ("em_fit", 4), ("em_aggregate", 1)):
        assert any(line.split() == [rule, str(count)] for line in output.splitlines()), rule
