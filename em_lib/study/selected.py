"""The selected model of every data set and condition, with bootstrap intervals.

For each mask (data set x mechanism x rate x replicate) of a data set with mixture models,
the model and K that the criterion selects among the exact-EM fits stored in the aggregate
is bootstrapped (:func:`em_lib.uncertainty.bootstrap_mixture`, the library's function) in
``bootstrap.chunks`` jobs of replicates, each with its own seed stream
``seed_sequence(root_seed, "bootstrap", dataset, mechanism, missing_rate, replicate, chunk)``.
Nothing is refitted for the selected model itself: the replicates start from the stored fit.
The summary job joins the chunks per condition (``results/bootstrap/<mask>.nc``), writes the
tidy parameter table with intervals for every condition, the classification summary (cluster
sizes, mean classification uncertainty ``1 - max_k p(k | x)``), and for the report condition
of each data set (the data as given where the sweep runs ``none``, else the least damaged
mask of the first mechanism) a booktabs table and the classification figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from em_lib.numerics.covariance import from_full
from em_lib.numerics.fitting import MixtureSettings

from .design import MaskJob, dataset_models, mask_jobs
from .evaluation import mixture_posteriors
from .seeds import seed_sequence

MIXTURE_KINDS = ("gaussian_mixture", "bundled", "table")


def bootstrap_settings(config) -> dict:
    """The ``bootstrap`` section with its defaults."""
    defaults = {"enabled": True, "n_boot": 200, "kind": "nonparametric", "chunks": 2, "level": 0.95}
    return {**defaults, **(config.get("bootstrap") or {})}


def bootstrap_datasets(config) -> list[str]:
    """Data sets whose selected mixture is bootstrapped: tables and simulated mixtures with at
    least one mixture model (HMM sequences and images are left out)."""
    if not bootstrap_settings(config)["enabled"]:
        return []
    names = []
    for name, spec in config["datasets"].items():
        models = [m for m in dataset_models(config, name) if m != "hmm"]
        if spec["kind"] in MIXTURE_KINDS and models and "em" in config["sweep"]["method"]:
            names.append(name)
    return names


def bootstrap_jobs(config) -> list[MaskJob]:
    """Every mask of the bootstrapped data sets."""
    names = set(bootstrap_datasets(config))
    return [job for job in mask_jobs(config) if job.dataset in names]


def report_job(config, dataset) -> MaskJob:
    """The condition shown in the report for ``dataset``: the data as given (``none``) when
    the sweep runs it, else the first mechanism at its smallest rate, first replicate."""
    jobs = [job for job in bootstrap_jobs(config) if job.dataset == dataset]
    given = [job for job in jobs if job.mechanism == "none"]
    if given:
        return given[0]
    return min(jobs, key=lambda job: (float(job.missing_rate), int(job.replicate)))


def chunk_sizes(n_boot: int, chunks: int) -> list[int]:
    """Replicates per chunk (the first ``n_boot % chunks`` chunks get one more)."""
    chunks = max(1, min(int(chunks), int(n_boot)))
    base, extra = divmod(int(n_boot), chunks)
    return [base + (1 if c < extra else 0) for c in range(chunks)]


def selected_cell(ds, job: MaskJob, criterion="bic", X_obs=None) -> dict | None:
    """The exact-EM fit of the mask with the lowest ``criterion`` over models and K:
    ``model``, ``n_components``, ``weights``, ``means``, full ``covariances`` (in the data
    set's own columns) and the criterion's value; None when no fit succeeded.

    Fits with a degenerate component (:func:`em_lib.selection.degenerate`: ``fit_degenerate``
    of the aggregate; for results written before that flag, checked here on the mask's data
    ``X_obs`` when given) are passed over while another fit is usable (:func:`em_lib.selection.lowest_usable`, the rule of
    :func:`em_lib.select_mixture`); ``degenerate_passed`` counts them."""
    labels = job.labels
    cell = ds.sel({**labels, "method": "em"})  # a dict: "method" is also a keyword of sel
    models = [m for m in cell["model"].values.tolist() if m != "hmm"]
    scores = cell[f"fit_{criterion}"].sel(model=models)
    usable = ~cell["fit_failed"].sel(model=models) & cell["in_design"].sel(model=models)
    scores = scores.where(usable)
    if not np.isfinite(scores.values).any():
        return None
    from em_lib.selection import lowest_usable

    columns = ds["has_feature"].sel(dataset=labels["dataset"]).values
    flags = None
    if "fit_degenerate" in cell:  # flagged by the fit job, on the rows it fitted
        flags = cell["fit_degenerate"].sel(model=models).values.astype(bool)
    elif X_obs is not None:  # results written before the flag existed
        flags = _degenerate_cells(cell, scores, columns, X_obs)
    flat, passed = lowest_usable(scores.values, flags)
    model_index, k_index = np.unravel_index(flat, scores.shape)
    model = str(scores["model"].values[model_index])
    k = int(scores["n_components"].values[k_index])
    chosen = cell.sel(model=model, n_components=k)
    return {
        "model": model,
        "n_components": k,
        "criterion": criterion,
        "value": float(scores.values[model_index, k_index]),
        "degenerate_passed": passed,
        "weights": chosen["weights"].values[:k],
        "means": chosen["means"].values[:k][:, columns],
        "covariances": chosen["covariances"].values[:k][:, columns][:, :, columns],
    }


def _degenerate_cells(cell, scores, columns, X_obs):
    """(models, K) bool: which fits with a finite score have a degenerate component."""
    from em_lib.selection import data_covariance, degenerate

    observed = ~np.isnan(X_obs).all(axis=1)
    covariance = data_covariance(X_obs[observed])
    flags = np.zeros(scores.shape, dtype=bool)
    for i, model in enumerate(scores["model"].values):
        for j, k in enumerate(scores["n_components"].values):
            if not np.isfinite(scores.values[i, j]):
                continue
            fit = cell.sel(model=model, n_components=k)
            covariances = fit["covariances"].values[:k][:, columns][:, :, columns]
            typed = from_full(covariances[None], str(model), fit["weights"].values[None, :k])[0]
            flags[i, j] = degenerate(
                fit["weights"].values[:k], typed, str(model), covariance, observed.sum()
            )
    return flags


def bootstrap_chunk(X_obs, feature_names, selected: dict, job: MaskJob, chunk: int, config):
    """One chunk of replicates of the selected model on the mask's data ``X_obs``; returns
    the :class:`~em_lib.uncertainty.BootstrapResult` as an xarray Dataset."""
    from em_lib.uncertainty import bootstrap_mixture

    settings = bootstrap_settings(config)
    sizes = chunk_sizes(settings["n_boot"], settings["chunks"])
    model = selected["model"]
    typed = from_full(selected["covariances"][None], model, selected["weights"][None])[0]
    fit = MixtureSettings.from_config(config["fit"])
    result = bootstrap_mixture(
        X_obs,
        (selected["weights"], selected["means"], typed),
        model,
        fit,
        n_boot=sizes[chunk],
        kind=settings["kind"],
        random_state=seed_sequence(config["root_seed"], "bootstrap", chunk=chunk, **job.labels),
        feature_names=list(feature_names),
    )
    ds = result.to_xarray()
    ds = ds.assign_coords(replicate=ds["replicate"].values + sum(sizes[:chunk]))
    ds.attrs.update(
        {
            "model": model,
            "n_components": int(selected["n_components"]),
            "chunk": int(chunk),
            **{key: str(value) for key, value in job.labels.items()},
        }
    )
    return ds


def empty_chunk(job: MaskJob, chunk: int, reason: str):
    """The chunk of a condition with no model to bootstrap (every exact-EM fit failed)."""
    import xarray as xr

    attrs = {key: str(value) for key, value in job.labels.items()}
    return xr.Dataset(attrs={**attrs, "chunk": int(chunk), "empty": reason})


def join_chunks(parts):
    """The chunks of one condition as one Dataset along ``replicate``."""
    import xarray as xr

    estimate_names = [name for name in parts[0].data_vars if name.endswith("_estimate")]
    joined = xr.concat([part.drop_vars(estimate_names) for part in parts], dim="replicate")
    for name in estimate_names:
        joined[name] = parts[0][name]
    joined.attrs = {key: value for key, value in parts[0].attrs.items() if key != "chunk"}
    joined.attrs["chunks"] = len(parts)
    return joined


def summary_table(ds, level=0.95) -> pd.DataFrame:
    """Tidy table of one condition: estimate, standard error and percentile interval of every
    weight, mean, variance and correlation (upper triangle), named by the data's columns."""
    usable = ~ds["failed"].values
    tail = 100 * (1 - level) / 2
    rows = []
    names = [str(f) for f in ds["feature"].values]
    specs = (
        ("weights", "weight"),
        ("means", "mean"),
        ("variances", "variance"),
        ("correlations", "correlation"),
    )
    if ds.attrs["model"] in ("diag", "spherical"):  # correlations are 0 by construction
        specs = specs[:3]
    for variable, label in specs:
        estimate = ds[f"{variable}_estimate"].values
        replicates = ds[variable].values[usable]
        for index in np.ndindex(*estimate.shape):
            if variable == "correlations" and not index[1] < index[2]:
                continue
            values = replicates[(slice(None), *index)]
            finite = values[np.isfinite(values)]
            lower, upper = (
                np.percentile(finite, [tail, 100 - tail]) if finite.size else (np.nan, np.nan)
            )
            rows.append(
                {
                    "parameter": label,
                    "component": int(index[0]),
                    "feature": names[index[1]] if len(index) > 1 else "",
                    "feature2": names[index[2]] if len(index) > 2 else "",
                    "estimate": float(estimate[index]),
                    "se": float(np.std(finite, ddof=1)) if finite.size > 1 else np.nan,
                    "lower": float(lower),
                    "upper": float(upper),
                }
            )
    table = pd.DataFrame(rows)
    table.insert(0, "n_components", int(ds.attrs["n_components"]))
    table.insert(0, "model", ds.attrs["model"])
    for key in ("replicate", "missing_rate", "mechanism", "dataset"):
        table.insert(0, key, ds.attrs[key])
    table["level"] = level
    table["kind"] = ds.attrs.get("kind", "nonparametric")
    table["n_boot"] = int(ds.sizes["replicate"])
    table["n_usable"] = int(usable.sum())
    return table


def classification(X_obs, selected: dict):
    """MAP cluster (n,) and classification uncertainty ``1 - max_k p(k | x)`` (n,) of every
    row under the selected model (rows with nothing observed: the prior's)."""
    weights, means, full = selected["weights"], selected["means"], selected["covariances"]
    _, log_post = mixture_posteriors(X_obs, weights[None], means[None], full[None], "full")
    posteriors = np.exp(log_post[0])
    return posteriors.argmax(axis=1), 1.0 - posteriors.max(axis=1)


def classification_table(X_obs, selected: dict, job: MaskJob) -> pd.DataFrame:
    """Cluster sizes and mean classification uncertainty of one condition (one row per
    cluster)."""
    labels, uncertainty = classification(X_obs, selected)
    k = int(selected["n_components"])
    rows = []
    for component in range(k):
        inside = labels == component
        rows.append(
            {
                **job.labels,
                "model": selected["model"],
                "n_components": k,
                "component": component,
                "weight": float(selected["weights"][component]),
                "size": int(inside.sum()),
                "mean_uncertainty": float(uncertainty[inside].mean()) if inside.any() else np.nan,
                "overall_mean_uncertainty": float(uncertainty.mean()),
            }
        )
    return pd.DataFrame(rows)


def booktabs_table(table: pd.DataFrame, caption: str, label: str) -> str:
    """A LaTeX ``booktabs`` table of one condition: estimate and interval of every weight,
    mean and variance (correlations of full models too) per component."""
    level = float(table["level"].iloc[0])
    lines = [
        r"\begin{table}[ht]",
        r"\centering",
        rf"\caption{{{_latex(caption)}}}",
        rf"\label{{{label}}}",
        r"\begin{tabular}{llrrr}",
        r"\toprule",
        rf"Component & Parameter & Estimate & SE & {100 * level:g}\,\% interval \\",
        r"\midrule",
    ]
    for component, group in table.groupby("component", sort=True):
        first = True
        for _, row in group.iterrows():
            name = _parameter_name(row)
            cells = [
                str(component) if first else "",
                _latex(name),
                f"{row['estimate']:.3g}",
                f"{row['se']:.2g}",
                f"[{row['lower']:.3g}, {row['upper']:.3g}]",
            ]
            lines.append(" & ".join(cells) + r" \\")
            first = False
        lines.append(r"\midrule")
    lines[-1] = r"\bottomrule"
    lines += [r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def _parameter_name(row) -> str:
    if row["parameter"] == "weight":
        return "weight"
    if row["parameter"] == "correlation":
        return f"corr({row['feature']}, {row['feature2']})"
    return f"{row['parameter']} {row['feature']}"


def _latex(text: str) -> str:
    for char, escaped in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&")):
        text = text.replace(char, escaped)
    return text.replace("#", r"\#")


def condition_key(labels) -> tuple:
    """A condition's identity from its labels (a MaskJob's labels or a chunk's attributes)."""
    return (
        str(labels["dataset"]),
        str(labels["mechanism"]),
        float(labels["missing_rate"]),
        int(labels["replicate"]),
    )


def summarise(parts, jobs, observed, ds, criterion="bic", level=0.95) -> dict:
    """Join the chunks of every condition and tabulate them.

    Parameters
    ----------
    parts : list of chunk Datasets (any order)
    jobs : list of MaskJob, the conditions in output order
    observed : dict MaskJob -> (X_obs, feature_names)
    ds : the aggregate (for the selected model of each condition)

    Returns
    -------
    dict with ``conditions`` (list of joined Datasets in ``jobs`` order), ``table`` (tidy
    parameters with intervals, every condition), ``classification`` (cluster sizes and
    uncertainty, every condition) and ``selected`` (MaskJob -> the selected cell).
    """
    grouped: dict[tuple, list] = {}
    for part in parts:
        grouped.setdefault(condition_key(part.attrs), []).append(part)
    conditions, tables, classes, cells = [], [], [], {}
    for job in jobs:
        chunks = grouped.get(condition_key(job.labels))
        if not chunks:
            raise ValueError(f"{job}: no bootstrap chunk found")
        if any("empty" in part.attrs for part in chunks):
            conditions.append(chunks[0])  # nothing was fitted: kept as the reason
            continue
        joined = join_chunks(sorted(chunks, key=lambda part: int(part.attrs["chunk"])))
        conditions.append(joined)
        tables.append(summary_table(joined, level))
        X_obs, _ = observed[job]
        cell = selected_cell(ds, job, criterion, X_obs)
        cells[job] = cell
        sizes = classification_table(X_obs, cell, job)
        sizes["degenerate_passed"] = int(cell["degenerate_passed"])  # for the report's caption
        classes.append(sizes)
    return {
        "conditions": conditions,
        "table": pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(),
        "classification": pd.concat(classes, ignore_index=True) if classes else pd.DataFrame(),
        "selected": cells,
    }


def describe_condition(job: MaskJob) -> str:
    if job.mechanism == "none":
        return "the data as given"
    rate = f"{100 * float(job.missing_rate):g} %"
    return f"{job.mechanism} mask at {rate} (replicate {job.replicate})"


def report_caption(job: MaskJob, cell: dict, table: pd.DataFrame) -> str:
    """What the booktabs table and the figure show, in words."""
    condition = describe_condition(job)
    first = table.iloc[0]
    usable, total = int(first["n_usable"]), int(first["n_boot"])
    count = f"{usable}" if usable == total else f"{usable} usable of {total}"
    passed = int(cell.get("degenerate_passed", 0))
    note = (
        f" {passed} fit(s) with a lower {cell['criterion'].upper()} had a degenerate component "
        "(a variance below 1e-4 of the data's, or fewer rows than its covariance needs) and "
        "were passed over."
        if passed
        else ""
    )
    return (
        f"{job.dataset}, {condition}: the {cell['model']} model with K = {cell['n_components']} "
        f"selected by {cell['criterion'].upper()}; estimates with bootstrap standard errors and "
        f"{100 * float(first['level']):g} % percentile intervals from {count} "
        f"{selected_kind(table)} bootstrap replicates.{note}"
    )


def selected_kind(table: pd.DataFrame) -> str:
    return str(table["kind"].iloc[0]) if "kind" in table else "nonparametric"


def report_frame(table: pd.DataFrame, classes: pd.DataFrame) -> pd.DataFrame:
    """The report's view of one condition: a row per parameter (weight, rows classified,
    mean classification uncertainty, then mean, variance and correlations per column), a
    column per component with ``estimate [lower, upper]``."""
    columns = {}
    for component, group in table.groupby("component", sort=True):
        cells = {}
        for _, row in group.iterrows():
            cells[_parameter_name(row)] = (
                f"{row['estimate']:.3g} [{row['lower']:.3g}, {row['upper']:.3g}]"
            )
        sizes = classes[classes["component"] == component]
        if not sizes.empty:
            cells["rows classified"] = str(int(sizes["size"].iloc[0]))
            cells["mean uncertainty"] = f"{float(sizes['mean_uncertainty'].iloc[0]):.3f}"
        columns[f"component {component}"] = cells
    frame = pd.DataFrame(columns)
    order = ["weight", "rows classified", "mean uncertainty"]
    order += [name for name in frame.index if name not in order]
    frame = frame.reindex([name for name in order if name in frame.index])
    return frame.rename_axis("parameter").reset_index()


def report_sections(table, classes, report_jobs: dict, figures: dict, criterion: str) -> list:
    """``(title, frame, caption, (figure, figure caption))`` per bootstrapped data set for the
    report's "Selected models" section (``report_jobs``: data set -> MaskJob)."""
    sections = []
    for name, job in report_jobs.items():
        key = condition_key(job.labels)
        chosen = table[[condition_key(row) == key for _, row in table.iterrows()]]
        sizes = classes[[condition_key(row) == key for _, row in classes.iterrows()]]
        if chosen.empty:
            continue
        first = chosen.iloc[0]
        cell = {
            "model": first["model"],
            "n_components": int(first["n_components"]),
            "criterion": criterion,
        }
        if "degenerate_passed" in sizes and not sizes.empty:
            cell["degenerate_passed"] = int(sizes["degenerate_passed"].iloc[0])
        overall = float(sizes["overall_mean_uncertainty"].iloc[0]) if not sizes.empty else np.nan
        caption = (
            report_caption(job, cell, chosen)
            + f" Mean classification uncertainty (1 - max posterior) over all rows: {overall:.3f}."
            + f" LaTeX: results/tables/selected_model_{name}.tex."
        )
        figure_caption = (
            f"{name}: classification under the selected {cell['model']} model, K = "
            f"{cell['n_components']} ({describe_condition(job)}); colours are the most probable "
            "clusters, black-edged points the most uncertain rows, ellipses the 95 % contours "
            "of the fitted components."
        )
        sections.append(
            (name, report_frame(chosen, sizes), caption, (figures[name], figure_caption))
        )
    return sections
