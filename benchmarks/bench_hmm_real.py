"""em_lib.GaussianHMM(n_init=10) against hmmlearn's best of 10 seeds on public real sequences.

    pip install statsmodels                      # its bundled data sets (no network needed)
    python benchmarks/bench_hmm_real.py          # the table, markdown on stdout
    python benchmarks/bench_hmm_real.py --em-seeds 10 --diagnose

Per case, em_lib fits ``GaussianHMM(n_components=K, covariance_type=t, n_init=10,
random_state=0)`` with every other setting at its default; hmmlearn fits
``GaussianHMM(n_components=K, covariance_type=t, random_state=s)`` for s = 0..9 with its
defaults (``n_iter=10``, ``tol=1e-2``) and, for information, with ``n_iter=1000,
tol=1e-6`` (run to convergence), keeping the best ``score(X)`` of each. Scores are total
log-likelihoods of the whole sequence under each library's own fitted model. ``diff`` is
em_lib minus the better of the two hmmlearn columns.

``--em-seeds N`` also fits em_lib with ``random_state`` 0..N-1 and counts the seeds that reach
that hmmlearn best (a check that seed 0 is not lucky); ``--em-seeds 0-29,100-129`` takes the
seeds of those inclusive ranges instead. A seed reaches it when its score is at least the
hmmlearn best minus ``1e-6`` times its size. ``--diagnose`` prints, for every case, the optima
reached by each kind of em_lib start (after the batch, before polishing).
``--screen-candidates C`` sets the candidates per random start of ``init="auto"`` (default:
em_lib's ``SCREEN_CANDIDATES``); ``--screen-candidates 1`` gives the starts drawn before
screening existed, for a before/after comparison.

The series (all public, all offline; d = number of features, T = length):

* ``nile``: annual Nile flow at Aswan 1871-1970 (statsmodels ``nile``), standardised;
  d=1, T=100.
* ``sunspots``: yearly sunspot numbers 1700-2008 (statsmodels ``sunspots``), square root
  (variance-stabilising for counts), standardised; d=1, T=309.
* ``elnino``: monthly sea surface temperature of the El Nino region 1950-2010
  (statsmodels ``elnino``), anomalies from each calendar month's mean, standardised; d=1,
  T=732.
* ``old_faithful``: eruption duration and waiting time of consecutive Old Faithful
  eruptions (em_lib's bundled ``old_faithful``, in recorded order), standardised; d=2, T=272.
* ``macro``: US quarterly real GDP, consumption and investment 1959-2009 (statsmodels
  ``macrodata``), growth rates ``100 * diff(log(x))``; d=3, T=202.
* ``interest_inflation``: German quarterly inflation and interest rate 1972-1998
  (statsmodels ``interest_inflation``, columns ``Dp`` and ``R``), standardised; d=2, T=107.

BLAS threads are pinned to 1; times are wall seconds of the 10 starts (em_lib: one batched
call after numba's compilation was warmed up; hmmlearn: the sum of its 10 fits).
"""

from __future__ import annotations

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

N_INIT = 10
SEEDS = range(10)
LONG = {"n_iter": 1000, "tol": 1e-6}


def _standardised(values):
    values = np.asarray(values, dtype=float)
    return (values - values.mean(0)) / values.std(0)


def load_series() -> dict[str, np.ndarray]:
    """name -> X (T, d), transformed as the module docstring says."""
    import statsmodels.api as sm

    from em_lib.data import load_dataset

    datasets = sm.datasets
    nile = datasets.nile.load_pandas().data["volume"].to_numpy()
    sunspots = datasets.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy()
    elnino = datasets.elnino.load_pandas().data.drop(columns="YEAR").to_numpy(dtype=float)
    anomalies = (elnino - elnino.mean(0)).reshape(-1)  # years x months, in time order
    faithful = load_dataset("old_faithful").X
    macro = datasets.macrodata.load_pandas().data[["realgdp", "realcons", "realinv"]]
    growth = 100.0 * np.diff(np.log(macro.to_numpy(dtype=float)), axis=0)
    rates = datasets.interest_inflation.load_pandas().data[["Dp", "R"]].to_numpy(dtype=float)
    return {
        "nile": _standardised(nile)[:, None],
        "sunspots": _standardised(np.sqrt(sunspots))[:, None],
        "elnino": _standardised(anomalies)[:, None],
        "old_faithful": _standardised(faithful),
        "macro": growth,
        "interest_inflation": _standardised(rates),
    }


def cases(series):
    """(name, X, K, covariance type): K = 2 and 3; diag only for 1-d series (there
    diag == full), diag and full for the others."""
    for name, X in series.items():
        types = ("diag",) if X.shape[1] == 1 else ("diag", "full")
        for covariance_type in types:
            for k in (2, 3):
                yield name, X, k, covariance_type


def parse_seeds(text):
    """'10' -> 0..9; '0-29,100-129' -> those inclusive ranges; '3,5' -> 3 and 5."""
    if text.isdigit():
        return list(range(int(text)))
    seeds = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        seeds.extend(range(int(low), int(high or low) + 1))
    return seeds


def set_screen_candidates(count):
    """Candidates per random start of init="auto" for every later fit (GaussianHMM does not
    expose it: this changes the default of initial_hmm_parameters)."""
    from em_lib.numerics.hmm.init import initial_hmm_parameters

    initial_hmm_parameters.__kwdefaults__["screen_candidates"] = int(count)


def fit_em_lib(X, k, covariance_type, seed):
    from em_lib import GaussianHMM

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = GaussianHMM(
            n_components=k, covariance_type=covariance_type, n_init=N_INIT, random_state=seed
        ).fit(X)
    return model, model.score(X), time.perf_counter() - start


def fit_hmmlearn(X, k, covariance_type, **options):
    """Best score over seeds 0..9 and the summed time."""
    from hmmlearn.hmm import GaussianHMM

    best, total = -np.inf, 0.0
    for seed in SEEDS:
        start = time.perf_counter()
        model = GaussianHMM(
            n_components=k, covariance_type=covariance_type, random_state=seed, **options
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X)
        total += time.perf_counter() - start
        try:
            score = model.score(X)
        except ValueError:  # a degenerate fit hmmlearn cannot score
            continue
        if np.isfinite(score):
            best = max(best, score)
    return best, total


def optima_by_kind(model, n_samples):
    """'kind: ll, ll, ...' of every start after the batch (rounded to 0.1 nat)."""
    starts = model.starts_
    text = []
    for kind in dict.fromkeys(model.start_origin_):
        rows = np.flatnonzero(model.start_origin_ == kind)
        values = [
            "fail" if starts.failed[row] else f"{starts.log_likelihood[row]:.1f}" for row in rows
        ]
        text.append(f"{kind}: {', '.join(values)}")
    return "; ".join(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--em-seeds", default="0", help="also fit em_lib seeds 0..N-1, or ranges like 0-29,100-129"
    )
    parser.add_argument(
        "--screen-candidates", type=int, default=None, help="1: no screening (the old starts)"
    )
    parser.add_argument("--diagnose", action="store_true", help="optima by kind of start")
    parser.add_argument("--only", default=None, help="comma-separated series names")
    args = parser.parse_args()
    logging.getLogger("hmmlearn").setLevel(logging.ERROR)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    if args.screen_candidates is not None:
        set_screen_candidates(args.screen_candidates)
    em_seeds = parse_seeds(args.em_seeds) if args.em_seeds != "0" else []
    series = load_series()
    if args.only:
        series = {name: series[name] for name in args.only.split(",")}
    fit_em_lib(series[next(iter(series))], 2, "diag", 0)  # numba compilation, not timed
    import hmmlearn
    import statsmodels

    import em_lib
    from em_lib.numerics.hmm.init import initial_hmm_parameters

    screen = initial_hmm_parameters.__kwdefaults__["screen_candidates"]
    print(
        f"em_lib {em_lib.__version__}, hmmlearn {hmmlearn.__version__}, numpy {np.__version__}, "
        f"statsmodels {statsmodels.__version__}; load average {os.getloadavg()[0]:.1f}; "
        f"BLAS threads 1; screen_candidates {screen}"
    )
    print()
    rows, notes, below = [], [], 0
    em_total, seed_misses, seed_fits, seed_time = 0.0, 0, 0, 0.0
    for name, X, k, covariance_type in cases(series):
        model, em_ll, em_s = fit_em_lib(X, k, covariance_type, 0)
        default_ll, default_s = fit_hmmlearn(X, k, covariance_type)
        long_ll, long_s = fit_hmmlearn(X, k, covariance_type, **LONG)
        reference = max(default_ll, long_ll)
        diff = em_ll - reference
        below += diff < -1e-6 * abs(reference)
        em_total += em_s
        row = (
            f"| {name} | {X.shape[0]} | {X.shape[1]} | {k} | {covariance_type} | {em_ll:.3f} "
            f"| {default_ll:.3f} | {long_ll:.3f} | {diff:+.3f} | {em_s:.2f} | {default_s:.2f} "
            f"| {long_s:.2f} |"
        )
        if em_seeds:
            fits = [fit_em_lib(X, k, covariance_type, s) for s in em_seeds]
            values = [fit[1] for fit in fits]
            reached = sum(v >= reference - 1e-6 * abs(reference) for v in values)
            seed_misses += len(values) - reached
            seed_fits += len(values)
            median_s = float(np.median([fit[2] for fit in fits]))
            seed_time += median_s
            row += (
                f" {reached}/{len(values)} (min {min(values) - reference:+.2f}) | {median_s:.3f} |"
            )
        rows.append(row)
        print(row.split("|")[1:6], f"em {em_ll:.3f} hmmlearn {reference:.3f}", flush=True)
        if args.diagnose:
            notes.append(f"* {name} K={k} {covariance_type}: {optima_by_kind(model, X.shape[0])}")
    header = (
        "| series | T | d | K | type | em_lib ll | hmmlearn best (defaults) "
        "| hmmlearn best (n_iter=1000, tol=1e-6) | diff | em_lib s | hmmlearn s (defaults) "
        "| hmmlearn s (long) |"
    )
    rule = "|---" * 12 + "|"
    if em_seeds:
        header += (
            f" em_lib seeds {args.em_seeds} reaching the hmmlearn best "
            "| em_lib s (median over those seeds) |"
        )
        rule += "---|---|"
    print()
    print(header)
    print(rule)
    print("\n".join(rows))
    print()
    print(f"em_lib below hmmlearn's best of 10 seeds in {below} of {len(rows)} cases.")
    print(f"em_lib time at random_state=0, all cases: {em_total:.2f} s.")
    if em_seeds:
        print(
            f"Over em_lib seeds {args.em_seeds}: {seed_fits - seed_misses} of {seed_fits} fits "
            f"reach hmmlearn's best ({seed_misses} below); median fit times summed over the "
            f"cases: {seed_time:.2f} s."
        )
    if notes:
        print()
        print("Optima of em_lib's starts (random_state=0) by kind, after the batch:")
        print("\n".join(notes))


if __name__ == "__main__":
    main()
