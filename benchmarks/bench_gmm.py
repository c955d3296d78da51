"""Benchmark em_lib.GaussianMixture against sklearn.mixture.GaussianMixture.

Both libraries fit the same synthetic data (``em_lib.data.make_gaussian_mixture`` with
``separation=2.5``) with the same ``n_init``, ``tol``, ``max_iter`` and ``random_state``.
The like-for-like comparison uses ``init_params="kmeans"`` in both; em_lib's default
``init_params="auto"`` is reported in extra columns. Printed as markdown:

1. the grid (n, d, K, covariance type): seconds (best of at least ``--repeats`` runs, more
   for short fits until 1 s was spent, at most 30), speed ratio
   sklearn / em_lib, best mean per-sample log-likelihood (``.score(X)``) and its difference;
2. the large case n = 1,000,000, d = 10, K = 8, full (``--big-repeats`` runs);
3. peak memory of one em_lib fit of the large case, from ``tracemalloc`` and from
   ``resource.getrusage`` max RSS, each in a fresh subprocess;
4. achieved GFLOP/s of one em_lib EM iteration against numpy matmul rates;
5. optionally the cost of em_lib's defaults (polishing, ``nested_starts``) and of unlimited
   BLAS threads;
6. optionally (``--defaults-grid``) the same grid with both estimators at their defaults,
   ``GaussianMixture(K, covariance_type=..., n_init=10, random_state=seed)`` in each
   library, timed interleaved (target: em_lib >= 3x faster at equal or better
   log-likelihood).

Run ``python benchmarks/bench_gmm.py --help`` for the options; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import inspect
import io
import json
import os
import platform
import pstats
import resource
import subprocess
import sys
import time
import tracemalloc
import warnings
from contextlib import nullcontext
from functools import partial

import numpy as np

GIB = 1024**3
FULL_GRID_N = (500, 5_000, 50_000)
QUICK_GRID_N = (500, 5_000)
FULL_GRID_DK = ((2, 3), (5, 5), (10, 8))
QUICK_GRID_DK = ((2, 3), (5, 5))
COVARIANCE_TYPES = ("full", "diag")
BIG_CASE = (1_000_000, 10, 8, "full")
QUICK_BIG_N = 100_000
SPEED_TARGET = 5.0  # em_lib must be this many times faster than sklearn on the grid
DEFAULTS_SPEED_TARGET = 3.0  # ... and this many times with both at their defaults
MEMORY_TARGET = 4 * GIB


# --------------------------------------------------------------------------- helpers
def load_thread_pools():
    """Import every module whose compiled code the fits use, so that its BLAS/OpenMP library
    is loaded: threadpoolctl limits only the libraries loaded when the limit is set, and
    scikit-learn's OpenMP runtime (KMeans) and scipy's OpenBLAS (``solve_triangular``,
    ``cholesky``) are otherwise loaded later, by the first fit, and keep every core."""
    import scipy.cluster.hierarchy  # noqa: F401
    import scipy.linalg  # noqa: F401
    import sklearn.cluster  # noqa: F401
    import sklearn.mixture  # noqa: F401

    import em_lib  # noqa: F401


def blas_limit(threads):
    """Context limiting BLAS/OpenMP threads of every library the fits use (0: no limit)."""
    if not threads:
        return nullcontext()
    from threadpoolctl import threadpool_limits

    load_thread_pools()
    return threadpool_limits(limits=threads)


def thread_pools():
    """'library: threads' of every BLAS/OpenMP library loaded now (threadpoolctl)."""
    from threadpoolctl import threadpool_info

    return ", ".join(
        f"{os.path.basename(info['filepath'])}: {info['num_threads']}" for info in threadpool_info()
    )


def make_data(n, d, k, seed):
    from em_lib.data import make_gaussian_mixture

    return make_gaussian_mixture(n, d, k, separation=2.5, random_state=seed)


def em_lib_supports(name):
    import em_lib

    return name in inspect.signature(em_lib.GaussianMixture.__init__).parameters


def make_em_lib(k, covariance_type, init, args, nested=False, polish=False):
    """em_lib estimator; ``nested_starts`` and polishing (if this em_lib has them) off unless
    asked for, so that both libraries stop at the same ``tol``."""
    import em_lib

    kwargs = dict(
        covariance_type=covariance_type,
        n_init=args.n_init,
        init_params=init,
        tol=args.tol,
        max_iter=args.max_iter,
        random_state=args.seed,
    )
    if em_lib_supports("nested_starts"):
        kwargs["nested_starts"] = nested
    if em_lib_supports("polish_tol") and not polish:
        kwargs["polish_tol"] = None
    return em_lib.GaussianMixture(k, **kwargs)


def make_sklearn(k, covariance_type, args):
    from sklearn.mixture import GaussianMixture

    return GaussianMixture(
        k,
        covariance_type=covariance_type,
        n_init=args.n_init,
        init_params="kmeans",
        tol=args.tol,
        max_iter=args.max_iter,
        random_state=args.seed,
    )


def clear_em_lib_caches():
    """Forget what em_lib caches across fits of the same data, so that repeated timings of
    one fit stay honest: the Ward trees of ``init_params="auto"`` (kept by the content of the
    clustered rows, about 30 ms per tree of 1,000 rows) and, in versions that had one, the
    process-wide cache of contained-model fits in em_lib.nested (newer ones keep those in a
    per-fit MixtureLattice)."""
    try:
        from em_lib.numerics import init
    except ImportError:
        init = None
    ward = getattr(init, "_WARD_CACHE", None)
    if ward is not None:
        ward.clear()
    try:
        from em_lib import nested
    except ImportError:
        return
    cache = getattr(nested, "_CACHE", None)
    if cache is not None:
        cache.clear()


MIN_TIMING_SECONDS = 1.0  # keep repeating short fits until this much time was spent ...
MAX_TIMING_RUNS = 30  # ... but at most this many runs


def time_fit(factory, X, repeats, min_seconds=None):
    """Best wall time of at least ``repeats`` fresh fits, repeated (up to ``MAX_TIMING_RUNS``)
    until ``min_seconds`` were spent, so that millisecond fits get as many tries as the
    machine's jitter needs; the same rule for both libraries. Returns (seconds, last fitted
    estimator)."""
    min_seconds = MIN_TIMING_SECONDS if min_seconds is None else min_seconds
    best, estimator = np.inf, None
    runs, spent = 0, 0.0
    while runs < repeats or (spent < min_seconds and runs < MAX_TIMING_RUNS):
        runs += 1
        clear_em_lib_caches()
        estimator = factory()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            estimator.fit(X)
            elapsed = time.perf_counter() - start
        best = min(best, elapsed)
        spent += elapsed
    return best, estimator


def best_time(function, repeats):
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def mark(ok):
    return "yes" if ok else "**NO**"


def print_table(header, rows):
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---:" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
    print()


def git_state():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "em_lib"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    changed = [line[3:] for line in dirty if line.strip()]
    if not changed:
        return f"{head} (em_lib clean)"
    return f"{head} + uncommitted em_lib changes: {', '.join(changed)}"


def print_environment(args):
    import scipy
    import sklearn

    import em_lib

    print("# em_lib vs scikit-learn: Gaussian mixture benchmark\n")
    print(
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S')}; command: "
        f"`{' '.join([os.path.basename(sys.executable)] + sys.argv)}`"
    )
    print(
        f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average at start {os.getloadavg()[0]:.1f}"
    )
    print(
        f"- python {platform.python_version()}, numpy {np.__version__}, scipy "
        f"{scipy.__version__}, scikit-learn {sklearn.__version__}, em_lib "
        f"{em_lib.__version__} at {git_state()}"
    )
    threads = args.blas_threads or "unlimited"
    print(f"- BLAS/OpenMP threads per library: {threads} (threadpoolctl; `--blas-threads`)")
    print(
        f"- settings: n_init={args.n_init}, tol={args.tol}, max_iter={args.max_iter}, "
        f"random_state={args.seed}, data make_gaussian_mixture(separation=2.5, "
        f"random_state={args.seed}) with full true covariances for both fitted types"
    )
    nested = em_lib_supports("nested_starts")
    print(
        "- grid and large case: em_lib columns use `nested_starts=False`"
        if nested
        else "- this em_lib has no `nested_starts` parameter"
    )
    print(
        f"- log-likelihood 'equal' means em_lib >= sklearn - {args.ll_slack} (mean per sample; "
        f"defaults grid: {args.defaults_ll_slack})"
    )
    print(
        "- em_lib's caches across fits of the same data (Ward trees) are cleared before every "
        "timed fit\n"
    )


# --------------------------------------------------------------------------- grid
def compare_case(n, d, k, covariance_type, args, repeats):
    X = make_data(n, d, k, args.seed).X
    em_time, em = time_fit(lambda: make_em_lib(k, covariance_type, "kmeans", args), X, repeats)
    sk_time, sk = time_fit(lambda: make_sklearn(k, covariance_type, args), X, repeats)
    auto_time, auto = time_fit(lambda: make_em_lib(k, covariance_type, "auto", args), X, repeats)
    em_ll, sk_ll, auto_ll = em.score(X), sk.score(X), auto.score(X)
    return dict(
        n=n,
        d=d,
        k=k,
        covariance_type=covariance_type,
        em_time=em_time,
        sk_time=sk_time,
        auto_time=auto_time,
        em_ll=em_ll,
        sk_ll=sk_ll,
        auto_ll=auto_ll,
        em_iter=em.n_iter_,
        sk_iter=sk.n_iter_,
        auto_iter=auto.n_iter_,
    )


def format_cases(results, speed_target, args):
    header = [
        "n",
        "d",
        "K",
        "cov",
        "em_lib s (kmeans)",
        "sklearn s",
        "ratio sk/em",
        "em_lib LL",
        "sklearn LL",
        "ΔLL em-sk",
        "iters em/sk",
        "em_lib auto s",
        "ratio sk/auto",
        "em_lib auto LL",
        f"target (≥{speed_target:g}x, LL ≥)",
    ]
    rows, missed = [], []
    for r in results:
        ratio = r["sk_time"] / r["em_time"]
        diff = r["em_ll"] - r["sk_ll"]
        ok = ratio >= speed_target and diff >= -args.ll_slack
        if not ok:
            missed.append(r)
        rows.append(
            [
                f"{r['n']:,}",
                r["d"],
                r["k"],
                r["covariance_type"],
                f"{r['em_time']:.3f}",
                f"{r['sk_time']:.3f}",
                f"{ratio:.2f}",
                f"{r['em_ll']:.5f}",
                f"{r['sk_ll']:.5f}",
                f"{diff:+.2e}",
                f"{r['em_iter']}/{r['sk_iter']}",
                f"{r['auto_time']:.3f}",
                f"{r['sk_time'] / r['auto_time']:.2f}",
                f"{r['auto_ll']:.5f}",
                mark(ok),
            ]
        )
    print_table(header, rows)
    return missed


def run_grid(args):
    ns = QUICK_GRID_N if args.quick else FULL_GRID_N
    dks = QUICK_GRID_DK if args.quick else FULL_GRID_DK
    results = []
    for n in ns:
        for d, k in dks:
            for covariance_type in COVARIANCE_TYPES:
                results.append(compare_case(n, d, k, covariance_type, args, args.repeats))
                print(
                    f"<!-- done n={n} d={d} K={k} {covariance_type} -->",
                    file=sys.stderr,
                    flush=True,
                )
    print(
        f"## Grid: n_init={args.n_init}, best of at least {args.repeats} runs (short fits "
        f"repeated until {MIN_TIMING_SECONDS:g} s was spent, at most {MAX_TIMING_RUNS} "
        "runs; same rule for both libraries)\n"
    )
    missed = format_cases(results, SPEED_TARGET, args)
    return missed


def run_big(args):
    n, d, k, covariance_type = BIG_CASE
    if args.quick:
        n = QUICK_BIG_N
    result = compare_case(n, d, k, covariance_type, args, args.big_repeats)
    print(
        f"## Large case: n={n:,}, d={d}, K={k}, {covariance_type}, n_init={args.n_init}, "
        f"best of {args.big_repeats} run(s); target: em_lib not slower than sklearn\n"
    )
    return format_cases([result], 1.0, args)


# --------------------------------------------------------------------------- memory
def proc_status(field):
    """A memory field of /proc/self/status in bytes (VmRSS now, VmHWM peak); 0 if absent."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def memory_child(args):
    """Runs in a subprocess: one em_lib fit, prints a JSON line with the measurements."""
    n, d, k, covariance_type = BIG_CASE
    n = args.mem_n or n
    with blas_limit(args.blas_threads):
        X = make_data(n, d, k, args.seed).X
        estimator = make_em_lib(k, covariance_type, args.mem_init, args)
        out = {
            "x_bytes": X.nbytes,
            "maxrss_before": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "rss_now": proc_status("VmRSS"),
        }
        if args.memory_child == "tracemalloc":
            tracemalloc.start()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            estimator.fit(X)
            out["seconds"] = time.perf_counter() - start
        if args.memory_child == "tracemalloc":
            out["traced_peak"] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        out["maxrss_peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        out["hwm_peak"] = proc_status("VmHWM")
    print(json.dumps(out))


def run_memory(args):
    """tracemalloc and max-RSS measurements, each in its own fresh subprocess.

    Run before the parent allocates anything big: on Linux a child started by fork/vfork +
    exec inherits the parent's max RSS in ``getrusage`` (VmHWM of /proc is not inherited).
    The two children of one init run at the same time to save wall time.
    """
    n, d, k, covariance_type = BIG_CASE
    n = QUICK_BIG_N if args.quick else n
    parent_rss = proc_status("VmRSS")
    rows = []
    for init in args.mem_inits.split(","):
        children = {}
        for mode in ("tracemalloc", "rss"):
            command = [
                sys.executable,
                os.path.abspath(__file__),
                "--memory-child",
                mode,
                "--mem-n",
                str(n),
                "--mem-init",
                init,
                "--blas-threads",
                str(args.blas_threads),
                "--n-init",
                str(args.n_init),
                "--tol",
                str(args.tol),
                "--max-iter",
                str(args.max_iter),
                "--seed",
                str(args.seed),
            ]
            children[mode] = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        measured = {}
        for mode, child in children.items():
            stdout, stderr = child.communicate()
            if child.returncode != 0:
                print(f"memory child failed ({mode}, {init}):\n```\n{stderr[-2000:]}\n```\n")
                continue
            measured[mode] = json.loads(stdout.strip().splitlines()[-1])
        if len(measured) < 2:
            continue
        traced, rss = measured["tracemalloc"], measured["rss"]
        with_x = traced["traced_peak"] + traced["x_bytes"]
        worst = max(with_x, rss["maxrss_peak"], rss["hwm_peak"])
        rows.append(
            [
                init,
                f"{traced['traced_peak'] / GIB:.2f}",
                f"{with_x / GIB:.2f}",
                f"{rss['rss_now'] / GIB:.2f}",
                f"{rss['maxrss_peak'] / GIB:.2f}",
                f"{rss['hwm_peak'] / GIB:.2f}",
                f"{(rss['hwm_peak'] - rss['rss_now']) / GIB:.2f}",
                f"{rss['seconds']:.1f}",
                mark(worst < MEMORY_TARGET),
            ]
        )
    print(
        f"## Peak memory of one em_lib fit: n={n:,}, d={d}, K={k}, {covariance_type}, "
        f"n_init={args.n_init} (fresh subprocesses)\n"
    )
    print(
        "tracemalloc: peak of the allocations made during `fit` (X, "
        f"{n * d * 8 / GIB:.3f} GiB, is allocated before and added in '+ X'). "
        "getrusage: ru_maxrss of the whole process (interpreter, libraries, X, BLAS "
        "buffers); VmHWM: the same peak from /proc/self/status; 'RSS before fit' is VmRSS "
        "after generating the data. Both children of a row ran at the same time; the "
        f"parent's RSS when they started was {parent_rss / GIB:.2f} GiB (a child's "
        "ru_maxrss can include it, VmHWM cannot).\n"
    )
    print_table(
        [
            "init_params",
            "tracemalloc peak GiB",
            "+ X GiB",
            "RSS before fit GiB",
            "ru_maxrss peak GiB",
            "VmHWM peak GiB",
            "VmHWM - before GiB",
            "fit s (RSS child)",
            "target < 4 GiB",
        ],
        rows,
    )


# --------------------------------------------------------------------------- flops
def run_flops(args):
    import em_lib

    n, d, k, covariance_type = BIG_CASE
    n = QUICK_BIG_N if args.quick else n
    n_init = args.n_init
    truth = make_data(n, d, k, args.seed)
    X = np.ascontiguousarray(truth.X)
    rng = np.random.default_rng(args.seed)
    weights = np.broadcast_to(truth.weights, (n_init, k)).copy()
    means = truth.means[None] + 0.5 * rng.standard_normal((n_init, k, d))
    covariances = np.broadcast_to(truth.covariances, (n_init, k, d, d)).copy()
    columns = 1 + d + d * (d + 1) // 2
    outputs = n_init * k
    product = 2.0 * n * columns * outputs  # flops of one (n x c) @ (c x IK) product
    two_products = 2 * product
    repeats = args.repeats
    rows = []

    def em_call():
        em_lib.fit_mixture_em(X, weights, means, covariances, covariance_type, max_iter=1, tol=0)

    seconds = best_time(em_call, repeats)
    rows.append(
        [
            "em_lib `fit_mixture_em(max_iter=1, tol=0)` (whole call: setup, phi, "
            "E+M, final E pass)",
            f"{seconds:.3f}",
            f"{two_products / 1e9:.2f}",
            f"{two_products / seconds / 1e9:.2f}",
        ]
    )

    try:  # the loop body alone, through em_lib's internal kernels
        from em_lib.numerics.covariance import precision_cholesky
        from em_lib.numerics.gaussian import make_engine, run_estep
        from em_lib.numerics.mixture_em import mstep
    except ImportError as error:
        print(f"(internal kernels not importable: {error})")
    else:
        center = X.mean(axis=0)
        engine = make_engine(X - center, covariance_type)
        prec_chol, _ = precision_cholesky(covariances, covariance_type)
        log_weights = np.log(weights)
        centred_means = means - center

        def iteration():
            result = run_estep(
                engine, log_weights, centred_means, covariances, prec_chol, want_stats=True
            )
            new = mstep(result["stats"], covariance_type, 1e-6)
            precision_cholesky(new[2], covariance_type)

        def estep_only():
            run_estep(engine, log_weights, centred_means, covariances, prec_chol, want_stats=False)

        seconds = best_time(iteration, repeats)
        rows.append(
            [
                "em_lib one EM iteration (E-step + statistics + M-step, phi cached)",
                f"{seconds:.3f}",
                f"{two_products / 1e9:.2f}",
                f"{two_products / seconds / 1e9:.2f}",
            ]
        )
        seconds = best_time(estep_only, repeats)
        rows.append(
            [
                "em_lib E-step pass only (phi @ W + normalisation)",
                f"{seconds:.3f}",
                f"{product / 1e9:.2f}",
                f"{product / seconds / 1e9:.2f}",
            ]
        )

    square = rng.standard_normal((2000, 2000))
    seconds = best_time(lambda: square @ square, repeats)
    flops = 2.0 * 2000**3
    rows.append(
        [
            "numpy 2000x2000 @ 2000x2000",
            f"{seconds:.3f}",
            f"{flops / 1e9:.2f}",
            f"{flops / seconds / 1e9:.2f}",
        ]
    )
    phi = rng.standard_normal((n, columns))
    weight_matrix = rng.standard_normal((columns, outputs))
    resp = rng.random((n, outputs))
    seconds = best_time(lambda: phi @ weight_matrix, repeats)
    rows.append(
        [
            f"numpy skinny ({n:,} x {columns}) @ ({columns} x {outputs})",
            f"{seconds:.3f}",
            f"{product / 1e9:.2f}",
            f"{product / seconds / 1e9:.2f}",
        ]
    )
    seconds = best_time(lambda: phi.T @ resp, repeats)
    rows.append(
        [
            f"numpy skinny ({columns} x {n:,}) @ ({n:,} x {outputs})",
            f"{seconds:.3f}",
            f"{product / 1e9:.2f}",
            f"{product / seconds / 1e9:.2f}",
        ]
    )
    block = 1024
    weight_t = np.ascontiguousarray(weight_matrix.T)

    def blocked():
        for start in range(0, n, block):
            part = phi[start : start + block]
            part.T @ (weight_t @ part.T).T

    seconds = best_time(blocked, repeats)
    rows.append(
        [
            f"numpy both products in blocks of {block} rows (em_lib's layout)",
            f"{seconds:.3f}",
            f"{two_products / 1e9:.2f}",
            f"{two_products / seconds / 1e9:.2f}",
        ]
    )
    print(
        f"## Achieved GFLOP/s: n={n:,}, d={d}, K={k}, full, n_init={n_init} "
        f"(phi has {columns} columns, W has {outputs})\n"
    )
    print(
        "Counted flops: E-step phi @ W and M-step phi.T @ resp, 2 n c IK each "
        f"(= {product / 1e9:.2f} GFLOP per product); everything else in the timed code "
        "(normalisation, exp/log, setup) is included in the time but not counted.\n"
    )
    print_table(["what", "best s", "GFLOP counted", "GFLOP/s"], rows)


# --------------------------------------------------------------------------- extras
def run_defaults_check(args):
    """What em_lib's defaults cost and buy: polishing and nested starts, cache cleared."""
    if not em_lib_supports("nested_starts"):
        return
    rows = []
    for n in (500, 5_000):
        for d, k in ((5, 5), (10, 8)):
            for covariance_type in COVARIANCE_TYPES:
                X = make_data(n, d, k, args.seed).X
                sk_time, sk = time_fit(partial(make_sklearn, k, covariance_type, args), X, 1)
                row = [f"{n:,}", d, k, covariance_type, f"{sk_time:.3f}", f"{sk.score(X):.5f}"]
                for nested, polish in ((False, False), (False, True), (True, True)):
                    factory = partial(
                        make_em_lib, k, covariance_type, "auto", args, nested=nested, polish=polish
                    )
                    seconds, fitted = time_fit(factory, X, 1)
                    row += [f"{seconds:.3f}", f"{sk_time / seconds:.2f}", f"{fitted.score(X):.5f}"]
                rows.append(row)
    print(
        "## em_lib defaults: polishing and nested starts (init_params='auto', one run "
        "each, cache cleared)\n"
    )
    print(
        "'polish' continues the best distinct starts to a relative 1e-10 (`polish_tol`, on "
        "by default); 'nested' adds the contained models' solutions as starts "
        "(`nested_starts`; fits the whole lattice of contained models). "
        "The last group is `GaussianMixture(K, covariance_type=..., n_init=10)` as "
        "shipped.\n"
    )
    print_table(
        [
            "n",
            "d",
            "K",
            "cov",
            "sklearn s",
            "sklearn LL",
            "auto s",
            "ratio",
            "auto LL",
            "+polish s",
            "ratio",
            "+polish LL",
            "defaults s",
            "ratio",
            "defaults LL",
        ],
        rows,
    )


# --------------------------------------------------------------------------- defaults grid
def make_em_lib_defaults(k, covariance_type, args):
    """em_lib as a user gets it: only K, the type, ``n_init`` and the seed are set."""
    import em_lib

    return em_lib.GaussianMixture(
        k, covariance_type=covariance_type, n_init=args.n_init, random_state=args.seed
    )


def make_sklearn_defaults(k, covariance_type, args):
    """scikit-learn as a user gets it: only K, the type, ``n_init`` and the seed are set."""
    from sklearn.mixture import GaussianMixture

    return GaussianMixture(
        k, covariance_type=covariance_type, n_init=args.n_init, random_state=args.seed
    )


def time_interleaved(factories, X, repeats, min_seconds=None):
    """Best wall time of each factory's fits, run in turns (a, b, a, b, ...) so that a change
    of the machine's speed hits both alike; at least ``repeats`` rounds, more (up to
    ``MAX_TIMING_RUNS``) until every factory spent ``min_seconds``. Returns a list of
    (seconds, CPU seconds, last fitted estimator), one per factory: the best wall time and
    the best process CPU time (the fits are single-threaded; CPU time leaves out the time the
    process waited for a core)."""
    min_seconds = MIN_TIMING_SECONDS if min_seconds is None else min_seconds
    best = [np.inf] * len(factories)
    best_cpu = [np.inf] * len(factories)
    spent = [0.0] * len(factories)
    fitted = [None] * len(factories)
    rounds = 0
    while rounds < repeats or (min(spent) < min_seconds and rounds < MAX_TIMING_RUNS):
        rounds += 1
        for position, factory in enumerate(factories):
            clear_em_lib_caches()
            estimator = factory()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start, start_cpu = time.perf_counter(), time.process_time()
                estimator.fit(X)
                elapsed = time.perf_counter() - start
                elapsed_cpu = time.process_time() - start_cpu
            best[position] = min(best[position], elapsed)
            best_cpu[position] = min(best_cpu[position], elapsed_cpu)
            spent[position] += elapsed
            fitted[position] = estimator
    return list(zip(best, best_cpu, fitted, strict=True))


def polish_iterations(estimator):
    """EM evaluations of the polishing stage of the kept start (0 without polishing)."""
    result = getattr(estimator, "fit_result_", None)
    if result is None or result.polish is None:
        return 0
    row = int(np.flatnonzero(result.polished_starts == result.best_start)[0])
    return int(result.polish.n_iter[row])


def run_defaults_grid(args):
    """Both libraries at their defaults on the grid: seconds, ratio, log-likelihood."""
    ns = QUICK_GRID_N if args.quick else FULL_GRID_N
    dks = QUICK_GRID_DK if args.quick else FULL_GRID_DK
    rows, missed = [], []
    for n in ns:
        for d, k in dks:
            for covariance_type in COVARIANCE_TYPES:
                X = make_data(n, d, k, args.seed).X
                (em_time, em_cpu, em), (sk_time, sk_cpu, sk) = time_interleaved(
                    [
                        partial(make_em_lib_defaults, k, covariance_type, args),
                        partial(make_sklearn_defaults, k, covariance_type, args),
                    ],
                    X,
                    args.repeats,
                )
                em_ll, sk_ll = em.score(X), sk.score(X)
                ratio = sk_time / em_time
                diff = em_ll - sk_ll
                ok = ratio >= DEFAULTS_SPEED_TARGET and diff >= -args.defaults_ll_slack
                if not ok:
                    missed.append(dict(n=n, d=d, k=k, covariance_type=covariance_type))
                rows.append(
                    [
                        f"{n:,}",
                        d,
                        k,
                        covariance_type,
                        f"{em_time:.3f}",
                        f"{sk_time:.3f}",
                        f"{ratio:.2f}",
                        f"{em_ll:.6f}",
                        f"{sk_ll:.6f}",
                        f"{diff:+.2e}",
                        f"{em.n_iter_}+{polish_iterations(em)}/{sk.n_iter_}",
                        mark(ok),
                        f"{sk_cpu / em_cpu:.2f}",
                    ]
                )
                print(
                    f"<!-- defaults done n={n} d={d} K={k} {covariance_type}: "
                    f"{ratio:.2f}x, dLL {diff:+.2e} -->",
                    file=sys.stderr,
                    flush=True,
                )
    print(
        f"## Defaults grid: both libraries at their defaults, n_init={args.n_init}, "
        f"random_state={args.seed}\n"
    )
    print(
        "em_lib: `em_lib.GaussianMixture(K, covariance_type=cov, n_init="
        f"{args.n_init}, random_state={args.seed})` (so `init_params='auto'`, "
        "`nested_starts=False`, polishing of the best distinct starts to a relative "
        "`polish_tol=1e-10`); scikit-learn: `sklearn.mixture.GaussianMixture(K, "
        f"covariance_type=cov, n_init={args.n_init}, random_state={args.seed})` (k-means "
        "starts, `tol=1e-3`). The two fits of a case run in turns (em_lib, sklearn, em_lib, "
        f"...), at least {args.repeats} rounds and more until each spent "
        f"{MIN_TIMING_SECONDS:g} s (at most {MAX_TIMING_RUNS}); best time of each. LL: mean "
        "per-sample log-likelihood `.score(X)` of the fitted model. Iterations: em_lib's "
        "batch `n_iter_` + the kept start's polishing EM evaluations / scikit-learn's "
        f"`n_iter_`. Target: ratio >= {DEFAULTS_SPEED_TARGET:g} and em_lib LL >= sklearn LL - "
        f"{args.defaults_ll_slack:g} (`--defaults-ll-slack`), on the wall-clock ratio; the "
        "last column is the ratio of the best process CPU times (for information: less "
        "affected by other processes). em_lib's Ward-tree cache is cleared before every fit. "
        f"Thread pools during the fits: {thread_pools()}.\n"
    )
    print_table(
        [
            "n",
            "d",
            "K",
            "cov",
            "em_lib s",
            "sklearn s",
            "ratio sk/em",
            "em_lib LL",
            "sklearn LL",
            "ΔLL em-sk",
            "iters em(+polish)/sk",
            f"target (≥{DEFAULTS_SPEED_TARGET:g}x, LL ≥)",
            "CPU-time ratio",
        ],
        rows,
    )
    return missed


def run_thread_check(args):
    """One case with unlimited BLAS threads against the configured limit."""
    n, d, k, covariance_type = 5_000, 5, 5, "full"
    X = make_data(n, d, k, args.seed).X
    rows = []
    for threads in (args.blas_threads, 0):
        with blas_limit(threads):
            em_time, _ = time_fit(lambda: make_em_lib(k, covariance_type, "kmeans", args), X, 1)
            sk_time, _ = time_fit(lambda: make_sklearn(k, covariance_type, args), X, 1)
        rows.append([threads or "unlimited", f"{em_time:.3f}", f"{sk_time:.3f}"])
    print(f"## BLAS threads check: n={n:,}, d={d}, K={k}, {covariance_type}, one run each\n")
    print_table(["threads", "em_lib s (kmeans)", "sklearn s"], rows)


def run_profile(spec, args):
    """cProfile one em_lib fit (init_params='kmeans' unless 5th field given; 'defaults':
    em_lib at its defaults, as in the defaults grid)."""
    fields = spec.split(",")
    n, d, k = (int(value) for value in fields[:3])
    covariance_type = fields[3] if len(fields) > 3 else "full"
    init = fields[4] if len(fields) > 4 else "kmeans"
    X = make_data(n, d, k, args.seed).X
    if init == "defaults":
        estimator = make_em_lib_defaults(k, covariance_type, args)
    else:
        estimator = make_em_lib(k, covariance_type, init, args)
    profiler = cProfile.Profile()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        profiler.enable()
        estimator.fit(X)
        profiler.disable()
        elapsed = time.perf_counter() - start
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("cumulative").print_stats(args.profile_top)
    stats.sort_stats("tottime").print_stats(args.profile_top)
    print(
        f"## cProfile: em_lib n={n:,} d={d} K={k} {covariance_type} init={init} "
        f"n_init={args.n_init}: {elapsed:.3f} s under the profiler\n"
    )
    print("```")
    print(stream.getvalue().strip())
    print("```\n")


# --------------------------------------------------------------------------- main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small grid (n <= 5000, d <= 5), large case at n=100,000",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timing runs per grid case")
    parser.add_argument("--big-repeats", type=int, default=1, help="timing runs for the large case")
    parser.add_argument("--n-init", type=int, default=10)
    parser.add_argument("--tol", type=float, default=1e-3)
    parser.add_argument("--max-iter", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--ll-slack",
        type=float,
        default=1e-3,
        help="em_lib LL may be this much below sklearn's and still count",
    )
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=1,
        help="threads per BLAS/OpenMP library (0: leave unlimited)",
    )
    parser.add_argument("--skip-grid", action="store_true")
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument(
        "--mem-inits",
        default="kmeans",
        help="comma-separated init_params to measure memory for "
        "(kmeans allocates the most; e.g. kmeans,auto)",
    )
    parser.add_argument("--skip-flops", action="store_true")
    parser.add_argument(
        "--defaults-check",
        action="store_true",
        help="also time em_lib's defaults (polishing, nested starts)",
    )
    parser.add_argument(
        "--defaults-grid",
        action="store_true",
        help="also run the grid with both libraries at their defaults (target 3x)",
    )
    parser.add_argument(
        "--defaults-ll-slack",
        type=float,
        default=1e-6,
        help="in the defaults grid, em_lib LL may be this much below sklearn's and still count",
    )
    parser.add_argument(
        "--thread-check", action="store_true", help="also time one case with unlimited BLAS threads"
    )
    parser.add_argument(
        "--profile",
        metavar="N,D,K[,COV[,INIT|defaults]]",
        action="append",
        help="cProfile one em_lib fit of this case (repeatable)",
    )
    parser.add_argument("--profile-top", type=int, default=20)
    parser.add_argument("--memory-child", choices=("tracemalloc", "rss"), help=argparse.SUPPRESS)
    parser.add_argument("--mem-n", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--mem-init", default="kmeans", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.memory_child:
        memory_child(args)
        return 0
    print_environment(args)
    missed = []
    started = time.perf_counter()
    if not args.skip_memory and not args.profile:
        run_memory(args)
    with blas_limit(args.blas_threads):
        if args.profile:
            for spec in args.profile:
                run_profile(spec, args)
            return 0
        if not args.skip_grid:
            missed += run_grid(args)
        if not args.skip_big:
            missed += run_big(args)
        if not args.skip_flops:
            run_flops(args)
        if args.defaults_check:
            run_defaults_check(args)
        if args.defaults_grid:
            missed += run_defaults_grid(args)
    if args.thread_check:
        run_thread_check(args)
    compared = not (args.skip_grid and args.skip_big) or args.defaults_grid
    if missed:
        names = ", ".join(
            f"n={r['n']:,} d={r['d']} K={r['k']} {r['covariance_type']}" for r in missed
        )
        print(f"**Missed speed/log-likelihood targets ({len(missed)}):** {names}\n")
    elif compared:
        print("All speed/log-likelihood targets met.\n")
    print(f"Total benchmark time: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
