"""Compile the fitting kernels once, before parallel jobs each compile them.

numba compiles the compiled kernels (:mod:`em_lib.numerics._linalg`, ``_normalise``,
``_polish``, ``_ward``, the k-means steps and the HMM recursions) on their first call in an
environment, about 45 s of CPU for a mixture fit on these machines, and caches them on disk.
Workflow jobs started at the same time on a fresh environment would each compile them. Here
one process at a time, holding a file lock, runs small fits that touch every kernel a fit job
uses: the first compiles and fills the cache, the others wait and then load the cached code
(about a second). Where the lock cannot be taken (no ``fcntl``, a file system without locks)
each job compiles on its own, as without this step.
"""

from __future__ import annotations

import contextlib
import os
import time

import numpy as np


@contextlib.contextmanager
def _exclusive(path):
    """Hold an exclusive lock on ``path`` while the block runs (none where it cannot)."""
    handle = None
    try:
        import fcntl

        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        handle = open(path, "a")  # noqa: SIM115 (closed below: the lock lives with it)
        fcntl.flock(handle, fcntl.LOCK_EX)
    except (ImportError, OSError):
        if handle is not None:
            handle.close()
        handle = None
    try:
        yield
    finally:
        if handle is not None:
            handle.close()


def compile_kernels(lock_path=None) -> float:
    """Run small mixture fits (every covariance type, complete and missing data) and a small
    HMM fit, so that every kernel they call is compiled or loaded from numba's cache; with
    ``lock_path``, one process at a time. Returns the seconds it took."""
    started = time.perf_counter()
    with _exclusive(lock_path) if lock_path else contextlib.nullcontext():
        _small_fits()
    return time.perf_counter() - started


def _small_fits():
    import warnings

    from ..hmm import GaussianHMM
    from ..mixture import GaussianMixture
    from .covariance import COVARIANCE_TYPES

    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(30, 2)), rng.normal(size=(30, 2)) + 4.0])
    holes = X.copy()
    holes[::7, 0] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for data in (X, holes):
            for covariance_type in COVARIANCE_TYPES:
                GaussianMixture(2, covariance_type=covariance_type, n_init=3, random_state=0).fit(
                    data
                )
        for covariance_type in ("full", "diag"):
            GaussianHMM(2, covariance_type=covariance_type, n_init=2, n_iter=5, random_state=0).fit(
                X
            )
