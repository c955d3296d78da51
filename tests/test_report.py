"""LaTeX tables, figure smoke tests and the HTML report (em_lib.study.report / plotting), on the
hand-made results set and on a tiny real aggregate."""

import html
import json
import re
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from helpers_study import tiny_config, tiny_study, toy_results

from em_lib.numerics.fitting import MixtureSettings
from em_lib.numerics.init import start_kinds
from em_lib.study import delta, report, sensitivity


@pytest.fixture(scope="module")
def tables():
    ds = toy_results(with_hmm=True)
    starts, fits = sensitivity.starts_table(ds), sensitivity.fits_table(ds)
    mixtures, hmms = starts[starts["model"] == "full"], starts[starts["model"] == "hmm"]
    mixture_fits, hmm_fits = fits[fits["model"] == "full"], fits[fits["model"] == "hmm"]
    weights = np.array([0.4, 0.6, 0.5, 0.5, 0.7, 0.3])
    share = np.repeat([1.0, 1.0, 0.0], 2)
    delta_table = pd.DataFrame(
        {
            "delta": np.repeat([-1.0, 0.0, 1.0], 2),
            "component": [0, 1] * 3,
            "weight": weights,
            "weight_lower": weights - 0.05,
            "weight_upper": weights + 0.05,
            "mean_0": np.arange(6.0),
            "mean_1": np.arange(6.0),
            "mean_1_lower": np.arange(6.0) - 0.5,
            "mean_1_upper": np.arange(6.0) + 0.5,
            "selected_k": [2, 2, 2, 2, 3, 3],
            "conclusion_value": share,
            "conclusion_lower": np.nan,
            "conclusion_upper": np.nan,
            "conclusion": [2, 2, 2, 2, 3, 3],
        }
    )
    # the share of imputations selecting K = 2 falls from 1 at delta 0 to 0 at delta 1
    tipping = pd.DataFrame(
        {
            "side": ["negative", "positive"],
            "tipping_delta": [np.nan, 0.5],
            "tipping_lower": [np.nan, 0.025],
            "tipping_upper": [np.nan, 0.975],
            "conclusion_at_0": ["BIC selects K = 2 in 100% of the imputations"] * 2,
            "quantity": ["share of imputations where BIC selects K = 2"] * 2,
            "threshold": [0.5, 0.5],
            "variables": ["1", "1"],
            "n_imputations": [20, 20],
            "level": [0.95, 0.95],
        }
    )
    return {
        "ds": ds,
        "labels": sensitivity.variable_labels(ds),
        "starts": mixtures,
        "hmm_starts": hmms,
        "initialisation": sensitivity.initialisation_table(mixtures),
        "criteria": sensitivity.criteria_table(mixture_fits, mixtures),
        "selection": sensitivity.selection_table(mixture_fits),
        "missingness": sensitivity.missingness_table(mixture_fits, {"toy": 2}),
        "hmm_initialisation": sensitivity.initialisation_table(hmms),
        "hmm_criteria": sensitivity.criteria_table(hmm_fits, hmms),
        "failures": sensitivity.failures_table(starts),
        "delta_adjustment": delta_table,
        "delta_tipping": tipping,
    }


def test_latex_table_is_balanced_and_escaped():
    frame = pd.DataFrame({"name_with_underscore": ["a & b", "50% {x}"], "value": [1.5, np.nan]})
    tex = report.to_latex(frame, comment="toy")
    assert tex.count("\\begin{") == tex.count("\\end{") == 1
    assert "\\begin{tabular}{lr}" in tex
    lines = tex.splitlines()
    positions = [lines.index(rule) for rule in ("\\toprule", "\\midrule", "\\bottomrule")]
    assert positions == sorted(positions)
    assert r"name\_with\_underscore" in tex and r"a \& b" in tex and r"50\% \{x\}" in tex
    assert "--" in tex  # NaN
    body = "\n".join(line for line in lines if not line.startswith("%"))
    assert body.count("{") - body.count("\\{") == body.count("}") - body.count("\\}")
    assert all(line.endswith("\\\\") for line in lines[3:-2] if line != "\\midrule")


def test_write_table(tmp_path, tables):
    report.write_table(tables["selection"], tmp_path / "t.csv", tmp_path / "t.tex")
    assert len(pd.read_csv(tmp_path / "t.csv")) == len(tables["selection"])
    assert (tmp_path / "t.tex").read_text().rstrip().endswith("\\end{tabular}")


def test_read_table_reads_back_written_tables(tmp_path, tables):
    report.write_table(tables["criteria"], tmp_path / "c.csv", tmp_path / "c.tex")
    back = report.read_table(tmp_path / "c.csv")
    assert back.columns.tolist() == tables["criteria"].columns.tolist()
    assert len(back) == len(tables["criteria"])
    report.write_table(pd.DataFrame(), tmp_path / "e.csv", tmp_path / "e.tex")
    empty = report.read_table(tmp_path / "e.csv")
    assert empty.empty and empty.columns.empty


@pytest.fixture(scope="module")
def figures(tables, tmp_path_factory):
    """Every figure of the toy tables, with its expected panel count, saved once as a small
    PNG (saving PDFs embeds fonts and takes seconds each: one PDF is checked below)."""
    from em_lib.study import plotting

    plotting.set_theme()
    labels = tables["labels"]
    made = {
        "initialisation": (
            plotting.initialisation_figure(tables["initialisation"], tables["starts"], labels),
            3,
        ),
        "criteria": (plotting.criteria_figure(tables["criteria"], labels), 3),  # 3 x 1 cond.
        "selection": (plotting.selection_figure(tables["selection"], labels), 3),
        "missingness": (plotting.missingness_figure(tables["missingness"], labels), 4),
        "hmm": (
            plotting.hmm_figure(
                tables["hmm_initialisation"], tables["hmm_starts"], tables["hmm_criteria"], labels
            ),
            4,
        ),
        "delta": (plotting.delta_figure(tables["delta_adjustment"], tables["delta_tipping"]), 3),
    }
    folder = tmp_path_factory.mktemp("figures")
    saved = {}
    for name, (figure, _) in made.items():
        saved[name] = folder / f"{name}.png"
        figure.savefig(saved[name], dpi=40)
    yield plotting, made, saved
    for figure, _ in made.values():
        plotting.close(figure)


def test_figures_have_expected_panels_and_save(tmp_path, figures):
    _, made, saved = figures
    for name, (figure, n_panels) in made.items():
        assert len(figure.axes) == n_panels, name
        data = saved[name].read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000, name
    figure, _ = made["delta"]
    figure.savefig(tmp_path / "delta.pdf")
    assert (tmp_path / "delta.pdf").read_bytes().startswith(b"%PDF")
    assert (tmp_path / "delta.pdf").stat().st_size > 1000


def test_axis_labels_carry_units(figures, tables):
    plotting, made, _ = figures
    assert plotting.axis_label("means_rmse", tables["labels"]) == "mean error (RMSE) (data unit)"
    assert plotting.axis_label("ari", tables["labels"]) == "adjusted Rand index"
    figure, _ = made["initialisation"]
    assert "(nat)" in figure.axes[0].get_ylabel()


def toy_config(fit=None):
    """The config the toy results stand for (not validated: the report reads it as stored)."""
    return {
        "datasets": {
            "toy": {
                "kind": "gaussian_mixture",
                "n_samples": 100,
                "n_components": 2,
                "n_features": 2,
                "covariance_type": "full",
                "separation": 3,
            }
        },
        "sweep": {
            "model": ["full"],
            "n_components": [1, 2, 3],
            "mechanism": ["MCAR"],
            "missing_rate": [0.2],
            "replicate": [0, 1, 2, 3],
            "method": ["em", "mean_impute"],
        },
        "fit": fit
        or {
            "n_init": 10,
            "tol": 1e-3,
            "max_iter": 50,
            "init_params": "auto",
            "reg_covar": 1e-6,
            "prior": "none",
        },
        "missingness": {"strength": 2.0},
        "root_seed": 7,
    }


ATTRS = {"root_seed": 7, "em_lib_version": "0.1.0", "numpy_version": "2", "git_commit": "abc"}


def test_html_report_contains_figures_tables_and_methods(figures, tables):
    _, made, saved = figures
    entries = [(name, path, f"caption of {name}") for name, path in saved.items()]
    ds = tables["ds"]
    config = toy_config()
    attrs = {**ATTRS, "config": json.dumps(config)}
    methods = report.methods_paragraph(config, attrs, {"optimum_tol": 1.0})
    findings = report.key_findings(
        tables["selection"],
        tables["initialisation"],
        tables["missingness"],
        {"toy": 2},
        tables["delta_tipping"],
    )
    assert any("picks the true K=2 on data set toy in 3 of 4" in f for f in findings)
    assert any(
        "Delta adjustment (20 imputations): under MAR BIC selects K = 2 in 100% of the "
        "imputations; it changes at delta = +0.50 SD (95% interval +0.03 to +0.97)." == f
        for f in findings
    )
    page = report.html_report(
        title="Toy <report>",
        glance=report.glance_items(ds, config),
        findings=findings,
        figures=entries,
        tables=[("selection", tables["selection"], "how often")],
        methods=methods,
        failures=tables["failures"],
    )
    assert page.count('<img src="data:image/png;base64,') == len(made)
    assert len(re.findall(r'<figure id="figure-\d+">', page)) == len(made)
    for name in made:
        assert f"caption of {name}" in page
    assert "10 random starts" in methods and "root seed 7" in methods
    assert "at most 1.0 nat" in methods
    assert html.escape(methods) in page
    assert "Toy &lt;report&gt;" in page  # escaped
    assert "failed and" in page and "collapse" in page
    assert 'id="models"' not in page  # no models given, no section
    assert 'src="http' not in page and "<link" not in page  # self-contained


def test_methods_paragraph_states_the_procedure_that_ran():
    config = tiny_config({"fit": {"n_init": 7, "init_params": "auto", "tol": 1e-4, "max_iter": 55}})
    assert "polish_tol" not in config["fit"]  # the schema has no polishing key: the default
    text = report.methods_paragraph(config, ATTRS, config["sensitivity"])
    assert "7 random starts" in text
    counts = Counter(start_kinds("auto", 7))
    assert sum(counts.values()) == 7 and len(counts) > 1
    for kind, count in counts.items():
        assert f"{count} {report._KIND_TEXT[kind]}" in text, kind
    assert "nested_starts=True" in text and "fitted models it contains" in text
    assert "SQUAREM" in text
    polish = MixtureSettings()  # the default polishing
    assert f"relative change of {polish.polish_tol:g}" in text
    assert f"up to {polish.polish_starts} distinct optima" in text
    assert "less than 0.0001" in text and "55 iterations" in text
    assert "0.001" not in text.split("Software:")[0]  # not the default tolerance
    # the settings come from the config: another config, another text
    other = report.methods_paragraph(
        tiny_config({"fit": {"n_init": 4, "init_params": "kmeans"}}), ATTRS
    )
    assert "4 random starts (4 from k-means" in other and "7 random starts" not in other


def test_methods_paragraph_states_the_delta_adjustment_and_its_tipping_point():
    config = tiny_config({"sensitivity": {"delta": {"n_draws": 20, "n_init": 3}}})
    text = report.methods_paragraph(config, ATTRS, config["sensitivity"])
    for needle in (
        "delta-adjusted multiple imputation",
        "20 imputations, each drawn from the MAR mixture refitted on a bootstrap sample",
        "grid -1.0, 0.0 and 1.0, the same imputations at every delta",
        "3 random starts",
        "Hungarian assignment",
        "Rubin's rules (Rubin, 1987) with Barnard-Rubin degrees of freedom",
        "half the imputations select another K by BIC",
        "from where 2.5% to where 97.5% of them do",
    ):
        assert needle in text, needle
    weight = tiny_config(
        {"sensitivity": {"delta": {"n_draws": 0, "conclusion": "weight_above", "threshold": 0.4}}}
    )
    text = report.methods_paragraph(weight, ATTRS, weight["sensitivity"])
    assert "one completion by conditional expectations" in text
    assert "pooled weight of component 0 crosses 0.4" in text and "95% interval" in text


def test_delta_finding_without_a_tipping_point_names_where_its_interval_begins(tables):
    tipping = tables["delta_tipping"].assign(
        tipping_delta=np.nan, tipping_lower=[np.nan, 0.8], tipping_upper=np.nan
    )
    findings = report.key_findings(
        tables["selection"], tables["initialisation"], tables["missingness"], {"toy": 2}, tipping
    )
    assert findings[-1] == (
        "Delta adjustment (20 imputations): under MAR BIC selects K = 2 in 100% of the "
        "imputations; the conclusion holds over the whole delta grid (no tipping point); its "
        "95% interval begins at delta = +0.80 SD."
    )


def test_starts_text_renders_every_kind():
    assert report.starts_text("kmeans", 1) == (
        "1 random start (1 from k-means (k-means++ seeding and Lloyd steps))"
    )
    text = report.starts_text("auto", 16)
    for kind, count in Counter(start_kinds("auto", 16)).items():
        assert f"{count} {report._KIND_TEXT[kind]}" in text


@pytest.mark.filterwarnings("ignore:Setting an item of incompatible dtype")  # delta.empty_tables
def test_figure_notes_for_empty_hmm_and_delta_tables(tables):
    ds = tables["ds"]
    full = {
        name: tables[name]
        for name in (
            "initialisation",
            "criteria",
            "selection",
            "missingness",
            "hmm_initialisation",
            "delta_adjustment",
            "delta_tipping",
        )
    }
    assert report.figure_notes(full, ds, {"method": "em"}) == {}
    empty_delta, empty_tipping = delta.empty_tables("the data set has no missing value")
    notes = report.figure_notes(
        {
            **full,
            "hmm_initialisation": pd.DataFrame(),
            "delta_adjustment": empty_delta,
            "delta_tipping": empty_tipping,
        },
        ds,
        {"method": "em"},
    )
    assert notes == {
        "hmm": "no HMM runs in this experiment",
        "delta": "delta adjustment not run: the data set has no missing value",
    }
    # as the workflow reads them back from CSV
    notes = report.figure_notes(
        {**full, "delta_adjustment": empty_delta.iloc[:0], "delta_tipping": pd.DataFrame()},
        ds,
        {"method": "em"},
    )
    assert notes == {"delta": "delta adjustment not run: not run"}
    only_none = {**full, "missingness": full["missingness"].assign(missing_rate=0.0)}
    assert (
        "synthetic missingness"
        in report.figure_notes(only_none, ds, {"method": "em"})["missingness"]
    )


def test_html_report_renders_notes_and_models(tables):
    frame = pd.DataFrame({"component": [0, 1], "weight": [0.25, 0.75], "x<0>": [1.5, -2.0]})
    minimal = {
        "title": "t",
        "glance": {},
        "findings": [],
        "figures": [],
        "tables": [],
        "methods": "m",
        "failures": pd.DataFrame(),
    }
    page = report.html_report(
        **minimal,
        notes=["figure hmm: no HMM runs in this experiment", "table <x>: empty"],
        models=[("blobs", frame, "BIC selects full with K = 2")],
    )
    section = page.split('<h2 id="models">Selected models</h2>', 1)[1].split('<h2 id="figures">')[0]
    assert "<h3>blobs</h3>" in section and "BIC selects full with K = 2" in section
    assert "0.75" in section and "x&lt;0&gt;" in section
    notes = page.split('<ul class="notes">', 1)[1].split("</ul>")[0]
    assert notes.count("<li>") == 2
    assert "figure hmm: no HMM runs in this experiment" in notes
    assert "table &lt;x&gt;: empty" in notes
    bare = report.html_report(**minimal)
    assert 'id="models"' not in bare and "notes" not in bare


def test_selected_models_read_the_stored_fit():
    _, ds, _, _, _ = tiny_study()
    models = dict((name, (frame, caption)) for name, frame, caption in report.selected_models(ds))
    assert set(models) == {"blobs", "air"}
    for name, (frame, caption) in models.items():
        cells = ds.sel(
            {
                "dataset": name,
                "mechanism": "none",
                "missing_rate": 0.0,
                "replicate": 0,
                "method": "em",
            }
        )
        scores = cells["fit_bic"].where(cells["in_design"] & ~cells["fit_failed"])
        clean = scores.where(~cells["fit_degenerate"])
        if np.isfinite(clean.values).any():
            scores = clean
        best = scores.where(scores == scores.min(), drop=True)
        model, k = str(best["model"].item()), int(best["n_components"].item())
        assert f"selects {model} with K = {k} on the data as given" in caption
        columns = ds["feature"].values[ds["has_feature"].sel(dataset=name).values].tolist()
        assert frame.columns.tolist() == ["component", "weight", "rows (expected)", *columns]
        chosen = cells.sel(model=model, n_components=k, feature=columns)
        np.testing.assert_array_equal(frame["weight"], chosen["weights"].values[:k])
        n_rows = float(ds["n_rows"].sel(dataset=name))
        np.testing.assert_allclose(frame["rows (expected)"], chosen["weights"].values[:k] * n_rows)
        assert ("likely spurious" in caption) == bool(chosen["fit_degenerate"])
        np.testing.assert_array_equal(frame[columns].to_numpy(), chosen["means"].values[:k])
    assert models["air"][0].shape[1] == 3 + 4  # the airquality columns by name


def test_glance_items_count_the_design():
    config, ds, _, _, _ = tiny_study()
    items = report.glance_items(ds, config)
    n_cells = int(ds["in_design"].sum())
    assert items["fitted models (cells)"] == f"{n_cells:,}"
    assert items["random starts in the design"] == f"{n_cells * config['fit']['n_init']:,}"
    assert items["data sets"] == "blobs, air"
    assert items["rows"] == f"blobs 80, air {ds['n_rows'].sel(dataset='air').item()}"
    assert items["git commit"] == "abc"


def test_methods_paragraph_states_the_bootstrap():
    from em_lib.study.report import bootstrap_text

    text = bootstrap_text({"bootstrap": {"n_boot": 50, "kind": "weighted", "level": 0.9}})
    assert "50 weighted likelihood bootstrap replicates" in text
    assert "90% percentile intervals" in text and "Hungarian" in text
    assert bootstrap_text({"bootstrap": {"enabled": False}}) == ""


def test_selected_models_pass_over_degenerate_fits():
    """The report's selected model follows select_mixture's rule: a fit flagged
    ``fit_degenerate`` by its job is passed over while another exists, and the caption says
    so; when every fit is flagged the lowest criterion is kept with a warning."""
    _, ds, _, _, _ = tiny_study()
    where = {"dataset": "blobs", "mechanism": "none", "missing_rate": 0.0, "replicate": 0}
    cells = ds.sel({**where, "method": "em"})
    scores = cells["fit_bic"].where(cells["in_design"] & ~cells["fit_failed"])
    best = scores.where(scores == scores.min(), drop=True)
    model, k = str(best["model"].item()), int(best["n_components"].item())
    marked = ds.copy(deep=True)
    marked["fit_degenerate"].loc[{**where, "method": "em", "model": model, "n_components": k}] = (
        True
    )
    caption = dict((n, c) for n, _, c in report.selected_models(marked))["blobs"]
    assert f"selects {model} with K = {k} " not in caption
    assert "1 fit(s) with a lower BIC had a degenerate component" in caption
    marked["fit_degenerate"].loc[{**where, "method": "em"}] = True
    caption = dict((n, c) for n, _, c in report.selected_models(marked))["blobs"]
    assert f"selects {model} with K = {k} " in caption and "likely spurious" in caption


def test_delta_figure_with_a_long_k_grid(tables):
    """A K grid longer than the palette (here 12 values of K): every K's share gets a line
    and a legend entry; colours repeat in another dash (a grid of 8 once raised KeyError)."""
    from em_lib.study import plotting

    adjustment = tables["delta_adjustment"].copy()
    for k in range(1, 13):
        adjustment[f"share_K{k}"] = np.linspace(0.0, 1.0, len(adjustment)) / k
    tipping = tables["delta_tipping"].copy()
    tipping["quantity"] = "share of imputations where BIC selects K = 3"
    figure = plotting.delta_figure(adjustment, tipping)
    try:
        legend = figure.legends[0]
        entries = [
            (text.get_text(), (handle.get_color(), handle.get_linestyle()))
            for text, handle in zip(legend.get_texts(), legend.legend_handles, strict=True)
            if text.get_text().startswith("share where BIC selects K =")
        ]
        assert len(entries) == 11  # K = 1..12 but the conclusion's K = 3 (the dark line)
        assert len({style for _, style in entries}) == 11  # no two K's drawn alike
    finally:
        plotting.close(figure)
