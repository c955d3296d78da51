"""Many weighted versions of one data set fitted in one batch: the bootstrap's replicates.

Replicate ``b`` is a start of the batched EM that sees the rows weighted by
``sample_weight[b]`` (multinomial counts, Dirichlet weights). Replicates started at one common
point (the maximum-likelihood fit of the full data) move only a standard error or so from it,
and near that point EM is close to a linear map ``theta -> theta* + J (theta - theta*)`` with
nearly the same rate matrix ``J`` for every replicate (the fraction of missing information,
Dempster, Laird & Rubin 1977, section 3). So the replicates are first moved together:

1. two plain EM steps of every replicate from the common start, ``s1 = F(t0) - t0`` and
   ``s2 = F(F(t0)) - F(t0)`` (in SQUAREM's unconstrained coordinates);
2. ``J`` estimated once for all replicates by least squares, ``s2 ~ J s1`` over the
   replicates, within the span of the leading right singular vectors of ``s1`` (at most half
   as many as replicates, so the regression is overdetermined); outside that span ``J`` is
   taken as 0 (a plain EM step);
3. quasi-Newton steps toward each replicate's own fixed point, ``r = (I - J)^-1 (F(t) - t)``,
   ``t <- t + r`` (one E-step each; a step from a replicate's second point on is mixed with
   its previous one by Anderson acceleration of depth 1, Walker & Ni 2011, which corrects
   for the replicate's own rate differing from the shared ``J``), at most
   ``QUASI_NEWTON_STEPS``. A replicate leaves this stage when a step does not increase its
   objective (it keeps its last point), or when the step's gain, or the gain still to come
   if gains keep shrinking at the last ratio (at most 1/2; an Aitken-type estimate), is
   below polishing's tolerance.

Then every replicate is polished by SQUAREM (:func:`~em_lib.numerics.squarem.polish_em`) from
its last point, whose EM step is already known, to ``polish_tol`` with the usual convergence
rule (one plain EM step changes the objective by less than ``polish_tol`` relative) and the
usual result (the best EM output evaluated), so the stage changes where polishing starts, not
where it stops or what it returns. At B = 200, K = 3 full, n = 5,000, d = 5 this takes about
9 E-steps of the whole batch instead of 20 for batched EM followed by SQUAREM
(``benchmarks/bench_bootstrap.py``). Without polishing (``polish_tol=None``), or for starts
that are not the common one (random starts of a replicate), replicates run plain batched EM
to ``tol`` first, as any fit does. ``J`` is not used when its spectral radius is 0.99 or more or when fewer than
``MIN_SHARED`` replicates share the start.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .gaussian import CompleteDataEngine, PreparedData, check_sample_weight, start_weights
from .mixture_em import MixtureFit, fit_mixture_em
from .squarem import ROUNDOFF, em_map, from_vector, polish_em, to_vector, usable_parameters

MIN_SHARED = 8
MAX_RATE = 0.99
QUASI_NEWTON_STEPS = 8


def fit_replicates(
    X,
    starts: dict,
    covariance_type,
    settings,
    sample_weight,
    *,
    groups=None,
    prior=None,
) -> MixtureFit:
    """Fit many weighted versions of one data set in one batch: start ``i`` sees the rows
    weighted by ``sample_weight[i]`` (a bootstrap replicate's counts or Dirichlet weights).

    Starts equal to the first start (the common start, usually the ML fit) are moved by the
    shared-rate-matrix steps of the module docstring and then polished; the other starts run
    batched EM to ``settings.tol`` and are then polished. Polishing (SQUAREM, to the relative
    ``settings.polish_tol``) prunes no start against another, since each fits its own data.
    With ``groups`` (I,) several starts share a replicate and the best of each group (highest
    objective among the usable ones) is returned.

    Parameters
    ----------
    X : (n_samples, n_features) array; NaN marks a missing entry
    starts : dict with ``weights`` (I, K), ``means`` (I, K, d), ``covariances`` (typed)
    covariance_type : str
    settings : MixtureSettings
        ``tol``, ``tol_type``, ``max_iter``, ``reg_covar``, ``polish_tol`` are used; the starts
        are given, so ``n_init``, ``init_params`` and nesting are not.
    sample_weight : (I, n_samples) array of row weights >= 0
    groups : (I,) int array, optional
        Replicate of each start (0..B-1); None: one start per replicate.
    prior : ConjugatePrior, optional
        Resolved prior (the same for every replicate).

    Returns
    -------
    MixtureFit with one row per replicate (``n_samples``: each replicate's total weight);
    ``n_iter`` counts every EM-map evaluation of a start (both stages).
    """
    settings = settings.validate()
    X = np.asarray(X, dtype=float)
    weights = check_sample_weight(sample_weight, X.shape[0], n_init=len(starts["weights"]))
    if weights.ndim == 1:
        raise ValueError("fit_replicates needs one row of weights per start, shape (I, n)")
    prepared = PreparedData(X, covariance_type)
    options = {"reg_covar": settings.reg_covar, "prior": prior, "prepared": prepared}
    start = tuple(np.asarray(starts[name], dtype=float) for name in ("weights", "means"))
    start += (np.asarray(starts["covariances"], dtype=float),)
    polish = settings.polish_tol is not None and settings.max_iter > 0
    shared = _common_start(start) if polish else np.zeros(len(start[0]), dtype=bool)
    if shared.sum() < MIN_SHARED:
        shared[:] = False
    parts = []
    if shared.any():
        rows = np.flatnonzero(shared)
        mine = weights if shared.all() else weights[rows]  # (a copy only when needed)
        points, evaluated, used = _shared_rate_steps(
            prepared,
            mine,
            tuple(part[0] for part in start),
            covariance_type,
            options,
            settings.polish_tol,
        )
        polished = _polish(X, points, covariance_type, settings, mine, options, evaluated=evaluated)
        parts.append((rows, replace(polished, n_iter=polished.n_iter + used)))
    if not shared.all():
        rows = np.flatnonzero(~shared)
        fit = fit_mixture_em(
            X,
            *(part[rows] for part in start),
            covariance_type,
            tol=settings.tol,
            tol_type=settings.tol_type,
            max_iter=settings.max_iter,
            sample_weight=weights[rows],
            **options,
        )
        if polish:
            usable = np.flatnonzero(~fit.failed)
            parameters = (fit.weights[usable], fit.means[usable], fit.covariances[usable])
            polished = _polish(
                X, parameters, covariance_type, settings, weights[rows][usable], options
            )
            fit = _merge_polished(fit, polished, usable)
        parts.append((rows, fit))
    fit = _combine(parts, len(shared))
    if groups is None:
        return fit
    groups = np.asarray(groups, dtype=int)
    score = np.where(fit.failed, -np.inf, fit.objective)
    order = np.lexsort((-score, groups))  # by group, best first
    first = order[np.r_[True, groups[order][1:] != groups[order][:-1]]]
    return _take(fit, first)


def _polish(X, parameters, covariance_type, settings, weights, options, evaluated=None):
    return polish_em(
        X,
        *parameters,
        covariance_type,
        tol=settings.polish_tol,
        max_iter=10 * settings.max_iter,
        prune=False,
        sample_weight=weights,
        evaluated=evaluated,
        **options,
    )


def _common_start(start) -> np.ndarray:
    """Which starts equal the first one exactly (weights, means and covariances)."""
    same = np.ones(len(start[0]), dtype=bool)
    for part in start:
        same &= (part == part[:1]).reshape(len(part), -1).all(axis=1)
    return same


def _shared_rate_steps(prepared, row_weights, start, covariance_type, options, tol):
    """The stage of the module docstring for replicates (S, n) of row weights that all start
    at ``start`` (one start's weights, means, covariances).

    Returns ``(points, evaluated, used)``: each replicate's last accepted point (uncentred
    parameters, (S, ...)), its EM map in the form :func:`polish_em` takes as ``evaluated``,
    and the EM-map evaluations each replicate used (S,)."""
    engine, center = prepared.engine, prepared.center
    variances = prepared.feature_variances
    prior = options["prior"].shifted(center) if options["prior"] is not None else None
    n_rep = row_weights.shape[0]
    totals = row_weights.sum(1)
    n_comp, d = start[1].shape

    def em(rows, parameters, common=False):
        """Objective of the input (-inf where unusable), its EM output, and whether the output
        is usable; over the replicates ``rows``. ``common``: one start's parameters (1, ...)
        at which every replicate of ``rows`` sits (complete data only)."""
        factors, ok = usable_parameters(*parameters, covariance_type, variances)
        if ok.all():  # the usual case: no copies
            weights = row_weights if len(rows) == n_rep else start_weights(row_weights, rows)
            loglik, log_prior, values, good, _ = em_map(
                engine,
                weights,
                (*parameters, factors),
                covariance_type,
                options["reg_covar"],
                prior,
                variances,
                common=common,
            )
            total = loglik + log_prior
            return np.where(np.isfinite(total), total, -np.inf), values, good
        if common:  # unusable for every replicate alike
            parameters = tuple(np.repeat(part, len(rows), axis=0) for part in parameters)
            return em(rows, parameters)
        objective = np.full(len(rows), -np.inf)
        outputs = tuple(np.array(part, copy=True) for part in parameters)
        good = np.zeros(len(rows), dtype=bool)
        if ok.any():
            sub = np.flatnonzero(ok)
            objective[sub], values, good[sub] = em(rows[sub], tuple(p[sub] for p in parameters))
            for target, part in zip(outputs, values, strict=True):
                target[sub] = part
        return objective, outputs, good

    # every replicate's point, its objective, its EM output and whether that is usable
    point = (np.repeat(start[0][None], n_rep, 0), np.repeat(start[1][None] - center, n_rep, 0))
    point += (np.repeat(start[2][None], n_rep, 0),)
    everyone = np.arange(n_rep)
    if isinstance(engine, CompleteDataEngine):
        # every replicate is at the same point: one start's E-step serves them all
        level, output, usable = em(everyone, tuple(part[:1] for part in point), common=True)
    else:
        level, output, usable = em(everyone, point)
    used = np.ones(n_rep, dtype=int)

    def move(rows, mask, new_point, new_level, new_output, new_usable):
        where = rows[mask]
        for target, value in zip(point + output, new_point + new_output, strict=True):
            target[where] = value[mask]
        level[where] = new_level[mask]
        usable[where] = new_usable[mask]

    rows = np.flatnonzero(usable & np.isfinite(level))
    solve = None
    if rows.size >= MIN_SHARED:  # the second plain EM step, and the rate matrix
        before = tuple(part[rows] for part in point)
        after = tuple(part[rows] for part in output)
        new_level, new_output, new_usable = em(rows, after)
        used[rows] += 1
        move(rows, np.isfinite(new_level), after, new_level, new_output, new_usable)
        keep = np.isfinite(new_level) & new_usable
        if keep.sum() >= MIN_SHARED:
            v0, v1, v2 = (
                to_vector(*(part[keep] for part in value), covariance_type)
                for value in (before, after, new_output)
            )
            solve = rate_extrapolation(v1 - v0, (v2 - v1) - (v1 - v0))
            rows, vector, step = rows[keep], v1, v2 - v1
    previous = last_gain = None
    for _ in range(QUASI_NEWTON_STEPS if solve is not None else 0):
        residual = solve(step)
        proposal = vector + residual
        if previous is not None:  # Anderson mixing with the replicate's previous step
            dx, dr = vector - previous[0], residual - previous[1]
            with np.errstate(invalid="ignore", divide="ignore"):
                gamma = np.einsum("ip,ip->i", dr, residual) / np.einsum("ip,ip->i", dr, dr)
            gamma = np.where(np.isfinite(gamma), gamma, 0.0)
            proposal = proposal - gamma[:, None] * (dx + dr)
        proposed = from_vector(proposal, n_comp, d, covariance_type)
        new_level, new_output, new_usable = em(rows, proposed)
        used[rows] += 1
        old = level[rows]
        accept = np.isfinite(proposal).all(axis=1) & np.isfinite(new_level)
        accept &= new_level >= old - ROUNDOFF * (1.0 + np.abs(old))
        move(rows, accept, proposed, new_level, new_output, new_usable)
        # left to polishing: a step (or the predicted rest) gaining less than its tolerance
        gain = new_level - old
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.clip(gain / last_gain, 0.0, 0.5) if last_gain is not None else 1.0
        threshold = tol * (totals[rows] + np.abs(new_level))
        settled = (gain < threshold) | (gain * ratio / (1.0 - ratio + 1e-300) < threshold)
        go = accept & new_usable & ~settled
        if not go.any():
            break
        new_step = to_vector(*(part[go] for part in new_output), covariance_type) - proposal[go]
        previous = (vector[go], residual[go])
        last_gain = gain[go]
        rows, vector, step = rows[go], proposal[go], new_step
    evaluated = (level, _uncentred(output, center), usable)
    return _uncentred(point, center), evaluated, used


def rate_extrapolation(moves, changes):
    """A function ``step -> (I - J)^-1 step`` (the Newton step to the fixed point of an EM
    map with rate matrix ``J``) from secant pairs of many replicates, (B, P) each: a move
    ``x' - x`` and the change ``F(x') - x' - (F(x) - x)`` of the EM step it caused, so that
    ``changes ~ (J - I) moves``. ``J`` is fitted by least squares within the span of the
    leading right singular vectors of ``moves`` (at most ``B // 2`` of them, so the fit is
    overdetermined) and taken as 0 outside it (a plain EM step there). None when ``J`` cannot
    be estimated or its spectral radius is ``MAX_RATE`` or more (EM would not be a
    contraction there). The first pair of two plain EM steps ``s1``, ``s2`` is
    ``(s1, s2 - s1)``, i.e. ``s2 ~ J s1``."""
    if not (np.isfinite(moves).all() and np.isfinite(changes).all()):
        return None
    _, singular, vt = np.linalg.svd(moves, full_matrices=False)
    if singular.size == 0 or singular[0] <= 0:
        return None
    rank = int(np.sum(singular > 1e-10 * singular[0]))
    rank = min(rank, moves.shape[0] // 2)
    if rank < 1:
        return None
    basis = vt[:rank].T  # (P, q)
    z_move, z_change = moves @ basis, changes @ basis
    fitted, *_ = np.linalg.lstsq(z_move, z_change, rcond=None)  # z_change ~ z_move @ (J-I)^T
    rate = fitted.T + np.eye(rank)
    radius = np.abs(np.linalg.eigvals(rate)).max()
    if not np.isfinite(radius) or radius >= MAX_RATE:
        return None
    inverse = np.linalg.inv(np.eye(rank) - rate)

    def solve(step):
        inside = step @ basis
        return step + (inside @ inverse.T - inside) @ basis.T

    return solve


def _uncentred(parameters, center):
    return parameters[0], parameters[1] + center, parameters[2]


def _combine(parts, n_rows) -> MixtureFit:
    """One MixtureFit of ``n_rows`` starts from ``(rows, fit)`` parts (traces padded with
    NaN to the widest)."""
    if len(parts) == 1:
        return parts[0][1]
    first = parts[0][1]
    width = max(fit.trace.shape[1] for _, fit in parts)
    values = {}
    for name in MixtureFit.PER_START:
        sample = getattr(first, name)
        if name == "trace":
            values[name] = np.full((n_rows, width), np.nan)
        else:
            values[name] = np.empty((n_rows,) + sample.shape[1:], sample.dtype)
        for rows, fit in parts:
            part = getattr(fit, name)
            if name == "trace":
                values[name][rows, : part.shape[1]] = part
            else:
                values[name][rows] = part
    n_samples = np.empty(n_rows)
    for rows, fit in parts:
        n_samples[rows] = fit.n_samples
    return replace(first, **values, n_samples=n_samples)


def _take(fit: MixtureFit, rows) -> MixtureFit:
    """The starts ``rows`` of a batched fit."""
    values = {name: getattr(fit, name)[rows] for name in MixtureFit.PER_START}
    n_samples = fit.n_samples[rows] if np.ndim(fit.n_samples) else fit.n_samples
    return replace(fit, **values, n_samples=n_samples)


def _merge_polished(fit: MixtureFit, polished: MixtureFit, rows) -> MixtureFit:
    """``fit`` with the starts ``rows`` replaced by their polished solutions (iterations of
    both stages added; converged when the polishing converged; ``trace`` stays the batch's)."""
    values = {name: np.array(getattr(fit, name), copy=True) for name in MixtureFit.PER_START}
    for name in ("weights", "means", "covariances", "precisions_cholesky"):
        values[name][rows] = getattr(polished, name)
    values["log_likelihood"][rows] = polished.log_likelihood
    values["log_prior"][rows] = polished.log_prior
    values["converged"][rows] = polished.converged
    values["failed"][rows] = polished.failed
    values["failure_reason"][rows] = polished.failure_reason
    values["n_iter"][rows] += polished.n_iter
    values["max_decrease"][rows] = np.maximum(values["max_decrease"][rows], polished.max_decrease)
    return replace(fit, **values)
