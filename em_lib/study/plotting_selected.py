"""Classification figure of a selected mixture (returns a Figure, never saves).

The kind of picture mclust's ``plot(..., what = "classification")`` and ``"uncertainty"``
give: every pair of features (at most ``MAX_FEATURES`` features, the first ones), points
coloured by their most probable cluster, the most uncertain rows (classification
uncertainty ``1 - max_k p(k | x)`` in the top ``UNCERTAIN_SHARE`` and above
``UNCERTAIN_FLOOR``) drawn larger with a black edge, and the fitted components as ellipses
(the 95 % contour of each bivariate marginal) with their means marked. A row missing either
feature of a panel is not drawn in that panel; the panel says how many were left out.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Ellipse

from .plotting import OKABE_ITO

__all__ = ["classification_figure"]

MAX_FEATURES = 4
UNCERTAIN_SHARE = 0.05
UNCERTAIN_FLOOR = 0.1
CHI2_95_2DOF = 5.991464547107979  # 95 % quantile of chi-squared with 2 degrees of freedom


def _uncertain(uncertainty):
    """Rows marked as uncertain: the top ``UNCERTAIN_SHARE`` above ``UNCERTAIN_FLOOR``."""
    if uncertainty.size == 0:
        return np.zeros(0, dtype=bool)
    cut = max(np.quantile(uncertainty, 1 - UNCERTAIN_SHARE), UNCERTAIN_FLOOR)
    return uncertainty >= cut


def _ellipse(mean, cov, colour):
    values, vectors = np.linalg.eigh(cov)
    values = np.clip(values, 0.0, None)
    angle = np.degrees(np.arctan2(vectors[1, 1], vectors[0, 1]))
    width, height = 2 * np.sqrt(CHI2_95_2DOF * values[::-1])
    return Ellipse(
        mean, width, height, angle=angle, fill=False, edgecolor=colour, linewidth=1.4, zorder=4
    )


def classification_figure(X, labels, uncertainty, model, feature_names, title=""):
    """Pairs plot of a selected mixture's classification.

    Parameters
    ----------
    X : (n, d) array with NaN for missing entries
    labels, uncertainty : (n,) arrays: MAP cluster and ``1 - max posterior``
    model : dict with ``weights`` (K,), ``means`` (K, d), full ``covariances`` (K, d, d)
    feature_names : list of str
    """
    X = np.asarray(X, dtype=float)
    d = min(X.shape[1], MAX_FEATURES)
    k = len(model["weights"])
    colours = [OKABE_ITO[c % len(OKABE_ITO)] for c in range(k)]
    marked = _uncertain(uncertainty)
    if d == 1:
        pairs = [(0, None)]
        grid = (1, 1)
    else:
        pairs = [(i, j) for j in range(d) for i in range(j + 1, d)]
        grid = (d - 1, d - 1)
    size = 2.9 * grid[0] + 0.6
    figure = Figure(figsize=(max(size, 5.0), max(size, 4.2)), layout="constrained")
    axes = figure.subplots(*grid, squeeze=False)
    for ax in axes.ravel():
        ax.set_visible(False)
    for i, j in pairs:
        row, column = (0, 0) if j is None else (i - 1, j)
        ax = axes[row, column]
        ax.set_visible(True)
        if j is None:
            _one_feature(ax, X[:, 0], labels, marked, colours, model, feature_names[0])
            continue
        shown = ~np.isnan(X[:, i]) & ~np.isnan(X[:, j])
        for component in range(k):
            rows = shown & (labels == component)
            ax.scatter(
                X[rows, j], X[rows, i], s=9, color=colours[component], alpha=0.55, linewidths=0
            )
        rows = shown & marked
        ax.scatter(
            X[rows, j],
            X[rows, i],
            s=34,
            facecolors=[colours[c] for c in labels[rows]],
            edgecolors="black",
            linewidths=0.9,
            zorder=3,
        )
        for component in range(k):
            mean = model["means"][component, [j, i]]
            cov = model["covariances"][component][np.ix_([j, i], [j, i])]
            ax.add_patch(_ellipse(mean, cov, colours[component]))
            ax.plot(*mean, marker="+", color="black", markersize=9, zorder=5)
        left_out = int((~shown).sum())
        if left_out:
            ax.text(
                0.02,
                0.98,
                f"{left_out} rows with a missing value not shown",
                transform=ax.transAxes,
                va="top",
                fontsize=7,
                color="0.3",
            )
        if row == grid[0] - 1:
            ax.set_xlabel(feature_names[j])
        if column == 0:
            ax.set_ylabel(feature_names[i])
    handles = [
        Line2D([], [], marker="o", linestyle="", color=colours[c], label=f"cluster {c}")
        for c in range(k)
    ]
    handles.append(
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            markerfacecolor="white",
            markeredgecolor="black",
            label=f"most uncertain ({int(marked.sum())} rows)",
        )
    )
    handles.append(Line2D([], [], color="0.3", label="95 % ellipse of the component"))
    if d > 2:  # the empty top-right panel holds the legend
        anchor = axes[0, -1]
        anchor.set_visible(True)
        anchor.axis("off")
        anchor.legend(handles=handles, loc="center", fontsize=9, frameon=False)
    else:
        axes[0, 0].legend(handles=handles, loc="best", fontsize=8, frameon=True)
    if title:
        figure.suptitle(title)
    return figure


def _one_feature(ax, values, labels, marked, colours, model, name):
    """One feature: values against classification uncertainty, coloured by cluster."""
    shown = ~np.isnan(values)
    for component in range(len(colours)):
        rows = shown & (labels == component)
        ax.scatter(values[rows], np.zeros(rows.sum()), s=12, color=colours[component], alpha=0.5)
        mean = model["means"][component, 0]
        sd = np.sqrt(model["covariances"][component, 0, 0])
        ax.errorbar(mean, 0.1 + 0.05 * component, xerr=1.96 * sd, color=colours[component])
    rows = shown & marked
    ax.scatter(values[rows], np.zeros(rows.sum()), s=34, facecolors="none", edgecolors="black")
    ax.set_yticks([])
    ax.set_xlabel(name)
