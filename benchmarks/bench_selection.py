"""em_lib.select_mixture (one call) vs a scikit-learn loop over the same model grid.

    python benchmarks/bench_selection.py --repeats 2          # full run, writes results
    python benchmarks/bench_selection.py --quick              # iris, K = 1..3, a check

Per data set, three things are timed in the same process, one after the other within each
repeat (so that a change of machine load hits all three alike):

* ``em_lib``: ``em_lib.select_mixture(X, n_components=range(1, K+1), covariance_types=
  ("full", "diag", "spherical", "tied"), criterion="bic", n_init=10, random_state=seed)``,
  em_lib's defaults otherwise (nested starts, polishing);
* ``em_lib (no polish)``: the same with ``polish_tol=None``, so that every start stops at
  ``tol=1e-3`` as scikit-learn's do;
* ``sklearn``: ``sklearn.mixture.GaussianMixture(n_components=k, covariance_type=t,
  n_init=10, random_state=seed).fit(X)`` for every cell, scikit-learn's defaults otherwise.

Each is the best of ``--repeats`` runs, wall clock (``time.perf_counter``) and CPU
(``time.process_time``), after a warm-up call of each on the data set (K = 1..2), so numba's
compile or cache-loading time is not counted. BLAS/OpenMP are pinned to one thread (env vars
set before numpy is imported, and threadpoolctl), numba to one thread.

Per cell, the mean per-sample log-likelihood is compared: em_lib's table ``log_likelihood``
divided by ``n`` against scikit-learn's ``score(X)``; a cell counts as equal or better when
em_lib >= sklearn - 1e-6. The report is markdown on stdout and in ``--out``.
"""

from __future__ import annotations

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

TYPES = ("full", "diag", "spherical", "tied")
SPEED_TARGET = 5.0
LL_SLACK = 1e-6  # per sample
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "benchmarks", "results_selection.md")


# --------------------------------------------------------------------------- data
def standardised(X):
    X = np.asarray(X, dtype=float)
    return (X - X.mean(axis=0)) / X.std(axis=0)


def load_datasets(quick):
    """(name, X) pairs; wine only if scikit-learn's bundled copy loads (no download)."""
    from em_lib.data import load_dataset, make_gaussian_mixture

    sets = [("iris", np.asarray(load_dataset("iris").X, dtype=float))]
    if quick:
        return sets, []
    sets.append(("old_faithful", np.asarray(load_dataset("old_faithful").X, dtype=float)))
    skipped = []
    try:
        from sklearn.datasets import load_wine

        sets.append(("wine (standardised)", standardised(load_wine().data)))
    except Exception as error:  # noqa: BLE001 - any failure to load means: leave it out
        skipped.append(f"wine: {type(error).__name__}: {error}")
    sets.append(
        ("simulated 2000x5, K=4", np.asarray(make_gaussian_mixture(2000, 5, 4, random_state=0).X))
    )
    sets.append(
        ("simulated 20000x5, K=4", np.asarray(make_gaussian_mixture(20000, 5, 4, random_state=1).X))
    )
    return sets, skipped


# --------------------------------------------------------------------------- runners
def run_em_lib(X, components, args, polish):
    import em_lib

    settings = {} if polish else {"polish_tol": None}
    result = em_lib.select_mixture(
        X,
        n_components=components,
        covariance_types=TYPES,
        criterion="bic",
        n_init=args.n_init,
        random_state=args.seed,
        **settings,
    )
    table = result.table
    n = X.shape[0]
    return {
        (row.covariance_type, int(row.n_components)): float(row.log_likelihood) / n
        for row in table.itertuples()
    }, result


def run_sklearn(X, components, args):
    from sklearn.mixture import GaussianMixture

    models = {}
    for covariance_type in TYPES:
        for k in components:
            model = GaussianMixture(
                n_components=k,
                covariance_type=covariance_type,
                n_init=args.n_init,
                random_state=args.seed,
            ).fit(X)
            models[covariance_type, k] = model
    return models  # scored after the clock stops, by the caller


def timed(function):
    """(wall s, CPU s, return value) of one call, warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wall, cpu = time.perf_counter(), time.process_time()
        value = function()
        return time.perf_counter() - wall, time.process_time() - cpu, value


def measure(name, X, components, args):
    runners = {
        "em": lambda: run_em_lib(X, components, args, polish=True),
        "em_np": lambda: run_em_lib(X, components, args, polish=False),
        "sk": lambda: run_sklearn(X, components, args),
    }
    warm = [k for k in components if k <= 2] or components[:1]
    for key in ("em", "em_np"):  # warm-up: numba compile / cache load, lazy imports
        timed(lambda key=key: run_em_lib(X, warm, args, polish=(key == "em")))
    timed(lambda: run_sklearn(X, warm, args))
    best = {key: [np.inf, np.inf] for key in runners}
    last = {}
    for repeat in range(args.repeats):
        for key, function in runners.items():
            wall, cpu, value = timed(function)
            best[key][0] = min(best[key][0], wall)
            best[key][1] = min(best[key][1], cpu)
            last[key] = value
            print(
                f"<!-- {name}: repeat {repeat + 1}/{args.repeats} {key} {wall:.2f} s wall, "
                f"{cpu:.2f} s CPU, load {os.getloadavg()[0]:.2f} -->",
                file=sys.stderr,
                flush=True,
            )
    em_ll, em_result = last["em"]
    em_np_ll, _ = last["em_np"]
    sk_models = last["sk"]
    cells = []
    for (covariance_type, k), model in sk_models.items():
        cells.append(
            {
                "dataset": name,
                "covariance_type": covariance_type,
                "k": k,
                "em": em_ll[covariance_type, k],
                "em_score": em_result.estimators[covariance_type, k].score(X),
                "em_np": em_np_ll[covariance_type, k],
                "sk": float(model.score(X)),
                "sk_converged": bool(model.converged_),
                "sk_iter": int(model.n_iter_),
            }
        )
    return {
        "name": name,
        "n": X.shape[0],
        "d": X.shape[1],
        "times": best,
        "cells": cells,
        "best_cell": em_result.best_cell,
        "sk_best_cell": min(sk_models, key=lambda cell: sk_models[cell].bic(X)),
    }


# --------------------------------------------------------------------------- report
def table(header, rows):
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def git_commit():
    def git(*command):
        return subprocess.run(
            ["git", "-C", ROOT, *command], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        # diff-index reads the index and the work tree, writes nothing
        changed = git("diff-index", "--name-only", "HEAD", "--", "em_lib").split()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    if changed:
        return f"{head} + uncommitted em_lib changes ({', '.join(changed)})"
    return f"{head} (em_lib as committed)"


def cell_counts(cells, key):
    diffs = np.array([c[key] - c["sk"] for c in cells])
    return int(np.sum(diffs >= -LL_SLACK)), len(cells), float(diffs.min())


def report(results, args, header_lines, load_end, total):
    out = list(header_lines)
    rows, short = [], []
    for r in results:
        t = r["times"]
        ok, count, worst = cell_counts(r["cells"], "em")
        ok_np, _, worst_np = cell_counts(r["cells"], "em_np")
        ratio, ratio_np = t["sk"][0] / t["em"][0], t["sk"][0] / t["em_np"][0]
        rows.append(
            [
                r["name"],
                f"{r['n']:,}",
                r["d"],
                f"{t['em'][0]:.2f} ({t['em'][1]:.2f})",
                f"{t['em_np'][0]:.2f} ({t['em_np'][1]:.2f})",
                f"{t['sk'][0]:.2f} ({t['sk'][1]:.2f})",
                f"{ratio:.1f}",
                f"{ratio_np:.1f}",
                f"{ok}/{count} ({ok_np}/{count})",
                f"{worst:+.2e} ({worst_np:+.2e})",
                f"{r['best_cell'][0]} K={r['best_cell'][1]} / "
                f"{r['sk_best_cell'][0]} K={r['sk_best_cell'][1]}",
            ]
        )
        short += [c for c in r["cells"] if min(c["em"], c["em_np"]) - c["sk"] < -LL_SLACK]
    out.append(
        table(
            [
                "dataset",
                "n",
                "d",
                "em_lib s",
                "em_lib s (no polish)",
                "sklearn s",
                "ratio",
                "ratio (no polish)",
                "cells em_lib >= sklearn (no polish)",
                "worst per-sample diff (no polish)",
                "BIC choice em_lib / sklearn",
            ],
            rows,
        )
    )
    out.append(
        "Seconds: wall clock, CPU in brackets, each the best of the repeats. Ratio: sklearn "
        "wall / em_lib wall. Cells: em_lib table `log_likelihood` / n >= sklearn `score(X)` "
        f"- {LL_SLACK:g}; worst diff: min over cells of em_lib - sklearn (per sample; "
        "negative = em_lib lower).\n"
    )
    all_cells = [c for r in results for c in r["cells"]]
    gap = max(abs(c["em"] - c["em_score"]) for c in all_cells)
    out.append(
        f"Check: em_lib table log_likelihood / n vs its estimators' `score(X)`: largest "
        f"difference {gap:.1e} per sample.\n"
    )
    if short:
        out.append(
            f"Cells where em_lib (default or no polish) is below sklearn by more than "
            f"{LL_SLACK:g} per sample:\n"
        )
        out.append(
            table(
                [
                    "dataset",
                    "type",
                    "K",
                    "em_lib",
                    "em_lib (no polish)",
                    "sklearn",
                    "em_lib - sklearn",
                    "no polish - sklearn",
                    "sklearn converged (iter)",
                ],
                [
                    [
                        c["dataset"],
                        c["covariance_type"],
                        c["k"],
                        f"{c['em']:.6f}",
                        f"{c['em_np']:.6f}",
                        f"{c['sk']:.6f}",
                        f"{c['em'] - c['sk']:+.2e}",
                        f"{c['em_np'] - c['sk']:+.2e}",
                        f"{c['sk_converged']} ({c['sk_iter']})",
                    ]
                    for c in short
                ],
            )
        )
    else:
        out.append(f"em_lib (both variants) is >= sklearn - {LL_SLACK:g} in every cell.\n")
    em_total = sum(r["times"]["em"][0] for r in results)
    em_np_total = sum(r["times"]["em_np"][0] for r in results)
    sk_total = sum(r["times"]["sk"][0] for r in results)
    out.append(
        f"All data sets: em_lib {em_total:.2f} s, em_lib (no polish) {em_np_total:.2f} s, "
        f"sklearn {sk_total:.2f} s; ratio {sk_total / em_total:.1f} "
        f"(no polish {sk_total / em_np_total:.1f}); target >= {SPEED_TARGET:g}x.\n"
    )
    out.append(
        f"Load average (1, 5, 15 min) at end: {load_end[0]:.2f}, {load_end[1]:.2f}, "
        f"{load_end[2]:.2f}. Total benchmark time {total:.0f} s.\n"
    )
    return "\n".join(out)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="iris only, K = 1..3; no file")
    parser.add_argument("--repeats", type=int, default=2, help="timing runs (best is kept)")
    parser.add_argument("--max-k", type=int, default=9, help="grid K = 1..max_k (quick: 3)")
    parser.add_argument("--n-init", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out",
        default=DEFAULT_OUT,
        help="markdown file to write ('' for none; --quick writes none unless given)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.max_k = min(args.max_k, 3)
        if args.out == DEFAULT_OUT:
            args.out = ""
    return args


def main(argv=None):
    args = parse_args(argv)
    import numba
    import scipy
    import sklearn
    from threadpoolctl import threadpool_limits

    import em_lib

    numba.set_num_threads(1)
    load_start = os.getloadavg()
    started = time.perf_counter()
    components = list(range(1, args.max_k + 1))
    datasets, skipped = load_datasets(args.quick)
    header = [
        "# em_lib.select_mixture vs scikit-learn loops: model selection benchmark\n",
        f"- command: `python benchmarks/bench_selection.py {' '.join(sys.argv[1:])}`".rstrip()
        + f"; date {time.strftime('%Y-%m-%d %H:%M:%S')}",
        f"- commit: {git_commit()}",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs; load average (1, 5, 15 min) "
        f"at start: {load_start[0]:.2f}, {load_start[1]:.2f}, {load_start[2]:.2f}",
        f"- python {platform.python_version()}, numpy {np.__version__}, scipy "
        f"{scipy.__version__}, scikit-learn {sklearn.__version__}, numba {numba.__version__}, "
        f"em_lib {em_lib.__version__}",
        "- threads: BLAS/OpenMP 1 (env vars before numpy import + threadpoolctl), numba 1",
        f"- grid: K = 1..{args.max_k} x {', '.join(TYPES)} ({len(components) * len(TYPES)} "
        f"cells), criterion bic, n_init={args.n_init}, random_state={args.seed}; best of "
        f"{args.repeats} run(s) after a warm-up call (K = 1..2) per data set",
        "- em_lib: `select_mixture(X, ...)` with its defaults (nested starts, polishing); "
        "no polish: `polish_tol=None`. sklearn: `GaussianMixture(n_components=k, "
        "covariance_type=t, n_init, random_state).fit(X)` per cell, its defaults otherwise",
    ]
    if skipped:
        header.append(f"- left out: {'; '.join(skipped)}")
    header.append("")
    results = []
    with threadpool_limits(limits=1):
        for name, X in datasets:
            results.append(measure(name, X, components, args))
    text = report(results, args, header, os.getloadavg(), time.perf_counter() - started)
    print(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
