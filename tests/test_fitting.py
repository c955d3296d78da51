"""The mixture fitting driver (em_lib.numerics.fitting): settings from the workflow config, the
visible lattice cache of contained fits, start kinds and nested starts."""

from __future__ import annotations

import numpy as np
import pytest

from em_lib import GaussianMixture
from em_lib.numerics.fitting import MixtureLattice, MixtureSettings, fit_mixture
from em_lib.numerics.init import start_kinds


def test_settings_from_the_workflow_config_and_errors():
    settings = MixtureSettings.from_config(
        {"n_init": 7, "tol": 1e-4, "max_iter": 55, "reg_covar": 1e-5, "prior": "none"}
    )
    assert (settings.n_init, settings.tol, settings.max_iter, settings.prior) == (
        7,
        1e-4,
        55,
        None,
    )
    assert settings.nested_starts and settings.polish_tol == 1e-10
    with pytest.raises(ValueError, match="n_init must be an integer >= 1, got 0"):
        MixtureSettings(n_init=0).validate()
    with pytest.raises(ValueError, match="init_params must be one of"):
        MixtureSettings(init_params="kmeanz").validate()


def test_lattice_is_a_visible_cache_a_test_can_clear(iris):
    settings = MixtureSettings(n_init=3, nested_starts=True)
    lattice = MixtureLattice(iris, settings, random_state=4)
    first = lattice.fit(2, "full")
    # the contained models were fitted through the same lattice and are visible in it
    assert {("full", 2), ("diag", 2), ("tied", 2), ("full", 1)} <= set(lattice.solutions)
    assert lattice.fit(2, "full") is first
    lattice.clear()
    assert lattice.solutions == {}
    again = lattice.fit(2, "full")
    assert again is not first
    np.testing.assert_array_equal(again.means, first.means)


def test_a_lattice_cell_equals_a_direct_fit_and_the_estimator(incomplete_blobs):
    settings = MixtureSettings(n_init=4, nested_starts=True)
    seed = np.random.SeedSequence(9)
    cell = MixtureLattice(incomplete_blobs, settings, seed).fit(3, "diag")
    direct = fit_mixture(incomplete_blobs, 3, "diag", settings, seed)
    estimator = GaussianMixture(
        3, covariance_type="diag", n_init=4, nested_starts=True, random_state=seed
    ).fit(incomplete_blobs)
    for other in (direct.means, estimator.means_):
        np.testing.assert_array_equal(cell.means, other)
    assert cell.origin.tolist() == [
        *start_kinds("auto", 4),
        "nested:spherical",
        "split:K=2",
        "epsilon:K=2",
    ]
    # random starts are the first n_init rows, nested ones are labelled and never random
    np.testing.assert_array_equal(cell.random_starts, np.arange(4))


def test_start_kinds_of_auto():
    assert start_kinds("auto", 1) == ["hierarchical"]
    assert start_kinds("auto", 2) == ["hierarchical", "kmeans"]
    kinds = start_kinds("auto", 11)
    assert kinds[:2] == ["hierarchical", "hierarchical-whitened"]
    assert kinds.count("random_from_data") == 3 and kinds.count("kmeans") == 6
    assert start_kinds("kmeans", 3) == ["kmeans"] * 3
