"""Departures from MAR: delta-adjusted multiple imputation and its tipping point.

The method
----------
A pattern-mixture sensitivity analysis by delta-adjusted multiple imputation: the "delta
adjustment" of van Buuren, Boshuizen & Knook (1999, Statistics in Medicine 18:681-694) and
van Buuren (*Flexible Imputation of Missing Data*, 2nd ed. 2018, section 3.8), recommended by
the National Research Council (2010) report on missing data in clinical trials and ICH E9(R1),
and implemented by SAS PROC MI (``MNAR ADJUST(variable / SHIFT=)``), R mice
(``mice.impute.mnar.norm``) and R rbmi (``delta_template``). The missing values of the
variables suspected MNAR are assumed to lie ``delta`` standard deviations away from where the
MAR model puts them, and the analysis is repeated over a grid of ``delta``:

1. Reference: the MAR fit stored in the aggregate (exact EM on the observed data, at the K its
   BIC selects; :func:`reference_model`). Its fits at the other K of the grid are used as
   starting values. Nothing is refitted for it.
2. Imputation: ``m = n_draws`` completed data sets (20 by default). Each draws parameters by a
   bootstrap (the MAR mixture refitted by EM, from the reference, on the rows resampled with
   replacement; Efron 1994, JASA 89:463-475) and then the missing entries from that fit's
   conditional distribution p(x_mis | x_obs) (:func:`em_lib.numerics.gaussian.impute_mixture`:
   a component from its posterior, then the conditional normal). The bootstrap makes the
   imputations proper in Rubin's sense: the between-imputation variance carries the
   uncertainty of the imputation model's parameters. ``n_draws = 0`` completes the data once
   by conditional expectations (a quick look; no between-imputation variance).
   Rows without any observed value are left out, as they are of the MAR likelihood.
3. Shift: every missing entry of a shifted variable (the data set's own missing values and the
   masked ones alike) is moved by ``delta * SD_j``, ``SD_j`` the standard deviation of the
   observed values of column j. The same m completed data sets serve every delta (common
   random numbers): the curves over delta are smooth, and their differences are not Monte
   Carlo noise. The shift is applied after the joint draw ("impute, then shift", as rbmi
   does): other missing entries of the same row are not redrawn given the shifted value.
4. Re-estimation: on every completed and shifted data set the mixture is refitted with the
   library's fitting driver (:func:`em_lib.numerics.fitting.fit_mixture`, the workflow's fit
   settings, no nested starts) at the reference K (the curves) and, when the conclusion is the
   K selected by BIC, at every K of the grid. Starts: the MAR fit at that K and the same
   imputation's fit at the neighbouring delta nearer 0 (continuation along the grid), batched
   in one call of the driver, and ``n_init`` random starts in a second call, seeded per
   imputation (the same starts at every delta); the solution with the higher objective is
   kept. Fits at the reference K are polished (the best start, to a relative change of
   :data:`POLISH_TOL`); fits at other K only serve BIC, whose differences between K dwarf
   what polishing changes, and are not. K stays at the reference K for the curves, so a
   change of the selected K never makes them jump.
5. Alignment: the components of every fit are matched to the reference's by the Hungarian
   assignment (:func:`em_lib.metrics.match_components`) on the means divided by the observed
   SDs, so "component k" is the same component at every delta and in every imputation.
6. Pooling by Rubin's rules (Rubin 1987, *Multiple Imputation for Nonresponse in Surveys*):
   estimate = mean of the m estimates, total variance T = W + (1 + 1/m) B (W the mean
   within-imputation variance, B the between-imputation variance), t intervals with the
   Barnard & Rubin (1999, Biometrika 86:948-955) degrees of freedom (:func:`rubin_pool`).
   Within-imputation variances are the complete-data variances with the classification
   treated as known: Var(w_k) ~ w_k (1 - w_k) / n and Var(mu_kj) ~ Sigma_kjj / (n w_k), with
   complete-data degrees of freedom n - 1 and n w_k - 1. They ignore the uncertainty of the
   classification, so W (and the intervals) are too small when components overlap; B needs
   no approximation. Weight intervals are clipped to [0, 1].
7. Tipping point (:func:`tipping_point`), on each side of 0, linear interpolation between
   grid points; with ``a = (1 - level) / 2``:

   * ``selected_k``: K0 is the K BIC selects in most imputations at delta = 0 (in each
     imputation, refits with a degenerate component are passed over while another K is not
     degenerate: the rule of :func:`em_lib.selection.lowest_usable`). The tipping
     point is the delta at which half the imputations select another K; its interval runs
     from the delta at which a share ``a`` of them do to the one at which ``1 - a`` do (the
     spread of the conclusion over imputations).
   * ``weight_above``: the conclusion is "the pooled weight of ``component`` exceeds
     ``threshold``". The tipping point is the delta at which the pooled weight crosses the
     threshold; its interval runs from the delta at which the threshold enters the pooled
     ``level`` interval to the one at which it leaves it.

   A bound that is not reached on the grid is NaN (beyond the grid).

Why multiple imputation rather than a direct-likelihood pattern-mixture model (shifting the
conditional means inside the E-step): imputation is the form statisticians know from the
software above; it refits with the unchanged fitting driver (no second E-step to maintain);
Rubin's rules give intervals for any quantity of the fit; and it gives completed-data
likelihoods, so the K selected by BIC can be a conclusion. The price is Monte Carlo error,
kept small by ``m`` and by common random numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
from scipy import stats

from em_lib.metrics import match_components
from em_lib.numerics.covariance import any_to_full, from_full
from em_lib.numerics.criteria import information_criteria, n_parameters
from em_lib.numerics.fitting import MixtureSettings, fit_mixture
from em_lib.numerics.gaussian import impute_mixture
from em_lib.selection import data_covariance, degenerate, lowest_usable
from em_lib.study.seeds import seed_sequence

CONCLUSIONS = ("selected_k", "weight_above")
# refits at the reference K are polished to this relative change (or the fit settings' looser
# one): on the default data the pooled estimates move by < 6% of their interval widths between
# 1e-7 and 1e-8, while the fit default 1e-10 made the whole analysis ~1.4 times as slow
POLISH_TOL = 1e-8

# ---------------------------------------------------------------------------------------------
# Rubin's rules and the tipping point
# ---------------------------------------------------------------------------------------------


def rubin_pool(estimates, variances, *, complete_df=np.inf, level: float = 0.95) -> dict:
    """Pool ``m`` completed-data estimates by Rubin's rules.

    Parameters
    ----------
    estimates, variances : (m, ...) arrays
        Estimates and their within-imputation (complete-data) variances, imputations first.
    complete_df : float or array broadcasting to ``estimates.shape[1:]``
        Complete-data degrees of freedom (``inf``: large-sample).
    level : float
        Coverage of the t interval.

    Returns
    -------
    dict of arrays of shape ``estimates.shape[1:]``: ``estimate`` (mean of the m estimates),
    ``within`` (W, mean variance), ``between`` (B, variance of the estimates with divisor
    m - 1; 0 when m = 1), ``total`` (T = W + (1 + 1/m) B), ``fmi`` (lambda = (1 + 1/m) B / T),
    ``df`` (Barnard & Rubin 1999: 1 / (1 / nu_old + 1 / nu_obs) with nu_old = (m - 1) /
    lambda^2 and nu_obs = (nu_com + 1) / (nu_com + 3) nu_com (1 - lambda)), ``lower`` and
    ``upper`` (estimate -/+ t quantile x sqrt(T)).
    """
    estimates = np.asarray(estimates, dtype=float)
    variances = np.asarray(variances, dtype=float)
    n_imp = estimates.shape[0]
    estimate = estimates.mean(axis=0)
    within = variances.mean(axis=0)
    between = estimates.var(axis=0, ddof=1) if n_imp > 1 else np.zeros_like(estimate)
    total = within + (1.0 + 1.0 / n_imp) * between
    with np.errstate(divide="ignore", invalid="ignore"):
        fmi = np.where(total > 0, (1.0 + 1.0 / n_imp) * between / total, 0.0)
        nu_com = np.broadcast_to(np.asarray(complete_df, dtype=float), estimate.shape)
        nu_old = np.where(fmi > 0, (n_imp - 1) / fmi**2, np.inf)
        nu_obs = np.where(
            np.isinf(nu_com), np.inf, (nu_com + 1.0) / (nu_com + 3.0) * nu_com * (1.0 - fmi)
        )
        df = 1.0 / (1.0 / nu_old + 1.0 / nu_obs)
    half = stats.t.ppf(0.5 + level / 2.0, df) * np.sqrt(total)
    return {
        "estimate": estimate,
        "within": within,
        "between": between,
        "total": total,
        "fmi": fmi,
        "df": df,
        "lower": estimate - half,
        "upper": estimate + half,
    }


def _crossing(deltas, curve, threshold, holds) -> float:
    """First delta along ``deltas`` (0 first, then outwards) at which ``curve > threshold``
    is no longer ``holds``, interpolated linearly from the grid point before; 0 when it
    already fails at 0, NaN when it never fails."""
    curve = np.asarray(curve, dtype=float)
    failed = curve <= threshold if holds else curve > threshold
    hits = np.flatnonzero(failed)
    if hits.size == 0:
        return np.nan
    i = int(hits[0])
    if i == 0:
        return float(deltas[0])
    before, after = curve[i - 1], curve[i]
    share = (threshold - before) / (after - before) if after != before else 1.0
    return float(deltas[i - 1] + share * (deltas[i] - deltas[i - 1]))


def tipping_point(deltas, estimate, inner, outer) -> dict[str, tuple[float, float, float]]:
    """The tipping point on each side of ``delta = 0`` with its interval.

    ``estimate``, ``inner`` and ``outer`` are pairs ``(curve over deltas, threshold)``. The
    conclusion at ``delta = 0`` is ``estimate curve > threshold`` (or its negation); it tips
    where the estimate curve crosses its threshold, and the interval runs from where the
    ``inner`` curve crosses its threshold (the earliest sign of a change) to where the
    ``outer`` one does (the change is complete). Crossings are interpolated linearly between
    grid points; one not reached on the grid is NaN.

    Returns
    -------
    ``{"negative": (tipping, lower, upper), "positive": (...)}``, bounds in increasing order
    of delta.
    """
    deltas = np.asarray(deltas, dtype=float)
    if not (deltas == 0).any():
        raise ValueError("the delta grid must contain 0 (the MAR analysis)")
    order = np.argsort(deltas)
    deltas = deltas[order]
    curves = [
        (np.asarray(curve, dtype=float)[order], cut) for curve, cut in (estimate, inner, outer)
    ]
    at_zero = int(np.flatnonzero(deltas == 0)[0])
    holds = bool(curves[0][0][at_zero] > curves[0][1])
    out = {}
    for side, path in (
        ("negative", np.arange(at_zero, -1, -1)),
        ("positive", np.arange(at_zero, deltas.size)),
    ):
        tip, near, far = (_crossing(deltas[path], curve[path], cut, holds) for curve, cut in curves)
        out[side] = (tip, far, near) if side == "negative" else (tip, near, far)
    return out


# ---------------------------------------------------------------------------------------------
# the MAR reference stored in the aggregate
# ---------------------------------------------------------------------------------------------


def _cell(ds, target):
    cell = {key: target[key] for key in ("dataset", "mechanism", "missing_rate", "replicate")}
    cell.update(model=target["model"], method="em")
    return ds.sel(cell)


def reference_model(ds, target, criterion="bic"):
    """The MAR reference stored in the aggregate: (K, weights, means, full covariances) of the
    fitted ``em`` model on the target mask with the lowest ``criterion`` (among those
    without a degenerate component when one exists: :func:`em_lib.selection.lowest_usable`),
    in the data set's own columns; None when no such model was fitted."""
    chosen = _cell(ds, target)
    scores = chosen[f"fit_{criterion}"].where(~chosen["fit_failed"])
    grid = [k for k in target["n_components"] if k in chosen["n_components"].values.tolist()]
    scores = scores.sel(n_components=grid)
    flags = None
    if "fit_degenerate" in chosen:
        flags = chosen["fit_degenerate"].sel(n_components=grid).values
    best, _ = lowest_usable(scores.values, flags)
    if best < 0:
        return None
    k = int(grid[best])
    return (k, *mar_fits(ds, target)[k])


def mar_fits(ds, target) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The stored MAR fits on the target mask at every K of its grid that did not fail:
    ``{K: (weights (K,), means (K, d), full covariances (K, d, d))}`` in the data set's own
    columns."""
    chosen = _cell(ds, target)
    columns = ds["has_feature"].sel(dataset=target["dataset"]).values
    fits = {}
    for k in target["n_components"]:
        if k not in chosen["n_components"].values.tolist():
            continue
        at_k = chosen.sel(n_components=k)
        if bool(at_k["fit_failed"]) or not np.isfinite(at_k["weights"].values[:k]).all():
            continue
        fits[int(k)] = (
            at_k["weights"].values[:k],
            at_k["means"].values[:k][:, columns],
            at_k["covariances"].values[:k][:, columns][:, :, columns],
        )
    return fits


# ---------------------------------------------------------------------------------------------
# the analysis
# ---------------------------------------------------------------------------------------------


def _seed_sequence(random_state) -> np.random.SeedSequence:
    if isinstance(random_state, np.random.SeedSequence):
        return random_state
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(2**63)))
    return np.random.SeedSequence(random_state)


def _typed(weights, means, full, covariance_type):
    """A full-covariance solution as a start of ``covariance_type`` (leading start axis)."""
    covariances = from_full(np.asarray(full)[None], covariance_type, np.asarray(weights)[None])
    return np.asarray(weights)[None], np.asarray(means)[None], covariances


class _Refitter:
    """Refits through the driver: the user starts as one batch in one call (polished as the
    fit settings say, the best distinct start only), and ``n_random`` random starts in a
    second call (not polished unless they win); the solution with the higher objective."""

    def __init__(self, covariance_type, settings: MixtureSettings, n_random: int):
        self.covariance_type = covariance_type
        polish_tol = None if settings.polish_tol is None else max(settings.polish_tol, POLISH_TOL)
        self.polished = replace(settings, polish_starts=1, polish_tol=polish_tol)
        self.unpolished = replace(settings, polish_tol=None)
        self.random = replace(settings, n_init=max(int(n_random), 1), polish_tol=None)
        self.n_random = int(n_random)

    def __call__(self, X, k, starts, seed, *, random_starts=True, polish=True):
        """Best fit of ``X`` at ``k`` from ``starts`` (a list of (weights, means, typed
        covariances), each with a leading start axis) and, with ``random_starts`` (or without
        any start), the random starts; None when every start failed."""
        fits = []
        if starts:
            initial = {
                name: np.concatenate([start[i] for start in starts])
                for i, name in enumerate(("weights", "means", "covariances"))
            }
            settings = self.polished if polish else self.unpolished
            fits.append(self._fit(X, k, settings, seed, initial))
        if (random_starts and self.n_random) or not starts:
            fits.append(self._fit(X, k, self.random, seed, None))
        fits = [fit for fit in fits if fit is not None]
        if not fits:
            return None
        best = max(fits, key=lambda fit: fit.objective)  # the first of equals: user starts
        if polish and best.polish is None and self.polished.polish_tol is not None:
            # a random start won: polish it like the user starts (its solution as the start)
            solution = (best.weights[None], best.means[None], best.covariances[None])
            best = self(X, k, [solution], seed, random_starts=False) or best
        return best

    def _fit(self, X, k, settings, seed, initial):
        try:
            return fit_mixture(X, k, self.covariance_type, settings, seed, initial=initial)
        except ValueError as error:
            if str(error).startswith("every start failed"):
                return None
            raise


def _completions(X, reference, covariance_type, refit, n_draws, seeds):
    """(m, n, d) completed data sets: per imputation, the MAR fit refitted from the reference
    on a bootstrap sample of the rows, then one draw of the missing entries from it
    (``n_draws = 0``: one completion by the reference's conditional expectations)."""
    k, weights, means, full = reference
    if not n_draws:
        return impute_mixture(X, weights, means, full, "full")[None]
    start = [_typed(weights, means, full, covariance_type)]
    filled = np.empty((n_draws,) + X.shape)
    for draw, seed in enumerate(seeds):
        rng = np.random.default_rng(seed)
        rows = rng.integers(X.shape[0], size=X.shape[0])
        fit = refit(X[rows], k, start, seed, random_starts=False, polish=False)
        if fit is None:  # the bootstrap fit failed: draw from the reference itself
            params = (weights, means, full, "full")
        else:
            params = (fit.weights, fit.means, fit.covariances, covariance_type)
        filled[draw] = impute_mixture(X, *params, n_draws=1, rng=rng)[0]
    return filled


def delta_adjustment(
    X_missing,
    reference,
    *,
    variables: Sequence[int],
    deltas: Sequence[float],
    n_components: Sequence[int],
    covariance_type: str,
    settings: MixtureSettings,
    n_draws: int = 20,
    n_init: int = 2,
    mar_starts: Mapping[int, tuple] | None = None,
    conclusion: str = "selected_k",
    component: int = 0,
    threshold: float = 0.5,
    level: float = 0.95,
    random_state=0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Delta-adjusted multiple imputation of a Gaussian mixture fitted under MAR (the method
    is described in the module docstring).

    Parameters
    ----------
    X_missing : (n_samples, n_features) array; NaN marks a missing entry (the data set's own
        and the mask's)
    reference : ``(K, weights (K,), means (K, d), full covariances (K, d, d))`` of the MAR fit
        (:func:`reference_model`)
    variables : columns whose missing values are shifted
    deltas : shifts in SDs of each column's observed values; must contain 0
    n_components : K grid of the BIC selection (conclusion ``selected_k``)
    covariance_type, settings : the mixture refitted and how (``settings.n_init`` is ignored)
    n_draws : imputations m (0: one completion by conditional expectations)
    n_init : random starts of every refit, next to the MAR and continuation starts
    mar_starts : ``{K: (weights, means, full covariances)}`` MAR fits used as starts
        (:func:`mar_fits`); the reference is used at its K
    conclusion : ``"selected_k"`` or ``"weight_above"`` (pooled weight of ``component``, a
        component of the reference, above ``threshold``)
    level : coverage of the intervals
    random_state : int, SeedSequence or Generator

    Returns
    -------
    table : one row per (delta, component): ``delta``, ``component``, the pooled ``weight``
        with ``weight_lower`` / ``weight_upper``, ``mean_<j>`` for every feature j with
        ``mean_<j>_lower`` / ``_upper`` for the shifted ones, then per delta ``selected_k``
        (the K BIC selects in most imputations; NaN unless the conclusion is ``selected_k``),
        ``conclusion_value`` with ``conclusion_lower`` / ``_upper`` (the curve whose
        crossing of the threshold is the tipping point: the share of imputations selecting
        the K of delta = 0, or the pooled weight with its interval), ``conclusion`` and, for
        ``selected_k``, ``share_K<k>``: the share of imputations in which BIC selects k
    tipping : one row per side (``negative``, ``positive``): ``tipping_delta`` with
        ``tipping_lower`` / ``tipping_upper`` (NaN: not reached on the grid), the
        ``conclusion_at_0``, the plotted ``quantity`` and its ``threshold``, the
        ``definition``, ``reference_k``, ``variables``, ``n_imputations``, ``level``,
        ``n_missing``
    """
    X_missing = np.asarray(X_missing, dtype=float)
    X_missing = X_missing[~np.isnan(X_missing).all(axis=1)]
    deltas = np.asarray(sorted({float(value) + 0.0 for value in deltas}))  # -0.0 is 0.0
    if 0.0 not in deltas:
        raise ValueError("the delta grid must contain 0 (the MAR analysis)")
    if conclusion not in CONCLUSIONS:
        raise ValueError(f"conclusion must be 'selected_k' or 'weight_above', got {conclusion!r}")
    ref_k, ref_weights, ref_means, ref_full = reference
    if conclusion == "weight_above" and not 0 <= component < ref_k:
        raise ValueError(f"component {component} does not exist at the reference K = {ref_k}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    variables = sorted({int(v) for v in variables})
    n_rows, n_features = X_missing.shape
    missing = np.isnan(X_missing)
    scale = np.nanstd(X_missing, axis=0)
    bad = [j for j in variables if not (np.isfinite(scale[j]) and scale[j] > 0)]
    if bad:
        raise ValueError(f"column {bad[0]} has no spread in its observed values to shift by")
    grid = (
        sorted({int(k) for k in n_components} | {ref_k}) if conclusion == "selected_k" else [ref_k]
    )
    starts_by_k = {int(k): fit for k, fit in (mar_starts or {}).items()}
    starts_by_k[ref_k] = (ref_weights, ref_means, ref_full)
    refit = _Refitter(covariance_type, settings, int(n_init))
    m_draws = int(n_draws)
    seeds = _seed_sequence(random_state).spawn(2 * max(m_draws, 1))
    completions = _completions(
        X_missing, reference, covariance_type, refit, m_draws, seeds[: max(m_draws, 1)]
    )
    n_imp = completions.shape[0]
    fit_seeds = seeds[max(m_draws, 1) :]

    shift = np.zeros((n_rows, n_features))
    shift[:, variables] = missing[:, variables] * scale[variables]
    unit = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    n_delta = deltas.size
    weights = np.full((n_delta, n_imp, ref_k), np.nan)
    means = np.full((n_delta, n_imp, ref_k, n_features), np.nan)
    variances = np.full((n_delta, n_imp, ref_k, n_features), np.nan)
    bic = np.full((n_delta, n_imp, len(grid)), np.nan)
    spurious = np.zeros(bic.shape, dtype=bool)  # refits with a degenerate component
    at_zero = int(np.flatnonzero(deltas == 0)[0])
    for draw in range(n_imp):
        previous, at_origin = {}, {}
        # from 0 outwards: first up the grid, then down it from the fits at 0
        for index in [*range(at_zero, n_delta), *range(at_zero - 1, -1, -1)]:
            if index == at_zero - 1:
                previous = at_origin
            shifted = completions[draw] + deltas[index] * shift
            covariance = data_covariance(shifted) if len(grid) > 1 else None
            for position, k in enumerate(grid):
                starts = []
                if k in starts_by_k:
                    starts.append(_typed(*starts_by_k[k], covariance_type))
                if k in previous:
                    starts.append(previous[k])
                fit = refit(shifted, k, starts, fit_seeds[draw], polish=k == ref_k)
                if fit is None:
                    previous.pop(k, None)
                    continue
                previous[k] = (fit.weights[None], fit.means[None], fit.covariances[None])
                n_params = n_parameters(k, n_features, covariance_type)
                bic[index, draw, position] = information_criteria(
                    fit.log_likelihood, n_params, n_rows
                )["bic"]
                if covariance is not None:
                    spurious[index, draw, position] = degenerate(
                        fit.weights, fit.covariances, covariance_type, covariance, n_rows
                    )
                if k == ref_k:
                    order = match_components(ref_means / unit, fit.means / unit)
                    full = any_to_full(fit.covariances[None], covariance_type, k, n_features)[0]
                    weights[index, draw] = fit.weights[order]
                    means[index, draw] = fit.means[order]
                    variances[index, draw] = np.diagonal(full, axis1=1, axis2=2)[order]
            if index == at_zero:
                at_origin = dict(previous)

    # Rubin's rules per delta (imputations on the first axis)
    weight_var = weights * (1.0 - weights) / n_rows
    mean_var = variances / (n_rows * weights[..., None])
    pooled_w = rubin_pool(
        np.moveaxis(weights, 1, 0),
        np.moveaxis(weight_var, 1, 0),
        complete_df=n_rows - 1,
        level=level,
    )
    for bound in ("lower", "upper"):  # a weight lies in [0, 1]
        pooled_w[bound] = np.clip(pooled_w[bound], 0.0, 1.0)
    mean_df = np.maximum(n_rows * np.nanmean(weights, axis=1) - 1.0, 1.0)[..., None]
    pooled_mu = rubin_pool(
        np.moveaxis(means, 1, 0), np.moveaxis(mean_var, 1, 0), complete_df=mean_df, level=level
    )

    tail = (1.0 - level) / 2.0
    if conclusion == "selected_k":
        # per imputation and delta, a refit with a degenerate component is passed over while
        # another K is not degenerate (none finite: the grid's first K, as argmin gave)
        picks = [
            [max(lowest_usable(bic[i, j], spurious[i, j])[0], 0) for j in range(n_imp)]
            for i in range(n_delta)
        ]
        chosen = np.asarray(grid)[np.asarray(picks, dtype=int)]
        modes = np.array([_mode(row, ref_k) for row in chosen])
        k0 = int(modes[at_zero])
        shares = {f"share_K{k}": (chosen == k).mean(axis=1) for k in grid}
        value = shares[f"share_K{k0}"]
        lower_curve = upper_curve = np.full(n_delta, np.nan)
        verdicts = modes.tolist()
        points = tipping_point(deltas, (value, 0.5), (value, 1.0 - tail), (value, tail))
        described = f"BIC selects K = {k0} in {value[at_zero]:.0%} of the imputations"
        quantity = f"share of imputations where BIC selects K = {k0}"
        cut = 0.5
        definition = (
            f"delta at which half the imputations select a K other than {k0} by BIC; "
            f"interval: where {tail:.1%} and {1 - tail:.1%} of them do"
        )
    else:
        value = pooled_w["estimate"][:, component]
        lower_curve, upper_curve = pooled_w["lower"][:, component], pooled_w["upper"][:, component]
        holds = bool(value[at_zero] > threshold)
        near, far = (lower_curve, upper_curve) if holds else (upper_curve, lower_curve)
        points = tipping_point(deltas, (value, threshold), (near, threshold), (far, threshold))
        verdicts = [bool(v > threshold) for v in value]
        shares, modes = {}, np.full(n_delta, np.nan)
        relation = "above" if holds else "at most"
        described = f"the weight of component {component} is {relation} {threshold:g}"
        quantity = f"weight of component {component}"
        cut = float(threshold)
        definition = (
            f"delta at which the pooled weight of component {component} crosses {threshold:g}; "
            f"interval: where the {level:.0%} interval's edges cross it"
        )

    rows = []
    for index, delta in enumerate(deltas):
        for k in range(ref_k):
            row = {
                "delta": delta,
                "component": k,
                "weight": pooled_w["estimate"][index, k],
                "weight_lower": pooled_w["lower"][index, k],
                "weight_upper": pooled_w["upper"][index, k],
            }
            row.update({f"mean_{j}": pooled_mu["estimate"][index, k, j] for j in range(n_features)})
            for j in variables:
                row[f"mean_{j}_lower"] = pooled_mu["lower"][index, k, j]
                row[f"mean_{j}_upper"] = pooled_mu["upper"][index, k, j]
            row.update(
                selected_k=modes[index],
                conclusion_value=value[index],
                conclusion_lower=lower_curve[index],
                conclusion_upper=upper_curve[index],
                conclusion=verdicts[index],
            )
            row.update({name: share[index] for name, share in shares.items()})
            rows.append(row)
    table = pd.DataFrame(rows)
    tipping = pd.DataFrame(
        {
            "side": list(points),
            "tipping_delta": [point[0] for point in points.values()],
            "tipping_lower": [point[1] for point in points.values()],
            "tipping_upper": [point[2] for point in points.values()],
            "conclusion_at_0": [described] * 2,
            "quantity": [quantity] * 2,
            "threshold": [cut] * 2,
            "definition": [definition] * 2,
            "reference_k": [ref_k] * 2,
            "variables": [",".join(map(str, variables))] * 2,
            "n_imputations": [m_draws] * 2,
            "level": [level] * 2,
            "n_missing": [int(missing[:, variables].sum())] * 2,
        }
    )
    return table, tipping


def _mode(values, prefer) -> int:
    """Most frequent value; ties go to ``prefer`` if tied, else to the smallest."""
    found, counts = np.unique(values, return_counts=True)
    tied = found[counts == counts.max()]
    return int(prefer) if prefer in tied else int(tied.min())


TABLE_COLUMNS = (
    "delta",
    "component",
    "weight",
    "weight_lower",
    "weight_upper",
    "selected_k",
    "conclusion_value",
    "conclusion_lower",
    "conclusion_upper",
    "conclusion",
)
TIPPING_COLUMNS = (
    "side",
    "tipping_delta",
    "tipping_lower",
    "tipping_upper",
    "conclusion_at_0",
    "quantity",
    "threshold",
    "definition",
    "reference_k",
    "variables",
    "n_imputations",
    "level",
    "n_missing",
)


def empty_tables(reason: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two tables of an analysis that does not apply, with the reason in ``note``."""
    table = pd.DataFrame(columns=[*TABLE_COLUMNS, "note"])
    tipping = pd.DataFrame({"side": ["not run"], "note": [reason]})
    return table, tipping


def delta_analysis(X, ds, target, settings, fit, root_seed):
    """The workflow's delta step: the analysis on ``X`` (the target data with the mask's and
    its own missing values as NaN) against the MAR fits stored in ``ds``, with the delta
    ``settings`` (``config["sensitivity"]["delta"]``) and the fit settings ``fit``
    (``config["fit"]``; no nested starts). Its random stream is
    ``seed_sequence(root_seed, "delta", dataset, mechanism, missing_rate, replicate)``.
    Tables with a ``note`` where the analysis does not apply."""
    variables = target["variables"]
    if variables is None:
        variables = np.flatnonzero(np.isnan(X).any(axis=0)).tolist()
    fitted = target["model"] in ds["model"].values.tolist()
    reference = reference_model(ds, target) if fitted else None
    if not variables:
        return empty_tables("the data set has no missing value on this mask")
    if reference is None:
        return empty_tables(
            f"no {target['model']} mixture was fitted to {target['dataset']} on this mask"
        )
    fit_settings = MixtureSettings.from_config({**fit, "n_init": 1, "nested_starts": False})
    options = {
        key: settings[key]
        for key in ("n_draws", "n_init", "conclusion", "component", "threshold", "level")
    }
    labels = {key: target[key] for key in ("dataset", "mechanism", "missing_rate", "replicate")}
    return delta_adjustment(
        X,
        reference,
        variables=variables,
        deltas=settings["deltas"],
        n_components=target["n_components"],
        covariance_type=target["model"],
        settings=fit_settings,
        mar_starts=mar_fits(ds, target),
        random_state=seed_sequence(root_seed, "delta", **labels),
        **options,
    )
