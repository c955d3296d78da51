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

from em_lib.selection import lowest_usable

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


def read_table(path) -> pd.DataFrame:
    """A table written by :func:`write_table` (an empty file is an empty frame)."""
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def write_table(frame: pd.DataFrame, csv_path, tex_path, *, comment: str = "") -> None:
    """Write ``frame`` as CSV and as a booktabs LaTeX table."""
    frame.to_csv(csv_path, index=False)
    Path(tex_path).write_text(to_latex(frame, comment=comment), encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# text computed from the results
# ---------------------------------------------------------------------------------------------


def _rate(value) -> str:
    return f"{100 * float(value):.3g}%"


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
    chosen = (
        selection[(selection["criterion"] == criterion) & (selection["method"] == method)]
        if not selection.empty
        else selection
    )
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
    gmm_init = init[init["method"] == method] if not init.empty else init
    needed = max(
        (c for c in init.columns if c.startswith("starts_p")),
        default=None,
        key=lambda c: int(c[len("starts_p") :]),
    )
    percent = needed[len("starts_p") :] if needed else ""
    if not gmm_init.empty and needed and "share_best" in gmm_init:
        worst = gmm_init.sort_values("share_best").iloc[0]
        findings.append(
            f"Starts agree least for {worst['dataset']} / {worst['model']} / "
            f"K={worst['n_components']} ({worst['mechanism']} {_rate(worst['missing_rate'])}): "
            f"{worst['share_best']:.0%} of starts reach the best optimum, "
            f"{worst['n_optima']} distinct optima, so {_count(worst[needed])} starts "
            f"are needed for a {percent}% chance of finding it; the median over all "
            f"{len(gmm_init)} cells is {gmm_init[needed].median():.0f}."
        )
    if hmm_init is not None and not hmm_init.empty and needed in hmm_init:
        hmm_em = hmm_init[hmm_init["method"] == method]
        findings.append(
            f"HMM: a median of {hmm_em['share_best'].median():.0%} of starts reach the best "
            f"optimum (median {hmm_em[needed].median():.0f} starts for {percent}%)."
        )
    for metric, what in (
        ("means_rmse", "the mean-parameter RMSE"),
        ("imputation_rmse", "the RMSE of the imputed masked entries"),
    ):
        errors = missing[missing["metric"] == metric] if not missing.empty else missing
        errors = errors[errors["missing_rate"] > 0] if not errors.empty else errors
        if errors.empty:
            continue
        top = errors[errors["missing_rate"] == errors["missing_rate"].max()]
        pivot = top.groupby("method")["mean"].mean().dropna()
        if method in pivot and len(pivot) > 1:
            others = ", ".join(f"{m} {v:.3f}" for m, v in pivot.items() if m != method)
            findings.append(
                f"At {_rate(top['missing_rate'].iloc[0])} extra missing, {what} "
                f"(averaged over data sets, models and mechanisms) is {pivot[method]:.3f} for "
                f"{method} against {others}."
            )
            break
    if tipping is not None and not tipping.empty and "tipping_delta" in tipping:
        base = tipping["conclusion_at_0"].iloc[0]
        level = float(tipping["level"].iloc[0]) if "level" in tipping else 0.95
        imputations = (
            f" ({int(tipping['n_imputations'].iloc[0])} imputations)"
            if "n_imputations" in tipping
            else ""
        )
        changes, starts = [], []
        for _, side in tipping.iterrows():
            inner_key = "tipping_upper" if side["side"] == "negative" else "tipping_lower"
            inner = side.get(inner_key, np.nan)
            if pd.isna(side["tipping_delta"]):
                if pd.notna(inner):
                    starts.append(f"delta = {inner:+.2f} SD")
                continue
            bounds = [
                "off the grid" if pd.isna(side.get(key, np.nan)) else f"{side[key]:+.2f}"
                for key in ("tipping_lower", "tipping_upper")
            ]
            changes.append(
                f"delta = {side['tipping_delta']:+.2f} SD ({level:.0%} interval {bounds[0]} "
                f"to {bounds[1]})"
            )
        if changes:
            text = f"it changes at {' and at '.join(changes)}"
        else:
            text = "the conclusion holds over the whole delta grid (no tipping point)"
        if starts:
            text += f"; its {level:.0%} interval begins at {' and at '.join(starts)}"
        findings.append(f"Delta adjustment{imputations}: under MAR {base}; {text}.")
    return findings


def _count(value) -> str:
    return "infinitely many" if pd.isna(value) else f"{int(value)}"


_KIND_TEXT = {
    "hierarchical": "from Ward hierarchical clustering",
    "hierarchical-whitened": "from Ward clustering of the whitened principal components",
    "kmeans": "from k-means (k-means++ seeding and Lloyd steps)",
    "k-means++": "from k-means++ seeding",
    "random": "from random responsibilities",
    "random_from_data": "with K random data rows as centres",
    "short-em": "from short EM runs (Biernacki, Celeux & Govaert 2003)",
}


def starts_text(init_params: str, n_init: int) -> str:
    """The random starts of one fit in words, e.g. ``"16 random starts (1 from Ward ...)"``."""
    from collections import Counter

    from em_lib.numerics.init import start_kinds

    counts = Counter(start_kinds(init_params, n_init))
    parts = [f"{count} {_KIND_TEXT[kind]}" for kind, count in counts.items()]
    return f"{n_init} random start{'s' if n_init != 1 else ''} ({_list(parts)})"


def procedure_text(fit: Mapping) -> str:
    """The fitting procedure that ran, from the workflow's ``fit`` settings (the settings object
    the fit jobs build, so the text cannot drift from what ran)."""
    from em_lib.numerics.fitting import MixtureSettings

    settings = MixtureSettings.from_config({**fit, "nested_starts": True})
    prior = (
        "maximum likelihood (no prior)"
        if settings.prior is None
        else "MAP estimation with mclust's default conjugate prior"
    )
    text = (
        f"Each Gaussian mixture was fitted by em_lib's fitting driver (what "
        f"GaussianMixture(nested_starts=True) runs) with {prior}: "
        f"{starts_text(settings.init_params, settings.n_init)}, plus starts built from the "
        "fitted models it contains (the diag and tied solutions for full, the spherical one "
        "for diag, and the K - 1 solution with one component split along its principal axis "
        "and with a new component of weight 1e-8), all run together by batched EM until the "
        f"mean per-sample log-likelihood changed by less than {settings.tol:g} "
        f"({settings.tol_type}) or {settings.max_iter} iterations were reached "
        f"(reg_covar {settings.reg_covar:g}). "
    )
    if settings.polish_tol is None:
        text += "The start with the highest log-likelihood is the fitted model (no polishing)."
    else:
        text += (
            f"The best starts at up to {settings.polish_starts} distinct optima were then "
            "polished by SQUAREM-accelerated EM (Varadhan & Roland 2008) to a relative change "
            f"of {settings.polish_tol:g}, and the best polished start is the fitted model."
        )
    return text + (
        " Random starts are reported as they ended on their own (initialisation "
        "sensitivity); nested and polished starts only enter the fitted model."
    )


def hmm_procedure_text(fit: Mapping, hmm: Mapping) -> str:
    """The HMM fitting procedure that ran, from the settings object the fit jobs build."""
    from em_lib.numerics.hmm import HMMSettings, hmm_start_kinds

    settings = HMMSettings.from_config(fit, hmm)
    kinds = sorted(set(hmm_start_kinds(settings.init, settings.n_init)))
    polish = (
        f"; the best starts at up to {settings.polish_starts} distinct optima were polished "
        f"by Baum-Welch to a relative change of {settings.polish_tol:g}"
        if settings.polish_tol is not None
        else ""
    )
    return (
        f" Gaussian HMMs ({hmm.get('covariance_type')} emissions) were fitted to the sequence "
        f"data by em_lib's HMM driver (what GaussianHMM runs): {settings.n_init} starts "
        f"(init {settings.init}: {', '.join(kinds)}), batched Baum-Welch to the same tolerance"
        f"{polish}; the best start is the fitted model."
    )


def methods_paragraph(config: Mapping, attrs: Mapping, sensitivity: Mapping | None = None) -> str:
    """A methods paragraph generated from the configuration and the provenance attributes."""
    fit, sweep = config.get("fit", {}), config.get("sweep", {})
    datasets = config.get("datasets", {})
    names = sweep.get("dataset") or list(datasets)
    described = []
    for name in names:
        spec = datasets[name]
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
        elif kind == "table":
            described.append(f"{name} (the table {spec.get('path')})")
        elif kind == "bundled":
            described.append(f"{name} (the bundled {spec.get('name')} data)")
        else:
            described.append(f"{name} (image {spec.get('source')}, pixels as rows)")
    hmm = config.get("hmm", {})
    hmm_text = hmm_procedure_text(fit, hmm) if hmm.get("enabled") else ""
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
        if delta:
            level = float(delta.get("level", 0.95))
            draws = int(delta.get("n_draws", 0))
            imputed = (
                f"{draws} imputations, each drawn from the MAR mixture refitted on a bootstrap "
                "sample of the rows (Efron, 1994)"
                if draws
                else "one completion by conditional expectations (no between-imputation variance)"
            )
            if delta.get("conclusion") == "weight_above":
                tipping_text = (
                    f"the shift at which the pooled weight of component {delta.get('component')} "
                    f"crosses {delta.get('threshold')}, with an interval from where the edges "
                    f"of its {level:.0%} interval cross it"
                )
            else:
                tail = (1 - level) / 2
                tipping_text = (
                    "the shift at which half the imputations select another K by BIC than at "
                    f"delta = 0, with an interval from where {tail:.1%} to where {1 - tail:.1%} "
                    "of them do"
                )
            sens_text += (
                " Departures from MAR were assessed by delta-adjusted multiple imputation "
                "(van Buuren, Boshuizen and Knook, 1999; van Buuren, Flexible Imputation of "
                "Missing Data, 2018, section 3.8; National Research Council, 2010): "
                f"{imputed}; the missing values of the variables suspected MNAR (the data's "
                "own and the masked ones) were shifted by delta standard deviations of the "
                f"observed values over the grid {_list(delta.get('deltas', []))}, the same "
                "imputations at every delta. The mixture was refitted on each completed data "
                "set at the MAR fit's K (and at every K of the grid when the conclusion is the "
                "K selected by BIC), from the MAR fit, the fit at the neighbouring delta and "
                f"{delta.get('n_init')} random starts (the fits at the MAR fit's K polished); "
                "its components were matched to the MAR "
                "fit's by the Hungarian assignment on standardised means, and weights and "
                "means pooled by Rubin's rules (Rubin, 1987) with Barnard-Rubin degrees of "
                "freedom (Barnard and Rubin, 1999), the within-imputation variances being "
                "w(1 - w)/n for a weight w and the variance over n w for a mean (the "
                "classification treated as known, so the intervals are somewhat narrow where "
                f"components overlap). The tipping point is {tipping_text}."
            )
    synthetic = [m for m in sweep.get("mechanism", []) if m != "none"]
    rates = ", ".join(_rate(r) for r in sweep.get("missing_rate", []) if float(r) > 0)
    missing_text = (
        "The data sets' own missing values were kept: exact EM used every row with at least "
        "one observed value. "
        + (
            f"Synthetic missing entries were imposed on top of them by the mechanisms "
            f"{_list(synthetic)} at rates {rates} of all entries (logistic strength "
            f"{config.get('missingness', {}).get('strength')})"
            + (", next to the data as given" if "none" in sweep.get("mechanism", []) else "")
            if synthetic
            else "No synthetic missingness was imposed"
        )
        + f", with {len(sweep.get('replicate', []))} replicate(s); exact EM on the observed "
        f"data was compared with {_list([m for m in sweep.get('method', []) if m != 'em'])}."
    )
    return (
        f"Data sets: {'; '.join(described)}. Gaussian mixtures with covariance types "
        f"{_list(sweep.get('model', []))} and K = {_list(sweep.get('n_components', []))} "
        f"components were fitted. {procedure_text(fit)}{hmm_text} {missing_text} BIC, AIC and "
        "ICL are -2 log L plus a penalty (lower is better), computed on the damaged data for "
        f"the fitted model of each replicate.{sens_text}{bootstrap_text(config)} Software: em_lib "
        f"{attrs.get('em_lib_version')} (git {attrs.get('git_commit')}), Python "
        f"{attrs.get('python_version')}, {versions}; root seed {attrs.get('root_seed')}, "
        f"every random stream derived from it by {attrs.get('seed_scheme', 'SeedSequence')}."
    )


def bootstrap_text(config: Mapping) -> str:
    """The methods sentences of the selected model's bootstrap ("" when it is off)."""
    settings = {
        "enabled": True,
        "n_boot": 200,
        "kind": "nonparametric",
        "level": 0.95,
        **(config.get("bootstrap") or {}),
    }
    if not settings["enabled"]:
        return ""
    kinds = {
        "nonparametric": "nonparametric bootstrap replicates (rows resampled with replacement, "
        "as multinomial row weights)",
        "weighted": "weighted likelihood bootstrap replicates (Dirichlet row weights; Newton "
        "and Raftery, 1994)",
        "parametric": "parametric bootstrap replicates (data simulated from the fit, each row "
        "keeping its missing pattern)",
    }
    return (
        f" For each mixture data set and mask, the model and K with the lowest criterion were "
        f"bootstrapped with {settings['n_boot']} {kinds[settings['kind']]}, all fitted in one "
        "batched EM run started at the selected fit and polished to the fit's tolerance; each "
        "replicate's components were matched to the fit's by the Hungarian assignment on "
        "squared Mahalanobis distances, and standard errors (standard deviations over the "
        f"replicates) and {100 * float(settings['level']):g}% percentile intervals are reported "
        "for the weights, means, variances and correlations."
    )


def figure_notes(tables: Mapping[str, pd.DataFrame], ds, settings: Mapping) -> dict[str, str]:
    """Why a figure does not apply to this experiment, by figure name (absent: it applies)."""
    notes = {}
    method = settings.get("method", "em")
    init = tables["initialisation"]
    if init.empty or (init["method"] == method).sum() == 0:
        notes["initialisation"] = "no Gaussian-mixture runs in this experiment"
    criteria = tables["criteria"]
    if criteria.empty or (criteria["method"] == method).sum() == 0:
        notes["criteria"] = "no Gaussian-mixture fits in this experiment"
    if tables["selection"].empty:
        notes["selection"] = "no Gaussian-mixture fits in this experiment"
    missing = tables["missingness"]
    if missing.empty:
        notes["missingness"] = "no Gaussian-mixture fits in this experiment"
    elif not (missing["missing_rate"] > 0).any():
        notes["missingness"] = "no synthetic missingness in this experiment (mechanism none only)"
    if tables["hmm_initialisation"].empty:
        notes["hmm"] = "no HMM runs in this experiment"
    if tables["delta_adjustment"].empty:
        tipping = tables["delta_tipping"]
        reason = str(tipping["note"].iloc[0]) if "note" in tipping and len(tipping) else "not run"
        notes["delta"] = f"delta adjustment not run: {reason}"
    return notes


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
    notes: Sequence[str] = (),
    models: Sequence[tuple[str, pd.DataFrame, str]] = (),
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
    notes : one line per section or figure left out because it does not apply
    models : (title, frame, caption[, (PNG path, figure caption)]) of the fitted models shown
        in a "Selected models" section, each with its classification figure when given
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
    ]
    if models:
        parts.append('<h2 id="models">Selected models</h2>')
    for name, frame, caption, *figure in models:
        parts.append(f'<h3>{esc(name)}</h3><p class="meta">{esc(caption)}</p>{_table_html(frame)}')
        if figure and figure[0]:
            path, figure_caption = figure[0]
            parts.append(
                f"<figure>{_image(path)}<figcaption>{esc(figure_caption)}</figcaption></figure>"
            )
    parts.append('<h2 id="figures">Figures</h2>')
    if notes:
        parts.append(
            '<p class="meta">Not shown:</p><ul class="notes">'
            + "".join(f"<li>{esc(note)}</li>" for note in notes)
            + "</ul>"
        )
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
    random_failed = ds["failed"] & ds["in_design"] & (ds["n_iter"] >= 0)
    items = {
        "data sets": ", ".join(map(str, ds["dataset"].values)),
        "models": ", ".join(map(str, ds["model"].values)),
        "K grid": ", ".join(map(str, ds["n_components"].values)),
        "mechanisms x rates": ", ".join(map(str, ds["mechanism"].values))
        + " x "
        + ", ".join(_rate(r) for r in ds["missing_rate"].values),
        "own missing values": ", ".join(
            f"{name} {_rate(rate)}"
            for name, rate in zip(ds["dataset"].values, ds["own_missing_rate"].values, strict=True)
        ),
        "rows": ", ".join(
            f"{name} {int(n)}"
            for name, n in zip(ds["dataset"].values, ds["n_rows"].values, strict=True)
        ),
        "replicates": str(sizes.get("replicate")),
        "methods": ", ".join(map(str, ds["method"].values)),
        "random starts per cell": str(sizes.get("init")),
        "random starts in the design": f"{n_fits:,}",
        "fitted models (cells)": f"{int(ds['in_design'].sum()):,}",
        "failed random starts": str(int(random_failed.sum())),
        "root seed": str(ds.attrs.get("root_seed")),
        "results created": str(ds.attrs.get("creation_time")),
        "git commit": str(ds.attrs.get("git_commit")),
    }
    if "fit_time" in ds:
        items["fit time summed over cells (s; parallel jobs overlap; not deterministic)"] = (
            f"{float(ds['fit_time'].sum()):.1f}"
        )
    return items


def selected_models(ds, criterion: str = "bic", method: str = "em") -> list:
    """Per data set, the fitted mixture the criterion selects on the data as given (mechanism
    ``none``; else the least damaged mask), read from the stored parameters: (title, table,
    caption) with one row per component (weight, then the mean of every column by name)."""
    out = []
    mechanisms = ds["mechanism"].values.tolist()
    for dataset in ds["dataset"].values.tolist():
        cells = ds.sel(
            {"dataset": dataset, "method": method, "replicate": ds["replicate"].values[0]}
        )
        models = [
            m
            for m in ds["model"].values.tolist()
            if m != "hmm" and bool(cells["in_design"].sel(model=m).any())
        ]
        if not models:
            continue
        mechanism = "none" if "none" in mechanisms else mechanisms[0]
        rates = [
            r
            for r in ds["missing_rate"].values.tolist()
            if bool(cells["in_design"].sel(mechanism=mechanism, missing_rate=r).any())
        ]
        if not rates:
            continue
        chosen = cells.sel(mechanism=mechanism, missing_rate=min(rates), model=models)
        scores = chosen[f"fit_{criterion}"].where(~chosen["fit_failed"])
        flags = chosen["fit_degenerate"].values if "fit_degenerate" in chosen else None
        flat, passed = lowest_usable(scores.values, flags)
        if flat < 0:
            continue
        model_index, k_index = np.unravel_index(flat, scores.shape)
        best = chosen.isel(model=model_index, n_components=k_index)
        k = int(best["n_components"])
        columns = ds["has_feature"].sel(dataset=dataset).values
        names = ds["feature"].values[columns].tolist()
        frame = pd.DataFrame(best["means"].values[:k][:, columns], columns=names)
        weights = best["weights"].values[:k]
        rows = weights * float(ds["n_rows"].sel(dataset=dataset))
        frame.insert(0, "rows (expected)", rows)
        frame.insert(0, "weight", weights)
        frame.insert(0, "component", range(k))
        if "fit_degenerate" in best and bool(best["fit_degenerate"]):
            warning = (
                " Every fitted model has a degenerate component (a variance below 1e-4 of"
                " the data's, or fewer rows than its covariance needs): likely spurious;"
                " consider fit.prior: default or a smaller K."
            )
        elif passed:
            warning = (
                f" {passed} fit(s) with a lower {criterion.upper()} had a degenerate component"
                " (a variance below 1e-4 of the data's, or fewer rows than its covariance"
                " needs: spurious maxima) and were passed over."
            )
        else:
            warning = ""
        where = "the data as given" if mechanism == "none" else f"{mechanism} {_rate(min(rates))}"
        caption = (
            f"{criterion.upper()} selects {best['model'].item()} with K = {k} on "
            f"{where} (method {method}); log-likelihood "
            f"{float(best['fit_log_likelihood']):.2f}, {criterion.upper()} "
            f"{float(best[f'fit_{criterion}']):.2f}, "
            f"{'converged' if bool(best['fit_converged']) else 'NOT converged'}. "
            "Weights, expected rows (weight x rows) and component means (data units)." + warning
        )
        out.append((f"{dataset}", frame, caption))
    return out
