"""Paper-ready outputs: booktabs LaTeX tables and one self-contained HTML report.

Nothing here plots: figures arrive as PNG files (made by :mod:`em_lib.plotting`) and are
embedded as base64. Key findings and the methods paragraph are computed from the tables and
from the configuration stored in the results' attributes.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "escape_latex",
    "failures_summary",
    "html_report",
    "key_findings",
    "methods_paragraph",
    "to_latex",
    "write_table",
]

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_LATEX_PATTERN = re.compile("|".join(re.escape(c) for c in _LATEX_SPECIAL))


def escape_latex(text) -> str:
    """Escape LaTeX's special characters in ``text``."""
    return _LATEX_PATTERN.sub(lambda match: _LATEX_SPECIAL[match.group()], str(text))


def _format_cell(value, digits: int) -> str:
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return "--"
        if float(value).is_integer() and abs(value) < 1e6:
            return str(int(value))
        return f"{value:.{digits}g}" if abs(value) < 1e-3 else f"{value:.{digits}f}"
    return escape_latex(value)


def to_latex(frame: pd.DataFrame, *, digits: int = 3, comment: str = "") -> str:
    """A booktabs ``tabular`` (``\\toprule``, ``\\midrule``, ``\\bottomrule``) of ``frame``,
    ready to ``\\input`` inside a ``table`` environment. Numeric columns are right-aligned,
    NaN prints as ``--``, and every header and text cell is escaped."""
    align = "".join("r" if pd.api.types.is_numeric_dtype(frame[c]) else "l" for c in frame)
    lines = []
    if comment:
        lines.extend(f"% {line}" for line in comment.splitlines())
    lines.append(f"\\begin{{tabular}}{{{align}}}")
    lines.append("\\toprule")
    lines.append(" & ".join(escape_latex(c) for c in frame.columns) + r" \\")
    lines.append("\\midrule")
    for row in frame.itertuples(index=False):
        lines.append(" & ".join(_format_cell(v, digits) for v in row) + r" \\")
    lines.append("\\bottomrule")
    lines.append("\\end{tabular}")
    return "\n".join(lines) + "\n"


def write_table(frame: pd.DataFrame, csv_path, tex_path, *, comment: str = "") -> None:
    """Write ``frame`` as CSV and as a booktabs LaTeX table."""
    frame.to_csv(csv_path, index=False)
    Path(tex_path).write_text(to_latex(frame, comment=comment), encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# text computed from the results
# ---------------------------------------------------------------------------------------------


def _rate(value) -> str:
    return f"{100 * float(value):g}%"


def key_findings(
    selection: pd.DataFrame,
    init: pd.DataFrame,
    missing: pd.DataFrame,
    truth: Mapping[str, int],
    tipping: pd.DataFrame | None = None,
    *,
    criterion: str = "bic",
    method: str = "em",
    hmm_init: pd.DataFrame | None = None,
) -> list[str]:
    """Short sentences computed from the tables."""
    findings = []
    chosen = selection[(selection["criterion"] == criterion) & (selection["method"] == method)]
    for (dataset, model), group in chosen.groupby(["dataset", "model"], sort=False):
        true_k = truth.get(dataset)
        if true_k is None:
            continue
        hits = group[group["n_components"] == true_k]
        parts = [
            f"{int(r.n_selected)} of {int(r.n_replicates)} at {_rate(r.missing_rate)} {r.mechanism}"
            for r in hits.itertuples()
        ]
        findings.append(
            f"{criterion.upper()} ({method}, model {model}) picks the true K={true_k} on "
            f"data set {dataset} in " + ", ".join(parts) + " replicates."
        )
    gmm_init = init[init["method"] == method]
    if not gmm_init.empty:
        worst = gmm_init.sort_values("share_best").iloc[0]
        findings.append(
            f"Starts agree least for {worst['dataset']} / {worst['model']} / "
            f"K={worst['n_components']} ({worst['mechanism']} {_rate(worst['missing_rate'])}): "
            f"{worst['share_best']:.0%} of starts reach the best optimum, "
            f"{worst['n_optima']} distinct optima, so {_count(worst['starts_p99'])} starts "
            "are needed for a 99% chance of finding it; the median over all "
            f"{len(gmm_init)} cells is {gmm_init['starts_p99'].median():.0f}."
        )
    if hmm_init is not None and not hmm_init.empty:
        hmm_em = hmm_init[hmm_init["method"] == method]
        findings.append(
            f"HMM: a median of {hmm_em['share_best'].median():.0%} of starts reach the best "
            f"optimum (median {hmm_em['starts_p99'].median():.0f} starts for 99%)."
        )
    errors = missing[missing["metric"] == "means_rmse"]
    if not errors.empty:
        top = errors[errors["missing_rate"] == errors["missing_rate"].max()]
        pivot = top.groupby("method")["mean"].mean()
        if method in pivot and len(pivot) > 1:
            others = ", ".join(f"{m} {v:.3f}" for m, v in pivot.items() if m != method)
            findings.append(
                f"At {_rate(top['missing_rate'].iloc[0])} missing, the mean-parameter RMSE "
                f"(averaged over data sets, models and mechanisms) is {pivot[method]:.3f} for "
                f"{method} against {others}."
            )
    if tipping is not None and not tipping.empty:
        points = tipping.dropna(subset=["tipping_delta"])
        base = tipping["conclusion_at_0"].iloc[0]
        if points.empty:
            findings.append(
                f"Delta adjustment: under MAR {base}; the conclusion holds over the whole "
                "delta grid (no tipping point)."
            )
        else:
            where = " and ".join(f"delta = {v:+g} SD" for v in points["tipping_delta"])
            findings.append(f"Delta adjustment: under MAR {base}; it changes at {where}.")
    return findings


def _count(value) -> str:
    return "infinitely many" if pd.isna(value) else f"{int(value)}"


def methods_paragraph(config: Mapping, attrs: Mapping, sensitivity: Mapping | None = None) -> str:
    """A methods paragraph generated from the configuration and the provenance attributes."""
    fit, sweep = config.get("fit", {}), config.get("sweep", {})
    datasets = config.get("datasets", {})
    described = []
    for name, spec in datasets.items():
        kind = spec.get("kind")
        if kind == "gaussian_mixture":
            described.append(
                f"{name} ({spec.get('n_samples')} draws from a {spec.get('n_components')}"
                f"-component {spec.get('covariance_type')} Gaussian mixture in "
                f"{spec.get('n_features')} dimensions, separation {spec.get('separation')})"
            )
        elif kind == "hmm_sequences":
            described.append(
                f"{name} ({spec.get('n_sequences')} sequences of length "
                f"{spec.get('sequence_length')} from a {spec.get('n_components')}-state "
                f"Gaussian HMM, self-transition {spec.get('self_transition')})"
            )
        else:
            described.append(f"{name} ({kind})")
    prior = fit.get("prior", "none")
    prior_text = (
        "maximum likelihood (no prior)"
        if prior == "none"
        else "MAP estimation with mclust's default conjugate prior"
    )
    hmm = config.get("hmm", {})
    hmm_text = (
        f" Gaussian HMMs ({hmm.get('covariance_type')} emissions, {hmm.get('init')} starts) "
        "were fitted to the sequence data."
        if hmm.get("enabled")
        else ""
    )
    versions = ", ".join(
        f"{package} {attrs[f'{package}_version']}"
        for package in ("numpy", "scipy", "pandas", "xarray", "snakemake")
        if f"{package}_version" in attrs
    )
    sens = dict(sensitivity or {})
    sens_text = ""
    if sens:
        sens_text = (
            f" Starts whose final log-likelihoods differ by at most {sens.get('optimum_tol')} "
            "nat were counted as reaching the same optimum; the number of starts needed to "
            "reach the best optimum with probability p is ceil(log(1 - p) / log(1 - s)) for a "
            "share s of starts reaching it."
        )
        delta = sens.get("delta", {})
        if delta.get("enabled", True) and delta:
            sens_text += (
                " Departures from MAR were assessed by delta adjustment (van Buuren, Flexible "
                "Imputation of Missing Data; National Research Council, 2010): imputed values "
                f"({delta.get('n_draws')} multiple-imputation draws, 0 meaning conditional "
                "expectations) were shifted by delta standard deviations over the grid "
                f"{_list(delta.get('deltas', []))} and the mixture re-estimated."
            )
    rates = ", ".join(_rate(r) for r in sweep.get("missing_rate", []))
    return (
        f"Data sets: {'; '.join(described)}. Gaussian mixtures with covariance types "
        f"{_list(sweep.get('model', []))} and K = {_list(sweep.get('n_components', []))} "
        f"components were fitted by EM from {fit.get('n_init')} starts each "
        f"(init_params {fit.get('init_params')}; start 0 hierarchical when auto), with "
        f"{prior_text}, convergence tolerance {fit.get('tol')} on the change of the mean "
        f"per-sample log-likelihood, at most {fit.get('max_iter')} iterations and "
        f"reg_covar {fit.get('reg_covar')}.{hmm_text} Missing entries were imposed by the "
        f"mechanisms {_list(sweep.get('mechanism', []))} at rates {rates} (logistic strength "
        f"{config.get('missingness', {}).get('strength')}), with "
        f"{len(sweep.get('replicate', []))} replicate(s); exact EM on the observed data was "
        f"compared with {_list([m for m in sweep.get('method', []) if m != 'em'])}. BIC, AIC "
        "and ICL are -2 log L plus a penalty (lower is better), computed for the best start "
        f"(highest log-likelihood) of each replicate.{sens_text} Software: em_lib "
        f"{attrs.get('em_lib_version')} (git {attrs.get('git_commit')}), Python "
        f"{attrs.get('python_version')}, {versions}; root seed {attrs.get('root_seed')}, "
        f"every random stream derived from it by {attrs.get('seed_scheme', 'SeedSequence')}."
    )


def _list(values: Sequence) -> str:
    values = [str(v) for v in values]
    if len(values) <= 1:
        return "".join(values) or "none"
    return ", ".join(values[:-1]) + " and " + values[-1]


def failures_summary(failures: pd.DataFrame) -> str:
    """One sentence on failed and non-converged starts."""
    if failures.empty:
        return "Every start of every fitted cell converged and none failed."
    return (
        f"{int(failures['n_failed'].sum())} start(s) failed and "
        f"{int(failures['n_not_converged'].sum())} did not converge, in {len(failures)} cell(s):"
    )


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#1a1a1a;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;
margin-top:2em}figure{margin:1.5em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.92em;color:#333;margin-top:.4em}
table{border-collapse:collapse;font-size:.8em;margin:.5em 0}
th,td{padding:.2em .6em;text-align:right;border-bottom:1px solid #e4e4e4}
th{border-bottom:2px solid #555;text-align:center}
td:first-child,th:first-child{text-align:left}
.scroll{max-height:28em;overflow:auto;border:1px solid #eee}
.glance td{text-align:left}.meta{color:#555;font-size:.9em}
"""


def _table_html(frame: pd.DataFrame, digits: int = 3) -> str:
    formatted = frame.copy()
    for column in formatted:
        if pd.api.types.is_float_dtype(formatted[column]):
            formatted[column] = formatted[column].map(
                lambda v: (
                    "–"
                    if pd.isna(v)
                    else f"{v:.{digits}g}"
                    if abs(v) < 1e-3 and v
                    else f"{v:,.{digits}f}".rstrip("0").rstrip(".")
                )
            )
    body = formatted.to_html(index=False, border=0, escape=True, na_rep="–")
    return f'<div class="scroll">{body}</div>'


def _image(path) -> str:
    path = Path(path)
    if path.suffix == ".svg":
        return path.read_text(encoding="utf-8")
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{encoded}" alt="{html.escape(path.stem)}">'


def html_report(
    *,
    title: str,
    glance: Mapping[str, str],
    findings: Sequence[str],
    figures: Sequence[tuple[str, str | Path, str]],
    tables: Sequence[tuple[str, pd.DataFrame, str]],
    methods: str,
    failures: pd.DataFrame,
    images: Sequence[tuple[str, str | Path, str]] = (),
) -> str:
    """The report as one self-contained HTML page.

    Parameters
    ----------
    glance : label -> value of the "experiment at a glance" table
    findings : key findings, one sentence each
    figures : (title, PNG or SVG path, caption) in order; images are embedded
    tables : (title, frame, caption)
    methods : the methods paragraph
    failures : :func:`em_lib.sensitivity.failures_table`
    images : (title, PNG or SVG path, caption) of the image segmentation figures, shown in an
        "Image segmentation" section after the figures (numbered on from them); none: no section
    """
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        '<h2 id="glance">Experiment at a glance</h2><table class="glance">',
        *(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in glance.items()),
        "</table>",
        '<h2 id="findings">Key findings</h2><ul>',
        *(f"<li>{esc(sentence)}</li>" for sentence in findings),
        "</ul>",
        '<h2 id="figures">Figures</h2>',
    ]
    for number, (name, path, caption) in enumerate(figures, start=1):
        parts.append(
            f'<figure id="figure-{number}">{_image(path)}<figcaption><b>Figure {number}. '
            f"{esc(name)}.</b> {esc(caption)}</figcaption></figure>"
        )
    if images:
        parts.append('<h2 id="image-segmentation">Image segmentation</h2>')
    for number, (name, path, caption) in enumerate(images, start=len(figures) + 1):
        parts.append(
            f'<figure id="figure-{number}">{_image(path)}<figcaption><b>Figure {number}. '
            f"{esc(name)}.</b> {esc(caption)}</figcaption></figure>"
        )
    parts.append('<h2 id="tables">Tables</h2>')
    for number, (name, frame, caption) in enumerate(tables, start=1):
        parts.append(
            f'<h3 id="table-{number}">Table {number}. {esc(name)}</h3>'
            f'<p class="meta">{esc(caption)}</p>{_table_html(frame)}'
        )
    parts.append(f'<h2 id="methods">Methods</h2><p class="methods">{esc(methods)}</p>')
    parts.append(
        f'<h2 id="failures">Failed or non-converged fits</h2><p>'
        f"{esc(failures_summary(failures))}</p>"
    )
    if not failures.empty:
        parts.append(_table_html(failures))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def glance_items(ds, config: Mapping) -> dict[str, str]:
    """The "experiment at a glance" entries from the results and config."""
    sizes = {str(k): int(v) for k, v in ds.sizes.items()}
    n_fits = int(ds["in_design"].sum()) * sizes.get("init", 1)
    items = {
        "data sets": ", ".join(map(str, ds["dataset"].values)),
        "models": ", ".join(map(str, ds["model"].values)),
        "K grid": ", ".join(map(str, ds["n_components"].values)),
        "mechanisms x rates": ", ".join(map(str, ds["mechanism"].values))
        + " x "
        + ", ".join(_rate(r) for r in ds["missing_rate"].values),
        "replicates": str(sizes.get("replicate")),
        "methods": ", ".join(map(str, ds["method"].values)),
        "starts per cell": str(sizes.get("init")),
        "fits (starts) in the design": f"{n_fits:,}",
        "failed starts": str(int((ds["failed"] & ds["in_design"]).sum())),
        "root seed": str(ds.attrs.get("root_seed")),
        "results created": str(ds.attrs.get("creation_time")),
        "git commit": str(ds.attrs.get("git_commit")),
    }
    if "fit_time" in ds:
        items["total fit time (s, not deterministic)"] = f"{float(ds['fit_time'].sum()):.1f}"
    return items
