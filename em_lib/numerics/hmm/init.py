"""Starting parameters of a batched HMM fit (``n_init`` starts from one Generator).

Strategies (:func:`initial_hmm_parameters`; :func:`hmm_start_kinds` names the kind of every
start):

``"gmm"``
    every start from em_lib's mixture EM on the pooled data, started from k-means
    (k-means++ seeds) and run briefly; transitions from the mixture's consecutive posteriors.
``"random"``
    random rows as means, the pooled data covariance, flat Dirichlet start and transition
    rows.
``"auto"`` (the default of :class:`em_lib.hmm.GaussianHMM` and :class:`~.driver.HMMSettings`)
    start 0 is a ``gmm`` start; starts 1, 2, ... cycle, by index, through
    ``random-persistent``, ``kmeans-random_transitions``, ``random-persistent``,
    ``gmm-random_from_data`` (:func:`hmm_start_kinds`; with the default 10 starts: 1 gmm,
    5 random-persistent, 2 kmeans-random_transitions, 2 gmm-random_from_data):

    ``random-persistent``
        distinct random rows as means, the pooled data covariance for every state,
        ``startprob`` ~ Dirichlet(1), transition rows ~ Dirichlet with extra weight on the
        diagonal (expected self-transition ``PERSISTENCE`` = 0.8);
    ``kmeans-random_transitions``
        k-means centres of all observed rows as means (k-means++ seeds and Lloyd steps, own
        seeds per start), the pooled data covariance for every state, ``startprob`` and
        every transition row ~ Dirichlet(1/K) (sparse: most of a row's mass on one or two
        successors);
    ``gmm-random_from_data``
        a ``gmm`` start whose mixture EM starts from random rows as centres instead of
        k-means.

    Screening (emEM, Biernacki, Celeux & Govaert 2003): every start of the three random
    kinds is the best of ``SCREEN_CANDIDATES`` = 8 candidates of its own kind. All candidates
    of all starts run ``SCREEN_ITER`` = 10 Baum-Welch iterations in one batch
    (:func:`screen_starts`: ``tol=0``, no priors, the given ``reg_covar``) and each start
    gets the *starting* parameters of its candidate with the highest log-likelihood after
    them; the fit then runs from those starts as from any other. The ``gmm`` start (start 0)
    is not screened. The mix of kinds and :func:`hmm_start_kinds` are unchanged by
    screening: it picks within a kind, so the diversity of the mix is kept while each start
    becomes more likely to be in a good basin. With a sequence shorter than 2 steps (no
    transition) nothing is screened.

    Why this mix: the ``gmm`` starts all run the same kind of mixture fit on the pooled
    data, and k-means++ seeds of structured data mostly reach the same partition, so every
    start can land in one mixture optimum and then in one HMM optimum (on one real series
    all 200 ``gmm`` starts did). The pooled mixture (the HMM's stationary marginal) is still
    the best single guess, so start 0 keeps it. The other kinds each vary what a ``gmm``
    start fixes: random means with persistent transitions let the chain's time structure,
    not the marginal, decide where the states go (regimes); k-means means with sparse random
    transitions keep the emissions data-driven but leave the chain's structure open, so
    Baum-Welch can find chains that are not persistent (a seasonal cycle of states, regimes
    that alternate), which every start with transitions from the marginal's posteriors or
    with a heavy diagonal misses; mixtures from random centres reach mixture optima k-means
    does not.

    The evidence (``benchmarks/bench_hmm_real.py`` has the real series and
    ``benchmarks/results_hmm_real.md`` the numbers): per kind, 90 starts run to convergence
    on each of 38 problems (six public real series, iris, airquality with its missing
    values, sequences from HMMs with more states than fitted); no kind reaches the best
    optimum most often everywhere, and a mix misses less often than any one kind. An earlier
    mix had k-means on random halves of the rows in place of ``kmeans-random_transitions``:
    its starts reached the optima of the ``gmm`` start on almost every problem. Hard
    problems remain where every kind reaches the best optimum from a fifth of its starts or
    less: on a seasonal series (German quarterly inflation and interest rate, K=3, full) only
    ``kmeans-random_transitions`` (0.21 of 200 starts) and ``gmm-random_from_data`` (0.13)
    reach it, and 10 unscreened starts missed it for about half of the seeds. The
    log-likelihood after 10 iterations tells the basins apart well within a kind (best of 5
    candidates: 0.66 and 0.44; after 3 iterations it does not: 0.16), so screening raised
    the seeds reaching hmmlearn's best of 10 seeds on that case from 66 of 120 (seeds
    0..29, 100..129, 200..259) to 120 of 120, and on the 18 real cases the fits below it
    from 104 to 5 of 2160; the median time of a fit, summed over the 18 cases, stayed about
    the same (1.20 and 1.17 s: cheap fits take longer, slow ones converge sooner from
    better starts). A screen by likelihood alone prefers candidates collapsing onto a few
    points, whose likelihood rises fast (on the Nile series, K=3, fits ending with such a
    state rose from 16 to 36 of 60 seeds); :func:`screen_starts` ranks them last, which
    brought it to 4 of 60. An earlier trial of screening in another form (30-100
    candidates, 3-10 iterations) hurt where the best optimum rises late (iris, airquality,
    a 6-state sequence); this one did not: on 15 such problems (iris and airquality with
    K = 3, 4, diag and full; seven fits of sequences from HMMs with more states than
    fitted), 20 seeds each, 114 fits against 113 without screening ended more than 0.1 nat
    below the best optimum found (iris and airquality: nearly every fit of either, below
    an optimum one or two seeds find; the sequences: 0 against 3), at about 1.3 times the
    time.

The random stream: ``"auto"`` draws the starts of each kind as one batch, kinds in the order
of ``AUTO_KINDS`` (gmm, random-persistent, kmeans-random_transitions, gmm-random_from_data),
all from the one Generator; a screened kind draws ``SCREEN_CANDIDATES`` candidates per start
in that batch (candidate ``j * SCREEN_CANDIDATES + c`` belongs to the kind's ``j``-th start);
screening draws nothing. With ``n_init=1`` ``"auto"`` is exactly ``"gmm"``.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..covariance import check_covariance_type
from ..criteria import logsumexp
from ..init import initial_parameters
from ..mixture_em import fit_mixture_em
from ..starts import as_generator
from .baum_welch import fit_hmm_em
from .checks import check_sequences
from .emissions import column_centre, emission_log_prob
from .forward_backward import forward_backward

INIT_STRATEGIES = ("auto", "gmm", "random")
AUTO_KINDS = ("gmm", "random-persistent", "kmeans-random_transitions", "gmm-random_from_data")
# the kinds of starts 1, 2, ... of "auto", in turn (half of them random-persistent)
AUTO_CYCLE = (
    "random-persistent",
    "kmeans-random_transitions",
    "random-persistent",
    "gmm-random_from_data",
)
PERSISTENCE = 0.8  # expected self-transition of a random-persistent start
SCREEN_CANDIDATES = 8  # candidates drawn per random start of "auto"; the best one is kept
SCREEN_ITER = 10  # Baum-Welch iterations by which the candidates are compared
COLLAPSED_VARIANCE = 1e-3  # a screened candidate's state variance below this times the data's

__all__ = [
    "AUTO_KINDS",
    "INIT_STRATEGIES",
    "SCREEN_CANDIDATES",
    "SCREEN_ITER",
    "hmm_start_kinds",
    "initial_hmm_parameters",
    "screen_starts",
]


def _data_covariance(X):
    """Covariance of data with NaN: observed variances on the diagonal, off-diagonal terms
    from mean-imputed data, plus a small ridge so that it is positive definite."""
    center = column_centre(X)
    filled = np.where(np.isnan(X), center, X)
    d = X.shape[1]
    cov = np.atleast_2d(np.cov(filled, rowvar=False, ddof=0)).reshape(d, d)
    observed = ~np.isnan(X)
    sq = np.where(observed, (X - center) ** 2, 0.0).sum(0) / np.maximum(observed.sum(0), 1)
    cov[np.diag_indices(d)] = sq
    scale = float(np.mean(sq)) if np.mean(sq) > 0 else 1.0
    cov[np.diag_indices(d)] += 1e-6 * scale
    cov[np.diag_indices(d)] = np.maximum(cov[np.diag_indices(d)], 1e-3 * scale)
    return cov


def _typed_from_full(cov, covariance_type, n_init, n_components):
    d = cov.shape[0]
    if covariance_type == "full":
        return np.broadcast_to(cov, (n_init, n_components, d, d)).copy()
    if covariance_type == "tied":
        return np.broadcast_to(cov, (n_init, d, d)).copy()
    if covariance_type == "diag":
        return np.broadcast_to(np.diag(cov), (n_init, n_components, d)).copy()
    return np.full((n_init, n_components), np.trace(cov) / d)


def _pair_rows(offsets):
    """Row indices t with t + 1 in the same sequence."""
    return np.concatenate(
        [np.arange(lo, hi - 1) for lo, hi in zip(offsets[:-1], offsets[1:], strict=True)]
    )


def hmm_start_kinds(init, n_init) -> list[str]:
    """What each of the ``n_init`` starts of strategy ``init`` is made from, in start order.

    ``"gmm"`` and ``"random"`` make every start the same way. ``"auto"``: start 0 is
    ``gmm``; starts 1, 2, ... cycle through ``AUTO_CYCLE`` (``random-persistent``,
    ``kmeans-random_transitions``, ``random-persistent``, ``gmm-random_from_data``; see the
    module docstring).
    """
    if init not in INIT_STRATEGIES:
        raise ValueError(f"init must be one of {list(INIT_STRATEGIES)}, got {init!r}")
    n_init = int(n_init)
    if init != "auto":
        return [init] * n_init
    return [AUTO_KINDS[0]] + [AUTO_CYCLE[i % len(AUTO_CYCLE)] for i in range(n_init - 1)]


def _soft_transitions(X, offsets, weights, means, covariances, covariance_type):
    """Transition rows from the consecutive mixture posteriors of every step,
    ``sum_t r_tj r_{t+1,k} + 1`` normalised: (I, K, K)."""
    center = column_centre(X)
    log_resp = emission_log_prob(X, means, covariances, covariance_type, center)
    log_resp += np.log(weights)[:, None, :]
    log_resp -= logsumexp(log_resp, axis=-1)[..., None]
    with np.errstate(under="ignore"):
        resp = np.exp(log_resp)
    first = _pair_rows(offsets)
    counts = np.einsum("inj,ink->ijk", resp[:, first], resp[:, first + 1]) + 1.0
    return counts / counts.sum(-1, keepdims=True)


def _mixture_starts(X, offsets, pooled, k, covariance_type, count, method, rng, options):
    """``count`` starts from em_lib's mixture EM on the pooled data (initialisation
    ``method``, at most ``options["gmm_max_iter"]`` iterations): emissions and ``startprob``
    from the mixture, transitions from its consecutive posteriors."""
    reg_covar = options["reg_covar"]
    data_covariances = _typed_from_full(options["data_cov"], covariance_type, count, k)
    weights, means, covariances = initial_parameters(
        pooled, k, covariance_type, count, method, rng, reg_covar=reg_covar
    )
    gmm = fit_mixture_em(
        pooled,
        weights,
        means,
        covariances,
        covariance_type,
        tol=options["gmm_tol"],
        max_iter=options["gmm_max_iter"],
        reg_covar=reg_covar,
    )
    good = ~gmm.failed
    weights = np.where(good[:, None], gmm.weights, 1.0 / k)
    means = np.where(good[:, None, None], gmm.means, means)
    covariances = np.where(
        good.reshape((-1,) + (1,) * (data_covariances.ndim - 1)), gmm.covariances, data_covariances
    )
    weights = np.maximum(weights, 1e-12)
    weights /= weights.sum(-1, keepdims=True)
    transmat = _soft_transitions(X, offsets, weights, means, covariances, covariance_type)
    return {"startprob": weights, "transmat": transmat, "means": means, "covariances": covariances}


def _random_rows(pooled, k, count, rng):
    """Means of ``count`` starts: ``k`` distinct random rows each (fully observed rows when
    there are at least ``k``, else rows with NaN replaced by column means)."""
    points = pooled[~np.isnan(pooled).any(axis=1)]
    if points.shape[0] < k:
        points = np.where(np.isnan(pooled), column_centre(pooled), pooled)
    return np.stack(
        [points[rng.choice(points.shape[0], size=k, replace=False)] for _ in range(count)]
    )


def _persistent_random_starts(pooled, k, covariance_type, count, rng, options):
    """``count`` starts: random distinct rows as means, the pooled data covariance for every
    state, ``startprob`` ~ Dirichlet(1), transition rows ~ Dirichlet with extra weight on the
    diagonal (expected self-transition ``PERSISTENCE``)."""
    means = _random_rows(pooled, k, count, rng)
    startprob = rng.dirichlet(np.ones(k), size=count)
    extra = max((PERSISTENCE * k - 1.0) / (1.0 - PERSISTENCE), 0.0)
    transmat = np.empty((count, k, k))
    for row in range(k):
        alpha = np.ones(k)
        alpha[row] += extra
        transmat[:, row] = rng.dirichlet(alpha, size=count)
    covariances = _typed_from_full(options["data_cov"], covariance_type, count, k)
    return {
        "startprob": startprob,
        "transmat": transmat,
        "means": means,
        "covariances": covariances,
    }


def _kmeans_random_transition_starts(pooled, k, covariance_type, count, rng, options):
    """``count`` starts: k-means centres on the pooled observed rows as means (k-means++
    seeds and Lloyd steps, own seeds per start), the pooled data covariance for every state,
    ``startprob`` and every transition row ~ Dirichlet(1 / K) (sparse random rows)."""
    _, means, _ = initial_parameters(
        pooled, k, covariance_type, count, "kmeans", rng, reg_covar=options["reg_covar"]
    )
    alpha = np.full(k, 1.0 / k)
    startprob = np.maximum(rng.dirichlet(alpha, size=count), 1e-12)
    transmat = np.maximum(rng.dirichlet(alpha, size=(count, k)), 1e-12)
    return {
        "startprob": startprob / startprob.sum(-1, keepdims=True),
        "transmat": transmat / transmat.sum(-1, keepdims=True),
        "means": means,
        "covariances": _typed_from_full(options["data_cov"], covariance_type, count, k),
    }


def initial_hmm_parameters(
    X,
    lengths,
    n_components,
    covariance_type,
    n_init,
    *,
    init="auto",
    random_state=None,
    reg_covar=1e-6,
    gmm_init="kmeans",
    gmm_max_iter=20,
    gmm_tol=1e-3,
    screen_candidates=SCREEN_CANDIDATES,
    screen_iter=SCREEN_ITER,
):
    """Starting parameters for ``n_init`` starts, all drawn from one explicit Generator.

    Strategies
    ----------
    ``"auto"`` (the default of :class:`em_lib.hmm.GaussianHMM`): start 0 a ``"gmm"`` start,
        the others in turn ``random-persistent``, ``kmeans-random_transitions``,
        ``random-persistent`` and ``gmm-random_from_data`` starts (:func:`hmm_start_kinds`;
        the module docstring says what each is and why the mix); every start of those three
        random kinds is the best of ``screen_candidates`` candidates of its kind after
        ``screen_iter`` Baum-Welch iterations (:func:`screen_starts`; the parameters
        returned are the chosen candidate's starting parameters). ``screen_candidates=1``
        turns screening off (the starts drawn before screening existed).
    ``"gmm"``: the mixture core's batched initialisation
        (:func:`em_lib.numerics.init.initial_parameters`, method ``gmm_init``, k-means++
        seeds and Lloyd steps by default) on the pooled data, refined by a short batched run
        of em_lib's mixture EM (:func:`~em_lib.numerics.mixture_em.fit_mixture_em`, at most
        ``gmm_max_iter`` iterations). Emissions = the mixture components, ``startprob`` =
        mixture weights, ``transmat`` rows from the soft transition counts of consecutive
        mixture posteriors, ``sum_t r_tj r_{t+1,k} + 1`` normalised (the +1 keeps every
        transition possible: Baum-Welch can never revive a zero). A start whose mixture fit
        fails keeps its k-means means with the pooled data covariance. The pooled mixture is
        the HMM's stationary marginal: it puts the emissions near a good optimum, but all
        its starts may reach the same one.
    ``"random"``: means from distinct random rows (fully observed rows when there are at
        least ``K``, else rows with NaN replaced by column means), the pooled data covariance
        for every state, start and transition rows from a flat Dirichlet(1).

    ``screen_candidates`` (default ``SCREEN_CANDIDATES`` = 8) and ``screen_iter`` (default
    ``SCREEN_ITER`` = 10) are used by ``"auto"`` only. Screening compares the candidates
    as drawn, with every parameter free and no priors: a caller that replaces some
    parameters afterwards (the driver's ``fixed``) or fits with priors gets starts chosen
    without them.

    Returns
    -------
    dict with ``startprob`` (I, K), ``transmat`` (I, K, K), ``means`` (I, K, d),
    ``covariances`` (typed).
    """
    kinds = hmm_start_kinds(init, n_init)
    check_covariance_type(covariance_type)
    X, lengths, offsets = check_sequences(X, lengths)
    k = int(n_components)
    n_init = int(n_init)
    rng = as_generator(random_state)
    pooled = X[~np.isnan(X).all(axis=1)]
    if pooled.shape[0] < k:
        raise ValueError(
            f"need at least n_components={k} observed time steps, got {pooled.shape[0]}"
        )
    cov = _data_covariance(pooled)
    if init == "random":
        means = _random_rows(pooled, k, n_init, rng)
        startprob = rng.dirichlet(np.ones(k), size=n_init)
        transmat = rng.dirichlet(np.ones(k), size=(n_init, k))
        return {
            "startprob": startprob,
            "transmat": transmat,
            "means": means,
            "covariances": _typed_from_full(cov, covariance_type, n_init, k),
        }
    options = {
        "data_cov": cov,
        "reg_covar": reg_covar,
        "gmm_max_iter": gmm_max_iter,
        "gmm_tol": gmm_tol,
    }
    if init == "gmm":
        return _mixture_starts(
            X, offsets, pooled, k, covariance_type, n_init, gmm_init, rng, options
        )
    made = {
        "startprob": np.empty((n_init, k)),
        "transmat": np.empty((n_init, k, k)),
        "means": np.empty((n_init, k, X.shape[1])),
        "covariances": _typed_from_full(cov, covariance_type, n_init, k),
    }
    screen_candidates, screen_iter = _check_screening(screen_candidates, screen_iter)
    if np.min(lengths) < 2:  # Baum-Welch needs a transition in every sequence
        screen_candidates = 1
    kinds = np.array(kinds)
    candidates, groups = [], []  # the drawn candidates of the screened kinds, their starts
    for kind in AUTO_KINDS:  # one batch per kind, in this order, from the one Generator
        rows = np.flatnonzero(kinds == kind)
        if rows.size == 0:
            continue
        count = rows.size if kind == "gmm" else rows.size * screen_candidates
        if kind == "gmm":
            part = _mixture_starts(
                X, offsets, pooled, k, covariance_type, count, gmm_init, rng, options
            )
        elif kind == "gmm-random_from_data":
            part = _mixture_starts(
                X, offsets, pooled, k, covariance_type, count, "random_from_data", rng, options
            )
        elif kind == "kmeans-random_transitions":
            part = _kmeans_random_transition_starts(pooled, k, covariance_type, count, rng, options)
        else:
            part = _persistent_random_starts(pooled, k, covariance_type, count, rng, options)
        if count == rows.size:
            for key, values in part.items():
                made[key][rows] = values
        else:  # candidate j * screen_candidates + c is a candidate of start rows[j]
            candidates.append(part)
            groups.append(np.repeat(rows, screen_candidates))
    if candidates:
        pool = {key: np.concatenate([part[key] for part in candidates]) for key in made}
        groups = np.concatenate(groups)
        chosen = screen_starts(X, lengths, pool, groups, covariance_type, screen_iter, reg_covar)
        for key in made:
            made[key][groups[chosen]] = pool[key][chosen]
    return made


def _check_screening(screen_candidates, screen_iter):
    for value, name in ((screen_candidates, "screen_candidates"), (screen_iter, "screen_iter")):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(screen_candidates), int(screen_iter)


def _state_variances(covariances, covariance_type, n_components):
    """(I, K, d) variance of every feature in every state."""
    if covariance_type == "full":
        return np.diagonal(covariances, axis1=-2, axis2=-1)
    if covariance_type == "diag":
        return covariances
    if covariance_type == "tied":
        diagonal = np.diagonal(covariances, axis1=-2, axis2=-1)
        return np.repeat(diagonal[:, None, :], n_components, axis=1)
    return covariances[..., None]  # spherical: (I, K, 1), compared with every feature


def screen_starts(X, lengths, candidates, groups, covariance_type, n_iter, reg_covar=1e-6):
    """Index of the best candidate of every group: one batched Baum-Welch run of every
    candidate (``candidates``: the four parameters, init dimension first) for ``n_iter``
    iterations (``tol=0``, no priors, ``reg_covar`` in the M-step), then, per distinct value
    of ``groups`` (one label per candidate, in sorted label order), the candidate with the
    highest log-likelihood after those iterations among those that are not collapsing (a
    failed candidate counts as -inf; a group whose candidates all failed keeps its first).
    Collapsing: after the iterations a state has fewer than ``d + 1`` expected steps
    (posteriors summed over time) or a variance below ``COLLAPSED_VARIANCE`` = 1e-3 times
    the data's variance of that feature. Such a candidate is heading for a spurious maximum
    (a state on a few, possibly tied, observations), whose likelihood rises fast, so a plain
    likelihood screen would prefer it; it is chosen only when every candidate of its group
    collapses. Draws nothing at random.

    Returns
    -------
    (n_groups,) int array: indices into the candidates, one per group in sorted label order.
    """
    X, lengths, _ = check_sequences(X, lengths, min_length=2)
    groups = np.asarray(groups)
    fit = fit_hmm_em(
        X,
        lengths,
        candidates["startprob"],
        candidates["transmat"],
        candidates["means"],
        candidates["covariances"],
        covariance_type,
        tol=0.0,
        max_iter=n_iter,
        reg_covar=reg_covar,
    )
    score = np.where(fit.failed | ~np.isfinite(fit.objective), -np.inf, fit.objective)
    variances = _state_variances(fit.covariances, covariance_type, fit.means.shape[1])
    collapsing = (variances < COLLAPSED_VARIANCE * np.nanvar(X, axis=0)).any(axis=(1, 2))
    rows = np.flatnonzero(np.isfinite(score))
    if rows.size:
        log_b = emission_log_prob(X, fit.means[rows], fit.covariances[rows], covariance_type)
        posteriors = forward_backward(log_b, fit.startprob[rows], fit.transmat[rows], lengths)
        occupancy = np.nansum(posteriors.posteriors, axis=1).min(-1)
        collapsing[rows] |= occupancy < X.shape[1] + 1
    score = np.where(collapsing, score - 1e12, score)  # below every candidate that is not
    chosen = []
    for label in np.unique(groups):
        members = np.flatnonzero(groups == label)
        chosen.append(members[int(np.argmax(score[members]))])  # first on ties / all -inf
    return np.array(chosen, dtype=np.int64)
