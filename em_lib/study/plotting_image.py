"""Figure of an image segmentation and restoration experiment (returns Figures, never saves)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

__all__ = ["MISSING_COLOURS", "missing_colour", "segmentation_figure"]

# saturated candidates, magenta first; the one farthest from every observed colour is used
MISSING_COLOURS = (
    (1.0, 0.0, 1.0),
    (0.0, 1.0, 1.0),
    (1.0, 0.5, 0.0),
    (1.0, 1.0, 0.0),
    (1.0, 0.0, 0.0),
    (0.0, 1.0, 0.0),
    (0.0, 0.0, 1.0),
)  # no white or black: they read as blank or shadow, not as "missing"
_METHOD_STYLE = {
    "em": ("exact EM", "o", "-"),
    "complete_case": ("complete case", "s", "--"),
    "mean_impute": ("mean imputation", "^", ":"),
}


def _as_rgb(image) -> np.ndarray:
    """(H, W, 3) float for imshow: grey is repeated over three channels; NaN stays NaN."""
    array = np.asarray(image, dtype=float)
    if array.ndim == 2:
        array = array[..., None]
    return np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array[..., :3]


def missing_colour(image) -> tuple[float, float, float]:
    """The colour of :data:`MISSING_COLOURS` farthest (Euclidean, RGB) from every observed pixel
    colour of ``image`` (H, W, C), so that missing pixels cannot be mistaken for data."""
    rgb = _as_rgb(image).reshape(-1, 3)
    rgb = rgb[~np.isnan(rgb).any(axis=1)]
    if rgb.shape[0] == 0:
        return MISSING_COLOURS[0]
    candidates = np.array(MISSING_COLOURS)
    nearest = np.sqrt(((rgb[None, :, :] - candidates[:, None, :]) ** 2).sum(-1)).min(axis=1)
    return MISSING_COLOURS[int(np.argmax(nearest))]


def _show(ax, rgb, title):
    ax.imshow(rgb, interpolation="nearest")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])


def segmentation_figure(
    image,
    label_map,
    damaged,
    restored,
    ari_by_rate: pd.DataFrame,
    *,
    n_components: int | None = None,
    title: str | None = None,
    agreement_title: str = "Segmentation accuracy",
) -> Figure:
    """Panels: the image, its segmentation, a damaged copy, its restoration, ARI vs rate
    (against the true regions, or, without them, against the segmentation of the undamaged
    image: ``agreement_title`` names which).

    Parameters
    ----------
    image : array-like, shape (height, width) or (height, width, n_channels)
        The complete image, colours in [0, 1].
    label_map : array-like of int, shape (height, width)
        Segmentation at the selected number of components.
    damaged : array-like, same shape as ``image``
        The damaged copy; ``NaN`` entries are missing. A pixel with at least one missing
        channel is drawn in the colour of :data:`MISSING_COLOURS` farthest from every colour
        of the image (see :func:`missing_colour`; magenta on the synthetic scenes).
    restored : array-like, same shape as ``image``
        The damaged copy with its missing colours imputed.
    ari_by_rate : pandas.DataFrame
        Columns ``rate``, ``method`` and ``ari`` (several rows per (rate, method), e.g.
        replicates, are averaged), as :func:`em_lib.segmentation.ari_by_missing_rate` returns.
    n_components : int, optional
        K shown in the segmentation title (default: the number of distinct labels).
    title : str, optional
        Figure title.
    """
    missing_columns = {"rate", "method", "ari"} - set(ari_by_rate.columns)
    if missing_columns:
        raise ValueError(f"ari_by_rate lacks the column(s) {sorted(missing_columns)}")
    labels = np.asarray(label_map)
    if n_components is None:
        n_components = int(np.unique(labels).size)
    fig = Figure(figsize=(11.0, 6.6), layout="constrained")
    grid = fig.add_gridspec(2, 3)
    axes = [fig.add_subplot(grid[row, col]) for row, col in ((0, 0), (0, 1), (1, 0), (1, 1))]

    _show(axes[0], np.clip(_as_rgb(image), 0, 1), "Image")

    palette = ListedColormap(
        [
            "#4477aa",
            "#ee6677",
            "#228833",
            "#ccbb44",
            "#66ccee",
            "#aa3377",
            "#bbbbbb",
            "#000000",
        ][: max(n_components, 1)]
        if n_components <= 8
        else "tab20"
    )
    axes[1].imshow(
        labels, cmap=palette, vmin=-0.5, vmax=n_components - 0.5, interpolation="nearest"
    )
    axes[1].set_title(f"Segmentation (K = {n_components})")
    axes[1].set_xticks([])
    axes[1].set_yticks([])

    damaged_rgb = _as_rgb(damaged)
    missing = np.isnan(damaged_rgb).any(axis=2)
    colour = missing_colour(image)
    shown = np.where(missing[..., None], colour, np.nan_to_num(damaged_rgb))
    entries = np.isnan(np.asarray(damaged, dtype=float)).mean()
    _show(
        axes[2],
        np.clip(shown, 0, 1),
        f"Damaged: {entries:.0%} of values missing",
    )
    axes[2].legend(
        handles=[
            Patch(
                facecolor=colour,
                edgecolor="black",
                label=f"missing ({missing.mean():.0%} of pixels hit)",
            )
        ],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.02),
        frameon=False,
        fontsize="small",
    )
    _show(axes[3], np.clip(_as_rgb(restored), 0, 1), "Restored (mixture imputation)")

    ax = fig.add_subplot(grid[:, 2])
    summary = ari_by_rate.groupby(["method", "rate"], sort=True)["ari"].mean().reset_index()
    order = [m for m in _METHOD_STYLE if m in set(summary["method"])]
    order += sorted(set(summary["method"]) - set(order))
    for method in order:
        rows = summary[summary["method"] == method]
        label, marker, line = _METHOD_STYLE.get(method, (method, "o", "-"))
        ax.plot(
            rows["rate"],
            rows["ari"],
            marker=marker,
            linestyle=line,
            label=label,
            zorder=3 if method == "em" else 2,  # exact EM on top where the lines coincide
        )
    ax.set_xlabel("missing rate")
    ax.set_ylabel("adjusted Rand index")
    ax.set_title(agreement_title)
    low = min(0.0, float(np.nanmin(summary["ari"]))) if summary["ari"].notna().any() else 0.0
    ax.set_ylim(low - 0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize="small")
    if title:
        fig.suptitle(title)
    return fig
