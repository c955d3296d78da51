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

Settings live in :class:`HMMSettings`, built from an estimator's parameters or from the
workflow's ``fit`` and ``hmm`` config sections (:meth:`HMMSettings.from_config`).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ..covariance import check_covariance_type
from ..prior import ConjugatePrior, PriorSetting
from ..starts import as_generator, best_polished, choose_fit, distinct_best
from .baum_welch import fit_hmm_em
from .checks import ENGINES, check_params, check_sequences
from .init import INIT_STRATEGIES, hmm_start_kinds, initial_hmm_parameters
from .results import HMMFit

__all__ = ["FIXED_LETTERS", "HMMFitResult", "HMMSettings", "fit_hmm"]

# the parameters a caller may fix, with their init_params / params letters
FIXED_LETTERS = {"startprob": "s", "transmat": "t", "means": "m", "covariances": "c"}
PRIORS = ("none", "default")


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
    origin : (n_init,) array of str
        How each start was made (:func:`~em_lib.numerics.hmm.init.hmm_start_kinds`:
        ``gmm``, ``kmeans-subset``, ``random-persistent``, ``gmm-random_from_data``,
        ``random``), or ``user`` when ``init_params`` is empty (every parameter given).
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
    prior = settings.prior_for(X, n_components, covariance_type)
    fit = _baum_welch(
        X, lengths, start, covariance_type, settings, prior, settings.tol, settings.max_iter
    )
    best = fit.best_or_raise()
    origin = hmm_start_kinds(settings.init, n_init) if settings.init_params else ["user"] * n_init
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
