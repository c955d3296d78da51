"""The image segmentation figure and its section of the HTML report (no Snakemake)."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from em_lib.study import plotting, report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_case():
    rng = np.random.default_rng(0)
    labels = np.zeros((8, 8), dtype=np.int64)
    labels[2:6, 2:6] = 1
    colours = np.array([[0.1, 0.8, 0.2], [0.9, 0.2, 0.1]])
    image = np.clip(colours[labels] + 0.03 * rng.standard_normal((8, 8, 3)), 0, 1)
    damaged = image.copy()
    damaged[rng.random((8, 8, 3)) < 0.3] = np.nan
    restored = np.where(np.isnan(damaged), np.nanmean(damaged, axis=(0, 1)), damaged)
    ari = pd.DataFrame(
        {
            "rate": [0.0, 0.0, 0.0, 0.3, 0.3, 0.3],
            "method": ["em", "complete_case", "mean_impute"] * 2,
            "ari": [1.0, 1.0, 1.0, 0.9, 0.7, 0.8],
        }
    )
    return image, labels, damaged, restored, ari


@pytest.fixture(scope="module")
def figure_png(tiny_case, tmp_path_factory):
    from em_lib.study.plotting_image import segmentation_figure

    figure = segmentation_figure(*tiny_case, n_components=2, title="tiny")
    n_axes = len(figure.axes)
    path = tmp_path_factory.mktemp("image") / "image_tiny.png"
    figure.savefig(path, dpi=50)
    plotting.close(figure)
    return path, n_axes


def test_segmentation_figure_writes_png_with_five_panels(figure_png):
    path, n_axes = figure_png
    assert n_axes == 5
    data = path.read_bytes()
    assert len(data) > 1000
    assert data.startswith(PNG_SIGNATURE)


def test_html_report_has_image_section(figure_png):
    path, _ = figure_png
    caption = "ARI 1.00 at 0%, 0.90 at 30% MCAR with EM vs 0.80 mean imputation."
    page = report.html_report(
        title="toy",
        glance={"data sets": "tiny"},
        findings=["one finding"],
        figures=[],
        tables=[],
        methods="methods",
        failures=pd.DataFrame(),
        images=[("image segmentation of tiny", path, caption)],
    )
    section = page.split('<h2 id="image-segmentation">Image segmentation</h2>', 1)
    assert len(section) == 2
    after = section[1].split('<h2 id="tables">', 1)[0]
    assert after.count('<img src="data:image/png;base64,') == 1
    assert caption in after
    assert "image segmentation of tiny" in after


def test_html_report_without_images_has_no_image_section(figure_png):
    path, _ = figure_png
    page = report.html_report(
        title="toy",
        glance={},
        findings=[],
        figures=[("f", path, "c")],
        tables=[],
        methods="m",
        failures=pd.DataFrame(),
    )
    assert "image-segmentation" not in page
    assert page.count("<figure") == 1
