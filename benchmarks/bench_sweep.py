"""How much of a sweep's CPU time the workflow spends fitting (job granularity).

Writes a sweep config into a fresh temporary work directory, runs Snakemake on it as one
subprocess (target: the aggregate ``results/experiment.nc`` only, not the report) and measures

* the wall time of the Snakemake process;
* the total CPU time (user + system) of Snakemake and all its children, from
  ``resource.getrusage(RUSAGE_CHILDREN)`` of this process before and after the run;
* the fitting CPU time: the sum of the aggregate's ``fit_cpu_time`` (NaN ignored);
* the fits (fitted cells: ``in_design`` summed) and the Snakemake jobs;
* the ratio fitting CPU / total CPU.

It prints a markdown table row and writes it, with a JSON of every number, to ``--out``.

The sweep: blobs (simulated, n=1000, d=3, K=3), iris and old_faithful x models full, diag,
spherical, tied x K 1..6 x MCAR, MAR x rates 0.1, 0.3 x replicates 0, 1 x methods em,
complete_case, mean_impute = 1,728 fitted cells, each with ``n_init=10`` starts.

Two workflow designs are supported by ``--config-style``:

* ``new`` (one job per mask fitting the whole model x K x method lattice);
* ``old`` (commit b329ab4: one job per data set, model, K, mask and chunk of starts; the config
  gets ``fit.starts_per_job = n_init``, one chunk per cell).

Usage::

    # after: the current design, from a worktree of HEAD
    python benchmarks/bench_sweep.py --snakefile /tmp/em_after/Snakefile \\
        --source-root /tmp/em_after --config-style new --out /tmp/bench_sweep
    # before: the old design at b329ab4
    python benchmarks/bench_sweep.py --snakefile /tmp/em_before/Snakefile \\
        --source-root /tmp/em_before --config-style old --out /tmp/bench_sweep

``--source-root`` puts that tree first on the ``PYTHONPATH`` of Snakemake and its jobs, so they
import its ``em_lib`` rather than the installed one. Before the measured run a small warm-up
sweep (every model, K 1-2, one mask; ``--no-warmup`` skips it) runs in its own directory, so
that numba's on-disk caches of the source tree are compiled before the measurement; the
warm-up's CPU time is not counted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
TARGET = "results/experiment.nc"

COLUMNS = ("design", "jobs", "fits", "wall s", "total CPU s", "fitting CPU s", "ratio", "commit")


def sweep_config(
    style: str, replicates: list[int], n_init: int, max_iter: int, tol: float, small: bool = False
) -> dict:
    """The benchmark's experiment, in the schema of the given workflow design.

    ``small``: blobs only and K 1-2 (a check of the script, not a measurement).
    """
    fit = {"n_init": n_init, "max_iter": max_iter, "tol": tol}
    if style == "old":
        fit["starts_per_job"] = n_init  # one chunk (job) per cell
    datasets = {
        "blobs": {
            "kind": "gaussian_mixture",
            "n_samples": 1000,
            "n_features": 3,
            "n_components": 3,
        },
        "iris": {"kind": "bundled", "name": "iris"},
        "old_faithful": {"kind": "bundled", "name": "old_faithful"},
    }
    if small:
        datasets = {"blobs": datasets["blobs"]}
    return {
        "root_seed": 20240917,
        "datasets": datasets,
        "sweep": {
            "model": ["full", "diag", "spherical", "tied"],
            "n_components": [1, 2] if small else [1, 2, 3, 4, 5, 6],
            "mechanism": ["MCAR", "MAR"],
            "missing_rate": [0.1, 0.3],
            "replicate": list(replicates),
            "method": ["em", "complete_case", "mean_impute"],
        },
        "fit": fit,
        "hmm": {"enabled": False},
    }


def warmup_config(style: str) -> dict:
    """A few seconds of fits touching every model, so numba's caches get compiled."""
    fit = {"n_init": 2, "max_iter": 20, "tol": 1e-3}
    if style == "old":
        fit["starts_per_job"] = 2
    return {
        "root_seed": 1,
        "datasets": {
            "blobs": {
                "kind": "gaussian_mixture",
                "n_samples": 200,
                "n_features": 3,
                "n_components": 2,
            }
        },
        "sweep": {
            "model": ["full", "diag", "spherical", "tied"],
            "n_components": [1, 2],
            "mechanism": ["MCAR"],
            "missing_rate": [0.1],
            "replicate": [0],
            "method": ["em", "complete_case", "mean_impute"],
        },
        "fit": fit,
        "hmm": {"enabled": False},
    }


def git_commit(path: Path) -> tuple[str, bool | None]:
    """Short commit of the git tree holding ``path`` and whether tracked files differ."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown", None
    return commit, bool(status.strip())


def environment(source_root: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if source_root is not None:
        parts = [str(source_root)]
        if env.get("PYTHONPATH"):
            parts.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(parts)
    return env


def snakemake_command(snakefile: Path, workdir: Path, configfile: Path, cores: int) -> list:
    return [
        SNAKEMAKE,
        "--snakefile",
        str(snakefile),
        "--directory",
        str(workdir),
        "--configfile",
        str(configfile),
        "--cores",
        str(cores),
        TARGET,
    ]


def prepare(workdir: Path, config: dict) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    configfile = workdir / "sweep.yaml"
    configfile.write_text(yaml.safe_dump(config, sort_keys=False))
    return configfile


def run_logged(cmd, env, log_path: Path, timeout: float) -> tuple[int, float]:
    """Run ``cmd`` with stdout and stderr into ``log_path``; (return code, wall seconds)."""
    with open(log_path, "w") as log:
        tick = time.perf_counter()
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            raise SystemExit(f"snakemake ran past {timeout:.0f} s; log: {log_path}") from None
        return code, time.perf_counter() - tick


def job_counts(log_text: str) -> tuple[int | None, dict[str, int]]:
    """Jobs Snakemake ran: from its last 'N of M steps' line and its job stats table."""
    done = re.findall(r"(\d+) of (\d+) steps \(100%\) done", log_text)
    total = int(done[-1][0]) if done else None
    by_rule: dict[str, int] = {}
    stats = log_text.split("Job stats:", 1)
    if len(stats) == 2:
        lines = iter(stats[1].splitlines())
        for line in lines:  # the table body starts after its dashed rule
            if line.startswith("---"):
                break
        for line in lines:
            fields = line.split()
            if len(fields) != 2 or not fields[1].isdigit():
                break
            by_rule[fields[0]] = int(fields[1])
    if total is None and "total" in by_rule:
        total = by_rule["total"]
    return total, by_rule


def measure_aggregate(path: Path) -> dict:
    import numpy as np
    import xarray as xr

    with xr.open_dataset(path) as ds:
        cpu = ds["fit_cpu_time"].values
        wall = ds["fit_time"].values
        return {
            "fits": int(ds["in_design"].values.sum()),
            "fitting_cpu_s": float(np.nansum(cpu)),
            "fitting_wall_s": float(np.nansum(wall)),
            "fit_cpu_time_dims": list(ds["fit_cpu_time"].dims),
            "in_design_dims": list(ds["in_design"].dims),
            "fit_cpu_time_values": int(np.isfinite(cpu).sum()),
        }


def markdown_row(result: dict) -> str:
    cells = (
        result["design"],
        f"{result['jobs']:,}" if result["jobs"] is not None else "?",
        f"{result['fits']:,}",
        f"{result['wall_s']:.0f}",
        f"{result['total_cpu_s']:.0f}",
        f"{result['fitting_cpu_s']:.0f}",
        f"{result['ratio']:.1%}",
        result["commit"] + ("+dirty" if result["dirty"] else ""),
    )
    return "| " + " | ".join(cells) + " |"


def markdown_header() -> str:
    return (
        "| "
        + " | ".join(COLUMNS)
        + " |\n|"
        + "|".join(
            "---" if i == 0 or name == "commit" else "---:" for i, name in enumerate(COLUMNS)
        )
        + "|"
    )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--snakefile", type=Path, default=ROOT / "Snakefile")
    parser.add_argument(
        "--source-root",
        type=Path,
        default=None,
        help="put this tree first on PYTHONPATH of Snakemake and its jobs",
    )
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("."),
        help="directory for the JSON, the markdown row and Snakemake's log",
    )
    parser.add_argument("--config-style", choices=("new", "old"), default="new")
    parser.add_argument("--label", default=None, help="design column (default from the style)")
    parser.add_argument("--replicates", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--n-init", type=int, default=10)
    parser.add_argument("--max-iter", type=int, default=200)
    parser.add_argument("--tol", type=float, default=1e-3)
    parser.add_argument(
        "--small", action="store_true", help="blobs only, K 1-2: a quick check of the script"
    )
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--timeout", type=float, default=3600.0)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    snakefile = args.snakefile.resolve()
    source_root = args.source_root.resolve() if args.source_root else None
    label = (
        args.label
        or {
            "old": "before: job per (data set, model, K, mask, chunk)",
            "new": "after: job per mask",
        }[args.config_style]
    )
    commit, dirty = git_commit(source_root or snakefile.parent)
    env = environment(source_root)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    stem = f"sweep_{args.config_style}_{commit}" + ("_small" if args.small else "")
    scratch = Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    result: dict = {
        "design": label,
        "config_style": args.config_style,
        "commit": commit,
        "dirty": dirty,
        "snakefile": str(snakefile),
        "source_root": str(source_root) if source_root else None,
        "cores": args.cores,
        "host_cpus": os.cpu_count(),
        "python": platform.python_version(),
        # unset or empty: jobs reuse bytecode; set: they compile the source tree's modules afresh
        "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE"),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    try:
        if not args.no_warmup:
            warm = scratch / "warmup"
            configfile = prepare(warm, warmup_config(args.config_style))
            code, seconds = run_logged(
                snakemake_command(snakefile, warm, configfile, args.cores),
                env,
                out / f"{stem}.warmup.log",
                args.timeout,
            )
            if code:
                print(
                    f"warm-up failed ({code}); log: {out / f'{stem}.warmup.log'}", file=sys.stderr
                )
                return code
            result["warmup_wall_s"] = seconds
            print(f"warm-up done in {seconds:.1f} s", file=sys.stderr)

        config = sweep_config(
            args.config_style,
            args.replicates,
            args.n_init,
            args.max_iter,
            args.tol,
            small=args.small,
        )
        result["config"] = config
        workdir = scratch / "sweep"
        configfile = prepare(workdir, config)
        cmd = snakemake_command(snakefile, workdir, configfile, args.cores)
        result["command"] = " ".join(cmd)
        log_path = out / f"{stem}.log"
        result["load_start"] = list(os.getloadavg())
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        code, wall = run_logged(cmd, env, log_path, args.timeout)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        result["load_end"] = list(os.getloadavg())
        if code:
            print(f"snakemake failed ({code}); log: {log_path}", file=sys.stderr)
            return code
        log_text = log_path.read_text()
        jobs, by_rule = job_counts(log_text)
        user = after.ru_utime - before.ru_utime
        system = after.ru_stime - before.ru_stime
        result.update(
            wall_s=wall,
            user_cpu_s=user,
            sys_cpu_s=system,
            total_cpu_s=user + system,
            jobs=jobs,
            jobs_by_rule=by_rule,
            **measure_aggregate(workdir / TARGET),
        )
        result["ratio"] = result["fitting_cpu_s"] / result["total_cpu_s"]
        result["other_cpu_s"] = result["total_cpu_s"] - result["fitting_cpu_s"]
        if jobs:
            result["other_cpu_s_per_job"] = result["other_cpu_s"] / jobs
        result["cpu_utilisation"] = result["total_cpu_s"] / (wall * args.cores)
    finally:
        if args.keep:
            print(f"work directory kept: {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)

    row = markdown_row(result)
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (out / f"{stem}.md").write_text(markdown_header() + "\n" + row + "\n")
    print(markdown_header())
    print(row)
    print(
        f"load average start {', '.join(f'{x:.2f}' for x in result['load_start'])}; "
        f"end {', '.join(f'{x:.2f}' for x in result['load_end'])}; "
        f"user {result['user_cpu_s']:.1f} s, sys {result['sys_cpu_s']:.1f} s; "
        f"non-fitting CPU per job {result.get('other_cpu_s_per_job', math.nan):.2f} s; "
        f"JSON: {out / f'{stem}.json'}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
