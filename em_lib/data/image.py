"""Images as data: a synthetic scene with known regions, and PNG/JPEG files.

Pixels are the samples and colour channels the features (see :mod:`em_lib.segmentation`).

Synthetic scene
---------------
:func:`make_synthetic_image` paints ``n_regions`` regions: region 0 is the background and
regions ``1 .. n_regions - 1`` are shapes cycling through a diagonal band, a rectangle and a
disc, drawn largest first so the smaller shapes stay visible. Every region gets its own mean
colour, a distinct corner of the colour cube ``[0.2, 0.8]^3`` (so two region colours differ by
at least 0.6 in one channel), plus i.i.d. Gaussian noise of standard deviation ``noise`` on every
channel. An optional illumination gradient multiplies the colours by a linear ramp along a
random direction, from ``1 - illumination_gradient / 2`` to ``1 + illumination_gradient / 2``.
Values are finally clipped to ``[0, 1]``.

Files
-----
:func:`read_image` reads PNG with :func:`matplotlib.image.imread` and JPEG through Pillow (when
it is installed). Grey images come back with one channel, colour images with three (an RGB
file whose three channels are equal everywhere is returned as grey, because three identical
columns would make every full covariance singular). The alpha channel is dropped, except that
fully transparent pixels (alpha 0) become missing (``NaN`` in every channel) with the default
``transparent="missing"``; ``transparent="keep"`` keeps their colour. Images with more than
``max_pixels`` pixels are shrunk by averaging square blocks (the trailing rows and columns that
do not fill a block are cropped), and a note is logged.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from em_lib.data.synthetic import as_generator

__all__ = [
    "MAX_REGIONS",
    "SHAPES",
    "SyntheticImage",
    "check_image",
    "downsample",
    "make_synthetic_image",
    "read_image",
]

log = logging.getLogger(__name__)

SHAPES = ("band", "rectangle", "disc")
# corners of the colour cube [0.2, 0.8]^3: any two differ by 0.6 in at least one channel
_PALETTE = 0.2 + 0.6 * np.array(
    [[(code >> 2) & 1, (code >> 1) & 1, code & 1] for code in range(8)], dtype=float
)
MAX_REGIONS = len(_PALETTE)
_MIN_REGION_FRACTION = 0.02  # every region keeps at least 2 % of the pixels (and 4 pixels)
_MAX_LAYOUT_TRIES = 50
_JPEG_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif")
_TRANSPARENT = ("missing", "keep")


class SyntheticImage(NamedTuple):
    """A synthetic scene; unpacks as ``image, labels = make_synthetic_image(...)``.

    Attributes
    ----------
    image : numpy.ndarray of float64, shape (height, width, 3)
        RGB values in [0, 1].
    labels : numpy.ndarray of int64, shape (height, width)
        Region of every pixel, ``0 .. n_regions - 1`` (0 is the background).
    """

    image: np.ndarray
    labels: np.ndarray


def _shape_mask(kind: str, rows, cols, height: int, width: int, rng) -> np.ndarray:
    """Boolean (height, width) mask of one randomly placed shape."""
    size = min(height, width)
    if kind == "band":
        angle = rng.uniform(0.0, np.pi)
        normal = np.array([np.cos(angle), np.sin(angle)])
        offset = (rows - height / 2) * normal[0] + (cols - width / 2) * normal[1]
        centre = rng.uniform(-0.25, 0.25) * size
        half_width = rng.uniform(0.08, 0.12) * size
        return np.abs(offset - centre) <= half_width
    if kind == "rectangle":
        box_h = rng.uniform(0.25, 0.45) * height
        box_w = rng.uniform(0.25, 0.45) * width
        top = rng.uniform(0.0, height - box_h)
        left = rng.uniform(0.0, width - box_w)
        return (rows >= top) & (rows < top + box_h) & (cols >= left) & (cols < left + box_w)
    radius = rng.uniform(0.12, 0.2) * size
    centre_r = rng.uniform(radius, height - radius)
    centre_c = rng.uniform(radius, width - radius)
    return (rows - centre_r) ** 2 + (cols - centre_c) ** 2 <= radius**2


def _layout(height: int, width: int, n_regions: int, rng) -> np.ndarray | None:
    rows, cols = np.mgrid[0:height, 0:width].astype(float) + 0.5
    masks = [
        _shape_mask(SHAPES[(region - 1) % len(SHAPES)], rows, cols, height, width, rng)
        for region in range(1, n_regions)
    ]
    labels = np.zeros((height, width), dtype=np.int64)
    for region in sorted(range(1, n_regions), key=lambda r: -masks[r - 1].sum()):
        labels[masks[region - 1]] = region
    counts = np.bincount(labels.ravel(), minlength=n_regions)
    least = max(4, math.ceil(_MIN_REGION_FRACTION * height * width))
    return labels if counts.min() >= least else None


def make_synthetic_image(
    height: int,
    width: int,
    *,
    n_regions: int,
    noise: float,
    illumination_gradient: float = 0.0,
    random_state,
) -> SyntheticImage:
    """Simulate an RGB scene of ``n_regions`` coloured regions with known region labels.

    Parameters
    ----------
    height, width : int
        Image size in pixels, each at least 8.
    n_regions : int
        Number of regions including the background, 1 to :data:`MAX_REGIONS` (8).
    noise : float
        Standard deviation of the Gaussian noise added to every channel (colours in [0, 1];
        region means differ by at least 0.6 in one channel). Non-negative.
    illumination_gradient : float, default 0.0
        Strength of a smooth multiplicative illumination ramp, in [0, 1]: the colours are
        multiplied by ``1 + illumination_gradient * (ramp - 1/2)``, ``ramp`` going linearly
        from 0 to 1 across the image along a random direction.
    random_state : int, numpy.random.SeedSequence or numpy.random.Generator
        Source of randomness (required).

    Returns
    -------
    SyntheticImage
        ``image`` (height, width, 3) float64 in [0, 1] and ``labels`` (height, width) int64.

    Raises
    ------
    ValueError
        On a bad argument, or when no layout leaves every region at least 2 % of the pixels
        (and 4 pixels) after 50 tries.
    """
    for value, name in ((height, "height"), (width, "width")):
        if not isinstance(value, int | np.integer) or value < 8:
            raise ValueError(f"{name} must be an integer >= 8, got {value!r}")
    if not isinstance(n_regions, int | np.integer) or not 1 <= n_regions <= MAX_REGIONS:
        raise ValueError(f"n_regions must be an integer in [1, {MAX_REGIONS}], got {n_regions!r}")
    if not (np.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a non-negative number, got {noise!r}")
    if not (np.isfinite(illumination_gradient) and 0 <= illumination_gradient <= 1):
        raise ValueError(f"illumination_gradient must be in [0, 1], got {illumination_gradient!r}")
    rng = as_generator(random_state)
    colours = _PALETTE[rng.permutation(MAX_REGIONS)[:n_regions]]
    for _ in range(_MAX_LAYOUT_TRIES):
        labels = _layout(int(height), int(width), int(n_regions), rng)
        if labels is not None:
            break
    else:
        raise ValueError(
            f"could not place {n_regions} regions in a {height}x{width} image so that each "
            f"keeps {_MIN_REGION_FRACTION:.0%} of the pixels; use a larger image or fewer regions"
        )
    image = colours[labels] + noise * rng.standard_normal((height, width, 3))
    if illumination_gradient > 0:
        angle = rng.uniform(0.0, 2 * np.pi)
        rows, cols = np.mgrid[0:height, 0:width].astype(float)
        along = rows * np.cos(angle) + cols * np.sin(angle)
        ramp = (along - along.min()) / (along.max() - along.min())
        image *= (1.0 + illumination_gradient * (ramp - 0.5))[..., None]
    return SyntheticImage(np.clip(image, 0.0, 1.0), labels)


def check_image(image, n_components: int | None = None, *, name: str = "image") -> np.ndarray:
    """Validate an image for a mixture fit and return it as float64 (H, W, C).

    Parameters
    ----------
    image : array-like, shape (height, width) or (height, width, n_channels)
        Values in [0, 1]; ``NaN`` marks a missing entry.
    n_components : int, optional
        Number of mixture components to be fitted; the image must have at least that many
        pixels with an observed value.
    name : str
        How the image is named in error messages (e.g. its path).

    Raises
    ------
    ValueError
        Wrong shape, values outside [0, 1], no observed pixel, a single colour (zero variance in
        every channel), or fewer observed pixels than ``n_components``.
    """
    array = np.asarray(image, dtype=float)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] < 1 or min(array.shape[:2]) < 1:
        raise ValueError(
            f"{name}: expected an image of shape (height, width) or (height, width, channels), "
            f"got shape {np.shape(image)}"
        )
    if np.isinf(array).any():
        raise ValueError(f"{name}: contains infinite values")
    observed = ~np.isnan(array)
    if (observed & ((array < 0) | (array > 1))).any():
        raise ValueError(f"{name}: values must lie in [0, 1]")
    n_observed = int(observed.any(axis=2).sum())
    if n_observed == 0:
        raise ValueError(f"{name}: no observed pixel")
    flat = array.reshape(-1, array.shape[2])
    spread = np.nanmax(flat, axis=0) - np.nanmin(flat, axis=0)
    if not (spread > 0).any():
        raise ValueError(
            f"{name}: a single colour (zero variance in every channel); there is nothing to segment"
        )
    if n_components is not None and n_observed < n_components:
        raise ValueError(
            f"{name}: too small for {n_components} components: {n_observed} observed pixel(s), "
            f"need at least {n_components}"
        )
    return array


def downsample(image, max_pixels: int) -> np.ndarray:
    """Shrink an image to at most ``max_pixels`` pixels by averaging square blocks.

    The block side is the smallest integer ``f`` with ``(H // f) * (W // f) <= max_pixels``;
    rows and columns that do not fill a block are cropped. Missing entries (``NaN``) are left out
    of the block means; a block with no observed value stays missing. An image already small
    enough is returned unchanged.

    Parameters
    ----------
    image : numpy.ndarray, shape (height, width, n_channels)
    max_pixels : int
        At least 1.
    """
    if not isinstance(max_pixels, int | np.integer) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive integer, got {max_pixels!r}")
    height, width = image.shape[:2]
    if height * width <= max_pixels:
        return image
    factor = max(2, math.floor(math.sqrt(height * width / max_pixels)))
    while (height // factor) * (width // factor) > max_pixels:
        factor += 1
    new_h, new_w = height // factor, width // factor
    if new_h == 0 or new_w == 0:
        raise ValueError(
            f"cannot shrink a {height}x{width} image to {max_pixels} pixel(s) with square blocks"
        )
    blocks = image[: new_h * factor, : new_w * factor].reshape(
        new_h, factor, new_w, factor, image.shape[2]
    )
    observed = ~np.isnan(blocks)
    counts = observed.sum(axis=(1, 3))
    totals = np.where(observed, blocks, 0.0).sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        small = np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)
    log.info(
        "image of %dx%d pixels downsampled by %dx%d block averaging to %dx%d (max_pixels=%d)",
        height,
        width,
        factor,
        factor,
        new_h,
        new_w,
        max_pixels,
    )
    return small


def _imread(path: Path) -> np.ndarray:
    if path.suffix.lower() in _JPEG_SUFFIXES:
        try:
            import PIL  # noqa: F401  (matplotlib reads JPEG only through Pillow)
        except ImportError:
            raise ValueError(
                f"cannot read {path}: JPEG files need Pillow (pip install pillow); "
                f"PNG files are read without it"
            ) from None
    import matplotlib.image

    try:
        return np.asarray(matplotlib.image.imread(path))
    except (OSError, ValueError, SyntaxError) as err:
        raise ValueError(f"cannot read {path} as a PNG or JPEG image: {err}") from None


def read_image(path, *, max_pixels: int = 65536, transparent: str = "missing") -> np.ndarray:
    """Read a PNG or JPEG file into a float image in [0, 1].

    Parameters
    ----------
    path : str or pathlib.Path
    max_pixels : int, default 65536
        Larger images are downsampled by block averaging (see :func:`downsample`); a note is
        logged at INFO level.
    transparent : {"missing", "keep"}, default "missing"
        What to do with fully transparent pixels (alpha 0) of an image with an alpha channel:
        ``"missing"`` sets every channel to ``NaN``, ``"keep"`` keeps the stored colour. The
        alpha channel itself is always dropped; partly transparent pixels keep their colour.

    Returns
    -------
    numpy.ndarray of float64, shape (height, width, n_channels)
        ``n_channels`` is 1 for grey images (and RGB images whose channels are all equal) and
        3 for colour images.

    Raises
    ------
    ValueError
        The file is missing or not a readable PNG/JPEG (the message names the path), JPEG
        without Pillow, an unsupported channel layout, or a single-colour image.
    """
    if transparent not in _TRANSPARENT:
        raise ValueError(f"transparent must be one of {list(_TRANSPARENT)}, got {transparent!r}")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"cannot read image {path}: no such file")
    raw = _imread(path)
    if np.issubdtype(raw.dtype, np.integer):
        pixels = raw.astype(float) / np.iinfo(raw.dtype).max
    elif np.issubdtype(raw.dtype, np.floating):
        pixels = raw.astype(float)
    else:
        raise ValueError(f"{path}: unsupported pixel type {raw.dtype}")
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 2, 3, 4):
        raise ValueError(
            f"{path}: expected grey, grey+alpha, RGB or RGBA pixels, got array shape {raw.shape}"
        )
    has_alpha = pixels.shape[2] in (2, 4)
    colour = pixels[..., : pixels.shape[2] - 1] if has_alpha else pixels
    if has_alpha and transparent == "missing":
        colour = np.where(pixels[..., -1:] == 0, np.nan, colour)
    if colour.shape[2] == 3:
        both = ~np.isnan(colour).any(axis=2)
        if np.array_equal(colour[both][:, :1].repeat(3, axis=1), colour[both]):
            log.info("%s: RGB image with equal channels, read as grey", path)
            colour = colour[..., :1]
    colour = downsample(np.clip(colour, 0.0, 1.0), max_pixels)
    return check_image(colour, name=str(path))
