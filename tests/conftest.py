"""Shared fixtures and helpers of the test suite.

Whole-workflow tests are marked ``slow`` (they start Snakemake processes); ``pytest -m "not
slow"`` runs the rest. The helpers for running Snakemake live in ``tests/workflow_run.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def rng():
    """A fresh, seeded Generator per test."""
    return np.random.default_rng(20240917)


@pytest.fixture(scope="session")
def iris():
    from em_lib.data import load_dataset

    return load_dataset("iris").X


@pytest.fixture(scope="session")
def airquality():
    from em_lib.data import load_dataset

    return load_dataset("airquality")


@pytest.fixture
def incomplete_blobs(rng):
    """300 rows of a 3-component mixture in 3-D with 15% of entries missing at random."""
    from em_lib.data import make_gaussian_mixture, make_missing

    sim = make_gaussian_mixture(300, 3, 3, separation=3.0, random_state=rng)
    return make_missing(sim.X, "MCAR", 0.15, random_state=rng).X_missing


@pytest.fixture(scope="module")
def sequences():
    """(SyntheticHMM, X): 3-state full-covariance sequences of lengths 90 and 60 in 2-D, with
    one step wholly and one partly missing in X."""
    from em_lib.data import make_hmm_sequences

    data = make_hmm_sequences([90, 60], 2, 3, covariance_type="full", random_state=21)
    X = data.X.copy()
    X[4] = np.nan
    X[11, 1] = np.nan
    return data, X
