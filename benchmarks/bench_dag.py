"""DAG-building time of the EM workflow against a trivial Snakefile with the same jobs.

Both are dry-run (``snakemake -n``) in the same process run, alternately, so machine noise hits
both alike; a one-job Snakefile measures Snakemake's fixed start-up cost. The workflow's config
gets ``--n-fits`` fit jobs (default 10,000: 4 models x 5 K x 2 mechanisms x 5 rates x 5
replicates x 10 chunks) plus its data, mask and aggregate jobs; the trivial Snakefile has the
same number of jobs in the same shape (one data job, one job per mask, fit jobs each reading
one mask, one aggregate, all) with empty shell commands.

Usage::

    python benchmarks/bench_dag.py [--repeats 2] [--small]

``--small`` uses 1/10 of the fit jobs (a quick check of the script itself).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))

TRIVIAL = """\
N_MASKS = {n_masks}
N_FITS = {n_fits}


def mask_of(wildcards):
    return f"masks/{{int(wildcards.i) % N_MASKS}}.txt"


rule all:
    input:
        "agg.txt",


rule aggregate:
    input:
        expand("fits/{{i}}.txt", i=range(N_FITS)),
    output:
        "agg.txt",
    shell:
        "touch {{output}}"


rule fit:
    input:
        data="data.txt",
        mask=mask_of,
    output:
        "fits/{{i}}.txt",
    shell:
        "touch {{output}}"


rule mask:
    input:
        "data.txt",
    output:
        "masks/{{m}}.txt",
    shell:
        "touch {{output}}"


rule data:
    output:
        "data.txt",
    shell:
        "touch {{output}}"
"""

ONE_JOB = """\
rule all:
    output:
        "x.txt",
    shell:
        "touch {output}"
"""


def experiment_config(small: bool) -> dict:
    replicates = [0] if small else [0, 1, 2, 3, 4]
    return {
        "root_seed": 1,
        "datasets": {"blobs": {"kind": "gaussian_mixture", "n_samples": 200, "n_features": 3}},
        "sweep": {
            "model": ["full", "diag", "spherical", "tied"],
            "n_components": [2, 3, 4, 5, 6],
            "mechanism": ["MCAR", "MAR"],
            "missing_rate": [0.05, 0.1, 0.2, 0.3, 0.4],
            "replicate": replicates,
        },
        "fit": {"n_init": 20 if small else 10},
    }


def dry_run(args, cwd) -> tuple[float, str]:
    tick = time.perf_counter()
    proc = subprocess.run(
        [SNAKEMAKE, "-n", "--quiet", "rules", "--cores", "1", "--workflow-profile", "none", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - tick
    if proc.returncode:
        raise RuntimeError(
            f"snakemake failed in {cwd}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    return seconds, proc.stdout + proc.stderr


def job_total(output: str) -> int:
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "total":
            return int(parts[1])
    raise RuntimeError(f"no job total in:\n{output[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--small", action="store_true")
    options = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from em_lib.study import config as study_config
    from em_lib.study import design

    config = experiment_config(options.small)
    checked = study_config.complete_config(config)
    n_masks = len(design.mask_jobs(checked))
    n_fits = n_masks  # one fit job per mask (the whole lattice)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        em_dir, trivial_dir, one_dir = tmp / "em", tmp / "trivial", tmp / "one"
        for directory in (em_dir, trivial_dir, one_dir):
            directory.mkdir()
        (em_dir / "experiment.yaml").write_text(yaml.safe_dump(config))
        (trivial_dir / "Snakefile").write_text(TRIVIAL.format(n_masks=n_masks, n_fits=n_fits))
        (one_dir / "Snakefile").write_text(ONE_JOB)
        cases = {
            "em workflow": (
                ["--snakefile", str(ROOT / "Snakefile"), "--configfile", "experiment.yaml"],
                em_dir,
            ),
            "trivial": ([], trivial_dir),
            "one job (start-up)": ([], one_dir),
        }
        times = {name: [] for name in cases}
        jobs = {}
        for _ in range(options.repeats):
            for name, (args, cwd) in cases.items():
                seconds, output = dry_run(args, cwd)
                times[name].append(seconds)
                jobs[name] = job_total(output)

    print(
        f"fit jobs: {n_fits}, mask jobs: {n_masks}; dry-run wall time, median of {options.repeats}:"
    )
    for name, values in times.items():
        print(
            f"  {name:20s} jobs {jobs[name]:6d}  {statistics.median(values):7.2f} s  "
            f"({', '.join(f'{v:.2f}' for v in values)})"
        )
    start_up = statistics.median(times["one job (start-up)"])
    em, trivial = statistics.median(times["em workflow"]), statistics.median(times["trivial"])
    print(
        f"  ratio em / trivial: {em / trivial:.2f}; "
        f"beyond start-up: {(em - start_up) / (trivial - start_up):.2f}"
    )


if __name__ == "__main__":
    main()
