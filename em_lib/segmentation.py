"""Image segmentation and restoration with the Gaussian mixture: pixels as rows.

Features
--------
:func:`pixel_features` turns an image (H, W, C) into a matrix with one row per pixel (row-major
order) and one column per colour channel, each channel standardised to zero mean and unit
standard deviation over the observed pixels. With ``coordinate_weight > 0`` two more columns hold
the pixel's row and column, standardised the same way and multiplied by ``coordinate_weight``:
a weight of 1 lets position count as much as one colour channel, so components become spatially
compact; 0 (the default) segments by colour alone.

Segmentation, damage and restoration
------------------------------------
:func:`segment` fits :class:`em_lib.GaussianMixture` to the features and returns each pixel's
most probable component as a label map (H, W). :func:`damage_image` makes colour entries
missing with :func:`em_lib.data.make_missing`, either single channel values (``unit="channel"``)
or whole pixels (``unit="pixel"``); pixel coordinates are never made missing. :func:`restore_image`
fits the mixture by exact EM on the damaged pixels and fills every missing colour with its
conditional expectation given the pixel's observed channels (and position), mapped back to colour
values and clipped to [0, 1]; column-mean imputation is returned beside it as the baseline.
:func:`restoration_error` is the RMSE over the masked entries, where the truth is known.

:func:`ari_by_missing_rate` repeats segmentation on damaged copies for a list of rates and
three ways of handling the missing colours, the same as the workflow's methods: ``em`` (exact
EM on the damaged pixels), ``complete_case`` (fit on the pixels with no missing channel),
``mean_impute`` (fit on channel-mean-imputed pixels). Every fitted mixture labels every pixel by
its posterior given the pixel's observed channels, as the workflow scores its fits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from em_lib.data.image import check_image
from em_lib.data.missingness import make_missing
from em_lib.metrics import adjusted_rand_index, imputation_rmse
from em_lib.mixture import GaussianMixture

__all__ = [
    "DAMAGE_UNITS",
    "RESTORATION_METHODS",
    "DamagedImage",
    "PixelFeatures",
    "Restoration",
    "ari_by_missing_rate",
    "damage_image",
    "fit_image_mixture",
    "pixel_features",
    "restoration_error",
    "restore_image",
    "segment",
]

DAMAGE_UNITS = ("channel", "pixel")
RESTORATION_METHODS = ("em", "complete_case", "mean_impute")
_CHANNEL_NAMES = {1: ("grey",), 3: ("red", "green", "blue")}


@dataclass(frozen=True, eq=False)
class PixelFeatures:
    """Pixel feature matrix of an image and the map back to colours.

    Attributes
    ----------
    X : numpy.ndarray of float64, shape (n_pixels, n_features)
        Standardised colour channels, then (with ``coordinate_weight > 0``) the weighted,
        standardised row and column; ``NaN`` where a colour is missing. Pixels in row-major order.
    shape : tuple of int
        ``(height, width, n_channels)`` of the image.
    center, scale : numpy.ndarray of float64, shape (n_channels,)
        Observed mean and standard deviation (1 for a constant channel) of each channel.
    coordinate_weight : float
    feature_names : list of str, length n_features
    """

    X: np.ndarray
    shape: tuple[int, int, int]
    center: np.ndarray
    scale: np.ndarray
    coordinate_weight: float
    feature_names: list[str]

    def to_image(self, X) -> np.ndarray:
        """Colour part of a feature matrix (n_pixels, n_features) as an image (H, W, C) in
        [0, 1] (``NaN`` stays ``NaN``)."""
        n_channels = self.shape[2]
        colours = np.asarray(X, dtype=float)[:, :n_channels] * self.scale + self.center
        return np.clip(colours, 0.0, 1.0).reshape(self.shape)


def pixel_features(image, *, coordinate_weight: float = 0.0) -> PixelFeatures:
    """One row per pixel: standardised channels, optionally weighted standardised coordinates.

    Parameters
    ----------
    image : array-like, shape (height, width) or (height, width, n_channels)
        Colours in [0, 1]; ``NaN`` marks a missing entry.
    coordinate_weight : float, default 0.0
        Non-negative weight of the standardised pixel coordinates (0 leaves them out).
    """
    if not (np.isfinite(coordinate_weight) and coordinate_weight >= 0):
        raise ValueError(f"coordinate_weight must be >= 0, got {coordinate_weight!r}")
    array = check_image(image)
    height, width, n_channels = array.shape
    colours = array.reshape(-1, n_channels)
    center = np.nanmean(colours, axis=0)
    spread = np.nanstd(colours, axis=0)
    scale = np.where(spread > 0, spread, 1.0)
    columns = [(colours - center) / scale]
    names = list(_CHANNEL_NAMES.get(n_channels, [f"channel{c}" for c in range(n_channels)]))
    if coordinate_weight > 0:
        rows, cols = np.indices((height, width)).reshape(2, -1).astype(float)
        for values, name in ((rows, "row"), (cols, "column")):
            spread = values.std()
            standard = (values - values.mean()) / (spread if spread > 0 else 1.0)
            columns.append(coordinate_weight * standard[:, None])
            names.append(name)
    return PixelFeatures(
        np.hstack(columns),
        (height, width, n_channels),
        center,
        scale,
        float(coordinate_weight),
        names,
    )


def _mixture(n_components, covariance_type, n_init, random_state):
    # k-means++ starts without nested starts: on the synthetic scenes (a large background and
    # small shapes) the default hierarchical/k-means starts often merge two small regions, and
    # nested starts cost up to 4 K extra fits per image for no gain there
    return GaussianMixture(
        n_components,
        covariance_type=covariance_type,
        n_init=n_init,
        max_iter=200,
        init_params="k-means++",
        nested_starts=False,
        random_state=random_state,
    )


def fit_image_mixture(
    image,
    n_components: int,
    *,
    covariance_type: str = "full",
    coordinate_weight: float = 0.0,
    n_init: int = 8,
    random_state=0,
) -> tuple[GaussianMixture, PixelFeatures]:
    """Fit a Gaussian mixture to the pixel features of ``image`` (exact EM where colours are
    missing); returns the fitted model and the features.

    Raises ``ValueError`` before any fit for a single-colour image or one with fewer observed
    pixels than ``n_components``.
    """
    check_image(image, n_components)
    features = pixel_features(image, coordinate_weight=coordinate_weight)
    model = _mixture(n_components, covariance_type, n_init, random_state)
    return model.fit(features.X), features


def segment(image, n_components: int, **options) -> np.ndarray:
    """Label map (height, width) of each pixel's most probable mixture component.

    ``image`` (height, width) or (height, width, n_channels) holds colours in [0, 1], ``NaN``
    marking a missing entry (handled by exact EM); ``options`` are those of
    :func:`fit_image_mixture` (``covariance_type``, ``coordinate_weight``, ``n_init``,
    ``random_state``). Returns int64 components ``0 .. K - 1`` of every pixel.
    """
    model, features = fit_image_mixture(image, n_components, **options)
    return model.predict(features.X).astype(np.int64).reshape(features.shape[:2])


@dataclass(frozen=True, eq=False)
class DamagedImage:
    """An image with missing colours.

    Attributes
    ----------
    image : numpy.ndarray of float64, shape (height, width, n_channels)
        The input with the masked entries set to ``NaN``.
    mask : numpy.ndarray of bool, shape (height, width, n_channels)
        ``True`` where a colour was made missing.
    realised_rate : float
        Fraction of all colour entries that are missing.
    """

    image: np.ndarray
    mask: np.ndarray
    realised_rate: float


def damage_image(
    image,
    mechanism: str,
    rate: float,
    *,
    random_state,
    unit: str = "channel",
    strength: float = 2.0,
) -> DamagedImage:
    """Make colour entries of a complete image missing.

    Parameters
    ----------
    image : array-like, shape (height, width) or (height, width, n_channels)
        Complete colours in [0, 1].
    mechanism : {"none", "MCAR", "MAR", "MNAR"}
        See :func:`em_lib.data.make_missing`.
    rate : float
        Fraction of all colour entries to make missing.
    random_state : int, numpy.random.SeedSequence or numpy.random.Generator
    unit : {"channel", "pixel"}, default "channel"
        ``"channel"``: single channel values go missing, the mechanism acting on the pixel-by-
        channel matrix (MAR: driven by the first channel, which stays observed; MNAR: bright
        values go missing; no pixel loses every channel). ``"pixel"``: whole pixels go missing;
        MNAR acts on the pixel's mean brightness and MAR on its (always known) row, so the
        lower rows lose more pixels with ``strength > 0``.
    strength : float, default 2.0
        Logistic slope of MAR and MNAR, as in :func:`em_lib.data.make_missing`.
    """
    if unit not in DAMAGE_UNITS:
        raise ValueError(f"unit must be one of {list(DAMAGE_UNITS)}, got {unit!r}")
    array = check_image(image)
    if np.isnan(array).any():
        raise ValueError("damage_image needs a complete image (no NaN)")
    height, width, n_channels = array.shape
    colours = array.reshape(-1, n_channels)
    if unit == "channel":
        mask = make_missing(
            colours, mechanism, rate, random_state=random_state, strength=strength
        ).mask
    else:
        brightness = colours.mean(axis=1, keepdims=True)
        if str(mechanism).upper() == "MAR":
            rows = np.indices((height, width))[0].reshape(-1, 1).astype(float)
            # rate counts all entries of the (row, brightness) matrix, half of them never masked
            pixel_mask = make_missing(
                np.hstack([rows, brightness]),
                mechanism,
                rate / 2,
                random_state=random_state,
                strength=strength,
                columns=[1],
                drivers=[0],
            ).mask[:, 1]
        else:
            pixel_mask = make_missing(
                brightness, mechanism, rate, random_state=random_state, strength=strength
            ).mask[:, 0]
        mask = np.repeat(pixel_mask[:, None], n_channels, axis=1)
    mask = mask.reshape(array.shape)
    return DamagedImage(np.where(mask, np.nan, array), mask, float(mask.mean()))


@dataclass(frozen=True, eq=False)
class Restoration:
    """Result of :func:`restore_image`.

    Attributes
    ----------
    restored : numpy.ndarray of float64, shape (height, width, n_channels)
        Missing colours replaced by their conditional expectation under the fitted mixture.
    mean_imputed : numpy.ndarray of float64, shape (height, width, n_channels)
        Missing colours replaced by the observed mean of their channel (the baseline).
    labels : numpy.ndarray of int64, shape (height, width)
        Segmentation of the damaged image (posterior given each pixel's observed channels).
    model : GaussianMixture
        The mixture fitted by exact EM to the damaged pixels.
    """

    restored: np.ndarray
    mean_imputed: np.ndarray
    labels: np.ndarray
    model: GaussianMixture


def restore_image(damaged, n_components: int, **options) -> Restoration:
    """Fill the missing colours of ``damaged`` (NaN entries) with the mixture's conditional
    expectation, and with channel means for comparison; see :class:`Restoration`.
    ``options`` are those of :func:`fit_image_mixture`."""
    model, features = fit_image_mixture(damaged, n_components, **options)
    original = check_image(damaged)
    missing = np.isnan(original)
    restored = np.where(missing, features.to_image(model.impute(features.X)), original)
    mean_imputed = np.where(missing, features.center, original)
    labels = model.predict(features.X).astype(np.int64).reshape(features.shape[:2])
    return Restoration(restored, mean_imputed, labels, model)


def restoration_error(truth, restored, mask) -> float:
    """RMSE of ``restored`` against ``truth`` over the entries where ``mask`` is True.

    All three arrays have the shape (height, width, n_channels) (or (height, width)).
    """
    truth, restored = np.asarray(truth, dtype=float), np.asarray(restored, dtype=float)
    mask = np.asarray(mask, dtype=bool)
    if not truth.shape == restored.shape == mask.shape:
        raise ValueError(
            f"truth, restored and mask must have the same shape, got {truth.shape}, "
            f"{restored.shape}, {mask.shape}"
        )
    n_channels = truth.shape[2] if truth.ndim == 3 else 1
    return imputation_rmse(
        truth.reshape(-1, n_channels),
        restored.reshape(-1, n_channels),
        mask.reshape(-1, n_channels),
    )


def _seed(sequence: np.random.SeedSequence) -> int:
    return int(sequence.generate_state(1, np.uint32)[0])


def ari_by_missing_rate(
    image,
    true_labels,
    n_components: int,
    rates,
    *,
    mechanism: str = "MCAR",
    unit: str = "channel",
    methods=RESTORATION_METHODS,
    covariance_type: str = "full",
    coordinate_weight: float = 0.0,
    n_init: int = 8,
    strength: float = 2.0,
    random_state: int | np.random.SeedSequence = 0,
) -> pd.DataFrame:
    """Segmentation accuracy and restoration error against the missing rate, per method.

    Parameters
    ----------
    image : array-like, shape (height, width, n_channels)
        Complete image.
    true_labels : array-like, shape (height, width)
        True region of every pixel.
    rates : sequence of float
        Missing rates; 0 means no damage (mechanism ``"none"``).
    methods : subset of {"em", "complete_case", "mean_impute"}
    random_state : int or numpy.random.SeedSequence
        Root of the streams; rate ``j`` uses the ``j``-th spawned child for its mask and for the
        starts of its fits (shared by the methods, so they see the same mask).

    Returns
    -------
    pandas.DataFrame
        Columns ``rate`` (requested), ``realised_rate``, ``method``, ``ari`` (adjusted Rand
        index of the labels against ``true_labels``) and ``rmse`` (restoration error on the
        masked entries; NaN at rate 0).
    """
    unknown = [m for m in methods if m not in RESTORATION_METHODS]
    if unknown:
        raise ValueError(f"methods must be among {list(RESTORATION_METHODS)}, got {unknown}")
    array = check_image(image, n_components)
    truth = np.asarray(true_labels).ravel()
    root = (
        random_state
        if isinstance(random_state, np.random.SeedSequence)
        else np.random.SeedSequence(random_state)
    )
    records = []
    for rate, child in zip(rates, root.spawn(len(rates)), strict=True):
        mask_seed, fit_seed = child.spawn(2)
        damaged = damage_image(
            array,
            "none" if rate == 0 else mechanism,
            float(rate),
            random_state=mask_seed,
            unit=unit,
            strength=strength,
        )
        features = pixel_features(damaged.image, coordinate_weight=coordinate_weight)
        X_obs = features.X
        missing = np.isnan(X_obs)
        for method in methods:
            if method == "em":
                X_train = X_obs
            elif method == "complete_case":
                X_train = X_obs[~missing.any(axis=1)]
            else:
                X_train = np.where(missing, np.nanmean(X_obs, axis=0), X_obs)
            if X_train.shape[0] < n_components:
                records.append((rate, damaged.realised_rate, method, np.nan, np.nan))
                continue
            model = _mixture(n_components, covariance_type, n_init, _seed(fit_seed)).fit(X_train)
            labels = model.predict(X_obs)
            filled = (
                np.where(missing, np.nanmean(X_obs, axis=0), X_obs)
                if method == "mean_impute"
                else model.impute(X_obs)
            )
            rmse = (
                restoration_error(array, features.to_image(filled), damaged.mask)
                if damaged.mask.any()
                else np.nan
            )
            records.append(
                (rate, damaged.realised_rate, method, adjusted_rand_index(truth, labels), rmse)
            )
    return pd.DataFrame(records, columns=["rate", "realised_rate", "method", "ari", "rmse"])
