"""pytest plugin that runs a peer library's own tests against em_lib's estimators.

Loaded by ``run_peer_tests.py`` (``-p peer_plugin``) into a pytest session over the peer's
installed test files. Before any test module is imported it rebinds the peer's public name of
the estimator to em_lib's:

* ``--peer-suite=scikit-learn``: ``sklearn.mixture.GaussianMixture`` becomes
  ``em_lib.GaussianMixture`` (the class itself), so ``from sklearn.mixture import
  GaussianMixture`` in the test modules, including parametrisations built at import time,
  binds em_lib's class.
* ``--peer-suite=hmmlearn``: ``hmmlearn.hmm.GaussianHMM`` becomes a factory returning an
  ``em_lib.GaussianHMM`` instance; its only translation is dropping hmmlearn's
  ``implementation`` keyword (which forward-backward arithmetic hmmlearn uses, "log" or
  "scaling"; em_lib has its own), which nearly every hmmlearn test passes.

After collection every test is sorted into one of:

* ``not applicable``: tests of something other than the swapped estimator (a test
  parametrised with ``BayesianGaussianMixture``; scikit-learn's array-API dispatch tests).
  Deselected.
* ``set aside``: tests of the peer's private helpers, i.e. whose body (or a helper function
  of the test module that it calls) uses a module-level name starting with ``_`` taken from
  the peer package (``_estimate_gaussian_parameters``, ...), or imports one. Deselected.
* ``applicable``: run, including tests that touch the estimator's own private attributes
  (hmmlearn's ``h._init(...)``, scikit-learn's ``g._n_parameters()``): they pass where em_lib
  has the same, and are listed as differences where they fail for that reason. Those listed
  in ``DIFFERENCES.md`` (deliberate differences) are marked ``xfail(strict=True)``: a listed
  test that passes is reported as a failure ("unexpected pass"), so the list cannot go
  stale.

Each test's outcome and short reason are written as JSON to ``--peer-results``.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import sys
import textwrap
import types
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PEER_PACKAGES = {"scikit-learn": "sklearn", "hmmlearn": "hmmlearn"}


def pytest_addoption(parser):
    group = parser.getgroup("peer", "peer test suites against em_lib")
    group.addoption("--peer-suite", choices=sorted(PEER_PACKAGES), help="which peer's tests")
    group.addoption("--peer-results", help="JSON file for the per-test outcomes")
    group.addoption(
        "--peer-differences",
        default=str(HERE / "DIFFERENCES.md"),
        help="markdown table of deliberate differences (expected failures)",
    )


# --------------------------------------------------------------------------- the swap
def _hmm_factory():
    import em_lib

    def GaussianHMM(*args, implementation=None, **kwargs):  # noqa: N802 (the peer's name)
        """em_lib.GaussianHMM, accepting (and ignoring) hmmlearn's ``implementation``."""
        return em_lib.GaussianHMM(*args, **kwargs)

    GaussianHMM.em_lib_class = em_lib.GaussianHMM
    return GaussianHMM


def swap_estimators(suite):
    """Rebind the peer's public estimator name to em_lib's; returns {module: (name, new)}."""
    import em_lib

    if suite == "scikit-learn":
        import sklearn.mixture

        sklearn.mixture.GaussianMixture = em_lib.GaussianMixture
        return {"sklearn.mixture": ("GaussianMixture", em_lib.GaussianMixture)}
    import hmmlearn.hmm

    factory = _hmm_factory()
    hmmlearn.hmm.GaussianHMM = factory
    return {"hmmlearn.hmm": ("GaussianHMM", factory)}


def pytest_configure(config):
    suite = config.getoption("--peer-suite")
    if suite is None:
        return
    config.peer = types.SimpleNamespace(
        suite=suite,
        package=PEER_PACKAGES[suite],
        swapped=swap_estimators(suite),
        differences=read_differences(config.getoption("--peer-differences")),
        records={},
        classes={},
    )
    _STATE["peer"] = config.peer


# --------------------------------------------------------------------------- differences
def read_differences(path):
    """``[(pattern, reason)]`` from the first markdown table of ``path`` whose first column
    holds test ids (``file.py::test`` with optional ``*`` wildcards, matched against the test
    id with and without its parameters)."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 2 or "::" not in cells[0]:
            continue
        rows.append((cells[0].strip("`"), cells[1]))
    return rows


def short_id(nodeid):
    """The test id without the directory of the peer's tests: ``file.py::Class::test[p]``."""
    path, _, rest = nodeid.partition("::")
    return f"{path.rsplit('/', 1)[-1]}::{rest}"


def _matches(pattern, text):
    """``pattern`` with ``*`` as the only wildcard (brackets are literal, as in test ids)."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, text) is not None


def difference_for(nodeid, differences):
    """``(pattern, reason)`` of the first listed difference matching the test, or None."""
    test = short_id(nodeid)
    for pattern, reason in differences:
        if _matches(pattern, test) or _matches(pattern, test.split("[")[0]):
            return pattern, reason
    return None


# --------------------------------------------------------------------------- private helpers
def _peer_private_names(module, package):
    """Module-level names of ``module`` that are private objects of the peer package."""
    names = set()
    for name, value in vars(module).items():
        if not name.startswith("_") or name.startswith("__"):
            continue
        origin = getattr(value, "__module__", None) or getattr(value, "__name__", "")
        if not isinstance(origin, str) or origin == module.__name__:
            continue  # the test module's own helpers are followed, not counted
        if origin.split(".")[0] == package:
            names.add(name)
    return names


def _used_names(function):
    """Names loaded in ``function``'s body and names it imports (``from x import _y``)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return set(), set()
    loaded, imported = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            loaded.add(node.id)
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                imported.add(alias.name)
    return loaded, imported


def private_helpers_used(item, package):
    """The peer's private helpers a test uses (empty: a test of the public API)."""
    function = getattr(item, "function", None)
    module = getattr(item, "module", None)
    if function is None or module is None:
        return []
    private = _peer_private_names(module, package)
    found, seen, todo = set(), set(), [function]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        loaded, imported = _used_names(current)
        found |= {name for name in imported if name.startswith("_")}
        found |= loaded & private
        for name in loaded:  # helper functions of the test module, followed transitively
            value = getattr(module, name, None)
            if inspect.isfunction(value) and value.__module__ == module.__name__:
                todo.append(value)
    return sorted(found)


def not_applicable(item, suite):
    """Why a test does not test the swapped estimator (None: it does)."""
    if suite == "scikit-learn":
        if "array_api" in item.name:
            return "scikit-learn's array-API dispatch (em_lib takes numpy arrays)"
        callspec = getattr(item, "callspec", None)
        if callspec is not None:
            for value in callspec.params.values():
                name = type(value).__name__
                if name == "BayesianGaussianMixture":
                    return "parametrised with BayesianGaussianMixture, not GaussianMixture"
    return None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    peer = getattr(config, "peer", None)
    if peer is None:
        return
    _check_swap(items, peer)
    keep, drop = [], []
    for item in items:
        reason = not_applicable(item, peer.suite)
        helpers = [] if reason else private_helpers_used(item, peer.package)
        if reason:
            peer.classes[item.nodeid] = ("not applicable", reason)
        elif helpers:
            peer.classes[item.nodeid] = ("set aside", "private helpers: " + ", ".join(helpers))
        else:
            difference = difference_for(item.nodeid, peer.differences)
            if difference is not None:
                item.add_marker(pytest.mark.xfail(reason=difference[1], strict=True))
                peer.classes[item.nodeid] = ("applicable", difference[1])
            else:
                peer.classes[item.nodeid] = ("applicable", "")
            keep.append(item)
            continue
        drop.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep


def _check_swap(items, peer):
    """Refuse to run if a collected test module still holds the peer's own estimator."""
    for module in {item.module for item in items if getattr(item, "module", None)}:
        for source, (name, new) in peer.swapped.items():
            bound = getattr(module, name, None)
            if bound is not None and bound is not new:
                raise pytest.UsageError(
                    f"{module.__name__}.{name} is not em_lib's ({bound!r}); the swap of "
                    f"{source}.{name} came too late"
                )
            holder = getattr(module, source.rsplit(".", 1)[-1], None)
            if isinstance(holder, types.ModuleType) and getattr(holder, name) is not new:
                raise pytest.UsageError(f"{module.__name__} sees the peer's {name}")


# --------------------------------------------------------------------------- outcomes
def _short_reason(report):
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        text = crash.message
    elif isinstance(report.longrepr, tuple):  # skips: (path, line, reason)
        text = str(report.longrepr[2])
    else:
        text = str(report.longrepr or "")
    text = " ".join(text.split())
    text = re.sub(r"^Skipped: ", "", text)
    return text if len(text) <= 220 else text[:217] + "..."


def pytest_runtest_logreport(report):
    peer = _STATE.get("peer")
    if peer is None:
        return
    record = peer.records.setdefault(report.nodeid, {"outcome": None, "reason": ""})
    if report.when != "call" and report.passed:
        return
    reason = ""
    if hasattr(report, "wasxfail") and report.skipped:
        outcome, reason = "difference", _short_reason(report)  # failed, as listed
    elif report.failed and str(report.longrepr).startswith("[XPASS(strict)]"):
        outcome, reason = "unexpected pass", "listed in DIFFERENCES.md but passed"
    elif report.failed:
        outcome = "failed" if report.when == "call" else f"error ({report.when})"
        reason = _short_reason(report)
    elif report.skipped:
        outcome, reason = "skipped", _short_reason(report)
    else:
        outcome = "passed"
    if record["outcome"] in (None, "passed"):  # the first thing that went wrong
        record["outcome"], record["reason"] = outcome, reason


_STATE = {}


def pytest_sessionfinish(session, exitstatus):
    peer = getattr(session.config, "peer", None)
    path = session.config.getoption("--peer-results")
    if peer is None or not path:
        return
    rows = []
    for nodeid, (kind, note) in peer.classes.items():
        record = peer.records.get(nodeid, {"outcome": None, "reason": ""})
        rows.append(
            {
                "id": short_id(nodeid),
                "nodeid": nodeid,
                "kind": kind,
                "note": note,
                "outcome": record["outcome"] or ("not run" if kind == "applicable" else kind),
                "reason": record["reason"],
            }
        )
    payload = {"suite": peer.suite, "python": sys.version.split()[0], "tests": rows}
    Path(path).write_text(json.dumps(payload, indent=1))
