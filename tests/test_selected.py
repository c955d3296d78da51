"""The selected model's bootstrap in the study layer (em_lib.study.selected)."""

import io

import numpy as np
import pandas as pd
import pytest
from helpers_study import tiny_config, tiny_study

from em_lib.numerics.covariance import from_full
from em_lib.numerics.fitting import MixtureSettings
from em_lib.study import design, selected
from em_lib.uncertainty import bootstrap_mixture


def _observed(data, masks, job):
    mask = dict((tuple(labels.values()), arrays) for labels, arrays in masks)[
        tuple(job.labels.values())
    ]["mask"]
    return np.where(mask, np.nan, data[job.dataset]["X"])


def test_chunk_sizes_cover_every_replicate():
    assert selected.chunk_sizes(200, 3) == [67, 67, 66]
    assert selected.chunk_sizes(5, 8) == [1, 1, 1, 1, 1]
    assert sum(selected.chunk_sizes(201, 4)) == 201


def test_which_data_sets_and_conditions():
    config = tiny_config(
        {
            "datasets": {
                "seq": {
                    "kind": "hmm_sequences",
                    "models": ["hmm"],
                    "n_sequences": 2,
                    "sequence_length": 20,
                    "n_features": 2,
                    "n_components": 2,
                }
            },
            "hmm": {"enabled": True},
        }
    )
    assert selected.bootstrap_datasets(config) == ["blobs"]
    assert selected.report_job(config, "blobs").mechanism == "none"
    assert len(selected.bootstrap_jobs(config)) == 2
    without_none = tiny_config({"sweep": {"mechanism": ["MCAR"], "missing_rate": [0.3, 0.1]}})
    assert selected.report_job(without_none, "blobs").missing_rate == 0.1
    off = tiny_config({"bootstrap": {"enabled": False}})
    assert selected.bootstrap_datasets(off) == []


def test_selected_cell_is_the_lowest_criterion_em_fit():
    config, ds, data, fits, masks = tiny_study()
    job = design.MaskJob("air", "none", 0.0, 0)
    cell = selected.selected_cell(ds, job, "bic")
    scores = (
        ds["fit_bic"]
        .sel({"dataset": "air", "mechanism": "none", "missing_rate": 0.0, "replicate": 0})
        .sel({"method": "em", "model": "diag"})
    )
    assert cell["model"] == "diag"
    assert cell["value"] == pytest.approx(float(scores.min()))
    assert cell["means"].shape == (cell["n_components"], data["air"]["X"].shape[1])


def test_selected_cell_passes_over_a_degenerate_fit():
    """Results written before fit jobs flagged degenerate fits (no ``fit_degenerate``): with
    the mask's data, a fit whose component holds a variance at the reg_covar floor (here: the
    lowest-BIC fit, made so by hand) is passed over for the next-lowest one."""
    config, ds, data, fits, masks = tiny_study()
    ds = ds.drop_vars("fit_degenerate")
    job = design.MaskJob("air", "none", 0.0, 0)
    X_obs = _observed(data, masks, job)
    first = selected.selected_cell(ds, job, "bic", X_obs)
    assert first["degenerate_passed"] == 0
    where = {**job.labels, "method": "em", "model": first["model"]}
    where["n_components"] = first["n_components"]
    spoiled = ds.copy(deep=True)
    covariances = spoiled["covariances"].loc[where].values.copy()
    f = int(np.flatnonzero(ds["has_feature"].sel(dataset="air").values)[0])
    covariances[0, f, :] = covariances[0, :, f] = 0.0
    covariances[0, f, f] = 1e-6  # a component collapsed in the data set's first column
    spoiled["covariances"].loc[where] = covariances
    assert selected.selected_cell(spoiled, job, "bic")["value"] == first["value"]  # no data
    second = selected.selected_cell(spoiled, job, "bic", X_obs)
    assert second["degenerate_passed"] == 1
    assert second["value"] > first["value"]
    caption_table = pd.DataFrame([{"n_usable": 5, "n_boot": 5, "level": 0.95, "kind": "x"}])
    assert "passed over" in selected.report_caption(job, second, caption_table)


def test_chunks_join_to_the_library_bootstrap():
    """Two chunks of a real incomplete table (airquality, its own NaN) joined: every replicate
    equals the library's bootstrap_mixture with the chunk's seed stream."""
    config, ds, data, fits, masks = tiny_study()
    config = {**config, "bootstrap": {"n_boot": 6, "chunks": 2}}
    job = design.MaskJob("air", "none", 0.0, 0)
    X_obs = _observed(data, masks, job)
    assert np.isnan(X_obs).any()
    cell = selected.selected_cell(ds, job, "bic")
    names = data["air"]["feature_names"].tolist()
    parts = [selected.bootstrap_chunk(X_obs, names, cell, job, c, config) for c in (1, 0)]
    joined = selected.join_chunks(sorted(parts, key=lambda p: p.attrs["chunk"]))
    assert joined.sizes["replicate"] == 6
    assert list(joined["replicate"].values) == list(range(6))
    from em_lib.study.seeds import seed_sequence

    typed = from_full(cell["covariances"][None], cell["model"], cell["weights"][None])[0]
    direct = bootstrap_mixture(
        X_obs,
        (cell["weights"], cell["means"], typed),
        cell["model"],
        MixtureSettings.from_config(config["fit"]),
        n_boot=3,
        random_state=seed_sequence(config["root_seed"], "bootstrap", chunk=1, **job.labels),
    )
    np.testing.assert_allclose(joined["means"].values[3:], direct.replicates["means"])

    table = selected.summary_table(joined, 0.9)
    assert set(table["parameter"]) == {"weight", "mean", "variance"}  # diag: no correlations
    assert set(table.loc[table["parameter"] == "mean", "feature"]) == set(names)
    assert (table["lower"] <= table["upper"]).all()
    classes = selected.classification_table(X_obs, cell, job)
    assert classes["size"].sum() == X_obs.shape[0]
    assert ((classes["mean_uncertainty"] >= 0) & (classes["mean_uncertainty"] <= 1)).all()
    latex = selected.booktabs_table(table, "air_quality 90%", "tab:x")
    assert r"\toprule" in latex and r"\bottomrule" in latex and r"air\_quality 90\%" in latex
    frame = selected.report_frame(table, classes)
    assert list(frame["parameter"][:3]) == ["weight", "rows classified", "mean uncertainty"]
    assert frame.shape[1] == 1 + cell["n_components"]


def test_summary_table_intervals_are_percentiles():
    import xarray as xr

    rng = np.random.default_rng(0)
    replicates = rng.normal(size=(400, 1, 1))
    ds = xr.Dataset(
        {
            "weights": (("replicate", "component"), np.ones((400, 1))),
            "weights_estimate": (("component",), np.ones(1)),
            "means": (("replicate", "component", "feature"), replicates),
            "means_estimate": (("component", "feature"), np.zeros((1, 1))),
            "variances": (("replicate", "component", "feature"), np.ones((400, 1, 1))),
            "variances_estimate": (("component", "feature"), np.ones((1, 1))),
            "failed": (("replicate",), np.zeros(400, dtype=bool)),
        },
        coords={"feature": ["x"]},
        attrs={
            "model": "diag",
            "n_components": 1,
            "dataset": "d",
            "mechanism": "none",
            "missing_rate": 0.0,
            "replicate": 0,
        },
    )
    table = selected.summary_table(ds, 0.9).set_index("parameter")
    row = table.loc["mean"]
    assert row["lower"] == pytest.approx(np.percentile(replicates, 5))
    assert row["upper"] == pytest.approx(np.percentile(replicates, 95))
    assert row["se"] == pytest.approx(replicates.std(ddof=1))
    assert isinstance(table, pd.DataFrame)


def test_report_section_caption_says_a_degenerate_fit_was_passed_over():
    """The HTML report's caption (report_sections, reading the summary tables as written to
    CSV) names the passed-over fits, as the LaTeX caption does: the count travels in the
    classification table."""
    config, ds, data, fits, masks = tiny_study()
    config = {**config, "bootstrap": {"n_boot": 4, "chunks": 1}}
    job = design.MaskJob("air", "none", 0.0, 0)
    X_obs = _observed(data, masks, job)
    first = selected.selected_cell(ds, job, "bic", X_obs)
    flagged = ds.copy(deep=True)
    where = {**job.labels, "method": "em", "model": first["model"]}
    flagged["fit_degenerate"].loc[{**where, "n_components": first["n_components"]}] = True
    cell = selected.selected_cell(flagged, job, "bic")  # the stored flag alone is enough
    assert cell["degenerate_passed"] == 1 and cell["value"] > first["value"]
    names = data["air"]["feature_names"].tolist()
    part = selected.bootstrap_chunk(X_obs, names, cell, job, 0, config)
    summary = selected.summarise([part], [job], {job: (X_obs, names)}, flagged, "bic")
    table = pd.read_csv(io.StringIO(summary["table"].to_csv(index=False)))
    classes = pd.read_csv(io.StringIO(summary["classification"].to_csv(index=False)))
    sections = selected.report_sections(table, classes, {"air": job}, {"air": "f.png"}, "bic")
    caption = sections[0][2]
    assert "1 fit(s) with a lower BIC had a degenerate component" in caption
    assert f"the {cell['model']} model with K = {cell['n_components']}" in caption
