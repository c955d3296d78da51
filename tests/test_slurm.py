"""End-to-end run of the workflow on a real SLURM cluster through profiles/slurm.

Skipped unless EM_LIB_SLURM_TEST=1 and `sbatch` is on PATH; ci/slurm/up.sh brings up a one-node
test cluster (see docs/slurm.md). Other settings, all optional: EM_LIB_SLURM_PARTITION,
EM_LIB_SLURM_ACCOUNT, EM_LIB_SLURM_CORES (CPUs of the node, default 2), EM_LIB_SLURM_TIMEOUT
(seconds per Snakemake run, default 600).

The tiny configuration of tests/test_workflow.py (four fit jobs, one per mask) runs twice on
SLURM with failure injection, next to a local reference run:

1. `--retries 0`: once the first bundle of fits has finished, the other bundle is cancelled with
   scancel. The run must fail and name the cancelled SLURM job; finished fits stay.
2. The same command without `--retries 0` (the profile retries): the rerun submits only the
   missing fits, and its bundle is cancelled as soon as it runs; Snakemake must resubmit it with
   doubled memory (resources scale with `attempt`) and complete. Finished fits are not redone
   (their mtimes are unchanged), every fit ran inside a SLURM job that accounting marks
   COMPLETED, and the aggregate is bit-identical to the local run.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from test_workflow import assert_bit_identical, fit_files, tiny_config
from workflow_run import ROOT, command, prepare, start

from em_lib.study import config as study_config
from em_lib.study import design, results

needs_slurm = pytest.mark.skipif(
    os.environ.get("EM_LIB_SLURM_TEST") != "1" or shutil.which("sbatch") is None,
    reason="needs a SLURM cluster: set EM_LIB_SLURM_TEST=1 (see docs/slurm.md)",
)

TIMEOUT = int(os.environ.get("EM_LIB_SLURM_TIMEOUT", "600"))
CORES = os.environ.get("EM_LIB_SLURM_CORES", "2")
TARGET = "results/experiment.nc"
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")


def slurm_command(workdir, *args):
    resources = [
        f"{key}={os.environ[var]}"
        for key, var in (
            ("slurm_partition", "EM_LIB_SLURM_PARTITION"),
            ("slurm_account", "EM_LIB_SLURM_ACCOUNT"),
        )
        if os.environ.get(var)
    ]
    # --default-resources takes several values: keep it away from the target
    return command(
        workdir,
        *(["--default-resources", *resources] if resources else []),
        *args,
        "--workflow-profile",
        str(ROOT / "profiles" / "slurm"),
        "--cores",
        CORES,
        # 4 fit jobs (one per mask) in bundles of 2: two SLURM jobs of 2 CPUs, one after the
        # other on a 2-CPU node
        "--group-components",
        "fits=2",
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--slurm-keep-successful-logs",
        TARGET,
    )


def finish(proc, timeout=TIMEOUT):
    """Wait for Snakemake; past the timeout stop it with SIGINT (it ignores SIGTERM while it
    polls SLURM), then SIGKILL."""
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
        pytest.fail(f"snakemake timed out:\n{output[-5000:]}")
    return proc.returncode, output


def job_states(job_ids):
    """{job id: (state, ReqMem)} from accounting (sacct), else from squeue (without slurmdbd
    sacct fails; squeue keeps finished jobs for MinJobAge seconds)."""
    ids = ",".join(job_ids)
    query = ["sacct", "-n", "-X", "-P", "-j", ids, "-o", "JobID,State,ReqMem"]
    out = subprocess.run(query, capture_output=True, text=True)
    if out.returncode != 0:
        query = ["squeue", "-h", "-t", "all", "-j", ids, "-o", "%i|%T|%m"]
        out = subprocess.run(query, capture_output=True, text=True, check=True)
    rows = [line.split("|") for line in out.stdout.splitlines() if line]
    # sacct writes "CANCELLED by <uid>"
    return {job: (state.split()[0], mem) for job, state, mem in rows}


def wait_for_states(job_ids, done=("COMPLETED", "CANCELLED", "FAILED", "OUT_OF_MEMORY")):
    # job records reach slurmdbd asynchronously
    deadline = time.monotonic() + 60
    while True:
        states = job_states(job_ids)
        if all(states.get(j, ("?",))[0] in done for j in job_ids):
            return states
        assert time.monotonic() < deadline, f"jobs not finished in accounting: {states}"
        time.sleep(1)


def fit_job_ids(output):
    """SLURM job ids and log files of the fit bundles that a Snakemake run submitted."""
    return [(job, Path(log)) for job, log in SUBMITTED.findall(output) if "group_fits" in log]


def cancel_when(proc, workdir, condition, seen):
    """Poll until `condition(submitted fit jobs)` names a job id, scancel it, return it."""
    deadline = time.monotonic() + TIMEOUT
    log = Path(workdir) / "snakemake.out"
    while time.monotonic() < deadline and proc.poll() is None:
        jobs = [j for j, _ in fit_job_ids(log.read_text())] if log.exists() else []
        victim = condition([j for j in jobs if j not in seen])
        if victim:
            subprocess.run(["scancel", victim], check=True)
            return victim
        time.sleep(0.5)
    pytest.fail(f"no fit job to cancel:\n{log.read_text()[-5000:] if log.exists() else ''}")


def running(job):
    out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True)
    return out.stdout.strip() == "RUNNING"


def run_logged(cmd, workdir):
    """Start Snakemake with its output in workdir/snakemake.out (read while it runs)."""
    out = open(Path(workdir) / "snakemake.out", "w")  # noqa: SIM115 - closed by the caller
    proc = subprocess.Popen(
        cmd, stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    return proc, out


def wait_logged(proc, out, workdir):
    try:
        proc.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        out.close()
        pytest.fail(f"snakemake timed out:\n{(Path(workdir) / 'snakemake.out').read_text()}")
    out.close()
    return proc.returncode, (Path(workdir) / "snakemake.out").read_text()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("slurm")
    config = tiny_config()
    n_fits = len(design.mask_jobs(study_config.complete_config(config)))
    local, cluster = prepare(base / "local", config), prepare(base / "slurm", config)
    started = time.monotonic()
    proc_local = start(command(local, "--cores", "1", TARGET))

    # 1. no retries: cancel the second fit bundle once the first one's fits exist
    proc, out = run_logged(slurm_command(cluster, "--retries", "0"), cluster)
    bundle = min(2, n_fits - 1)

    def second_bundle_after_first(jobs):
        if len(jobs) >= 2 and len(fit_files(cluster)) >= bundle:
            return jobs[1]
        return None

    cancelled_1 = cancel_when(proc, cluster, second_bundle_after_first, seen=())
    rc_1, out_1 = wait_logged(proc, out, cluster)
    finished = {p: p.stat().st_mtime_ns for p in fit_files(cluster)}
    os.rename(cluster / "snakemake.out", cluster / "snakemake-1.out")

    # 2. rerun with the profile's retries; cancel its first fit bundle while it runs
    proc, out = run_logged(slurm_command(cluster), cluster)
    seen = {j for j, _ in fit_job_ids(out_1)}
    cancelled_2 = cancel_when(
        proc, cluster, lambda jobs: next((j for j in jobs if running(j)), None), seen
    )
    rc_2, out_2 = wait_logged(proc, out, cluster)
    elapsed = time.monotonic() - started
    rc_local, out_local = finish(proc_local)
    assert rc_local == 0, out_local[-5000:]
    all_jobs = [j for j, _ in SUBMITTED.findall(out_1 + out_2)]
    print(
        f"\nSLURM e2e: {elapsed:.0f} s wall, {len(all_jobs)} SLURM jobs "
        f"({len(fit_job_ids(out_1 + out_2))} fit bundles), cancelled {cancelled_1} (no retries) "
        f"and {cancelled_2} (retried)"
    )
    return {
        "n_fits": n_fits,
        "dirs": {"local": local, "slurm": cluster},
        "first": (rc_1, out_1, cancelled_1),
        "second": (rc_2, out_2, cancelled_2),
        "finished": finished,
        "jobs": all_jobs,
    }


def reported(out, job):
    """Snakemake names a failed bundle, its SLURM job's log (hence job id) and its fits."""
    failed = out[out.index("Error in group fits") :]
    return f"group_fits_fit/{job}.log" in failed.splitlines()[1] and "rule fit:" in failed


@pytest.mark.slow
@needs_slurm
def test_cancelled_job_is_reported_and_finished_fits_stay(runs):
    rc, out, cancelled = runs["first"]
    assert rc != 0, out[-5000:]
    assert reported(out, cancelled), out[-5000:]
    assert "Exiting because a job execution failed" in out
    assert wait_for_states([cancelled])[cancelled][0] == "CANCELLED"
    assert 0 < len(runs["finished"]) < runs["n_fits"], out[-5000:]


@pytest.mark.slow
@needs_slurm
def test_rerun_retries_with_more_memory_and_completes(runs):
    rc, out, cancelled = runs["second"]
    assert rc == 0, out[-5000:]
    assert reported(out, cancelled), out[-5000:]
    fit_jobs = [j for j, _ in fit_job_ids(out)]
    assert fit_jobs[0] == cancelled and len(fit_jobs) == 2, out[-5000:]
    states = wait_for_states(fit_jobs)
    assert states[cancelled][0] == "CANCELLED" and states[fit_jobs[1]][0] == "COMPLETED", states
    # attempt 2 asks for twice the memory of attempt 1 (profiles/slurm: 2 ** (attempt - 1))
    mem = [int(re.match(r"\d+", states[j][1]).group()) for j in fit_jobs]
    assert mem[1] == 2 * mem[0], states


@pytest.mark.slow
@needs_slurm
def test_rerun_does_not_redo_finished_fits(runs):
    for path, mtime in runs["finished"].items():
        assert path.stat().st_mtime_ns == mtime, f"{path} was redone"
    assert len(fit_files(runs["dirs"]["slurm"])) == runs["n_fits"]


@pytest.mark.slow
@needs_slurm
def test_every_job_ran_on_slurm(runs):
    """Each fit output is named in the log of a completed SLURM job; all jobs completed or were
    the ones the test cancelled."""
    cluster = runs["dirs"]["slurm"]
    states = wait_for_states(runs["jobs"])
    cancelled = {runs["first"][2], runs["second"][2]}
    for job, (state, _) in states.items():
        assert state == ("CANCELLED" if job in cancelled else "COMPLETED"), (job, states)
    logs = {
        job: Path(log).read_text()
        for job, log in SUBMITTED.findall(runs["first"][1] + runs["second"][1])
        if job not in cancelled
    }
    for fit in fit_files(cluster):
        relative = fit.relative_to(cluster).as_posix()
        ran_in = [job for job, text in logs.items() if f"output: {relative}" in text]
        assert len(ran_in) == 1, (relative, ran_in)
    assert (cluster / TARGET).exists()


@pytest.mark.slow
@needs_slurm
def test_aggregate_is_bit_identical_to_a_local_run(runs):
    local, cluster = runs["dirs"]["local"], runs["dirs"]["slurm"]
    assert_bit_identical(
        results.open_results(local / TARGET), results.open_results(cluster / TARGET)
    )


def test_profile_has_no_site_settings():
    text = (ROOT / "profiles" / "slurm" / "config.yaml").read_text()
    assert "executor: slurm" in text
    for key in ("slurm_partition", "slurm_account"):
        assert not re.search(rf"^\s*{key}\s*:", text, re.M), key
