"""Run the peers' own test suites against em_lib's estimators (on demand, not part of CI).

scikit-learn's ``sklearn/mixture/tests/test_gaussian_mixture.py`` and ``test_mixture.py``
are run with ``em_lib.GaussianMixture`` in place of scikit-learn's, and hmmlearn's
``hmmlearn/tests/test_gaussian_hmm.py`` with ``em_lib.GaussianHMM`` in place of hmmlearn's.
The test files are the ones installed with the peers (located through their packages, never
copied); ``peer_plugin.py`` swaps the estimator and sorts the tests (see its docstring):
tests of other estimators are not applicable, tests of the peers' private helpers are set
aside, and the deliberate differences listed in ``DIFFERENCES.md`` are expected to fail.

    python benchmarks/peer_tests/run_peer_tests.py            # both suites
    python benchmarks/peer_tests/run_peer_tests.py --suite hmmlearn -k fit_left_right

Prints one table per suite (test, outcome, short reason) and writes ``results.md`` next to
this script (``--output``). Exits 1 if any applicable test fails for a reason not listed in
``DIFFERENCES.md``, or a listed one passes; 0 otherwise. Needs scikit-learn, hmmlearn and
pytest installed (``pip install -e '.[test]'``).

Seeds: hmmlearn's conftest seeds numpy's global generator from ``HMMLEARN_SEED`` (random if
unset; set to 0 here unless given); scikit-learn's ``global_random_seed`` is 42 unless
``SKLEARN_TESTS_GLOBAL_RANDOM_SEED`` is set. float32 variants run
(``SKLEARN_RUN_FLOAT32_TESTS=1``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

SUITES = {
    "scikit-learn": ("sklearn.mixture.tests", ["test_gaussian_mixture.py", "test_mixture.py"]),
    "hmmlearn": ("hmmlearn.tests", ["test_gaussian_hmm.py"]),
}
DISTRIBUTIONS = {"scikit-learn": "scikit-learn", "hmmlearn": "hmmlearn"}
FAILING = ("failed", "unexpected pass", "not run")


def test_files(suite):
    """``(site-packages directory, [installed test files])`` of a peer suite."""
    package, names = SUITES[suite]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{suite}: {package} is not installed (pip install {suite})")
    directory = Path(next(iter(spec.submodule_search_locations)))
    files = [directory / name for name in names]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise SystemExit(f"{suite}: test files not installed: {', '.join(missing)}")
    top = directory
    for _ in package.split(".")[1:]:
        top = top.parent
    return top.parent, files


def run_suite(suite, pytest_args, differences, verbose):
    """Run one suite in a fresh interpreter; returns the plugin's JSON payload."""
    site, files = test_files(suite)
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results.json"
        command = [
            sys.executable,
            "-m",
            "pytest",
            *map(str, files),
            "-c",
            str(HERE / "pytest.ini"),
            "--rootdir",
            str(site),
            "-p",
            "peer_plugin",
            f"--peer-suite={suite}",
            f"--peer-results={results}",
            f"--peer-differences={differences}",
            "-q" if not verbose else "-v",
            "-rN",
            "--tb=no" if not verbose else "--tb=short",
            *pytest_args,
        ]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(HERE), str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
        )
        env.setdefault("HMMLEARN_SEED", "0")
        env.setdefault("SKLEARN_RUN_FLOAT32_TESTS", "1")
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(name, "1")
        print(f"== {suite}: {' '.join(command[3 : 3 + len(files)])}", file=sys.stderr)
        completed = subprocess.run(
            command, env=env, cwd=tmp, stdout=sys.stderr if verbose else subprocess.PIPE
        )
        if not results.exists():
            if completed.stdout:
                sys.stderr.write(completed.stdout.decode(errors="replace")[-5000:])
            raise SystemExit(f"{suite}: pytest wrote no results (exit {completed.returncode})")
        return json.loads(results.read_text())


def summary(payload):
    """Counts: applicable, set aside, not applicable, passed, differences, failing, skipped."""
    tests = payload["tests"]
    kinds = Counter(t["kind"] for t in tests)
    applicable = [t for t in tests if t["kind"] == "applicable"]
    outcomes = Counter(t["outcome"] for t in applicable)
    failing = sum(n for outcome, n in outcomes.items() if _is_failing(outcome))
    return {
        "applicable": kinds["applicable"],
        "set aside": kinds["set aside"],
        "not applicable": kinds["not applicable"],
        "passed": outcomes["passed"],
        "deliberate differences": outcomes["difference"],
        "skipped": outcomes["skipped"],
        "failing": failing,
    }


def _is_failing(outcome):
    return outcome in FAILING or outcome.startswith("error")


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(payloads, differences):
    """results.md: versions, one summary row per suite, then every test."""
    versions = {"em_lib": _em_lib_version()}
    for suite in payloads:
        versions[suite] = importlib.metadata.version(DISTRIBUTIONS[suite])
    for name in ("numpy", "scipy", "pytest"):
        versions[name] = importlib.metadata.version(name)
    lines = [
        "# Peer test suites run against em_lib",
        "",
        f"Generated by `python benchmarks/peer_tests/run_peer_tests.py` on "
        f"{dt.date.today().isoformat()} (Python {sys.version.split()[0]}; "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
        + f"). Deliberate differences: `{_relative(differences)}`.",
        "",
        "| suite | applicable | passed | deliberate differences | failing | skipped "
        "| set aside (private helpers) | not applicable |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for suite, payload in payloads.items():
        s = summary(payload)
        lines.append(
            f"| {suite} | {s['applicable']} | {s['passed']} | {s['deliberate differences']} "
            f"| {s['failing']} | {s['skipped']} | {s['set aside']} | {s['not applicable']} |"
        )
    for suite, payload in payloads.items():
        package, files = SUITES[suite]
        lines += [
            "",
            f"## {suite}: {', '.join(package.replace('.', '/') + '/' + f for f in files)}",
            "",
            "| test | outcome | reason |",
            "|---|---|---|",
        ]
        not_applicable, first_id = Counter(), {}
        for test in payload["tests"]:
            outcome = test["outcome"]
            reason = test["reason"]
            if test["kind"] == "not applicable":  # one row per test function
                key = (test["id"].split("[")[0], test["note"])
                not_applicable[key] += 1
                first_id.setdefault(key, test["id"])
                continue
            if test["kind"] != "applicable":
                reason = test["note"]
            elif outcome == "difference":
                reason = f"{test['note']} (raised: {test['reason']})"
            lines.append(f"| `{_cell(test['id'])}` | {outcome} | {_cell(reason)} |")
        for (test, note), count in not_applicable.items():
            shown = f"`{_cell(test)}` ({count} cases)" if count > 1 else f"`{first_id[test, note]}`"
            lines.append(f"| {shown} | not applicable | {_cell(note)} |")
    return "\n".join(lines) + "\n"


def _relative(path):
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _em_lib_version():
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "em_lib"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return f"{commit}{' + uncommitted changes' if dirty else ''}"
    except (OSError, subprocess.CalledProcessError):
        return importlib.metadata.version("em_lib")


def print_table(suite, payload, stream=sys.stdout):
    tests = [t for t in payload["tests"] if t["kind"] == "applicable"]
    width = max((len(t["id"]) for t in tests), default=10)
    print(f"\n{suite}", file=stream)
    for test in tests:
        reason = test["reason"] if test["outcome"] != "passed" else ""
        if test["outcome"] == "difference":
            reason = test["note"]
        if len(reason) > 100:
            reason = reason[:97] + "..."
        print(f"  {test['id']:<{width}}  {test['outcome']:<16} {reason}", file=stream)
    s = summary(payload)
    print("  " + ", ".join(f"{k}: {v}" for k, v in s.items()), file=stream)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=sorted(SUITES), action="append")
    parser.add_argument("--output", type=Path, default=HERE / "results.md")
    parser.add_argument("--no-output", action="store_true", help="do not write results.md")
    parser.add_argument("--differences", type=Path, default=HERE / "DIFFERENCES.md")
    parser.add_argument("-v", "--verbose", action="store_true", help="pytest's own output")
    parser.add_argument("-k", help="only tests matching this pytest -k expression")
    args = parser.parse_args(argv)
    pytest_args = ["-k", args.k] if args.k else []
    payloads = {
        suite: run_suite(suite, pytest_args, args.differences.resolve(), args.verbose)
        for suite in (args.suite or list(SUITES))
    }
    for suite, payload in payloads.items():
        print_table(suite, payload)
    if not args.no_output and not args.k:
        args.output.write_text(render(payloads, args.differences))
        print(f"\nwrote {_relative(args.output)}")
    failing = sum(summary(p)["failing"] for p in payloads.values())
    if failing:
        print(f"\n{failing} test(s) failing outside DIFFERENCES.md", file=sys.stderr)
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
