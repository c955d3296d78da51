"""em_lib vs hmmlearn Gaussian HMMs: Baum-Welch from identical starts (run on demand).

    python benchmarks/bench_hmm.py > /tmp/results_hmm.md   # all cases, 1-3 min on 2 cores
    python benchmarks/bench_hmm.py --quick                 # the first two cases

Progress goes to stderr, the report (markdown) to stdout.

Same starts (the target: em_lib at least 3x faster than hmmlearn's ``scaling``
implementation). For every case both libraries run Baum-Welch alone from exactly the same
``--n-init`` starting points (em_lib's ``initial_hmm_parameters(init="gmm")``) for exactly
``--n-iter`` iterations: em_lib's batched ``fit_hmm_em(tol=0)`` (no start stops early) and, for
every start, ``hmmlearn.hmm.GaussianHMM(implementation="scaling", init_params="",
tol=-inf)``. Both run the plain maximum-likelihood update (em_lib ``reg_covar=0``, hmmlearn
``covars_prior=0``; hmmlearn's Dirichlet priors of 1 are the ML update) and both end with the
log-likelihood of the parameters returned (em_lib's fit computes it; hmmlearn's ``score(X)``
is timed with its fit). So the work is the same: ``n_iter`` E- and M-steps and one forward
pass per start. The log-likelihoods of the two must agree to round-off: the table gives the
largest relative difference over the starts.

Defaults (for information): ``em_lib.hmm.GaussianHMM(n_components=K)`` against
``hmmlearn.hmm.GaussianHMM(n_components=K)`` on the same data with each library's defaults
(both fit diagonal covariances, whatever the case's generating type; em_lib: 10 starts of its
own mix, up to 100 iterations, ``tol=1e-4`` per step, polishing of the best starts; hmmlearn:
one k-means start, 10 iterations, ``tol=1e-2``, the "log" implementation) and
``random_state`` set in both, with the fitted model's mean per-step log-likelihood
``score(X) / n``. The two protocols do different amounts of work; the row says what each
costs and buys.

Timing: CPU seconds (``time.process_time``) of the process, with wall-clock seconds in
brackets; BLAS/OpenMP pinned to one thread for both libraries (threadpoolctl), numba
single-threaded. The libraries alternate within each repeat; the best of ``--repeats`` runs
is kept, and a fit shorter than ``--min-time`` in total is repeated until that much time was
spent (at most ``--max-runs``), for both alike. numba's one-off compilation is measured apart
(cold: an empty cache in a subprocess; warm: loading the on-disk cache) and excluded. The
load average is printed at the start and the end: other processes inflate the times, the
ratios much less.
"""

from __future__ import annotations

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

SEED = 2024
# (name, sequence lengths, d, K, covariance type)
CASES = [
    ("T=2,000, d=1, K=2, diag", [2_000], 1, 2, "diag"),
    ("T=20,000, d=3, K=4, diag", [20_000], 3, 4, "diag"),
    ("T=20,000, d=3, K=4, full", [20_000], 3, 4, "full"),
    ("50 x T=200, d=2, K=3, tied", [200] * 50, 2, 3, "tied"),
    ("T=10,000, d=5, K=8, diag", [10_000], 5, 8, "diag"),
]
QUICK = (0, 1)

_COLD_SNIPPET = """
import time
import numpy as np
from em_lib.hmm import GaussianHMM
rng = np.random.default_rng(0)
X = rng.normal(size=(50, 2))
t0 = time.perf_counter()
for k in (2, 5):
    GaussianHMM(k, n_init=1, n_iter=2, random_state=0).fit(X)
print(time.perf_counter() - t0)
"""


def log(message):
    print(message, file=sys.stderr, flush=True)


def jit_times():
    """(cold compile, warm cache load) seconds of the first fits of a process (K = 2 and 5:
    the unrolled and the generic recursion)."""
    env = dict(os.environ)

    def run(extra):
        out = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", _COLD_SNIPPET],
            env={**env, **extra},
            capture_output=True,
            text=True,
            check=True,
        )
        return float(out.stdout)

    with tempfile.TemporaryDirectory() as cache:
        cold = run({"NUMBA_CACHE_DIR": cache})
    return cold, run({})


def source_state():
    """The git commit of the source tree, and whether em_lib has uncommitted changes."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def git(*command):
        out = subprocess.run(["git", *command], cwd=root, capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "em_lib")
    return commit + (" + uncommitted changes in em_lib" if dirty else "")


def make_case(lengths, d, k, covariance_type):
    from em_lib.data import make_hmm_sequences

    data = make_hmm_sequences(
        lengths, d, k, separation=2.0, covariance_type=covariance_type, random_state=SEED
    )
    return data.X, np.asarray(lengths)


def em_lib_same_starts(X, lengths, starts, covariance_type, n_iter):
    from em_lib.numerics.hmm import fit_hmm_em

    fit = fit_hmm_em(
        X,
        lengths,
        **starts,
        covariance_type=covariance_type,
        tol=0.0,
        max_iter=n_iter,
        reg_covar=0.0,
    )
    return fit.log_likelihood, fit.n_iter


def hmmlearn_same_starts(X, lengths, starts, covariance_type, n_iter, implementation):
    from hmmlearn.hmm import GaussianHMM

    n_init, k = starts["startprob"].shape
    loglik, iterations = np.empty(n_init), np.empty(n_init, dtype=int)
    for i in range(n_init):
        model = GaussianHMM(
            k,
            covariance_type,
            n_iter=n_iter,
            tol=-np.inf,
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
            model.fit(X, lengths)
            loglik[i] = model.score(X, lengths)
        iterations[i] = model.monitor_.iter
    return loglik, iterations


def em_lib_defaults(X, lengths, k):
    from em_lib.hmm import GaussianHMM

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = GaussianHMM(k, random_state=SEED).fit(X, lengths)
    return model.score(X, lengths) / X.shape[0], int(model.starts_.n_iter.sum())


def hmmlearn_defaults(X, lengths, k):
    from hmmlearn.hmm import GaussianHMM

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = GaussianHMM(k, random_state=SEED).fit(X, lengths)
        score = model.score(X, lengths)
    return score / X.shape[0], model.monitor_.iter


def interleaved(functions, repeats, min_time, max_runs):
    """Run the named functions in turn; per name the best (CPU s, wall s) and the last result.

    Each runs at least ``repeats`` times, and more (at most ``max_runs``) while its total
    CPU time is below ``min_time``.
    """
    best = {name: [np.inf, np.inf] for name in functions}
    spent = dict.fromkeys(functions, 0.0)
    runs = dict.fromkeys(functions, 0)
    results = {}
    while True:
        pending = [
            name
            for name in functions
            if runs[name] < max_runs and (runs[name] < repeats or spent[name] < min_time)
        ]
        if not pending:
            return best, results
        for name in pending:
            c0, w0 = time.process_time(), time.perf_counter()
            results[name] = functions[name]()
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
            best[name] = [min(best[name][0], cpu), min(best[name][1], wall)]
            spent[name] += cpu
            runs[name] += 1


def relative_difference(a, b):
    both = np.isfinite(a) & np.isfinite(b)
    if not both.any():
        return np.nan
    return float(np.max(np.abs(a[both] - b[both]) / np.abs(b[both])))


def seconds(pair):
    return f"{pair[0]:.3f} [{pair[1]:.3f}]"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (min is kept)")
    parser.add_argument("--min-time", type=float, default=1.0, help="repeat short fits")
    parser.add_argument("--max-runs", type=int, default=30)
    parser.add_argument("--n-iter", type=int, default=20, help="Baum-Welch iterations")
    parser.add_argument("--n-init", type=int, default=10, help="starts")
    parser.add_argument("--quick", action="store_true", help="the first two cases only")
    parser.add_argument(
        "--log-implementation",
        action="store_true",
        help="also time hmmlearn's default 'log' implementation from the same starts",
    )
    parser.add_argument("--skip-defaults", action="store_true")
    parser.add_argument("--skip-compile", action="store_true")
    args = parser.parse_args()

    import hmmlearn
    import numba
    from threadpoolctl import threadpool_limits

    import em_lib
    from em_lib.numerics.hmm import initial_hmm_parameters

    threadpool_limits(1)
    load_start = os.getloadavg()
    cases = [CASES[i] for i in QUICK] if args.quick else CASES
    if not args.skip_compile:
        log("numba compile times ...")
        cold, warm = jit_times()
    # compile / load every kernel variant, and hmmlearn's lazy imports, before timing
    X0 = np.random.default_rng(0).normal(size=(60, 1))
    for k in (2, 3, 4, 5):
        starts0 = initial_hmm_parameters(X0, None, k, "diag", 2, init="gmm", random_state=0)
        em_lib_same_starts(X0, None, starts0, "diag", 2)
        hmmlearn_same_starts(X0, None, starts0, "diag", 2, "scaling")
        if not args.skip_defaults:
            em_lib_defaults(X0, None, k)
            hmmlearn_defaults(X0, None, k)

    same_rows, default_rows = [], []
    for name, lengths, d, k, covariance_type in cases:
        log(f"{name}: same starts ...")
        X, lengths = make_case(lengths, d, k, covariance_type)
        starts = initial_hmm_parameters(
            X, lengths, k, covariance_type, args.n_init, init="gmm", random_state=SEED
        )
        functions = {
            "em_lib": lambda X=X, L=lengths, s=starts, c=covariance_type: em_lib_same_starts(
                X, L, s, c, args.n_iter
            ),
            "scaling": lambda X=X, L=lengths, s=starts, c=covariance_type: hmmlearn_same_starts(
                X, L, s, c, args.n_iter, "scaling"
            ),
        }
        if args.log_implementation:
            functions["log"] = lambda X=X, L=lengths, s=starts, c=covariance_type: (
                hmmlearn_same_starts(X, L, s, c, args.n_iter, "log")
            )
        best, results = interleaved(functions, args.repeats, args.min_time, args.max_runs)
        same_rows.append((name, lengths, best, results))
        if not args.skip_defaults:
            log(f"{name}: defaults ...")
            best, results = interleaved(
                {
                    "em_lib": lambda X=X, L=lengths, k=k: em_lib_defaults(X, L, k),
                    "hmmlearn": lambda X=X, L=lengths, k=k: hmmlearn_defaults(X, L, k),
                },
                1,
                args.min_time,
                args.max_runs,
            )
            default_rows.append((name, best, results))
    load_end = os.getloadavg()

    stamp = datetime.datetime.now().isoformat(timespec="minutes")
    print(f"# HMM benchmark: em_lib vs hmmlearn ({stamp})\n")
    command = " ".join(["python benchmarks/bench_hmm.py", *sys.argv[1:]])
    print(f"Command: `{command}`; source: {source_state()}.\n")
    print(
        f"em_lib {em_lib.__version__}, hmmlearn {hmmlearn.__version__}, numpy "
        f"{np.__version__}, numba {numba.__version__}; Python {sys.version.split()[0]}; "
        f"{os.cpu_count()} CPUs; BLAS 1 thread. Load average (1, 5, 15 min) at the start "
        f"{', '.join(f'{v:.2f}' for v in load_start)}, at the end "
        f"{', '.join(f'{v:.2f}' for v in load_end)}.\n"
    )
    print(
        f"## Baum-Welch from identical starts ({args.n_init} starts x {args.n_iter} iterations, "
        "ML updates, final log-likelihood included)\n"
    )
    print(
        f"CPU s [wall s], best of at least {args.repeats} interleaved runs (short fits repeated "
        f"to {args.min_time:g} s). Ratio = hmmlearn `scaling` / em_lib. logL = log-likelihood "
        "of the returned parameters of a start; difference = largest |em_lib - hmmlearn| / "
        "|hmmlearn| over the starts.\n"
    )
    extra = " | hmmlearn `log` s | ratio (log)" if args.log_implementation else ""
    print(
        f"| case | n | em_lib s | hmmlearn `scaling` s | ratio{extra} | best logL em_lib | "
        "best logL hmmlearn | max rel. logL difference | iterations em_lib / hmmlearn |"
    )
    print("|---|---:|---:|---:|---:|" + ("---:|---:|" if extra else "") + "---:|---:|---:|---|")
    for name, lengths, best, results in same_rows:
        ll_em, it_em = results["em_lib"]
        ll_hl, it_hl = results["scaling"]
        cells = [
            name,
            f"{int(lengths.sum()):,}",
            seconds(best["em_lib"]),
            seconds(best["scaling"]),
            f"{best['scaling'][0] / best['em_lib'][0]:.1f}x",
        ]
        if extra:
            cells += [seconds(best["log"]), f"{best['log'][0] / best['em_lib'][0]:.1f}x"]
        iterations = f"{set(it_em.tolist())} / {set(it_hl.tolist())}"
        cells += [
            f"{np.max(ll_em):.4f}",
            f"{np.max(ll_hl):.4f}",
            f"{relative_difference(ll_em, ll_hl):.1e}",
            iterations,
        ]
        print("| " + " | ".join(cells) + " |")
    if default_rows:
        print("\n## Defaults (for information): `GaussianHMM(n_components=K, random_state=seed)`\n")
        print(
            "Both fit diagonal covariances (the default), whatever the case's generating type. "
            "em_lib: 10 starts, n_iter <= 100, tol 1e-4 per step, polishing; hmmlearn: 1 start, "
            "n_iter 10, tol 1e-2, `log` implementation. CPU s [wall s], best of the runs; "
            "logL per step = `score(X) / n`; iterations = summed over em_lib's starts.\n"
        )
        print(
            "| case | em_lib s | hmmlearn s | ratio | logL per step em_lib | logL per step "
            "hmmlearn | iterations em_lib / hmmlearn |"
        )
        print("|---|---:|---:|---:|---:|---:|---|")
        for name, best, results in default_rows:
            (score_em, it_em), (score_hl, it_hl) = results["em_lib"], results["hmmlearn"]
            print(
                f"| {name} | {seconds(best['em_lib'])} | {seconds(best['hmmlearn'])} | "
                f"{best['hmmlearn'][0] / best['em_lib'][0]:.1f}x | {score_em:.4f} | "
                f"{score_hl:.4f} | {it_em} / {it_hl} |"
            )
    if not args.skip_compile:
        print(
            f"\nnumba one-off compilation (first fits of a process, K = 2 and 5, empty cache): "
            f"{cold:.1f} s; loading the on-disk cache (`cache=True`): {warm:.2f} s; excluded "
            "above."
        )


if __name__ == "__main__":
    main()
