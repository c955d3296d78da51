"""Compile the fitting kernels once, before parallel jobs each compile them.

numba compiles the compiled kernels (:mod:`em_lib.numerics._linalg`, ``_normalise``,
``_polish``, ``_ward``, the k-means steps and the HMM recursions) on their first call in an
environment, about 45 s of CPU for a mixture fit on these machines, and caches them on disk.
Workflow jobs started at the same time on a fresh environment would each compile them. Here
one process at a time, holding a file lock, runs small fits that touch every kernel a fit job
uses: the first compiles and fills the cache, the others wait and then load the cached code
(about two seconds each). The lock sits where numba keeps the cache (``NUMBA_CACHE_DIR``, or
this package's ``__pycache__``; :func:`cache_lock_path`). It then writes a stamp next to the
lock (the Python executable, the
numba version and the size and time of every source file of ``em_lib.numerics``, on which
numba's cache depends); a later job that finds the same stamp skips the step and loads only
the kernels it calls. Where the lock cannot be taken (no ``fcntl``, a file system without
locks) each job compiles on its own, as without this step.
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


def cache_lock_path() -> str | None:
    """The lock file in the folder of numba's cache of these kernels, None where that
    folder cannot be written (numba then caches elsewhere, and so must the caller)."""
    folder = os.environ.get("NUMBA_CACHE_DIR") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "__pycache__"
    )
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return None
    if not os.access(folder, os.W_OK):
        return None
    return os.path.join(folder, "em_lib-kernels.lock")


def source_stamp() -> str:
    """What numba's cache of these kernels depends on, as one line of text."""
    import sys

    import numba

    folder = os.path.dirname(os.path.abspath(__file__))
    files = []
    for root, _, names in os.walk(folder):
        for name in sorted(names):
            if name.endswith(".py"):
                info = os.stat(os.path.join(root, name))
                files.append(
                    f"{os.path.relpath(os.path.join(root, name), folder)}:{info.st_size}:{info.st_mtime_ns}"
                )
    return " ".join([sys.executable, numba.__version__, *sorted(files)])


def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


def compile_kernels(lock_path=None) -> float:
    """Run small mixture fits (every covariance type, complete and missing data) and small
    HMM fits, so that every kernel they call is compiled or loaded from numba's cache. With
    ``lock_path``, one process at a time, and not at all once a process has done it for the
    same sources (the stamp ``lock_path + ".stamp"``). Returns the seconds it took."""
    started = time.perf_counter()
    if lock_path is None:
        _small_fits()
        return time.perf_counter() - started
    stamp_path = lock_path + ".stamp"
    stamp = source_stamp()
    if _read(stamp_path) == stamp:
        return time.perf_counter() - started
    with _exclusive(lock_path):
        if _read(stamp_path) != stamp:  # not done by the job that held the lock before
            _small_fits()
            with contextlib.suppress(OSError), open(stamp_path, "w") as handle:
                handle.write(stamp)
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
