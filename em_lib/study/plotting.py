"""Figures of the sensitivity analyses (the only module importing matplotlib and seaborn).

Every function takes the tidy tables of :mod:`em_lib.sensitivity` and the variable labels
(``sensitivity.variable_labels``: long_name and units from the data set's attributes) and
returns a :class:`matplotlib.figure.Figure`; nothing is saved here. One theme
(:func:`set_theme`) and one colour-blind-safe palette (Okabe-Ito) are used throughout.
"""

from __future__ import annotations

import textwrap

import matplotlib.colors
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

__all__ = [
    "OKABE_ITO",
    "axis_label",
    "criteria_figure",
    "delta_figure",
    "hmm_figure",
    "initialisation_figure",
    "missingness_figure",
    "placeholder_figure",
    "close",
    "selection_figure",
    "set_theme",
]

OKABE_ITO = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
)
_SHORT = {
    "log_likelihood": "log-likelihood",
    "bic": "BIC",
    "aic": "AIC",
    "icl": "ICL",
    "n_iter": "EM iterations",
    "ari": "adjusted Rand index",
    "weights_abs_error": "weight error (MAE)",
    "means_rmse": "mean error (RMSE)",
    "covariances_rel_frobenius": "covariance error (rel. Frobenius)",
    "imputation_rmse": "imputation RMSE",
    "n_components": "number of components K",
    "missing_rate": "missing rate",
    "selected_k": "selected K",
}
_LINESTYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v", "P")


def set_theme() -> None:
    """The publication theme: white background, ticks, serif-free 8-pt text, Okabe-Ito."""
    sns.set_theme(
        context="paper",
        style="ticks",
        palette=list(OKABE_ITO),
        font="DejaVu Sans",
        rc={
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.titlesize": 9,
            "axes.labelsize": 8,
            "xtick.labelsize": 7,
            "ytick.labelsize": 7,
            "legend.fontsize": 7,
            "legend.title_fontsize": 7,
            "legend.frameon": False,
            "figure.dpi": 100,
            "savefig.dpi": 300,
            "pdf.fonttype": 42,
            "svg.fonttype": "none",
            "lines.linewidth": 1.2,
            "lines.markersize": 4,
        },
    )


def axis_label(name: str, labels: dict | None = None, short: str | None = None) -> str:
    """``"short name (units)"`` from the variable's attributes; units ``"1"`` are omitted.
    Without a short name, the long_name (before any parenthesis) is used, wrapped."""
    attrs = (labels or {}).get(name, {})
    text = short or _SHORT.get(name)
    if text is None:
        text = attrs.get("long_name", name).split(" (")[0]
        text = "\n".join(textwrap.wrap(text, 32))
    units = attrs.get("units", "1")
    return text if units in ("1", "") else f"{text} ({units})"


def _colors(values) -> dict:
    return {v: OKABE_ITO[i % len(OKABE_ITO)] for i, v in enumerate(values)}


def _condition(frame: pd.DataFrame) -> pd.Series:
    return frame["mechanism"].astype(str) + " " + (100 * frame["missing_rate"]).map("{:g}%".format)


def _ordered(frame: pd.DataFrame, column: str, order=None) -> list:
    present = list(pd.unique(frame[column]))
    if order is None:
        return present
    return [v for v in order if v in present] + [v for v in present if v not in order]


def _legend_below(fig, handles, labels, ncol=None) -> None:
    fig.legend(
        handles,
        labels,
        loc="lower center",
        ncol=ncol or min(len(labels), 6),
        bbox_to_anchor=(0.5, 0.0),
    )


def _integer_axis(ax, values) -> None:
    """Integer ticks covering ``values`` with half a unit of margin (selected K)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return
    low, high = int(np.floor(values.min())), int(np.ceil(values.max()))
    ax.set_ylim(low - 0.5, high + 0.5)
    ax.set_yticks(range(low, high + 1))


def _symlog_if_wide(ax, values, linthresh) -> None:
    """Symmetric-log y axis when ``values`` span more than ten linear thresholds."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size and np.ptp(values) > 10 * linthresh:
        ax.set_yscale("symlog", linthresh=linthresh)


def _panel_letters(axes) -> None:
    for index, ax in enumerate(np.ravel(axes)):
        ax.text(
            -0.02,
            1.04,
            chr(ord("a") + index),
            transform=ax.transAxes,
            fontweight="bold",
            fontsize=9,
            ha="right",
            va="bottom",
        )


# ---------------------------------------------------------------------------------------------
# initialisation
# ---------------------------------------------------------------------------------------------


def _dodged(values, index, count, width=0.5):
    """x positions of group ``index`` of ``count`` side by side around integer ``values``."""
    offset = (index - (count - 1) / 2) * (width / max(count, 1))
    return np.asarray(values, dtype=float) + offset


def _init_panels(axes, init, starts, labels, hue, hue_order, x_order):
    """Gap to the best optimum per start, share of starts reaching it, starts needed."""
    colors = _colors(hue_order)
    # the highest probability of the starts-needed columns (starts_p95, starts_p99, ...)
    needed = max(
        (c for c in init.columns if c.startswith("starts_p")),
        key=lambda c: int(c[len("starts_p") :]),
    )
    keys = _cell(init)
    gaps = starts.merge(init[[*keys, "ll_best"]], on=keys)
    gaps["gap"] = gaps["ll_best"] - gaps["log_likelihood"]
    gaps = gaps[np.isfinite(gaps["gap"])]
    rng = np.random.default_rng(0)  # jitter only
    count = len(hue_order)
    for index, value in enumerate(hue_order):
        style = {"color": colors[value], "marker": _MARKERS[index % len(_MARKERS)]}
        points = gaps[gaps[hue] == value]
        jitter = rng.uniform(-0.3, 0.3, len(points)) / max(count, 1)
        axes[0].scatter(
            _dodged(points["n_components"], index, count) + jitter,
            points["gap"],
            s=4,
            alpha=0.5,
            lw=0,
            **style,
        )
        summary = init[init[hue] == value].groupby("n_components")
        for ax, column in ((axes[1], "share_best"), (axes[2], needed)):
            stats = summary[column].agg(["median", "min", "max"]).reindex(x_order)
            ax.errorbar(
                _dodged(stats.index, index, count),
                stats["median"],
                yerr=[stats["median"] - stats["min"], stats["max"] - stats["median"]],
                ls=_LINESTYLES[index % len(_LINESTYLES)],
                capsize=2,
                **style,
            )
    axes[0].set_yscale("symlog", linthresh=1.0)
    axes[0].set_ylim(bottom=-0.1)
    units = labels.get("log_likelihood", {}).get("units", "nat")
    axes[0].set_ylabel(f"best minus final log-likelihood ({units})")
    axes[1].set_ylabel("share of starts at the best optimum")
    axes[1].set_ylim(0, 1.05)
    axes[2].set_ylabel(f"starts for a {needed[len('starts_p') :]}% chance of the best")
    axes[2].set_yscale("log")
    for ax in axes:
        ax.set_xticks(x_order)
        ax.set_xlabel(axis_label("n_components", labels))
    return colors


def _cell(frame):
    dims = ("dataset", "model", "n_components", "mechanism", "missing_rate", "replicate")
    extra = [c for c in ("method",) if c in frame.columns]
    return [c for c in dims if c in frame.columns] + extra


def _legend_from_colors(fig, colors, title=None):
    handles = [
        plt.Line2D([], [], color=c, marker=_MARKERS[i % len(_MARKERS)], ls="")
        for i, c in enumerate(colors.values())
    ]
    names = [str(v) for v in colors]
    if title:
        names = [f"{title}: {n}" for n in names]
    _legend_below(fig, handles, names)


def initialisation_figure(
    init: pd.DataFrame, starts: pd.DataFrame, labels=None, *, method: str = "em", model_order=None
) -> plt.Figure:
    """Three panels against K for the mixtures (method ``method``, every data set, mechanism
    and rate pooled): (a) each start's gap to the best log-likelihood of its cell, (b) the
    share of starts reaching the best optimum, (c) starts needed for a 99% chance of reaching
    it (points: median over cells, bars: range)."""
    labels = labels or {}
    init = init[init["method"] == method]
    starts = starts[starts["method"] == method]
    models = _ordered(init, "model", model_order)
    ks = sorted(init["n_components"].unique())
    fig, axes = plt.subplots(1, 3, figsize=(7.0, 2.6), layout="constrained")
    colors = _init_panels(axes, init, starts, labels, "model", models, ks)
    _legend_from_colors(fig, colors, "model")
    fig.get_layout_engine().set(rect=(0, 0.07, 1, 0.93))
    _panel_letters(axes)
    return fig


def hmm_figure(
    init: pd.DataFrame, starts: pd.DataFrame, criteria: pd.DataFrame, labels=None
) -> plt.Figure:
    """The HMM runs: (a) gap to the best log-likelihood per start, (b) share of starts at the
    best optimum, (c) starts for a 99% chance, against the number of states, per method;
    (d) BIC relative to the best K per condition."""
    labels = labels or {}
    methods = _ordered(init, "method")
    ks = sorted(init["n_components"].unique())
    fig, axes = plt.subplots(1, 4, figsize=(7.2, 2.5), layout="constrained")
    colors = _init_panels(axes[:3], init, starts, labels, "method", methods, ks)
    bic = criteria[criteria["criterion"] == "bic"].copy()
    bic["condition"] = _condition(bic)
    keys = ["dataset", "condition", "method"]
    bic["delta"] = bic["mean"] - bic.groupby(keys)["mean"].transform("min")
    for (_, _, method), group in bic.groupby(keys, sort=False):
        group = group.sort_values("n_components")
        axes[3].plot(
            group["n_components"],
            group["delta"],
            color=colors[method],
            alpha=0.8,
            marker=_MARKERS[methods.index(method) % len(_MARKERS)],
        )
    _symlog_if_wide(axes[3], bic["delta"], 10)
    axes[3].set_xticks(ks)
    axes[3].set_xlabel(axis_label("n_components", labels, "number of states K"))
    units = labels.get("bic", {}).get("units", "nat")
    axes[3].set_ylabel(f"BIC minus best BIC ({units})")
    for ax in axes[:3]:
        ax.set_xlabel(axis_label("n_components", labels, "number of states K"))
    _legend_from_colors(fig, colors, "method")
    fig.get_layout_engine().set(rect=(0, 0.09, 1, 0.91))
    _panel_letters(axes)
    return fig


# ---------------------------------------------------------------------------------------------
# number of components
# ---------------------------------------------------------------------------------------------


def criteria_figure(
    criteria: pd.DataFrame,
    labels=None,
    *,
    dataset: str | None = None,
    method: str = "em",
    model_order=None,
) -> plt.Figure:
    """BIC, AIC and ICL (rows) against K for each mechanism and rate (columns), one line per
    model, relative to the best (model, K) of the condition; points are the mean of the best
    start per replicate, bars their range over replicates, the band the 10-90% range over all
    starts."""
    labels = labels or {}
    frame = criteria[criteria["method"] == method].copy()
    dataset = dataset or frame["dataset"].iloc[0]
    frame = frame[frame["dataset"] == dataset]
    frame["condition"] = _condition(frame)
    conditions = list(pd.unique(frame["condition"]))
    criteria_names = list(pd.unique(frame["criterion"]))
    models = _ordered(frame, "model", model_order)
    colors = _colors(models)
    keys = ["condition", "criterion"]
    reference = frame.groupby(keys)["mean"].transform("min")
    for column in ("mean", "min", "max", "start_q10", "start_q90"):
        frame[column] = frame[column] - reference
    fig, axes = plt.subplots(
        len(criteria_names),
        len(conditions),
        figsize=(max(1.75 * len(conditions) + 0.6, 4.5), 1.6 * len(criteria_names) + 0.5),
        sharex=True,
        squeeze=False,
        layout="constrained",
    )
    for row, criterion in enumerate(criteria_names):
        for col, condition in enumerate(conditions):
            ax = axes[row, col]
            cell = frame[(frame["criterion"] == criterion) & (frame["condition"] == condition)]
            for index, model in enumerate(models):
                line = cell[cell["model"] == model].sort_values("n_components")
                if line.empty:
                    continue
                ks = line["n_components"].to_numpy()
                ax.fill_between(
                    ks, line["start_q10"], line["start_q90"], color=colors[model], alpha=0.15, lw=0
                )
                ax.errorbar(
                    ks,
                    line["mean"],
                    yerr=[line["mean"] - line["min"], line["max"] - line["mean"]],
                    color=colors[model],
                    marker=_MARKERS[index % len(_MARKERS)],
                    ls=_LINESTYLES[index % len(_LINESTYLES)],
                    capsize=2,
                )
            _symlog_if_wide(ax, cell[["mean", "start_q10", "start_q90"]].to_numpy(), 10)
            ax.set_xticks(sorted(frame["n_components"].unique()))
            if row == 0:
                ax.set_title(condition)
            if col == 0:
                units = labels.get(criterion, {}).get("units", "nat")
                ax.set_ylabel(f"{_SHORT.get(criterion, criterion)} - best ({units})")
            if row == len(criteria_names) - 1:
                ax.set_xlabel(axis_label("n_components", labels, "K"))
    handles = [
        plt.Line2D(
            [],
            [],
            color=colors[m],
            marker=_MARKERS[i % len(_MARKERS)],
            ls=_LINESTYLES[i % len(_LINESTYLES)],
        )
        for i, m in enumerate(models)
    ]
    _legend_below(fig, handles, [f"model: {m}" for m in models])
    fig.get_layout_engine().set(rect=(0, 0.06, 1, 0.94))
    fig.suptitle(f"data set {dataset}, method {method} (lower is better)", fontsize=9)
    return fig


def selection_figure(selection: pd.DataFrame, labels=None, *, model_order=None) -> plt.Figure:
    """Heat maps (one per criterion) of the K selected most often, per model and method (rows)
    and data set, mechanism and rate (columns); cells read ``K (n/N)``."""
    labels = labels or {}
    frame = selection.copy()
    frame["condition"] = frame["dataset"].astype(str) + " " + _condition(frame)
    frame["row"] = frame["model"].astype(str) + " / " + frame["method"].astype(str)
    criteria_names = list(pd.unique(frame["criterion"]))
    models = _ordered(frame, "model", model_order)
    rows = [r for m in models for r in pd.unique(frame.loc[frame["model"] == m, "row"])]
    columns = list(pd.unique(frame["condition"]))
    ks = sorted(frame["n_components"].unique())
    cmap = matplotlib.colors.ListedColormap([OKABE_ITO[i % 8] for i in range(len(ks))])
    fig, axes = plt.subplots(
        1,
        len(criteria_names),
        figsize=(2.6 * len(criteria_names) + 0.4, 0.28 * len(rows) + 1.9),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    for ax, criterion in zip(axes[0], criteria_names, strict=True):
        cell = frame[frame["criterion"] == criterion]
        top = cell.sort_values("n_selected", ascending=False, kind="stable")
        top = top.drop_duplicates(["row", "condition"]).set_index(["row", "condition"])
        codes = np.full((len(rows), len(columns)), np.nan)
        for i, row in enumerate(rows):
            for j, column in enumerate(columns):
                if (row, column) not in top.index:
                    continue
                entry = top.loc[(row, column)]
                if entry["n_replicates"] == 0:
                    continue
                codes[i, j] = ks.index(entry["n_components"])
                text = f"{entry['n_components']}\n{entry['n_selected']}/{entry['n_replicates']}"
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=5.5,
                    color="white" if codes[i, j] in (0, 3, 5, 7) else "black",
                )
        ax.imshow(codes, cmap=cmap, vmin=-0.5, vmax=len(ks) - 0.5, aspect="auto")
        ax.set_xticks(range(len(columns)), columns, rotation=60, ha="right")
        ax.set_yticks(range(len(rows)), rows)
        ax.set_title(f"{_SHORT.get(criterion, criterion)} selects")
        ax.tick_params(length=0)
        for side in ("left", "bottom"):
            ax.spines[side].set_visible(False)
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(i)) for i in range(len(ks))]
    _legend_below(fig, handles, [f"K = {k}" for k in ks])
    fig.get_layout_engine().set(rect=(0, 0.05, 1, 0.95))
    return fig


# ---------------------------------------------------------------------------------------------
# missingness
# ---------------------------------------------------------------------------------------------


def missingness_figure(
    missing: pd.DataFrame, labels=None, *, model: str | None = None, metrics=None, method_order=None
) -> plt.Figure:
    """Recovery at the true K against the missing rate: one column per metric, one row per
    data set; colour is the method, line style the mechanism; bars are +-1 SD over
    replicates."""
    labels = labels or {}
    frame = missing.copy()
    model = model or frame["model"].iloc[0]
    frame = frame[frame["model"] == model]
    metrics = [m for m in (metrics or pd.unique(frame["metric"])) if m in set(frame["metric"])]
    datasets = list(pd.unique(frame["dataset"]))
    methods = _ordered(frame, "method", method_order)
    mechanisms = list(pd.unique(frame["mechanism"]))
    colors = _colors(methods)
    fig, axes = plt.subplots(
        len(datasets),
        len(metrics),
        figsize=(1.55 * len(metrics) + 0.5, 1.75 * len(datasets) + 0.6),
        sharex=True,
        squeeze=False,
        layout="constrained",
    )
    for row, dataset in enumerate(datasets):
        for col, metric in enumerate(metrics):
            ax = axes[row, col]
            cell = frame[(frame["dataset"] == dataset) & (frame["metric"] == metric)]
            for m_index, method in enumerate(methods):
                for s_index, mechanism in enumerate(mechanisms):
                    line = cell[(cell["method"] == method) & (cell["mechanism"] == mechanism)]
                    line = line.sort_values("missing_rate")
                    if line.empty:
                        continue
                    ax.errorbar(
                        100 * line["missing_rate"],
                        line["mean"],
                        yerr=line["sd"].fillna(0),
                        color=colors[method],
                        ls=_LINESTYLES[s_index % len(_LINESTYLES)],
                        marker=_MARKERS[m_index % len(_MARKERS)],
                        capsize=2,
                    )
            if not np.isfinite(cell["mean"]).any():
                ax.text(
                    0.5,
                    0.5,
                    "not available",
                    transform=ax.transAxes,
                    ha="center",
                    va="center",
                    color="0.4",
                )
                ax.set_yticks([])
            if metric == "selected_k":
                _integer_axis(ax, cell["mean"])
            ax.set_xticks(sorted(100 * frame["missing_rate"].unique()))
            if row == 0:
                name, _, units = axis_label(metric, labels).rpartition(" (")
                ax.set_title(f"{name}\n({units}" if name else units)
            if col == 0:
                ax.set_ylabel(f"data set {dataset}")
            if row == len(datasets) - 1:
                ax.set_xlabel("missing entries (%)")
    handles = [
        plt.Line2D([], [], color=colors[m], marker=_MARKERS[i % len(_MARKERS)], ls="")
        for i, m in enumerate(methods)
    ] + [
        plt.Line2D([], [], color="0.3", ls=_LINESTYLES[i % len(_LINESTYLES)])
        for i in range(len(mechanisms))
    ]
    names = [f"method: {m}" for m in methods] + [f"mechanism: {m}" for m in mechanisms]
    _legend_below(fig, handles, names)
    fig.get_layout_engine().set(rect=(0, 0.07, 1, 0.93))
    fig.suptitle(
        f"model {model}, fitted model at the true K (at the selected K where the truth is unknown)",
        fontsize=9,
    )
    return fig


# ---------------------------------------------------------------------------------------------
# departures from MAR
# ---------------------------------------------------------------------------------------------


def _tipping_marks(ax, tipping: pd.DataFrame, edges: tuple[float, float]) -> None:
    """The tipping point (dashed line) and its interval (shaded span) on each side; a bound
    not reached on the grid runs to the grid's edge."""
    for _, side in tipping.iterrows():
        edge = edges[0] if side["side"] == "negative" else edges[1]
        inner = side["tipping_upper"] if side["side"] == "negative" else side["tipping_lower"]
        outer = side["tipping_lower"] if side["side"] == "negative" else side["tipping_upper"]
        if pd.notna(inner):
            span = sorted([inner, edge if pd.isna(outer) else outer])
            ax.axvspan(*span, color=OKABE_ITO[5], alpha=0.12, lw=0)
        if pd.notna(side["tipping_delta"]):
            ax.axvline(side["tipping_delta"], color=OKABE_ITO[5], ls="--", lw=1)


def _band_limits(ax, table: pd.DataFrame, column: str) -> None:
    """y-limits covering every estimate and most of the bands: where the imputations disagree
    (past a tipping point) a pooled interval can be orders of magnitude wider; it is cut."""
    estimates = table[column].to_numpy(dtype=float)
    if f"{column}_lower" not in table or not np.isfinite(estimates).any():
        return
    low = min(np.nanmin(estimates), np.nanquantile(table[f"{column}_lower"], 0.1))
    high = max(np.nanmax(estimates), np.nanquantile(table[f"{column}_upper"], 0.9))
    margin = 0.05 * (high - low) if high > low else 1.0
    ax.set_ylim(low - margin, high + margin)


def _tipping_summary(tipping: pd.DataFrame, units: str) -> str:
    """One line: the conclusion at 0 and the tipping point with its interval on each side."""
    level = float(tipping["level"].iloc[0]) if "level" in tipping else 0.95
    parts = []
    for _, side in tipping.iterrows():
        bounds = [
            "beyond the grid" if pd.isna(side[key]) else f"{side[key]:+.2f}"
            for key in ("tipping_lower", "tipping_upper")
        ]
        if pd.isna(side["tipping_delta"]):
            text = "none on the grid"
            if pd.notna(side["tipping_lower"]) or pd.notna(side["tipping_upper"]):
                text += f" ({level:.0%} interval {bounds[0]} to {bounds[1]})"
        else:
            text = (
                f"{side['tipping_delta']:+.2f} {units} ({level:.0%} interval {bounds[0]} to "
                f"{bounds[1]})"
            )
        parts.append(f"{side['side']} side: {text}")
    return f"MAR: {tipping['conclusion_at_0'].iloc[0]}. Tipping point, " + "; ".join(parts)


def delta_figure(
    table: pd.DataFrame, tipping: pd.DataFrame, *, feature_names=None, units: str = "SD"
) -> plt.Figure:
    """Delta adjustment, pooled over the imputations by Rubin's rules: (a) component weights
    and (b) component means of the first shifted variable at the MAR fit's K, components
    aligned to the MAR fit, each with its pooled interval as a band; (c) the quantity whose
    crossing of its threshold (dotted) defines the tipping point. Dashed lines and shaded
    spans: the tipping point and its interval on each side of 0."""
    variables = [int(v) for v in str(tipping["variables"].iloc[0]).split(",") if v != ""]
    feature = variables[0] if variables else 0
    name = feature_names[feature] if feature_names is not None else f"x{feature}"
    level = float(tipping["level"].iloc[0]) if "level" in tipping else 0.95
    components = sorted(table["component"].unique())
    colors = _colors(components)
    edges = (float(table["delta"].min()), float(table["delta"].max()))
    fig, axes = plt.subplots(1, 3, figsize=(7.0, 3.1), layout="constrained")
    for index, component in enumerate(components):
        line = table[table["component"] == component].sort_values("delta")
        style = {
            "color": colors[component],
            "marker": _MARKERS[index % len(_MARKERS)],
            "ls": _LINESTYLES[index % len(_LINESTYLES)],
            "ms": 3,
        }
        for ax, column in ((axes[0], "weight"), (axes[1], f"mean_{feature}")):
            ax.plot(line["delta"], line[column], **style)
            if f"{column}_lower" in line:
                ax.fill_between(
                    line["delta"],
                    line[f"{column}_lower"],
                    line[f"{column}_upper"],
                    color=colors[component],
                    alpha=0.2,
                    lw=0,
                )
    per_delta = table.drop_duplicates("delta").sort_values("delta")
    shares = sorted((c for c in table.columns if c.startswith("share_K")), key=lambda c: int(c[7:]))
    quantity = str(tipping["quantity"].iloc[0])
    others = [c for c in shares if not quantity.endswith(f"K = {c[7:]}")]
    # a K grid longer than the palette repeats it in another dash; black is left to the
    # conclusion's own (dark) line
    palette = [colour for colour in OKABE_ITO[2:] if colour != "#000000"]
    share_styles = {
        column: {
            "color": palette[i % len(palette)],
            "ls": _LINESTYLES[(i // len(palette)) % len(_LINESTYLES)],
        }
        for i, column in enumerate(others)
    }
    for column in others:  # the other K's shares; the conclusion's is the dark line
        axes[2].plot(per_delta["delta"], per_delta[column], lw=1, **share_styles[column])
    axes[2].plot(per_delta["delta"], per_delta["conclusion_value"], "o-", color="0.2", ms=3)
    if per_delta["conclusion_lower"].notna().any():
        axes[2].fill_between(
            per_delta["delta"],
            per_delta["conclusion_lower"],
            per_delta["conclusion_upper"],
            color="0.2",
            alpha=0.15,
            lw=0,
        )
    axes[2].axhline(tipping["threshold"].iloc[0], color="0.4", ls=":", lw=1)
    _band_limits(axes[1], table, f"mean_{feature}")
    axes[0].set_ylabel("component weight")
    axes[1].set_ylabel(textwrap.fill(f"component mean of {name} (data units)", 28))
    axes[2].set_ylabel("share of imputations" if shares else textwrap.fill(quantity, 30))
    for ax in axes:
        ax.set_xlabel(f"shift delta ({units} of observed)")
        ax.axvline(0, color="0.6", lw=0.8)
        _tipping_marks(ax, tipping, edges)
    handles = [
        plt.Line2D(
            [],
            [],
            color=colors[c],
            marker=_MARKERS[i % len(_MARKERS)],
            ls=_LINESTYLES[i % len(_LINESTYLES)],
            ms=3,
        )
        for i, c in enumerate(components)
    ] + [
        plt.Rectangle((0, 0), 1, 1, color="0.5", alpha=0.3, lw=0),
        plt.Line2D([], [], color="0.4", ls=":"),
        plt.Line2D([], [], color=OKABE_ITO[5], ls="--"),
        plt.Rectangle((0, 0), 1, 1, color=OKABE_ITO[5], alpha=0.25, lw=0),
    ]
    names = [f"component {c}" for c in components] + [
        f"pooled {level:.0%} interval",
        "threshold",
        "tipping point",
        f"its {level:.0%} interval",
    ]
    handles += [plt.Line2D([], [], color="0.2", marker="o", ms=3)]
    names += [quantity]
    handles += [plt.Line2D([], [], lw=1, **share_styles[c]) for c in others]
    names += [f"share where BIC selects K = {c[7:]}" for c in others]
    _legend_below(fig, handles, names, ncol=3)
    legend_rows = -(-len(names) // 3)
    fig.get_layout_engine().set(rect=(0, 0.05 + 0.05 * legend_rows, 1, 0.85 - 0.05 * legend_rows))
    fig.suptitle(textwrap.fill(_tipping_summary(tipping, units), 130), fontsize=7)
    _panel_letters(axes)
    return fig


def placeholder_figure(text: str) -> plt.Figure:
    """A small figure saying why there is nothing to show."""
    fig, ax = plt.subplots(figsize=(4.0, 1.2))
    ax.text(0.5, 0.5, text, ha="center", va="center")
    ax.set_axis_off()
    return fig


def close(fig: plt.Figure) -> None:
    """Release a figure's memory (pyplot keeps a reference to every open figure)."""
    plt.close(fig)
