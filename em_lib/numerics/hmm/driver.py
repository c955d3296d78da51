"""The one fitting driver for Gaussian HMMs.

:func:`fit_hmm` owns everything between the data and a fitted HMM: the starting parameters
of every start (:func:`~em_lib.numerics.hmm.init.initial_hmm_parameters`, all drawn from one
Generator), the parameters the caller fixed instead (``fixed``, for the letters left out of
``init_params``), the default emission prior, the batched Baum-Welch run
(:func:`~em_lib.numerics.hmm.baum_welch.fit_hmm_em`) and the choice of the best start.
:class:`em_lib.hmm.GaussianHMM` is a thin estimator over it.

Settings live in :class:`HMMSettings`, built from an estimator's parameters or from the
workflow's ``fit`` and ``hmm`` config sections (:meth:`HMMSettings.from_config`).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ..covariance import check_covariance_type
from ..prior import ConjugatePrior, default_prior
from ..starts import as_generator
from .baum_welch import fit_hmm_em
from .checks import ENGINES, check_params, check_sequences
from .init import INIT_STRATEGIES, initial_hmm_parameters
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
class HMMSettings:
    """How a Gaussian HMM is fitted (everything but the data, K, the type and the seed).

    Attributes
    ----------
    n_init : int
        Starts, all fitted in one batched run.
    init : {"gmm", "random"}
        Start strategy of :func:`~em_lib.numerics.hmm.init.initial_hmm_parameters`.
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
    """

    n_init: int = 10
    init: str = "gmm"
    tol: float = 1e-4
    max_iter: int = 100
    reg_covar: float = 1e-6
    prior: object = None
    startprob_prior: object = None
    transmat_prior: object = None
    params: str = "stmc"
    init_params: str = "stmc"
    engine: str = "auto"

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
        return self

    @classmethod
    def from_config(cls, fit: dict, hmm: dict) -> HMMSettings:
        """From the workflow config's ``fit`` and ``hmm`` sections (keys as in
        ``workflow/schemas/config.schema.yaml``).

        Read: ``fit.n_init``, ``fit.tol``, ``fit.max_iter``, ``fit.reg_covar``, ``fit.prior``
        (``none`` means no prior) and ``hmm.init``; a missing key keeps the default here.
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

    def prior_for(self, X, n_components, covariance_type):
        """The emission prior of a fit of ``X``: None, the given ConjugatePrior, or the
        default prior of ``X`` for ``n_components`` and ``covariance_type``."""
        if self.prior is None or isinstance(self.prior, ConjugatePrior):
            return self.prior
        return default_prior(X, n_components, covariance_type)


@dataclass
class HMMFitResult:
    """A fitted HMM and how it was found.

    Attributes
    ----------
    starts : HMMFit
        Every start of the batched Baum-Welch run.
    best_start : int
        Row of ``starts`` that is the fit (highest objective among the starts that did not
        fail).
    startprob : (K,) array
    transmat : (K, K) array
    means : (K, d) array
    covariances : the covariance type's own shape, no init axis
    log_likelihood : float
        Observed-data log-likelihood of the best start, summed over sequences.
    converged : bool
        True only if the best start met ``tol``.
    n_iter : int
    trace : (n_iter,) array
        Per-observed-step objective of the best start per iteration, NaN removed.
    """

    starts: HMMFit
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
    """Fit a Gaussian HMM from ``settings.n_init`` starts at once and keep the best.

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
    fit = fit_hmm_em(
        X,
        lengths,
        start["startprob"],
        start["transmat"],
        start["means"],
        start["covariances"],
        covariance_type,
        tol=settings.tol,
        max_iter=settings.max_iter,
        reg_covar=settings.reg_covar,
        prior=settings.prior_for(X, n_components, covariance_type),
        startprob_prior=settings.startprob_prior,
        transmat_prior=settings.transmat_prior,
        params=settings.params,
        engine=settings.engine,
    )
    best = fit.best_or_raise()
    trace = fit.trace[best]
    return HMMFitResult(
        starts=fit,
        best_start=best,
        startprob=fit.startprob[best].copy(),
        transmat=fit.transmat[best].copy(),
        means=fit.means[best].copy(),
        covariances=fit.covariances[best].copy(),
        log_likelihood=float(fit.log_likelihood[best]),
        converged=bool(fit.converged[best]),
        n_iter=int(fit.n_iter[best]),
        trace=trace[~np.isnan(trace)],
    )
