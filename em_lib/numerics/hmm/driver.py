"""The one fitting driver for Gaussian HMMs.

:func:`fit_hmm` owns everything between the data and a fitted HMM: the starting parameters
of every start (:func:`~em_lib.numerics.hmm.init.initial_hmm_parameters`, all drawn from one
Generator), the parameters the caller fixed instead (``fixed``, for the letters left out of
``init_params``), the default emission prior, the batched Baum-Welch run
(:func:`~em_lib.numerics.hmm.baum_welch.fit_hmm_em`), the polishing of the best distinct
starts and the choice of the best start. :class:`em_lib.hmm.GaussianHMM` is a thin estimator
over it.

Polishing: the batch stops every start at the loose ``tol`` (an absolute change of the mean
per-step objective), where Baum-Welch, which converges linearly and often slowly, can still be
nats away from its optimum. Of the starts that met ``tol``, the best ``polish_starts`` at
*distinct* optima (states matched by their means, :func:`em_lib.numerics.starts.same_solution`,
within 0.1 data standard deviations: starts in one basin stopped at ``tol`` differ by less)
are continued by plain Baum-Welch from their parameters until the total objective changes by
less than ``polish_tol`` relative, ``|L_t - L_{t-1}| / (1 + |L_t|)`` (as the mixtures'
polishing; at most ``10 * max_iter`` more iterations), and the best polished start is kept
when it is at least as good as the best unpolished start. A start that used up ``max_iter``
without meeting ``tol`` is not continued: ``max_iter`` stays the cap of a start that does not
converge. Baum-Welch only climbs, so the kept objective is never below the best unpolished
one; ``polish_tol=None`` gives the unpolished best exactly.

Nested starts (:class:`HMMLattice`, used by :func:`em_lib.selection.select_hmm`): ``initial``
adds complete starts to the batch besides the ``n_init`` drawn ones. A lattice fits the cells
``(covariance_type, K)`` of one data set with the same settings and seed and gives every cell
starts from the solutions of the cells it contains: the same model written in the richer type
(``diag`` -> ``full``: the same likelihood), and for ``K > 1`` the ``K - 1`` solution with a
state split along its principal axis and with a new state of probability
``NEW_STATE_PROBABILITY`` (its likelihood is at most about ``T * NEW_STATE_PROBABILITY``
below). Baum-Welch only climbs and the best start is kept, so a cell's log-likelihood is not
below those of the cells it contains, up to round-off and that tiny loss.

Settings live in :class:`HMMSettings`, built from an estimator's parameters or from the
workflow's ``fit`` and ``hmm`` config sections (:meth:`HMMSettings.from_config`).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ..covariance import any_to_full, check_covariance_type
from ..criteria import logsumexp
from ..fitting import CONTAINED, SPLIT_DISTANCE
from ..prior import ConjugatePrior, PriorSetting
from ..starts import as_generator, best_polished, choose_fit, distinct_best
from .baum_welch import fit_hmm_em
from .checks import ENGINES, check_params, check_sequences
from .emissions import emission_log_prob
from .init import INIT_STRATEGIES, hmm_start_kinds, initial_hmm_parameters
from .results import HMMFit

__all__ = ["FIXED_LETTERS", "HMMFitResult", "HMMLattice", "HMMSettings", "fit_hmm"]

# the parameters a caller may fix, with their init_params / params letters
FIXED_LETTERS = {"startprob": "s", "transmat": "t", "means": "m", "covariances": "c"}
PRIORS = ("none", "default")
NEW_STATE_PROBABILITY = 1e-8  # of entering the new state of an epsilon start


def _check_count(value, name):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def _check_nonnegative(value, name):
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value >= 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")


def _check_dirichlet(value, name):
    if value is None:
        return
    try:
        alpha = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be None or positive Dirichlet concentrations, got {value!r}"
        ) from None
    if alpha.ndim > 2 or not np.all(np.isfinite(alpha)) or np.any(alpha <= 0):
        raise ValueError(f"{name} must be None or positive Dirichlet concentrations, got {value!r}")


@dataclass(frozen=True)
class HMMSettings(PriorSetting):
    """How a Gaussian HMM is fitted (everything but the data, K, the type and the seed).

    Attributes
    ----------
    n_init : int
        Starts, all fitted in one batched run.
    init : {"auto", "gmm", "random"}
        Start strategy of :func:`~em_lib.numerics.hmm.init.initial_hmm_parameters`
        (``"auto"``, the default, mixes kinds of start; ``"gmm"`` was the default before).
    tol : float
        Absolute tolerance on the change of the mean per-observed-step objective.
    max_iter : int
        Baum-Welch iterations per start at most.
    reg_covar : float
        Added to the covariance diagonals in the emission M-step (not with a prior).
    prior : None, "default" or ConjugatePrior
        Emission prior; ``"default"`` is mclust's default prior, built from the data for each
        K and covariance type.
    startprob_prior, transmat_prior : None or Dirichlet concentrations
        Scalar or (K,) / (K, K); None (or all 1) is no prior.
    params : str
        Letters of the parameters Baum-Welch updates (s, t, m and c; m and c together).
    init_params : str
        Letters of the parameters made by ``init``; the others are given to :func:`fit_hmm`
        as ``fixed``.
    engine : {"auto", "numba", "numpy"}
        Forward-backward engine.
    polish_tol : float or None
        Relative tolerance, ``|L_t - L_{t-1}| / (1 + |L_t|)`` on the total objective, to
        which the best distinct starts are polished after the batch (see the module
        docstring); None turns polishing off.
    polish_starts : int
        Starts at distinct optima polished at most.
    """

    n_init: int = 10
    init: str = "auto"
    tol: float = 1e-4
    max_iter: int = 100
    reg_covar: float = 1e-6
    prior: object = None
    startprob_prior: object = None
    transmat_prior: object = None
    params: str = "stmc"
    init_params: str = "stmc"
    engine: str = "auto"
    polish_tol: float | None = 1e-8
    polish_starts: int = 3

    def validate(self) -> HMMSettings:
        """Raise ValueError naming the first invalid setting; returns self."""
        _check_count(self.n_init, "n_init")
        if self.init not in INIT_STRATEGIES:
            raise ValueError(f"init must be one of {list(INIT_STRATEGIES)}, got {self.init!r}")
        _check_nonnegative(self.tol, "tol")
        _check_count(self.max_iter, "max_iter")
        _check_nonnegative(self.reg_covar, "reg_covar")
        if not (
            self.prior is None
            or isinstance(self.prior, ConjugatePrior)
            or (isinstance(self.prior, str) and self.prior == "default")
        ):
            raise ValueError(
                f"prior must be None, 'default' or a ConjugatePrior, got {self.prior!r}"
            )
        _check_dirichlet(self.startprob_prior, "startprob_prior")
        _check_dirichlet(self.transmat_prior, "transmat_prior")
        check_params(self.init_params, "init_params")
        check_params(self.params, "params")
        if ("m" in self.params) != ("c" in self.params):
            raise ValueError(
                "params must contain both 'm' and 'c' or neither (emission means and "
                f"covariances are updated together), got {self.params!r}"
            )
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {list(ENGINES)}, got {self.engine!r}")
        if self.polish_tol is not None:
            _check_nonnegative(self.polish_tol, "polish_tol")
        _check_count(self.polish_starts, "polish_starts")
        return self

    @classmethod
    def from_config(cls, fit: dict, hmm: dict) -> HMMSettings:
        """From the workflow config's ``fit`` and ``hmm`` sections (keys as in
        ``workflow/schemas/config.schema.yaml``).

        Read: ``fit.n_init``, ``fit.tol``, ``fit.max_iter``, ``fit.reg_covar``, ``fit.prior``
        (``none`` means no prior) and ``hmm.init``; a missing key keeps the default here
        (polishing keeps its defaults: ``fit.polish_tol`` is the mixtures' setting).
        Not settings of the HMM fit: ``fit.init_params`` (the mixtures' start strategy),
        ``fit.starts_per_job`` (the workflow's chunking), ``hmm.enabled`` and
        ``hmm.covariance_type`` (an argument of :func:`fit_hmm`).
        """
        defaults = cls()
        prior = fit.get("prior", "none")
        if prior is not None and prior not in PRIORS:
            raise ValueError(f"fit.prior must be one of {list(PRIORS)}, got {prior!r}")
        return cls(
            n_init=fit.get("n_init", defaults.n_init),
            init=hmm.get("init", defaults.init),
            tol=fit.get("tol", defaults.tol),
            max_iter=fit.get("max_iter", defaults.max_iter),
            reg_covar=fit.get("reg_covar", defaults.reg_covar),
            prior=None if prior in (None, "none") else prior,
        ).validate()


@dataclass
class HMMFitResult:
    """A fitted HMM and how it was found.

    Attributes
    ----------
    starts : HMMFit
        Every start of the batched Baum-Welch run, as it stopped at ``tol`` (before
        polishing).
    origin : (n_starts,) array of str
        How each start was made (:func:`~em_lib.numerics.hmm.init.hmm_start_kinds`:
        ``gmm``, ``random-persistent``, ``kmeans-random_transitions``,
        ``gmm-random_from_data``, ``random``), or ``user`` when ``init_params`` is empty
        (every parameter given); then the labels of the ``initial`` starts (an
        :class:`HMMLattice` writes ``nested:<type>``, ``split:K=<K-1>`` and
        ``epsilon:K=<K-1>``).
    polish : HMMFit or None
        The polished starts (rows ``polished_starts`` of ``starts``); None when polishing is
        off or kept nothing.
    polished_starts : (n_polished,) int array
    best_start : int
        Row of ``starts`` whose (polished, where polished) solution is the fit: the highest
        objective among the starts that did not fail.
    startprob : (K,) array
    transmat : (K, K) array
    means : (K, d) array
    covariances : the covariance type's own shape, no init axis
    log_likelihood : float
        Observed-data log-likelihood of the fit, summed over sequences.
    converged : bool
        True if the chosen start met ``tol`` in the batch or ``polish_tol`` when polished.
    n_iter : int
        Baum-Welch iterations of the chosen start, both stages.
    trace : (n_iter,) array
        Per-observed-step objective of the chosen start per iteration, both stages, NaN
        removed.
    """

    starts: HMMFit
    origin: np.ndarray
    polish: HMMFit | None
    polished_starts: np.ndarray
    best_start: int
    startprob: np.ndarray
    transmat: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    log_likelihood: float
    converged: bool
    n_iter: int
    trace: np.ndarray


def _fixed_shapes(n_components, n_features, covariance_type):
    k, d = n_components, n_features
    return {
        "startprob": (k,),
        "transmat": (k, k),
        "means": (k, d),
        "covariances": {
            "full": (k, d, d),
            "diag": (k, d),
            "spherical": (k,),
            "tied": (d, d),
        }[covariance_type],
    }


def _fixed_starts(fixed, init_params, n_init, shapes):
    """Starting values of the parameters left out of ``init_params``, with the init axis."""
    fixed = {} if fixed is None else dict(fixed)
    unknown = sorted(set(fixed) - set(FIXED_LETTERS))
    if unknown:
        raise ValueError(f"fixed may only hold {list(FIXED_LETTERS)}, got unknown key(s) {unknown}")
    starts = {}
    for key, letter in FIXED_LETTERS.items():
        if letter in init_params:
            if key in fixed:
                raise ValueError(
                    f"fixed[{key!r}] is given, but init_params={init_params!r} makes {key} "
                    f"from the start strategy; leave {letter!r} out of init_params to fix it"
                )
            continue
        if key not in fixed:
            raise ValueError(
                f"init_params={init_params!r} leaves out {letter!r}, so fixed[{key!r}] must "
                "be given"
            )
        value = np.asarray(fixed[key], dtype=float)
        shape = shapes[key]
        if value.shape == shape:
            starts[key] = np.broadcast_to(value, (n_init,) + shape).copy()
        elif value.shape == (n_init,) + shape:
            starts[key] = value.copy()
        else:
            raise ValueError(
                f"fixed[{key!r}] has shape {value.shape}; expected {shape} or {(n_init,) + shape}"
            )
    return starts


PARAMETERS = ("startprob", "transmat", "means", "covariances")


def _initial_starts(initial, shapes):
    """The complete starts of ``initial`` (each parameter with its leading J axis) and their
    origin labels."""
    initial = dict(initial)
    origin = initial.pop("origin", None)
    unknown = sorted(set(initial) - set(PARAMETERS))
    missing = [key for key in PARAMETERS if key not in initial]
    if unknown or missing:
        raise ValueError(
            f"initial must hold exactly {list(PARAMETERS)} (and optionally 'origin'); "
            f"unknown {unknown}, missing {missing}"
        )
    starts = {key: np.asarray(initial[key], dtype=float) for key in PARAMETERS}
    count = starts["startprob"].shape[0] if starts["startprob"].ndim else 0
    for key in PARAMETERS:
        if starts[key].shape != (count,) + shapes[key]:
            raise ValueError(
                f"initial[{key!r}] has shape {starts[key].shape}; expected (J,) + "
                f"{shapes[key]} with the same J for every parameter"
            )
    if count == 0:
        raise ValueError("initial holds no start; give at least one or leave it None")
    origin = ["initial"] * count if origin is None else [str(label) for label in origin]
    if len(origin) != count:
        raise ValueError(f"initial['origin'] has {len(origin)} labels for {count} starts")
    return starts, origin


def _baum_welch(X, lengths, start, covariance_type, settings, prior, tol, max_iter):
    """Batched Baum-Welch from the parameters ``start`` (dict, init dimension first) with the
    settings' priors, updated parameters and engine."""
    names = ("reg_covar", "startprob_prior", "transmat_prior", "params", "engine")
    options = {name: getattr(settings, name) for name in names}
    parameters = (start[name] for name in PARAMETERS)
    return fit_hmm_em(
        X, lengths, *parameters, covariance_type, tol=tol, max_iter=max_iter, prior=prior, **options
    )


def _polish(X, lengths, fit: HMMFit, best, settings: HMMSettings, prior):
    """(polished HMMFit, rows of ``fit`` polished, row of the best polished start) or None
    when polishing found nothing usable at least as good as the unpolished best ``best``."""
    scale = np.sqrt(np.nanvar(X, axis=0)) + 1e-300
    # starts that met ``tol``, states matched by their means (the weights are not compared)
    objective = np.where(fit.failed | ~fit.converged, -np.inf, fit.objective)
    no_weights = np.zeros(fit.means.shape[:2])
    chosen = distinct_best(objective, no_weights, fit.means, scale, settings.polish_starts)
    if chosen.size == 0:
        return None
    reference = float(fit.objective[best])
    # the relative rule on the total objective as fit_hmm_em's absolute per-step tolerance
    tol = settings.polish_tol * (1.0 + abs(reference)) / fit.n_samples
    starts = {name: getattr(fit, name)[chosen] for name in PARAMETERS}
    polish = _baum_welch(
        X, lengths, starts, fit.covariance_type, settings, prior, tol, 10 * settings.max_iter
    )
    row = best_polished(polish, reference)
    if row is None:
        return None  # polishing failed; keep the unpolished best
    return polish, chosen, row


def fit_hmm(
    X,
    lengths,
    n_components,
    covariance_type,
    settings: HMMSettings,
    random_state=None,
    *,
    fixed=None,
    initial=None,
) -> HMMFitResult:
    """Fit a Gaussian HMM from ``settings.n_init`` starts at once, polish the best distinct
    starts (``settings.polish_tol``) and keep the best.

    Parameters
    ----------
    X : (n_samples, n_features) array; NaN marks a missing entry
    lengths : sequence of int or None (one sequence); every sequence needs T >= 2
    n_components : int
    covariance_type : {"full", "diag", "spherical", "tied"}
    settings : HMMSettings
    random_state : None, int, SeedSequence or Generator
        One Generator (:func:`em_lib.numerics.starts.as_generator`) draws every start.
    fixed : dict, optional
        Starting values of the parameters whose letters are not in ``settings.init_params``
        (required for exactly those): any of ``startprob`` (K,), ``transmat`` (K, K),
        ``means`` (K, d) and ``covariances`` (the type's own shape), each either one model or
        with a leading ``n_init`` axis (one value per start).
    initial : dict, optional
        Complete starts fitted in the same batch after the ``n_init`` drawn ones (rows
        ``n_init, n_init + 1, ...`` of ``starts``): ``startprob`` (J, K), ``transmat``
        (J, K, K), ``means`` (J, K, d), ``covariances`` (J, ...) of the type's own shape, and
        optionally ``origin``, J labels for :attr:`HMMFitResult.origin` (default
        ``"initial"``). They draw nothing from the random stream: the drawn starts are those
        of the same call without ``initial``.

    Returns
    -------
    HMMFitResult

    Raises
    ------
    ValueError
        Invalid settings, data or fixed parameters, or every start failed.
    """
    settings.validate()
    check_covariance_type(covariance_type)
    _check_count(n_components, "n_components")
    X, lengths, _ = check_sequences(X, lengths, min_length=2)
    nan = np.isnan(X)
    empty_columns = np.flatnonzero(nan.all(axis=0))
    if empty_columns.size:
        raise ValueError(
            f"column(s) {empty_columns.tolist()} of X have no observed value; drop them"
        )
    n_used = int((~nan.all(axis=1)).sum())
    if n_used < n_components:
        raise ValueError(
            f"Expected at least n_components = {n_components} observed time steps, got {n_used}"
        )
    n_init = settings.n_init
    shapes = _fixed_shapes(n_components, X.shape[1], covariance_type)
    start = _fixed_starts(fixed, settings.init_params, n_init, shapes)
    rng = as_generator(random_state)
    if settings.init_params:
        made = initial_hmm_parameters(
            X,
            lengths,
            n_components,
            covariance_type,
            n_init,
            init=settings.init,
            random_state=rng,
            reg_covar=settings.reg_covar,
        )
        for key, letter in FIXED_LETTERS.items():
            if letter in settings.init_params:
                start[key] = made[key]
    origin = hmm_start_kinds(settings.init, n_init) if settings.init_params else ["user"] * n_init
    if initial is not None:
        extra, extra_origin = _initial_starts(initial, shapes)
        start = {key: np.concatenate([start[key], extra[key]]) for key in PARAMETERS}
        origin = origin + extra_origin
    prior = settings.prior_for(X, n_components, covariance_type)
    fit = _baum_welch(
        X, lengths, start, covariance_type, settings, prior, settings.tol, settings.max_iter
    )
    best = fit.best_or_raise()
    polished = None
    if settings.polish_tol is not None and settings.params:
        polished = _polish(X, lengths, fit, best, settings, prior)
    pick = choose_fit(fit, best, polished)
    chosen, row = pick["chosen"], pick["row"]
    return HMMFitResult(
        starts=fit,
        origin=np.array(origin, dtype=object),
        polish=pick["polish"],
        polished_starts=pick["polished_starts"],
        best_start=pick["best_start"],
        startprob=chosen.startprob[row].copy(),
        transmat=chosen.transmat[row].copy(),
        means=chosen.means[row].copy(),
        covariances=chosen.covariances[row].copy(),
        log_likelihood=float(chosen.log_likelihood[row]),
        converged=pick["converged"],
        n_iter=pick["n_iter"],
        trace=pick["trace"],
    )


# ---------------------------------------------------------------------------------------------
# nested starts
# ---------------------------------------------------------------------------------------------


def _stationary(transmat):
    """A stationary distribution of ``transmat`` (K, K): least squares on
    ``pi (A - I) = 0, sum(pi) = 1``, clipped at 0 (uniform if nothing is left)."""
    k = transmat.shape[0]
    system = np.vstack([transmat.T - np.eye(k), np.ones((1, k))])
    target = np.zeros(k + 1)
    target[-1] = 1.0
    pi = np.clip(np.linalg.lstsq(system, target, rcond=None)[0], 0.0, None)
    return pi / pi.sum() if pi.sum() > 0 else np.full(k, 1.0 / k)


def _as_type(covariances, source, target, n_components, n_features):
    """Covariances of a ``source`` solution written in the richer type ``target`` (the same
    matrices)."""
    if source == target:
        return covariances
    if target == "full":
        return any_to_full(covariances[None], source, n_components, n_features)[0]
    if target == "diag" and source == "spherical":
        return np.repeat(covariances[:, None], n_features, axis=1)
    raise ValueError(f"a {source} solution is not a {target} model")


def _full_covariances(solution: HMMFitResult, covariance_type, n_features):
    k = solution.means.shape[0]
    return any_to_full(solution.covariances[None], covariance_type, k, n_features)[0]


def split_state_start(solution: HMMFitResult, covariance_type, n_features):
    """The ``K - 1`` state ``solution`` with one state split in two (a dict of one model).

    The state with the largest stationary probability times total variance becomes two
    states with its covariance and means ``SPLIT_DISTANCE`` standard deviations either side
    along its principal axis; the copy (last state) gets half of the split state's start
    probability and of every transition into it, and the split state's transition row. With
    equal means this would be the same model; the two means let Baum-Welch separate them.
    """
    k = solution.means.shape[0]
    full = _full_covariances(solution, covariance_type, n_features)
    values, vectors = np.linalg.eigh(full)
    weights = _stationary(solution.transmat) * np.trace(full, axis1=1, axis2=2)
    chosen = int(np.argmax(weights))
    step = SPLIT_DISTANCE * np.sqrt(max(values[chosen, -1], 0.0)) * vectors[chosen, :, -1]
    means = np.vstack([solution.means, solution.means[chosen] + step])
    means[chosen] -= step
    startprob = np.append(solution.startprob, solution.startprob[chosen] / 2)
    startprob[chosen] /= 2
    transmat = np.zeros((k + 1, k + 1))
    transmat[:k, :k] = solution.transmat
    transmat[:k, k] = solution.transmat[:, chosen] / 2
    transmat[:k, chosen] /= 2
    transmat[k] = transmat[chosen]
    covariances = solution.covariances
    if covariance_type != "tied":
        covariances = np.concatenate([covariances, covariances[chosen : chosen + 1]])
    return {
        "startprob": startprob,
        "transmat": transmat,
        "means": means,
        "covariances": covariances,
    }


def epsilon_state_start(X, solution: HMMFitResult, covariance_type, n_features):
    """The ``K - 1`` state ``solution`` with a new, almost unreachable state (a dict of one
    model).

    Every start and transition probability is scaled by ``1 - NEW_STATE_PROBABILITY`` and the
    rest goes to the new state, whose own row is the stationary distribution (scaled the same
    way, the rest to itself); its mean is the step worst explained by the stationary mixture
    of the emissions and its covariance the stationary average of the covariances. Every path
    of the old model keeps its probability times ``(1 - NEW_STATE_PROBABILITY)^T``, so the
    log-likelihood is at most about ``T * NEW_STATE_PROBABILITY`` below the old one.
    """
    k = solution.means.shape[0]
    keep = 1.0 - NEW_STATE_PROBABILITY
    pi = _stationary(solution.transmat)
    startprob = np.append(solution.startprob * keep, NEW_STATE_PROBABILITY)
    transmat = np.zeros((k + 1, k + 1))
    transmat[:k, :k] = solution.transmat * keep
    transmat[:, k] = NEW_STATE_PROBABILITY
    transmat[k, :k] = pi * keep
    observed = ~np.isnan(X).all(axis=1)
    log_density = emission_log_prob(
        X, solution.means[None], solution.covariances[None], covariance_type
    )[0]
    with np.errstate(divide="ignore"):
        scores = logsumexp(log_density + np.log(pi), axis=1)
    scores = np.where(observed, scores, np.inf)
    worst = X[int(np.argmin(scores))]
    mean = np.where(np.isnan(worst), np.nanmean(X, axis=0), worst)
    means = np.vstack([solution.means, mean])
    covariances = solution.covariances
    if covariance_type != "tied":
        average = np.tensordot(pi, covariances, axes=(0, 0))
        covariances = np.concatenate([covariances, average[None]])
    return {
        "startprob": startprob,
        "transmat": transmat,
        "means": means,
        "covariances": covariances,
    }


class HMMLattice:
    """Gaussian HMMs of one data set, one settings object and one seed, each cell started
    also from the solutions of the cells it contains (see the module docstring).

    ``fit(K, covariance_type)`` fits the cell once (:attr:`solutions` keeps it) with
    :func:`fit_hmm`'s ``n_init`` drawn starts (the same as a direct call with that seed:
    every cell gets the same ``random_state``) plus, as ``initial`` starts,

    * for every type in ``CONTAINED[covariance_type]`` that is one of the lattice's
      ``covariance_types`` (``diag`` under ``full``, ``spherical`` under ``diag``,
      ``tied`` under ``full``): that type's solution with ``K`` states, written in this
      type (``nested:<type>``);
    * for ``K > 1``: the ``K - 1`` solution of this type, split
      (:func:`split_state_start`, ``split:K=<K-1>``) and with an epsilon state
      (:func:`epsilon_state_start`, ``epsilon:K=<K-1>``).

    The contained cells are fitted first (recursively, down to ``K = 1``). Settings that fix
    parameters (``init_params`` without every letter, or ``params`` without every letter)
    are not supported: the nested starts are complete models.
    """

    def __init__(self, X, lengths, settings: HMMSettings, random_state=None, covariance_types=None):
        settings.validate()
        if settings.init_params != "stmc" or settings.params != "stmc":
            raise ValueError(
                "HMMLattice fits every parameter: settings.init_params and settings.params "
                f"must be 'stmc', got {settings.init_params!r} and {settings.params!r}"
            )
        self.X, self.lengths, _ = check_sequences(X, lengths, min_length=2)
        self.settings = settings
        self.random_state = random_state
        types = tuple(CONTAINED) if covariance_types is None else tuple(covariance_types)
        self.covariance_types = tuple(check_covariance_type(name) for name in types)
        self.solutions: dict[tuple[str, int], HMMFitResult] = {}

    def nested_starts(self, n_components, covariance_type):
        """``initial`` for :func:`fit_hmm` (with ``origin``), or None when the cell contains
        no other cell of the lattice."""
        d = self.X.shape[1]
        starts, origin = [], []
        for source in CONTAINED[covariance_type]:
            if source not in self.covariance_types:
                continue
            solution = self.fit(n_components, source)
            starts.append(
                {
                    "startprob": solution.startprob,
                    "transmat": solution.transmat,
                    "means": solution.means,
                    "covariances": _as_type(
                        solution.covariances, source, covariance_type, n_components, d
                    ),
                }
            )
            origin.append(f"nested:{source}")
        if n_components > 1:
            smaller = self.fit(n_components - 1, covariance_type)
            starts.append(split_state_start(smaller, covariance_type, d))
            origin.append(f"split:K={n_components - 1}")
            starts.append(epsilon_state_start(self.X, smaller, covariance_type, d))
            origin.append(f"epsilon:K={n_components - 1}")
        if not starts:
            return None
        initial = {key: np.stack([start[key] for start in starts]) for key in PARAMETERS}
        initial["origin"] = origin
        return initial

    def fit(self, n_components, covariance_type) -> HMMFitResult:
        """The cell's :class:`HMMFitResult` (fitted on first use)."""
        key = (check_covariance_type(covariance_type), int(n_components))
        if key not in self.solutions:
            _check_count(n_components, "n_components")
            initial = self.nested_starts(*key[::-1])
            self.solutions[key] = fit_hmm(
                self.X,
                self.lengths,
                key[1],
                key[0],
                self.settings,
                self.random_state,
                initial=initial,
            )
        return self.solutions[key]
