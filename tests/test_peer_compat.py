"""Regression tests for the gaps the peers' own test suites found in em_lib's estimators
(``benchmarks/peer_tests/run_peer_tests.py``): hmmlearn's conventions for ``GaussianHMM``.

None of these needs hmmlearn or scikit-learn; the runner's own logic is tested on
``DIFFERENCES.md`` without running the peers' suites.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest

from em_lib.data import make_hmm_sequences
from em_lib.hmm import GaussianHMM

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data():
    return make_hmm_sequences([80, 60], 2, 2, random_state=3)


def _hand_set(covariance_type="spherical"):
    model = GaussianHMM(2, covariance_type)
    model.startprob_ = np.array([0.6, 0.4])
    model.transmat_ = np.array([[0.4, 0.6], [0.9, 0.1]])
    model.means_ = np.array([[3.0], [5.0]])
    return model


# ----------------------------------------------------------------------------- spherical shapes
@pytest.mark.parametrize("shape", [(2,), (2, 1), (2, 1, 1), (2, 1, 1, 1)])
def test_spherical_covars_with_trailing_axes_of_one(shape):
    """hmmlearn's issue 385: spherical covars_ given as (K, 1, 1, 1) must sample and score."""
    model = _hand_set()
    model.covars_ = np.array([4.0, 3.0]).reshape(shape)
    np.testing.assert_array_equal(model.covariances_, [4.0, 3.0])
    np.testing.assert_array_equal(model.covars_, [[[4.0]], [[3.0]]])
    X, states = model.sample(500, random_state=0)
    assert X.shape == (500, 1) and states.shape == (500,)
    assert np.isfinite(model.score(X))


def test_spherical_covars_one_per_start_is_not_mistaken_for_trailing_ones():
    model = GaussianHMM(2, "spherical")
    model.covars_ = np.ones((3, 2))  # (n_init, K): one value per start
    assert model.covariances_.shape == (3, 2)
    with pytest.raises(ValueError, match=r"got shape \(3, 1, 1\)"):
        model.covars_ = np.ones((3, 1, 1))  # three states' worth of values for K=2


# ----------------------------------------------------------------------------- init_params
def test_left_out_of_init_params_and_not_set_is_initialised(data):
    """hmmlearn's rule: a letter left out of init_params whose parameter is not set is
    initialised like the others (it used to raise ValueError)."""
    model = GaussianHMM(2, "diag", init_params="", n_init=2, random_state=0)
    model.fit(data.X, data.lengths)
    assert np.isfinite(model.score(data.X, data.lengths))
    assert list(model.start_origin_) != ["user"] * 2

    partly = GaussianHMM(2, "diag", init_params="mc", params="mc", n_init=2, random_state=0)
    partly.startprob_ = np.array([1.0, 0.0])  # fixed, and kept: 's' is not in params
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a ConvergenceWarning is not the point here
        partly.fit(data.X, data.lengths)
    np.testing.assert_array_equal(partly.startprob_, [1.0, 0.0])
    np.testing.assert_allclose(partly.transmat_.sum(axis=1), 1.0)  # initialised, not updated
    assert partly.starts_.transmat.shape == (2, 2, 2)
    assert np.ptp(partly.starts_.transmat, axis=0).max() > 0  # each start initialised its own


def test_left_right_structure_is_kept(data):
    """hmmlearn's test_fit_left_right: zeros of a fixed start and transition are kept."""
    model = GaussianHMM(3, "diag", params="mct", init_params="cm", n_init=2, random_state=0)
    model.startprob_ = np.array([1.0, 0.0, 0.0])
    model.transmat_ = np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(data.X, data.lengths)
    assert (model.startprob_[1:] == 0).all()
    assert model.transmat_[0, 2] == 0 and model.transmat_[1, 0] == 0
    assert model.transmat_[2, 0] == 0 and model.transmat_[2, 1] == 0


def test_overwrite_warning_uses_hmmlearns_words(data):
    model = GaussianHMM(2, "diag", n_init=2, random_state=0)
    model.startprob_ = np.array([0.5, 0.5])
    with pytest.warns(UserWarning, match="startprob_ is set, but it will be overwritten during"):
        model.fit(data.X, data.lengths)


# ----------------------------------------------------------------------------- verbose
def test_verbose_reports_the_fit_to_stderr(data, capsys):
    model = GaussianHMM(2, "diag", n_init=3, random_state=0, verbose=True)
    assert model.get_params()["verbose"] is True
    model.fit(data.X, data.lengths)
    out, err = capsys.readouterr()
    assert out == ""
    assert "3 start(s) of K=2 diag" in err
    assert f"kept start {model.best_start_}" in err
    iterations = [line for line in err.splitlines() if line.strip().startswith("iter ")]
    assert len(iterations) == model.n_iter_
    assert "change" in iterations[-1]

    GaussianHMM(2, "diag", n_init=2, random_state=0).fit(data.X, data.lengths)
    assert capsys.readouterr().err == ""


def test_verbose_with_n_iter_zero_has_no_iterations(data, capsys):
    GaussianHMM(2, "diag", n_init=2, n_iter=0, random_state=0, verbose=1).fit(data.X, data.lengths)
    err = capsys.readouterr().err
    assert "kept start" in err and "initialised only" in err
    assert not any(line.strip().startswith("iter ") for line in err.splitlines())


# ----------------------------------------------------------------------------- the runner
def _plugin():
    path = ROOT / "benchmarks" / "peer_tests" / "peer_plugin.py"
    spec = importlib.util.spec_from_file_location("peer_plugin_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_differences_file_parses_and_matches_test_ids():
    plugin = _plugin()
    rows = plugin.read_differences(ROOT / "benchmarks" / "peer_tests" / "DIFFERENCES.md")
    assert len(rows) >= 10
    assert all(reason and "::" in pattern for pattern, reason in rows)
    nodeid = (
        "hmmlearn/tests/test_gaussian_hmm.py::TestGaussianHMMWithFullCovars::"
        "test_fit_with_length_one_signal[log]"
    )
    assert plugin.difference_for(nodeid, rows) is not None
    scaling_only = "hmmlearn/tests/test_gaussian_hmm.py::TestX::test_underflow_from_scaling"
    assert plugin.difference_for(scaling_only + "[scaling]", rows) is not None
    assert plugin.difference_for(scaling_only + "[log]", rows) is None
    passing = "sklearn/mixture/tests/test_gaussian_mixture.py::test_score_samples"
    assert plugin.difference_for(passing, rows) is None
