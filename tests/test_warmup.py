"""Compiling the kernels once before parallel workflow jobs (em_lib.numerics.warmup)."""

import fcntl
import threading

import pytest

from em_lib.numerics import warmup


def test_the_lock_holds_other_holders_off_until_released(tmp_path):
    path = tmp_path / "sub" / "kernels.lock"  # the folder is made
    attempts = []

    def try_lock():
        with open(path, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                attempts.append("taken")
            except BlockingIOError:
                attempts.append("blocked")

    with warmup._exclusive(str(path)):
        other = threading.Thread(target=try_lock)
        other.start()
        other.join()
    try_lock()
    assert attempts == ["blocked", "taken"]


def test_compile_kernels_runs_the_small_fits_under_the_lock(tmp_path, monkeypatch):
    seen = []
    path = tmp_path / "kernels.lock"

    def small_fits():
        with open(path, "a") as handle, pytest.raises(BlockingIOError):
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        seen.append(True)

    monkeypatch.setattr(warmup, "_small_fits", small_fits)
    assert warmup.compile_kernels(str(path)) >= 0.0
    assert seen == [True]


def test_the_small_fits_run():
    warmup._small_fits()  # every covariance type, with and without missing values, and HMMs


def test_a_stamp_for_the_same_sources_skips_the_fits(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(warmup, "_small_fits", lambda: calls.append(True))
    path = str(tmp_path / "kernels.lock")
    warmup.compile_kernels(path)
    warmup.compile_kernels(path)
    assert calls == [True]
    with open(path + ".stamp", "w") as handle:  # other sources: the fits run again
        handle.write("another build")
    warmup.compile_kernels(path)
    assert calls == [True, True]


def test_the_lock_sits_with_numbas_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "cache"))
    assert warmup.cache_lock_path() == str(tmp_path / "cache" / "em_lib-kernels.lock")
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    assert warmup.cache_lock_path().endswith("numerics/__pycache__/em_lib-kernels.lock")
