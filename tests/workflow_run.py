"""Running the workflow from tests: a config in a work directory, Snakemake as a process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
TIMEOUT = 600


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
    workdir = Path(workdir)
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
