"""The two layers: the library never imports the study layer, and importing it loads no
plotting, xarray, pandas or snakemake module."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "em_lib"
HEAVY = ("matplotlib", "seaborn", "xarray", "snakemake", "pandas")


def _loaded_after(statement):
    code = (
        f"import sys; {statement}; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


@pytest.mark.parametrize(
    "statement",
    [
        "import em_lib",
        "from em_lib import GaussianMixture, GaussianHMM",
        "import em_lib.numerics.fitting, em_lib.numerics.hmm, em_lib.metrics",
    ],
)
def test_library_import_loads_no_heavy_module(statement):
    assert _loaded_after(statement) == "[]"


def test_library_never_imports_the_study_layer():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "study" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [("." * node.level) + node.module]
            offenders += [f"{path.name}: {name}" for name in names if "study" in name]
    assert offenders == []


def test_plotting_does_not_switch_the_backend():
    code = (
        "import matplotlib; before = matplotlib.get_backend(); "
        "import em_lib.study.plotting; print(before == matplotlib.get_backend())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"MPLBACKEND": "svg", "PATH": ""},
    )
    assert result.stdout.strip() == "True"
