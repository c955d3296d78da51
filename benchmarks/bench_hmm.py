"""em_lib.hmm.GaussianHMM vs hmmlearn.hmm.GaussianHMM on the same data (run on demand).

    python benchmarks/bench_hmm.py              # both cases, best of 3 timing repeats
    python benchmarks/bench_hmm.py --repeats 1

Setting: 10 starts, at most 100 iterations, diagonal covariances (hmmlearn's default), one
sequence from ``em_lib.data.make_hmm_sequences``. Tolerances are equal: em_lib's ``tol`` is on
the mean per-step log-likelihood, hmmlearn's on the total, so hmmlearn gets ``tol * T``.
hmmlearn runs its maximum-likelihood update (``covars_prior=0``); em_lib adds
``reg_covar=1e-6``. Best log-likelihood = highest final log-likelihood over the 10 starts.
Two protocols:

* ``end-to-end``: each library initialises itself from the same seed (em_lib: one batched
  ``GaussianHMM(n_init=10, random_state=SEED).fit``; hmmlearn: 10 fits with
  ``random_state=SEED + i``, its k-means + Dirichlet initialisation, default "log"
  implementation);
* ``same starts (EM only)``: both run Baum-Welch alone from exactly the same 10 starting
  points (em_lib's ``initial_hmm_parameters``): em_lib's batched ``fit_hmm_em`` vs hmmlearn
  with ``init_params=""``, in both its "log" (default) and "scaling" implementations.

Times are CPU seconds (``time.process_time``; every library is single-threaded here) with
wall-clock seconds in brackets: on a shared, loaded machine CPU time is the stable measure.
BLAS/OpenMP are pinned to one thread (hmmlearn's recursion is single-threaded, and small
LAPACK calls are slow with a threaded OpenBLAS on a busy machine). numba's one-off
compilation is measured separately, cold (empty cache, in a subprocess) and warm (loading
the on-disk cache that ``cache=True`` writes), and is excluded from the table.
"""

from __future__ import annotations

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

N_INIT = 10
N_ITER = 100
TOL = 1e-4
SEED = 2024
CASES = [  # (name, T, d, K)
    ("T=2,000, d=1, K=2", 2_000, 1, 2),
    ("T=20,000, d=3, K=4", 20_000, 3, 4),
]

_COLD_SNIPPET = """
import time
t0 = time.perf_counter()
import numpy as np
from em_lib.hmm import GaussianHMM
t1 = time.perf_counter()
rng = np.random.default_rng(0)
X = rng.normal(size=(50, 2))
GaussianHMM(2, n_init=1, n_iter=2, random_state=0).fit(X)
print(time.perf_counter() - t1)
"""


def jit_times():
    """(cold compile, warm cache load) seconds for the first fit of a process."""
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as cache:
        env["NUMBA_CACHE_DIR"] = cache
        cold = float(
            subprocess.run(
                [sys.executable, "-c", _COLD_SNIPPET],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
    warm = float(
        subprocess.run(
            [sys.executable, "-c", _COLD_SNIPPET], capture_output=True, text=True, check=True
        ).stdout
    )
    return cold, warm


def run_em_lib(X, k):
    from em_lib.hmm import GaussianHMM

    model = GaussianHMM(k, "diag", n_init=N_INIT, n_iter=N_ITER, tol=TOL, random_state=SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X)
    return model


def run_em_lib_from(X, starts):
    from em_lib.numerics.hmm import fit_hmm_em

    return fit_hmm_em(X, None, **starts, covariance_type="diag", tol=TOL, max_iter=N_ITER)


def run_hmmlearn(X, k, starts, implementation):
    from hmmlearn.hmm import GaussianHMM

    best = -np.inf
    iterations = []
    for i in range(N_INIT):
        model = GaussianHMM(
            k,
            "diag",
            n_iter=N_ITER,
            tol=TOL * X.shape[0],
            init_params="",
            params="stmc",
            implementation=implementation,
            covars_prior=0.0,
        )
        model.startprob_ = starts["startprob"][i]
        model.transmat_ = starts["transmat"][i]
        model.means_ = starts["means"][i]
        model.covars_ = starts["covariances"][i]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X)
        iterations.append(model.monitor_.iter)
        best = max(best, model.score(X))
    return best, iterations


def timed(func, repeats):
    """(CPU seconds, wall seconds, result), each the best of ``repeats``."""
    cpu, wall, result = [], [], None
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        result = func()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return min(cpu), min(wall), result


def run_hmmlearn_own_init(X, k):
    from hmmlearn.hmm import GaussianHMM

    best = -np.inf
    for i in range(N_INIT):
        model = GaussianHMM(
            k, "diag", n_iter=N_ITER, tol=TOL * X.shape[0], random_state=SEED + i, covars_prior=0.0
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X)
        best = max(best, model.score(X))
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (min is kept)")
    args = parser.parse_args()

    from em_lib.data import make_hmm_sequences
    from em_lib.numerics.hmm import initial_hmm_parameters

    cold, warm = jit_times()
    run_em_lib(np.random.default_rng(0).normal(size=(60, 1)), 2)  # compile / load here
    rows, notes = [], []
    for name, length, d, k in CASES:
        data = make_hmm_sequences(
            [length], d, k, separation=2.0, covariance_type="diag", random_state=SEED
        )
        X = data.X
        em = timed(lambda X=X, k=k: run_em_lib(X, k), args.repeats)
        em_best = float(em[2].starts_.log_likelihood.max())
        own = timed(lambda X=X, k=k: run_hmmlearn_own_init(X, k), 1)
        rows.append((name, "end-to-end", "log", em, em_best, own, own[2]))
        starts = initial_hmm_parameters(X, None, k, "diag", N_INIT, init="gmm", random_state=SEED)
        em_only = timed(lambda X=X, s=starts: run_em_lib_from(X, s), args.repeats)
        em_only_best = float(em_only[2].log_likelihood.max())
        for implementation in ("log", "scaling"):
            same = timed(
                lambda X=X, k=k, s=starts, m=implementation: run_hmmlearn(X, k, s, m), args.repeats
            )
            protocol = "same starts (EM only)"
            rows.append((name, protocol, implementation, em_only, em_only_best, same, same[2][0]))
        notes.append(
            f"{name}: em_lib iterations per start {em[2].starts_.n_iter.tolist()}, "
            f"converged {int(em[2].starts_.converged.sum())}/{N_INIT}; hmmlearn "
            f"(same starts, log) iterations {same[2][1]}"
        )

    print(
        f"{N_INIT} starts, n_iter <= {N_ITER}, tol = {TOL} per step (hmmlearn: tol * T), "
        f"diag covariances; CPU s [wall s], best of {args.repeats} repeat(s) (hmmlearn "
        "end-to-end: 1)\n"
    )
    print(
        "| case | protocol | hmmlearn impl. | em_lib s | hmmlearn s | speed ratio | "
        "best logL em_lib | best logL hmmlearn |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for name, protocol, impl, em, em_b, hl, hl_b in rows:
        print(
            f"| {name} | {protocol} | {impl} | {em[0]:.3f} [{em[1]:.3f}] | "
            f"{hl[0]:.3f} [{hl[1]:.3f}] | {hl[0] / em[0]:.1f}x | {em_b:.3f} | {hl_b:.3f} |"
        )
    print(
        f"\nnumba one-off compile (empty cache, first fit of a process): {cold:.2f} s; "
        f"with the on-disk cache (cache=True): {warm:.2f} s; excluded above."
    )
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
