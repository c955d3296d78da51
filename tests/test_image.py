"""Images as data: synthetic scenes, PNG/JPEG reading, segmentation, damage and restoration
(em_lib.data, em_lib.segmentation), the workflow's ``image`` data set kind and the image
figure's analysis from the stored fits (em_lib.study.image), and the segmentation figure."""

from __future__ import annotations

import io
import logging

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from helpers_study import run_study, tiny_config, tiny_study
from matplotlib.figure import Figure
from PIL import Image

from em_lib import segmentation as seg
from em_lib.data import make_synthetic_image, read_image
from em_lib.data.image import check_image, downsample
from em_lib.metrics import adjusted_rand_index
from em_lib.study import config as study_config
from em_lib.study import design, image, jobs
from em_lib.study.plotting_image import segmentation_figure
from em_lib.study.seeds import seed_sequence


def scene(seed=0, noise=0.05, gradient=0.0, size=48, n_regions=4):
    return make_synthetic_image(
        size,
        size,
        n_regions=n_regions,
        noise=noise,
        illumination_gradient=gradient,
        random_state=seed,
    )


def image_spec(**overrides):
    spec = {
        "kind": "image",
        "source": "synthetic",
        "seed": 0,
        "height": 32,
        "width": 24,
        "n_regions": 3,
        "noise": 0.05,
        "illumination_gradient": 0.0,
        "max_pixels": 4096,
        "coordinate_weight": 0.0,
    }
    spec.update(overrides)
    return spec


# ---------------------------------------------------------------------------------------------
# synthetic scenes
# ---------------------------------------------------------------------------------------------


def test_synthetic_image_shapes_ranges_and_reproducibility():
    image, labels = scene(seed=3, noise=0.1, gradient=0.5, n_regions=5)
    assert image.shape == (48, 48, 3) and image.dtype == np.float64
    assert labels.shape == (48, 48) and labels.dtype == np.int64
    assert 0.0 <= image.min() and image.max() <= 1.0
    counts = np.bincount(labels.ravel(), minlength=5)
    assert counts.size == 5 and counts.min() >= 0.02 * labels.size
    again = scene(seed=3, noise=0.1, gradient=0.5, n_regions=5)
    np.testing.assert_array_equal(image, again.image)
    np.testing.assert_array_equal(labels, again.labels)
    assert not np.array_equal(image, scene(seed=4, noise=0.1, gradient=0.5, n_regions=5).image)


def test_synthetic_region_colours_are_the_means():
    image, labels = scene(seed=1, noise=0.02)
    means = np.array([image[labels == r].mean(axis=0) for r in range(4)])
    # every mean is a corner of [0.2, 0.8]^3 (noise 0.02 never reaches the clip at 0 or 1)
    np.testing.assert_allclose(means, np.round((means - 0.2) / 0.6) * 0.6 + 0.2, atol=0.01)
    assert np.unique(np.round(means, 1), axis=0).shape[0] == 4


def test_synthetic_image_bad_arguments():
    with pytest.raises(ValueError, match="n_regions must be an integer in"):
        make_synthetic_image(16, 16, n_regions=9, noise=0.1, random_state=0)
    with pytest.raises(ValueError, match="height must be an integer >= 8"):
        make_synthetic_image(4, 16, n_regions=2, noise=0.1, random_state=0)
    with pytest.raises(ValueError, match="noise must be a non-negative"):
        make_synthetic_image(16, 16, n_regions=2, noise=-1.0, random_state=0)


# ---------------------------------------------------------------------------------------------
# segmentation and restoration
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_segment_recovers_regions_without_missing_data(seed):
    # Region colours are distinct corners of [0.2, 0.8]^3, so two regions differ by at least
    # 0.6 in some channel: 0.6 / 0.05 = 12 noise standard deviations. The Bayes classifier
    # then misplaces a pixel with probability about Phi(-6) ~ 1e-9 per pair of regions, and the
    # clip at [0, 1] lies 4 noise sds beyond the nearest colour mean, so the data are a Gaussian
    # mixture up to ~3e-5 of the entries. A fit that finds the true optimum labels (nearly)
    # every pixel right, ARI ~ 1; a fit that merges two regions or splits one cannot exceed
    # ~0.9 here (the smallest region holds >= 2 % of the pixels, the background ~70 %). 0.95
    # separates the two and leaves room for a handful of mislabelled pixels.
    image, labels = scene(seed=seed, noise=0.05, gradient=0.3)
    label_map = seg.segment(image, 4, random_state=seed)
    assert label_map.shape == labels.shape
    assert adjusted_rand_index(labels.ravel(), label_map.ravel()) > 0.95


def test_pixel_features_standardised_and_mapped_back():
    image, _ = scene(seed=0, size=16)
    features = seg.pixel_features(image, coordinate_weight=0.5)
    assert features.X.shape == (256, 5)
    assert features.feature_names == ["red", "green", "blue", "row", "column"]
    np.testing.assert_allclose(features.X.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(features.X.std(axis=0), [1, 1, 1, 0.5, 0.5])
    np.testing.assert_allclose(features.to_image(features.X), image)
    assert seg.pixel_features(image).X.shape == (256, 3)


@pytest.mark.parametrize(("mechanism", "unit"), [("MCAR", "channel"), ("MAR", "channel")])
def test_em_restoration_beats_mean_imputation(mechanism, unit):
    image, _ = scene(seed=2, noise=0.05)
    damaged = seg.damage_image(image, mechanism, 0.2, random_state=5, unit=unit)
    assert damaged.realised_rate == pytest.approx(0.2, abs=1e-3)
    np.testing.assert_array_equal(np.isnan(damaged.image), damaged.mask)
    result = seg.restore_image(damaged.image, 4, random_state=0)
    observed = ~damaged.mask
    np.testing.assert_allclose(result.restored[observed], image[observed])
    assert np.isfinite(result.restored).all() and np.isfinite(result.mean_imputed).all()
    em_error = seg.restoration_error(image, result.restored, damaged.mask)
    mean_error = seg.restoration_error(image, result.mean_imputed, damaged.mask)
    assert em_error < mean_error


def test_damage_whole_pixels():
    image, _ = scene(seed=0, size=32)
    for mechanism in ("MCAR", "MAR", "MNAR"):
        damaged = seg.damage_image(image, mechanism, 0.25, random_state=1, unit="pixel")
        assert (damaged.mask.all(axis=2) == damaged.mask.any(axis=2)).all()
        assert damaged.realised_rate == pytest.approx(0.25, abs=1e-3)
    mar = seg.damage_image(image, "MAR", 0.25, random_state=1, unit="pixel", strength=3.0)
    # MAR on the row: the lower half loses more pixels than the upper half
    lost = mar.mask[..., 0]
    assert lost[16:].sum() > lost[:16].sum()


def test_ari_by_missing_rate_table():
    image, labels = scene(seed=0, size=32, n_regions=3)
    table = seg.ari_by_missing_rate(image, labels, 3, [0.0, 0.2], random_state=3, n_init=4)
    assert list(table.columns) == ["rate", "realised_rate", "method", "ari", "rmse"]
    assert len(table) == 6
    at_zero = table[table["rate"] == 0.0]
    assert at_zero["ari"].nunique() == 1 and at_zero["rmse"].isna().all()
    damaged = table[table["rate"] == 0.2].set_index("method")
    assert damaged.loc["em", "rmse"] < damaged.loc["mean_impute", "rmse"]


# ---------------------------------------------------------------------------------------------
# reading files
# ---------------------------------------------------------------------------------------------


def gradient_pixels(height=6, width=5):
    rows, cols = np.indices((height, width))
    return np.stack([rows * 40, cols * 50, (rows + cols) * 20], axis=-1).astype(np.uint8)


def test_read_grey_png(tmp_path):
    grey = gradient_pixels()[..., 0]
    Image.fromarray(grey, mode="L").save(tmp_path / "grey.png")
    image = read_image(tmp_path / "grey.png")
    assert image.shape == (6, 5, 1) and image.dtype == np.float64
    np.testing.assert_allclose(image[..., 0], grey / 255.0, atol=1e-6)


def test_read_rgb_png_and_imsave_float(tmp_path):
    rgb = gradient_pixels()
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "rgb.png")
    image = read_image(tmp_path / "rgb.png")
    assert image.shape == (6, 5, 3)
    np.testing.assert_allclose(image, rgb / 255.0, atol=1e-6)
    # matplotlib's imsave writes RGBA (opaque): alpha is dropped
    matplotlib.image.imsave(tmp_path / "saved.png", rgb / 255.0)
    np.testing.assert_allclose(read_image(tmp_path / "saved.png"), rgb / 255.0, atol=1e-6)


def test_read_rgb_png_with_equal_channels_is_grey(tmp_path):
    grey = gradient_pixels()[..., :1].repeat(3, axis=2)
    Image.fromarray(grey, mode="RGB").save(tmp_path / "flat.png")
    assert read_image(tmp_path / "flat.png").shape == (6, 5, 1)


def test_read_rgba_png_transparent_pixels(tmp_path):
    rgba = np.concatenate([gradient_pixels(), np.full((6, 5, 1), 255, np.uint8)], axis=2)
    rgba[0, :2, 3] = 0  # fully transparent
    rgba[1, 0, 3] = 100  # partly transparent: keeps its colour
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    image = read_image(tmp_path / "rgba.png")
    assert image.shape == (6, 5, 3)
    missing = np.isnan(image).any(axis=2)
    assert missing.sum() == 2 and missing[0, :2].all()
    assert np.isnan(image[0, :2]).all()
    np.testing.assert_allclose(image[1, 0], rgba[1, 0, :3] / 255.0, atol=1e-6)
    kept = read_image(tmp_path / "rgba.png", transparent="keep")
    np.testing.assert_allclose(kept, rgba[..., :3] / 255.0, atol=1e-6)


def test_read_jpeg(tmp_path):
    rgb = np.repeat(np.repeat(gradient_pixels(), 4, axis=0), 4, axis=1)
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "photo.jpg", quality=95)
    image = read_image(tmp_path / "photo.jpg")
    assert image.shape == (24, 20, 3)
    assert np.abs(image - rgb / 255.0).max() < 0.1  # lossy


def test_read_large_image_is_block_averaged(tmp_path, caplog):
    rgb = np.random.default_rng(0).integers(0, 256, size=(100, 90, 3), dtype=np.uint8)
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "big.png")
    with caplog.at_level(logging.INFO, logger="em_lib.data.image"):
        image = read_image(tmp_path / "big.png", max_pixels=400)
    # side 5 is the smallest square block leaving <= 400 pixels: (100 // 5) * (90 // 5) = 360
    assert image.shape == (20, 18, 3)
    np.testing.assert_allclose(
        image[0, 0], rgb[:5, :5].reshape(-1, 3).mean(axis=0) / 255.0, atol=1e-6
    )
    assert "downsampled by 5x5 block averaging to 20x18" in caplog.text


def test_downsample_ignores_missing_entries():
    image = np.arange(16, dtype=float).reshape(4, 4, 1) / 16
    image[0, 0, 0] = np.nan
    small = downsample(image, 4)
    assert small.shape == (2, 2, 1)
    assert small[0, 0, 0] == pytest.approx(np.mean([1, 4, 5]) / 16)


# ---------------------------------------------------------------------------------------------
# bad inputs: clear errors before any fit
# ---------------------------------------------------------------------------------------------


def test_non_image_file_is_named(tmp_path):
    bogus = tmp_path / "notes.png"
    bogus.write_text("this is not a picture\n")
    with pytest.raises(ValueError, match=r"cannot read .*notes\.png as a PNG or JPEG image"):
        read_image(bogus)
    with pytest.raises(ValueError, match=r"cannot read image .*absent\.png: no such file"):
        read_image(tmp_path / "absent.png")


def test_single_colour_image_is_rejected(tmp_path):
    flat = np.full((8, 8, 3), 120, np.uint8)
    Image.fromarray(flat, mode="RGB").save(tmp_path / "flat.png")
    with pytest.raises(ValueError, match=r"flat\.png: a single colour \(zero variance"):
        read_image(tmp_path / "flat.png")
    with pytest.raises(ValueError, match="a single colour"):
        seg.segment(np.full((8, 8, 3), 0.5), 2)


def test_image_too_small_for_k():
    tiny = np.array([[[0.1, 0.2, 0.3], [0.9, 0.8, 0.7]]])
    with pytest.raises(ValueError, match="too small for 3 components: 2 observed pixel"):
        seg.segment(tiny, 3)
    with pytest.raises(ValueError, match="too small for 3 components"):
        check_image(tiny, 3)


# ---------------------------------------------------------------------------------------------
# the workflow's image data set kind
# ---------------------------------------------------------------------------------------------


def test_image_kind_prepares_pixels_and_labels():
    spec = image_spec()
    arrays = jobs.prepare_dataset("scene", spec, root_seed=7)
    assert arrays["X"].shape == (32 * 24, 3)
    assert list(arrays["feature_names"]) == ["red", "green", "blue"]
    expected = make_synthetic_image(
        32,
        24,
        n_regions=3,
        noise=0.05,
        random_state=np.random.default_rng(seed_sequence(7, "data", dataset="scene", seed=0)),
    )
    np.testing.assert_array_equal(arrays["labels"], expected.labels.ravel())
    np.testing.assert_array_equal(arrays["image"], expected.image)
    np.testing.assert_array_equal(arrays["pixel_index"], np.arange(768))
    assert int(arrays["true_n_components"]) == 3
    assert study_config.usable_shape("scene", spec) == (768, 3)
    with_coordinates = jobs.prepare_dataset("scene", image_spec(coordinate_weight=1.0), 7)
    assert with_coordinates["X"].shape == (768, 5)
    assert study_config.usable_shape("scene", image_spec(coordinate_weight=1.0)) == (768, 5)


def test_image_kind_from_file(tmp_path):
    rgba = np.concatenate([gradient_pixels(), np.full((6, 5, 1), 255, np.uint8)], axis=2)
    rgba[0, 0, 3] = 0
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "photo.png")
    arrays = jobs.prepare_dataset("photo", image_spec(source=str(tmp_path / "photo.png")), 7)
    assert arrays["X"].shape == (29, 3)  # the transparent pixel is left out
    assert "labels" not in arrays and "true_n_components" not in arrays
    assert arrays["pixel_index"].tolist() == list(range(1, 30))
    # a file's shape is only known to the job that reads it
    assert study_config.usable_shape("photo", image_spec(source=str(tmp_path / "photo.png"))) == (
        None,
        None,
    )
    with pytest.raises(study_config.ConfigError, match=r"datasets\.gone\.source: file not found"):
        study_config.usable_shape("gone", image_spec(source=str(tmp_path / "gone.png")))


def test_image_kind_config_checks():
    change = {
        "datasets": {"tiny": image_spec(height=8, width=8, n_regions=2)},
        "sweep": {"dataset": ["tiny"], "model": ["full"], "n_components": [2, 64]},
    }
    with pytest.raises(
        study_config.ConfigError,
        match="K = 64 needs more than 64 usable rows, but dataset 'tiny' has 64",
    ):
        tiny_config(change)
    change["sweep"]["n_components"] = [2, 63]
    assert tiny_config(change)["sweep"]["n_components"] == [2, 63]


SCENE = {
    "kind": "image",
    "source": "synthetic",
    "height": 16,
    "width": 16,
    "n_regions": 2,
    "noise": 0.05,
    "seed": 0,
}


@pytest.fixture(scope="module")
def scene_study():
    """A 16 x 16 synthetic scene with two regions through every job: full model, K 2 and 3,
    the image as given and MCAR 20 %, methods em and mean_impute."""
    config = tiny_config(
        {
            "datasets": {"scene": dict(SCENE)},
            "sweep": {
                "dataset": ["scene"],
                "model": ["full"],
                "n_components": [2, 3],
                "method": ["em", "mean_impute"],
            },
            "fit": {"n_init": 2},
        }
    )
    ds, data, fits, masks = run_study(config)
    damage = design.image_damage(config)
    mask = next(
        arrays["mask"]
        for labels, arrays in masks
        if labels == {**damage.labels, "dataset": "scene"}
    )
    return config, ds, data["scene"], mask, damage


def test_image_analysis_reads_the_stored_fits(scene_study):
    _, ds, data, mask, damage = scene_study
    shown = image.image_analysis(
        ds,
        data,
        mask,
        dataset="scene",
        mechanism=damage.mechanism,
        missing_rate=damage.missing_rate,
        replicate=damage.replicate,
    )
    # K: the lowest BIC of exact EM on the image as given
    given = ds["fit_bic"].sel(
        {
            "dataset": "scene",
            "model": "full",
            "mechanism": "none",
            "missing_rate": 0.0,
            "replicate": 0,
            "method": "em",
        }
    )
    assert shown["n_components"] == int(given.idxmin("n_components"))
    assert shown["model"] == "full" and shown["has_truth"]
    image_array = data["image"]
    assert shown["label_map"].shape == image_array.shape[:2]
    # the map is the MAP component of every pixel under that stored model
    model = image.stored_model(
        ds,
        dataset="scene",
        model="full",
        mechanism="none",
        missing_rate=0.0,
        replicate=0,
        method="em",
        n_components=shown["n_components"],
    )
    np.testing.assert_array_equal(shown["label_map"].ravel(), map_labels(data["X"], *model))
    # the curve: ARI of the stored fits' labels against the true regions, per rate and method
    curve = shown["curve"].set_index(["method", "rate"])["ari"]
    assert sorted(curve.index) == sorted(
        (m, r) for m in ("em", "mean_impute") for r in (0.0, damage.missing_rate)
    )
    assert curve["em", 0.0] == adjusted_rand_index(data["labels"], shown["label_map"].ravel())
    # damaged: NaN exactly where the mask hits a colour; restored: observed values kept
    colour_mask = mask.reshape(image_array.shape)
    np.testing.assert_array_equal(np.isnan(shown["damaged"]), colour_mask)
    np.testing.assert_array_equal(shown["restored"][~colour_mask], image_array[~colour_mask])
    assert np.isfinite(shown["restored"]).all()
    errors = shown["restoration_rmse"]
    assert errors["em"] == pytest.approx(
        seg.restoration_error(image_array, shown["restored"], colour_mask), rel=1e-12
    )
    assert errors["em"] < errors["mean_impute"]
    assert f"BIC selects K = {shown['n_components']}" in shown["caption"]
    assert f"RMSE {errors['em']:.3f}" in shown["caption"]


def map_labels(X, weights, means, covariances):
    """MAP component of complete rows under a full-covariance mixture (scipy densities)."""
    from scipy.stats import multivariate_normal

    scores = np.column_stack(
        [
            np.log(w) + multivariate_normal(mean, cov).logpdf(X)
            for w, mean, cov in zip(weights, means, covariances, strict=True)
        ]
    )
    return scores.argmax(axis=1)


def test_stored_model_is_the_cells_fit_in_its_own_columns():
    _, ds, data, fits, _ = tiny_study()
    labels = {"dataset": "air", "mechanism": "MCAR", "missing_rate": 0.2, "replicate": 0}
    arrays = next(out for key, out in fits if key == labels)
    m, k, e = 0, 1, 0  # diag, K = 2, em
    assert (arrays["model"][m], arrays["n_components"][k], arrays["method"][e]) == ("diag", 2, "em")
    weights, means, covariances = image.stored_model(
        ds, **labels, model="diag", n_components=2, method="em"
    )
    np.testing.assert_array_equal(weights, arrays["weights"][m, k, e])
    np.testing.assert_array_equal(means, arrays["means"][m, k, e])  # 4 columns, not 6
    np.testing.assert_array_equal(covariances, arrays["covariances"][m, k, e])
    # not fitted: air has no full model; failed fits are not shown
    assert image.stored_model(ds, **labels, model="full", n_components=2, method="em") is None
    broken = ds.copy(deep=True)
    broken["fit_failed"].loc[{"dataset": "air"}] = True
    assert image.stored_model(broken, **labels, model="diag", n_components=2, method="em") is None
    # the labels path: complete rows get the MAP component under the stored model
    X = data["air"]["X"]
    complete = X[~np.isnan(X).any(axis=1)]
    model = (weights, means, covariances)
    np.testing.assert_array_equal(image._labels(complete, model), map_labels(complete, *model))


# ---------------------------------------------------------------------------------------------
# figure
# ---------------------------------------------------------------------------------------------


def test_segmentation_figure_renders():
    image, labels = scene(seed=0, size=24, n_regions=3)
    damaged = seg.damage_image(image, "MCAR", 0.2, random_state=0)
    restored = seg.restore_image(damaged.image, 3, n_init=2).restored
    table = pd.DataFrame(
        {
            "rate": [0.0, 0.0, 0.3, 0.3],
            "method": ["em", "mean_impute", "em", "mean_impute"],
            "ari": [1.0, 1.0, 0.8, 0.6],
        }
    )
    fig = segmentation_figure(image, labels, damaged.image, restored, table)
    assert isinstance(fig, Figure) and len(fig.axes) == 5
    assert fig.axes[1].get_title() == "Segmentation (K = 3)"
    assert [line.get_label() for line in fig.axes[4].get_lines()] == [
        "exact EM",
        "mean imputation",
    ]
    fig.savefig(io.BytesIO(), format="png")
    photo = segmentation_figure(
        image,
        labels,
        damaged.image,
        restored,
        table,
        agreement_title="Agreement with the undamaged fit",
    )
    assert photo.axes[4].get_title() == "Agreement with the undamaged fit"
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['ari'\]"):
        segmentation_figure(image, labels, damaged.image, restored, table.drop(columns="ari"))
