"""SQUAREM-accelerated EM for polishing a few Gaussian-mixture starts to a tight tolerance.

Near an optimum EM converges linearly, often slowly (rates of 0.99 and above are common with
overlapping components), so iterating from scikit-learn's loose stopping point to a relative
change of 1e-10 can take hundreds of iterations. SQUAREM (Varadhan & Roland 2008, Scand. J.
Statist. 35:335-353; scheme S3) extrapolates along the last two EM steps: with
``r = F(t) - t``, ``v = F(F(t)) - 2 F(t) + t`` and ``a = -|r| / |v|`` (at most -1) it proposes
``t - 2 a r + a^2 v`` and then takes one EM step from there.

Parameters are extrapolated in coordinates where every value is valid: log-weights
(renormalised), means, log-variances (diag, spherical) and the Cholesky factor of each
covariance with its diagonal on the log scale (full, tied). A proposal is accepted only if its
objective (log-likelihood, plus log prior with a prior) is at least that of the plain EM step
it replaces; a long one (``|a| > BACKTRACK_FROM``) that is not is tried once more at
``(a - 1) / 2``; otherwise the plain step is kept. The result is always a parameter set whose
objective was evaluated, and the best one seen: the polished objective never falls below the
start's.

A start is converged when one plain EM step from the current point changes the total objective
by less than ``tol`` relative (``|L(F(t)) - L(t)| / (1 + |L(F(t))|) < tol``), the same rule as
``fit_mixture_em(..., tol_type="relative")``.
"""

from __future__ import annotations

import numpy as np

from .covariance import collapsed_starts, precision_cholesky
from .gaussian import PreparedData, run_estep, start_weights
from .mixture_em import MixtureFit, mstep
from .monitor import EMMonitor
from .prior import ConjugatePrior, log_prior_density
from .starts import SAME_SOLUTION_TOLERANCE, components_close, same_solution


def to_vector(weights, means, covariances, covariance_type):
    """(I, P) unconstrained coordinates: log-weights, means, and the covariances' log-variances
    (diag, spherical) or lower Cholesky factors with the diagonal on the log scale (full, tied;
    NaN for a covariance that is not positive definite)."""
    from ._polish import TYPE_CODES, vectors

    weights = np.ascontiguousarray(weights, dtype=float)
    n_init, n_comp = weights.shape
    means = np.ascontiguousarray(means, dtype=float)
    d = means.shape[-1]
    flat = np.ascontiguousarray(covariances, dtype=float).reshape(n_init, -1)
    if covariance_type in ("full", "tied"):
        size = flat.shape[1] // (d * d) * (d * (d + 1) // 2)
    else:
        size = flat.shape[1]
    out = np.empty((n_init, n_comp + n_comp * d + size))
    with np.errstate(divide="ignore", invalid="ignore"):
        vectors(TYPE_CODES[covariance_type], weights, means, flat, out)
    return out


def from_vector(vector, n_comp, d, covariance_type):
    """Weights, means and covariances from the coordinates of :func:`to_vector`."""
    from ._polish import TYPE_CODES, parameters

    vector = np.ascontiguousarray(vector, dtype=float)
    n_init = vector.shape[0]
    shape = {
        "full": (n_init, n_comp, d, d),
        "tied": (n_init, d, d),
        "diag": (n_init, n_comp, d),
        "spherical": (n_init, n_comp),
    }[covariance_type]
    weights = np.empty((n_init, n_comp))
    means = np.empty((n_init, n_comp, d))
    covariances = np.empty(shape)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        parameters(
            TYPE_CODES[covariance_type], vector, weights, means, covariances.reshape(n_init, -1)
        )
    return weights, means, covariances


PRUNE_RATE = 0.999
# a rejected extrapolation longer than this (|alpha|) is retried once at (alpha - 1) / 2 before
# falling back to the plain EM step (Varadhan & Roland 2008 backtrack toward alpha = -1 on every
# rejection). On a curved ridge of the likelihood S3's step length, about 1 / (1 - rate), grows
# to 20-200 and every such proposal overshoots, so the fit falls back to plain EM for dozens of
# cycles; the halved step is usually accepted there. Backtracking also from short steps costs
# more evaluations than it saves (measured on the benchmark grid and Old Faithful's K x type
# lattice: EM maps of the slowest polished start per fit -49 % with this rule, -30 % when every
# rejection backtracks once).
BACKTRACK_FROM = 16.0
# run the cycles of complete-data fits without a prior compiled (:mod:`em_lib.numerics._polish`);
# False runs every fit through the numpy loop (the tests compare the two)
COMPILED_CYCLES = True
ROUNDOFF = 1e-12  # relative: objectives closer than this count as equal


def usable_parameters(w, mu, cov, covariance_type, feature_variances):
    """Precision Cholesky factors of the starts' covariances and whether each start can be
    evaluated: positive weights, finite means, covariances positive definite and not
    collapsed (see :func:`~em_lib.numerics.covariance.collapsed_starts`)."""
    prec, ok = precision_cholesky(cov, covariance_type)
    ok &= ~collapsed_starts(prec, covariance_type, feature_variances)
    ok &= np.all(w > 0, axis=1) & np.isfinite(mu).all(axis=(1, 2))
    return prec, ok


def em_map(
    engine,
    row_weights,
    parameters,
    covariance_type,
    reg_covar,
    prior,
    feature_variances,
    common=False,
):
    """One EM map of usable starts (centred parameters ``(w, mu, cov, prec)``, init dimension
    first) on the data of ``engine``, rows weighted by ``row_weights`` (None, (n,) or (I, n)).

    ``common``: the parameters are one start's, (1, ...), to be mapped under each of the B
    rows of ``row_weights`` (B, n), e.g. bootstrap replicates all at the ML fit: one start's
    E-step, then the B weighted statistics (complete data; the results have B rows).

    Returns ``(loglik, log_prior, (w', mu', cov'), usable', prec')``: the input's
    log-likelihood and log prior density (0 without ``prior``), the M-step's output, whether
    the output can be evaluated next (finite, positive weights, not collapsed) and its
    precision Cholesky factors.
    """
    w, mu, cov, prec = parameters
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if common:
            result = engine.estep_common(np.log(w), mu, prec, row_weights)
        else:
            result = run_estep(
                engine, np.log(w), mu, cov, prec, want_stats=True, row_weights=row_weights
            )
        n_out = len(result["loglik"])
        if prior is not None:
            log_prior = log_prior_density(mu, cov, prec, covariance_type, prior)
            log_prior = np.broadcast_to(log_prior, (n_out,)).copy()
        else:
            log_prior = np.zeros(n_out)
        values = mstep(result["stats"], covariance_type, reg_covar, prior)
    factor, good = precision_cholesky(values[2], covariance_type)
    good &= np.isfinite(values[1]).all(axis=(1, 2)) & np.isfinite(values[0]).all(axis=1)
    good &= np.all(values[0] > 0, axis=1)
    good &= ~collapsed_starts(factor, covariance_type, feature_variances)
    return result["loglik"], log_prior, values, good, factor


def polish_em(
    X,
    weights,
    means,
    covariances,
    covariance_type,
    *,
    tol=1e-10,
    max_iter=1000,
    reg_covar=1e-6,
    prior: ConjugatePrior | None = None,
    prepared: PreparedData | None = None,
    prune=True,
    sample_weight=None,
    evaluated=None,
) -> MixtureFit:
    """Continue EM from the given starts (init dimension first) with SQUAREM acceleration.

    ``max_iter`` bounds the number of EM-map evaluations (each one E-step and M-step). The
    returned :class:`MixtureFit` holds, per start, the best evaluated parameters; its
    ``trace`` is the best objective seen (per sample) after each evaluation, and ``n_iter``
    the number of evaluations. A start has converged when one plain EM step changes its mean
    per-sample objective ``l`` by less than ``tol * (1 + |l|)`` (relative, and unchanged when
    every row weight is scaled by the same factor). With ``prune``, a start stops early
    (``settings["pruned"]``) once it cannot catch up with the best start: its objective plus
    its last EM step's gain divided by ``1 - PRUNE_RATE`` (what the rest of a linearly
    converging EM run at rate 0.999 would add) stays below the best objective so far; or once
    it has run into the solution of a start with a higher objective that is still running or
    has converged: matched means and weights within ``SAME_SOLUTION_TOLERANCE`` (0.1) data
    standard deviations, the rule by which the starts to polish were chosen as distinct. (On
    a flat ridge of the likelihood, starts of one basin stopped at a loose ``tol`` differ by
    more than that, and approach each other slowly: a tighter rule let them run to the end.)
    ``sample_weight``: row weights as in :func:`~em_lib.numerics.mixture_em.fit_mixture_em`;
    with weights that differ per start the starts fit different data, so ``prune`` must be
    off. ``evaluated``: the EM map of the given starts when the caller has already evaluated
    it, ``(objective, (weights, means, covariances), usable)`` with the starts' objectives
    and their EM outputs (the starts themselves are then not candidates for the result,
    which is always an EM output, and that evaluation is not counted in ``n_iter``).
    """
    if prepared is None or prepared.covariance_type != covariance_type:
        shared = sample_weight if np.ndim(sample_weight) == 1 else None
        prepared = PreparedData(X, covariance_type, sample_weight=shared)
    row_weights, n = prepared.rows(sample_weight)
    if prune and np.ndim(row_weights) == 2:
        raise ValueError("starts with their own row weights cannot be pruned against each other")
    n_init = np.shape(weights)[0]
    polish = _Polish(
        covariance_type,
        prepared,
        row_weights,
        n,
        EMMonitor(n_init, max_iter, tol=tol, tol_type="relative", n_samples=n),
        tol,
        max_iter,
        prune,
    )
    starts = (
        np.array(weights, dtype=float),
        np.array(means, dtype=float) - prepared.center,
        np.array(covariances, dtype=float),
    )
    inputs = None
    if COMPILED_CYCLES and evaluated is None:
        from ._polish import compiled_inputs

        n_columns = starts[1].shape[0] * starts[1].shape[1]
        inputs = compiled_inputs(prepared, row_weights, prior, n_columns)
    compiled = inputs is not None
    if compiled:
        _compiled_loop(polish, starts, reg_covar, inputs)
    else:
        _numpy_loop(polish, starts, reg_covar, prior, evaluated)
    monitor, best = polish.monitor, polish.best
    means_out = best["means"] + prepared.center
    prec_out, _ = precision_cholesky(best["covariances"], covariance_type)
    unusable = np.flatnonzero(~np.isfinite(polish.best_objective) & ~monitor.failed)
    monitor.fail(unusable, "no finite, non-collapsed parameters while polishing")
    failed = monitor.failed
    return MixtureFit(
        covariance_type=covariance_type,
        weights=best["weights"],
        means=means_out,
        covariances=best["covariances"],
        precisions_cholesky=prec_out,
        log_likelihood=np.where(failed, -np.inf, polish.best_loglik),
        log_prior=polish.best_log_prior,
        **monitor.results(),
        n_samples=n,
        settings={
            "tol": tol,
            "tol_type": "relative",
            "max_iter": max_iter,
            "reg_covar": reg_covar,
            "prior": prior is not None,
            "missing_data": prepared.missing,
            "accelerated": "SQUAREM-S3",
            "compiled": compiled,
            "pruned": polish.pruned,
        },
    )


class _Polish:
    """What both loops of :func:`polish_em` share: the per-start best parameters and
    objectives, the monitor, and the rule that decides after each cycle's two EM maps which
    starts go on (the convergence test and the pruning)."""

    def __init__(self, covariance_type, prepared, row_weights, n, monitor, tol, max_iter, prune):
        self.covariance_type = covariance_type
        self.prepared = prepared
        self.row_weights = row_weights
        self.n = n
        self.monitor = monitor
        self.tol = tol
        self.max_iter = max_iter
        self.prune = prune
        n_init = monitor.n_iter.shape[0]
        self.best: dict[str, np.ndarray] = {}
        self.best_objective = np.full(n_init, -np.inf)
        self.best_loglik = np.full(n_init, -np.inf)
        self.best_log_prior = np.zeros(n_init)
        self.pruned = np.zeros(n_init, dtype=bool)
        self.scale = np.sqrt(prepared.feature_variances) + 1e-300

    def go_on(self, active, obj0, obj1, usable):
        """Mask over ``active`` of the starts that take another cycle, given the objectives
        of the cycle's two EM maps (``obj0`` of the point, ``obj1`` of its map) and whether
        both were usable; marks the converged and the pruned ones."""
        monitor, best_objective = self.monitor, self.best_objective
        with np.errstate(invalid="ignore"):
            size = self.n if np.ndim(self.n) == 0 else self.n[active]
            new_mean, old_mean = obj1 / size, obj0 / size
            done = usable & (np.abs(new_mean - old_mean) < self.tol * (1.0 + np.abs(new_mean)))
        monitor.mark_converged(active[done])
        if self.prune:
            # a start that even an EM rate of ``PRUNE_RATE`` could not lift to the leader
            # (remaining gain <= step gain / (1 - rate)) is left where it is
            leader = best_objective.max()
            with np.errstate(invalid="ignore"):
                reach = best_objective[active] + np.maximum(obj1 - obj0, 0.0) / (1 - PRUNE_RATE)
            hopeless = usable & ~done & (reach < leader - 1e-9 * (1 + abs(leader)))
            # a start that has run into the solution of a better start (running or
            # converged) adds nothing either: the better start stands for that optimum
            best, scale = self.best, self.scale
            for position, start in enumerate(active):
                if not usable[position] or done[position] or hopeless[position]:
                    continue
                better = ~self.pruned & (best_objective > best_objective[start])
                if better.any():  # the matching's necessary condition, every partner at once
                    scaled = best["means"] / scale
                    better &= components_close(
                        best["weights"][start],
                        scaled[start],
                        best["weights"],
                        scaled,
                        SAME_SOLUTION_TOLERANCE,
                    )
                better = np.flatnonzero(better)
                hopeless[position] = any(
                    _same_optimum(best, start, other, scale) for other in better
                )
            self.pruned[active[hopeless]] = True
            done |= hopeless
        # a start whose next EM step is unusable (not finite, collapsed) stops here and
        # keeps its best evaluated parameters
        return usable & ~done & (monitor.n_iter[active] + 1 < self.max_iter)


def _compiled_loop(polish: _Polish, starts, reg_covar, inputs):
    """The SQUAREM cycles of :mod:`em_lib.numerics._polish` (complete data, no prior, rows
    weighted alike for every start), one compiled call per cycle of every running start;
    ``inputs``: :func:`~em_lib.numerics._polish.compiled_inputs`."""
    from ._polish import cycles

    code, phi, row_weights, block, floor = inputs
    weights, means, covariances = starts
    n_init = means.shape[0]
    flat = np.ascontiguousarray(covariances).reshape(n_init, -1)
    states = tuple((weights.copy(), means.copy(), flat.copy()) for _ in range(3))
    best = (weights.copy(), means.copy(), flat.copy(), polish.best_objective)
    polish.best = {"weights": best[0], "means": best[1]}
    results = (np.empty(n_init), np.empty(n_init), np.zeros(n_init, bool), np.zeros(n_init, bool))
    log = np.empty((n_init, 4))
    active = np.arange(n_init)
    extrapolate = False
    while active.size:
        counts = cycles(
            code,
            phi,
            row_weights,
            block,
            float(reg_covar),
            floor,
            ROUNDOFF,
            BACKTRACK_FROM,
            active,
            extrapolate,
            states,
            best,
            polish.best_loglik,
            results,
            log,
        )
        for column in range(int(counts.max())):
            starts_in = active[counts > column]
            polish.monitor.record(starts_in, log[starts_in, column])
        obj0, obj1 = results[0][active], results[1][active]
        usable = results[2][active] & results[3][active] & np.isfinite(obj0) & np.isfinite(obj1)
        go = polish.go_on(active, obj0, obj1, usable)
        active = active[go]
        extrapolate = True
    polish.best["covariances"] = best[2].reshape(covariances.shape)


def _numpy_loop(polish: _Polish, starts, reg_covar, prior, evaluated):
    """The SQUAREM cycles in numpy, every running start's EM map one batched call (missing
    data, a prior, rows weighted differently per start)."""
    covariance_type, prepared = polish.covariance_type, polish.prepared
    engine, center = prepared.engine, prepared.center
    row_weights = polish.row_weights
    prior_c = prior.shifted(center) if prior is not None else None
    feature_variances = prepared.feature_variances
    weights, means, covariances = starts
    n_init, n_comp, d = means.shape
    monitor = polish.monitor
    best = polish.best
    best.update(weights=weights.copy(), means=means.copy(), covariances=covariances.copy())
    best_objective = polish.best_objective
    best_loglik = polish.best_loglik
    best_log_prior = polish.best_log_prior

    def evaluate(index, w, mu, cov, factors=None, record=True):
        """One EM map for starts ``index``: objective of the input (-inf where the input is
        not usable), the output parameters, whether the output is usable and the output's
        precision Cholesky factors. ``factors``: the input's ``(factors, usable)`` when an
        earlier call returned them (the input is that call's output), else computed here.
        With ``record`` the input becomes the start's best if its objective is the highest
        seen; proposals (extrapolated points no EM step produced) are never recorded, so the
        result is always an EM step's output (e.g. variances never fall below ``reg_covar``)."""
        if factors is None:
            prec, ok = usable_parameters(w, mu, cov, covariance_type, feature_variances)
        else:
            prec, ok = factors[0], factors[1].copy()
        objective = np.full(len(index), -np.inf)
        loglik = np.full(len(index), -np.inf)
        log_prior = np.zeros(len(index))
        sub = np.flatnonzero(ok)
        everyone = sub.size == len(index)  # the usual case: views instead of copies
        pick = slice(None) if everyone else sub
        if everyone:
            new, new_ok, new_prec = None, None, None
        else:
            new = (w.copy(), mu.copy(), cov.copy())
            new_ok = np.zeros(len(index), dtype=bool)
            new_prec = prec.copy()
        if sub.size:
            weights_sub = start_weights(row_weights, index[sub])
            loglik[pick], log_prior[pick], values, good, factor = em_map(
                engine,
                weights_sub,
                (w[pick], mu[pick], cov[pick], prec[pick]),
                covariance_type,
                reg_covar,
                prior_c,
                feature_variances,
            )
            total = loglik[pick] + log_prior[pick]
            objective[pick] = np.where(np.isfinite(total), total, -np.inf)
            if everyone:
                new, new_ok, new_prec = values, good, factor
            else:
                for target, value in zip(new, values, strict=True):
                    target[sub] = value
                new_ok[sub] = good
                new_prec[sub] = factor
        # the latest EM output replaces the best unless it is worse beyond round-off: near
        # the optimum the choice between points whose objectives differ by round-off would
        # otherwise depend on the summation order (weighted rows vs repeated rows)
        floor = best_objective[index] - ROUNDOFF * (1.0 + np.abs(best_objective[index]))
        improved = (objective >= np.where(np.isfinite(floor), floor, -np.inf)) & record
        improved &= np.isfinite(objective)
        for name, value in (("weights", w), ("means", mu), ("covariances", cov)):
            best[name][index[improved]] = value[improved]
        best_objective[index[improved]] = objective[improved]
        best_loglik[index[improved]] = loglik[improved]
        best_log_prior[index[improved]] = log_prior[improved]
        monitor.record(index, best_objective[index])
        return objective, new, new_ok, new_prec

    active = np.arange(n_init)
    current = (weights, means, covariances)
    current_factors = None  # (factors, usable) of ``current`` once an EM step produced it
    while active.size:
        w0, mu0, cov0 = (part[active] for part in current)
        factors0 = None
        if current_factors is not None:
            factors0 = (current_factors[0][active], current_factors[1][active])
        if evaluated is not None:  # the first cycle's first EM map, done by the caller
            obj0, step1, ok1, prec1 = _given_evaluation(evaluated, center, covariance_type)
            evaluated = None
        else:
            obj0, step1, ok1, prec1 = evaluate(active, w0, mu0, cov0, factors0)
        obj1, step2, ok2, prec2 = evaluate(active, *step1, factors=(prec1, ok1))
        usable = ok1 & ok2 & np.isfinite(obj0) & np.isfinite(obj1)
        go = polish.go_on(active, obj0, obj1, usable)
        if not go.any():
            break
        index = active[go]
        t0 = to_vector(w0[go], mu0[go], cov0[go], covariance_type)
        t1 = to_vector(*(part[go] for part in step1), covariance_type)
        t2 = to_vector(*(part[go] for part in step2), covariance_type)
        r = t1 - t0
        v = t2 - t1 - r
        r_norm = np.sqrt(np.einsum("ip,ip->i", r, r))
        v_norm = np.sqrt(np.einsum("ip,ip->i", v, v))
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = np.where(v_norm > 0, -r_norm / v_norm, -1.0)
        alpha = np.minimum(alpha, -1.0)
        proposal = t0 - 2 * alpha[:, None] * r + alpha[:, None] ** 2 * v
        proposed = from_vector(proposal, n_comp, d, covariance_type)
        finite = np.all(np.isfinite(proposal), axis=1)
        plain = tuple(part[go] for part in step2)
        obj_p, step_p, ok_p, prec_p = evaluate(index, *proposed, record=False)
        accept = finite & ok_p & np.isfinite(obj_p) & (obj_p >= obj1[go])
        retry = np.flatnonzero(~accept & (alpha < -BACKTRACK_FROM))
        if retry.size:  # one step back toward the plain EM step (alpha = -1)
            half = (alpha[retry] - 1.0) / 2.0
            again = t0[retry] - 2 * half[:, None] * r[retry] + half[:, None] ** 2 * v[retry]
            obj_b, step_b, ok_b, prec_b = evaluate(
                index[retry], *from_vector(again, n_comp, d, covariance_type), record=False
            )
            good = np.all(np.isfinite(again), axis=1) & ok_b & np.isfinite(obj_b)
            good &= obj_b >= obj1[go][retry]
            taken = retry[good]
            step_p = tuple(np.array(part, copy=True) for part in step_p)
            prec_p, ok_p = np.array(prec_p, copy=True), np.array(ok_p, copy=True)
            for target, value in zip(step_p, step_b, strict=True):
                target[taken] = value[good]
            prec_p[taken], ok_p[taken] = prec_b[good], ok_b[good]
            accept[taken] = True
        following = tuple(
            np.where(_expand(accept, a), a, b) for a, b in zip(step_p, plain, strict=True)
        )
        current = tuple(np.array(part, copy=True) for part in current)
        for target, value in zip(current, following, strict=True):
            target[index] = value
        # the next cycle starts from an EM step's output: its factors are known
        if current_factors is None:
            current_factors = (np.empty_like(covariances), np.zeros(n_init, dtype=bool))
        current_factors[0][index] = np.where(_expand(accept, prec_p), prec_p, prec2[go])
        current_factors[1][index] = np.where(accept, ok_p, ok2[go])
        active = index


def _given_evaluation(evaluated, center, covariance_type):
    """A caller's evaluation ``(objective, (w, mu, cov), usable)`` in the form ``evaluate``
    returns (means centred, output factors computed)."""
    objective, (w, mu, cov), usable = evaluated
    prec, ok = precision_cholesky(np.asarray(cov, dtype=float), covariance_type)
    step = (np.asarray(w, dtype=float), np.asarray(mu, dtype=float) - center, cov)
    objective = np.where(np.isfinite(objective), objective, -np.inf)
    return objective, step, ok & np.asarray(usable, dtype=bool), prec


def _expand(mask, like):
    return mask.reshape(mask.shape + (1,) * (like.ndim - 1))


def _same_optimum(best, start, other, scale):
    """Whether the best parameters of ``start`` and ``other`` sit at the same solution
    (:func:`~em_lib.numerics.starts.same_solution` within ``SAME_SOLUTION_TOLERANCE``)."""
    return same_solution(
        best["weights"][start],
        best["means"][start],
        best["weights"][other],
        best["means"][other],
        scale,
        SAME_SOLUTION_TOLERANCE,
    )
