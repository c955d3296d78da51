"""LaTeX tables, figure smoke tests and the HTML report, on the hand-made results set."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from test_sensitivity import toy_results

from em_lib import report, sensitivity


@pytest.fixture(scope="module")
def tables():
    ds = toy_results(with_hmm=True)
    starts = sensitivity.starts_table(ds)
    mixtures, hmms = starts[starts["model"] == "full"], starts[starts["model"] == "hmm"]
    delta = pd.DataFrame(
        {
            "delta": np.repeat([-1.0, 0.0, 1.0], 2),
            "component": [0, 1] * 3,
            "weight": [0.4, 0.6, 0.5, 0.5, 0.7, 0.3],
            "mean_0": np.arange(6.0),
            "mean_1": np.arange(6.0),
            "selected_k": [2, 2, 2, 2, 3, 3],
            "conclusion": [2, 2, 2, 2, 3, 3],
        }
    )
    tipping = pd.DataFrame(
        {
            "side": ["negative", "positive"],
            "tipping_delta": [np.nan, 1.0],
            "conclusion_at_0": ["BIC selects K = 2"] * 2,
            "variables": ["1", "1"],
        }
    )
    return {
        "ds": ds,
        "labels": sensitivity.variable_labels(ds),
        "starts": mixtures,
        "hmm_starts": hmms,
        "initialisation": sensitivity.initialisation_table(mixtures),
        "criteria": sensitivity.criteria_table(mixtures),
        "selection": sensitivity.selection_table(mixtures),
        "missingness": sensitivity.missingness_table(mixtures, {"toy": 2}),
        "hmm_initialisation": sensitivity.initialisation_table(hmms),
        "hmm_criteria": sensitivity.criteria_table(hmms),
        "failures": sensitivity.failures_table(starts),
        "delta": delta,
        "tipping": tipping,
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


@pytest.fixture(scope="module")
def figures(tables):
    plotting = pytest.importorskip("em_lib.plotting")
    plotting.set_theme()
    labels = tables["labels"]
    made = {
        "initialisation": (
            plotting.initialisation_figure(tables["initialisation"], tables["starts"], labels),
            3,
        ),
        "criteria": (plotting.criteria_figure(tables["criteria"], labels), 3),  # 3 x 1 cond.
        "selection": (plotting.selection_figure(tables["selection"], labels), 3),
        "missingness": (
            plotting.missingness_figure(tables["missingness"], labels),
            4,
        ),  # metrics present
        "hmm": (
            plotting.hmm_figure(
                tables["hmm_initialisation"], tables["hmm_starts"], tables["hmm_criteria"], labels
            ),
            4,
        ),
        "delta": (plotting.delta_figure(tables["delta"], tables["tipping"]), 3),
    }
    yield plotting, made
    for figure, _ in made.values():
        plotting.close(figure)


def test_figures_have_expected_panels_and_save(tmp_path, figures):
    plotting, made = figures
    for name, (figure, n_panels) in made.items():
        assert len(figure.axes) == n_panels, name
        for suffix in ("pdf", "png"):
            path = tmp_path / f"{name}.{suffix}"
            figure.savefig(path, dpi=300 if suffix == "png" else None)
            assert path.stat().st_size > 1000, path
        assert (tmp_path / f"{name}.pdf").read_bytes().startswith(b"%PDF")


def test_axis_labels_carry_units(figures, tables):
    plotting, made = figures
    assert plotting.axis_label("means_rmse", tables["labels"]) == "mean error (RMSE) (data unit)"
    assert plotting.axis_label("ari", tables["labels"]) == "adjusted Rand index"
    figure, _ = made["initialisation"]
    assert "(nat)" in figure.axes[0].get_ylabel()


def test_html_report_contains_figures_tables_and_methods(tmp_path, figures, tables):
    _, made = figures
    entries = []
    for name, (figure, _) in made.items():
        path = tmp_path / f"{name}.png"
        figure.savefig(path, dpi=50)
        entries.append((name, path, f"caption of {name}"))
    ds = tables["ds"]
    config = {
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
        "fit": {
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
    attrs = {
        "root_seed": 7,
        "em_lib_version": "0.1.0",
        "numpy_version": "2",
        "config": json.dumps(config),
    }
    methods = report.methods_paragraph(config, attrs, {"optimum_tol": 1.0})
    findings = report.key_findings(
        tables["selection"],
        tables["initialisation"],
        tables["missingness"],
        {"toy": 2},
        tables["tipping"],
    )
    assert any("picks the true K=2 on data set toy in 3 of 4" in f for f in findings)
    assert any("changes at delta = +1 SD" in f for f in findings)
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
    assert "from 10 starts each" in methods and "root seed 7" in methods
    assert methods.replace("<", "&lt;").replace(">", "&gt;") in page
    assert "Toy &lt;report&gt;" in page  # escaped
    assert "failed and" in page and "collapse" in page
    assert 'src="http' not in page and "<link" not in page  # self-contained
