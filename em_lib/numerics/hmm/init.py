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

    The evidence (``benchmarks/bench_hmm_real.py`` has the real series): per kind, 90 starts
    run to convergence on each of 38 problems (six public real series, iris, airquality with
    its missing values, sequences from HMMs with more states than fitted); no kind reaches
    the best optimum most often everywhere, and a mix misses less often than any one kind.
    An earlier mix had k-means on random halves of the rows (cluster covariances,
    transitions from the label counts) in place of ``kmeans-random_transitions``: its starts
    reached the optima of the ``gmm`` start on almost every problem, so they added little;
    on a seasonal series (German quarterly inflation and interest rate, K=3, full) no start
    of ``gmm``, ``random-persistent`` or that kind reached the best optimum (a cycle of
    states), which starts with free transitions find. Whole fits (10 starts, polished), more
    than 0.1 nat below the best known optimum (real series: below hmmlearn's best of 10
    seeds): 12 problems where fits miss, 30 seeds each, 147 of 360 fits with the earlier mix
    and 117 with this one; 32 problems (airquality left out), 20 other seeds each, 101 and
    78 of 640, on the real series 31 and 15 of 360; the time of a fit is about the same.
    Drawing each ``random-persistent`` start's persistence between 1/K and 0.9 instead was
    no better (86 of 640). Hard problems remain: where every kind reaches the best optimum
    from a tenth of its starts or less, 10 starts miss it for some seeds (the seasonal
    series: about half of them).

The random stream: ``"auto"`` draws the starts of each kind as one batch, kinds in the order
of ``AUTO_KINDS`` (gmm, random-persistent, kmeans-random_transitions, gmm-random_from_data),
all from the one Generator; with ``n_init=1`` it is exactly ``"gmm"``.
"""

from __future__ import annotations

import numpy as np

from ..covariance import check_covariance_type
from ..criteria import logsumexp
from ..init import initial_parameters
from ..mixture_em import fit_mixture_em
from ..starts import as_generator
from .checks import check_sequences
from .emissions import column_centre, emission_log_prob

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

__all__ = ["AUTO_KINDS", "INIT_STRATEGIES", "hmm_start_kinds", "initial_hmm_parameters"]


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
):
    """Starting parameters for ``n_init`` starts, all drawn from one explicit Generator.

    Strategies
    ----------
    ``"auto"`` (the default of :class:`em_lib.hmm.GaussianHMM`): start 0 a ``"gmm"`` start,
        the others in turn ``random-persistent``, ``kmeans-random_transitions``,
        ``random-persistent`` and ``gmm-random_from_data`` starts (:func:`hmm_start_kinds`; the module docstring
        says what each is and why the mix).
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
    kinds = np.array(kinds)
    for kind in AUTO_KINDS:  # one batch per kind, in this order, from the one Generator
        rows = np.flatnonzero(kinds == kind)
        if rows.size == 0:
            continue
        if kind == "gmm":
            part = _mixture_starts(
                X, offsets, pooled, k, covariance_type, rows.size, gmm_init, rng, options
            )
        elif kind == "gmm-random_from_data":
            part = _mixture_starts(
                X, offsets, pooled, k, covariance_type, rows.size, "random_from_data", rng, options
            )
        elif kind == "kmeans-random_transitions":
            part = _kmeans_random_transition_starts(
                pooled, k, covariance_type, rows.size, rng, options
            )
        else:
            part = _persistent_random_starts(pooled, k, covariance_type, rows.size, rng, options)
        for key, values in part.items():
            made[key][rows] = values
    return made
