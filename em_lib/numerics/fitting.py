"""The one fitting driver for Gaussian mixtures.

:func:`fit_mixture` owns everything between the data and a fitted model: start generation
(one meaning of every ``init_params``, ``auto`` included), starts built from the models this
one contains (nested starts), the batched EM run of every start, the polishing of the best
distinct starts and the choice of the best one. :class:`em_lib.GaussianMixture`, the
workflow's fit jobs, model selection and every analysis that refits call it; no other code
makes starts or picks a best start.

Settings live in :class:`MixtureSettings` (built from an estimator's parameters or from the
workflow's ``fit`` config section). Contained models are fitted through a
:class:`MixtureLattice`: the explicit, inspectable cache of the solutions of one data set under
one settings object and one seed. A lattice shared by the fits of a K x covariance-type grid
makes each contained fit once (model selection, the workflow); an isolated fit gets a lattice
of its own that is dropped with it.

Nested starts: a model also starts from the solutions of the models it contains, fitted with
the same settings and seed (the diag and tied solutions for ``full``, spherical for ``diag``,
diag for a one-component ``tied``; for ``K > 1`` the ``K - 1`` solution with one component
split along its principal axis, and with a new component of weight 1e-8 at the worst-fitted
row). EM only climbs from a start, so the best objective never decreases along
full >= diag >= spherical, full >= tied, K >= K - 1 (up to round-off).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np

from .covariance import any_to_full, check_covariance_type
from .criteria import logsumexp
from .gaussian import PreparedData, check_sample_weight, log_gaussian_density
from .init import check_init, initial_parameters, start_kinds
from .mixture_em import MixtureFit, fit_mixture_em
from .monitor import check_tol_type
from .prior import ConjugatePrior, PriorSetting
from .squarem import polish_em
from .starts import as_generator, best_polished, choose_fit, distinct_best

NEW_COMPONENT_WEIGHT = 1e-8
SPLIT_DISTANCE = 0.5  # in standard deviations along the principal axis
CONTAINED = {"full": ("diag", "tied"), "diag": ("spherical",), "tied": (), "spherical": ()}
PRIORS = ("none", "default")


def _check_count(value, name, minimum=1):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_nonnegative(value, name):
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value >= 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")


@dataclass(frozen=True)
class MixtureSettings(PriorSetting):
    """How a Gaussian mixture is fitted (everything but the data, K, the type and the seed).

    Attributes mirror :class:`em_lib.GaussianMixture`'s parameters of the same names;
    ``prior`` is None, ``"default"`` (mclust's default conjugate prior, built from the data
    for each K and type) or a :class:`~em_lib.numerics.prior.ConjugatePrior`.
    """

    n_init: int = 1
    init_params: str = "auto"
    tol: float = 1e-3
    tol_type: str = "absolute"
    max_iter: int = 100
    reg_covar: float = 1e-6
    prior: object = None
    nested_starts: bool = False
    polish_tol: float | None = 1e-10
    polish_starts: int = 5

    def validate(self) -> MixtureSettings:
        _check_count(self.n_init, "n_init")
        check_init(self.init_params)
        _check_nonnegative(self.tol, "tol")
        check_tol_type(self.tol_type)
        _check_count(self.max_iter, "max_iter", minimum=0)
        _check_nonnegative(self.reg_covar, "reg_covar")
        if not (
            self.prior is None or self.prior == "default" or isinstance(self.prior, ConjugatePrior)
        ):
            raise ValueError(
                f"prior must be None, 'default' or a ConjugatePrior, got {self.prior!r}"
            )
        if not isinstance(self.nested_starts, bool | np.bool_):
            raise ValueError(f"nested_starts must be True or False, got {self.nested_starts!r}")
        if self.polish_tol is not None:
            _check_nonnegative(self.polish_tol, "polish_tol")
        _check_count(self.polish_starts, "polish_starts")
        return self

    @classmethod
    def from_config(cls, fit: dict) -> MixtureSettings:
        """From the workflow config's ``fit`` section (keys as in
        ``workflow/schemas/config.schema.yaml``; ``prior: none`` means no prior)."""
        prior = fit.get("prior", "none")
        return cls(
            n_init=int(fit["n_init"]),
            init_params=fit.get("init_params", "auto"),
            tol=float(fit["tol"]),
            tol_type=fit.get("tol_type", "absolute"),
            max_iter=int(fit["max_iter"]),
            reg_covar=float(fit["reg_covar"]),
            prior=None if prior in (None, "none") else prior,
            nested_starts=bool(fit.get("nested_starts", True)),
            polish_tol=None
            if fit.get("polish_tol", 1e-10) is None
            else float(fit.get("polish_tol", 1e-10)),
            polish_starts=int(fit.get("polish_starts", 5)),
        ).validate()


@dataclass
class MixtureFitResult:
    """A fitted mixture and how it was found.

    Attributes
    ----------
    starts : MixtureFit
        Every start as it stopped at ``tol`` (before polishing), random starts first.
    origin : (n_starts,) array of str
        How each start was made: the kind of random start (``hierarchical``,
        ``hierarchical-whitened``, ``kmeans``, ``random_from_data``, ... or ``user``) for the
        first ``settings.n_init`` rows, then ``nested:<type>``, ``split:K=<k>`` and
        ``epsilon:K=<k>`` for the starts built from contained models.
    polish : MixtureFit or None
        The polished starts (rows ``polished_starts`` of ``starts``); None without polishing.
    best_start : int
        Row of ``starts`` whose (polished, where polished) solution is the fit.
    weights, means, covariances, precisions_cholesky : the chosen solution (no init axis)
    log_likelihood, log_prior : float
    converged : bool
        True if the chosen start met ``tol`` in the batch or ``polish_tol`` when polished.
    n_iter : int
        EM steps of the chosen start, both stages.
    trace : (n_steps,) array
        Per-sample objective of the chosen start, both stages, NaN removed.
    """

    covariance_type: str
    n_components: int
    settings: MixtureSettings
    starts: MixtureFit
    origin: np.ndarray
    polish: MixtureFit | None
    polished_starts: np.ndarray
    best_start: int
    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray
    log_likelihood: float
    log_prior: float
    converged: bool
    n_iter: int
    trace: np.ndarray
    n_samples: float
    prepared: PreparedData = field(repr=False, default=None)

    @property
    def objective(self) -> float:
        return self.log_likelihood + self.log_prior

    @property
    def random_starts(self) -> np.ndarray:
        """Rows of ``starts`` that are random (or user-given) starts, not nested ones."""
        return np.flatnonzero([":" not in str(kind) for kind in self.origin])


def positive_rows(X, sample_weight=None):
    """``X`` as floats and its checked row weights (n,), rows of weight 0 removed (they add
    nothing to the fit, and no start may be drawn from them); weights None stay None."""
    X = np.asarray(X, dtype=float)
    weights = check_sample_weight(sample_weight, X.shape[0])
    if weights is None or (weights > 0).all():
        return X, weights
    keep = weights > 0
    return X[keep], weights[keep]


class MixtureLattice:
    """Fitted solutions of one data set under one settings object and one seed.

    ``sample_weight`` (n,) weights the rows of every fit (rows of weight 0 are removed).
    ``solutions`` maps ``(covariance_type, n_components)`` to the :class:`MixtureFitResult`
    fitted by :meth:`fit`; :meth:`clear` empties it. Every fit uses the same ``random_state``
    (an int or SeedSequence gives each fit the same stream as a direct fit with that seed),
    so a cell fitted through a lattice equals the same cell fitted alone with that seed.
    Engines (the data's feature matrix per covariance type) are shared by all fits.
    """

    def __init__(self, X, settings: MixtureSettings, random_state=None, sample_weight=None):
        self.X, self.sample_weight = positive_rows(X, sample_weight)
        self.settings = settings.validate()
        self.random_state = random_state
        self.solutions: dict[tuple[str, int], MixtureFitResult] = {}
        self._prepared: dict[str, PreparedData] = {}

    def prepared(self, covariance_type) -> PreparedData:
        if covariance_type not in self._prepared:
            self._prepared[covariance_type] = PreparedData(
                self.X, covariance_type, sample_weight=self.sample_weight
            )
        return self._prepared[covariance_type]

    def fit(self, n_components, covariance_type) -> MixtureFitResult:
        key = (check_covariance_type(covariance_type), int(n_components))
        if key not in self.solutions:
            self.solutions[key] = fit_mixture(
                self.X,
                n_components,
                covariance_type,
                self.settings,
                self.random_state,
                lattice=self,
                sample_weight=self.sample_weight,
            )
        return self.solutions[key]

    def clear(self) -> None:
        self.solutions.clear()
        self._prepared.clear()


# ---------------------------------------------------------------------------------------------
# nested starts
# ---------------------------------------------------------------------------------------------


def _convert(weights, means, covariances, source, target, n_features):
    """A solution of type ``source`` as parameters of type ``target`` (same likelihood)."""
    n_components = weights.shape[0]
    if target == "full":
        covariances = any_to_full(covariances[None], source, n_components, n_features)[0]
    elif target == "diag" and source == "spherical":
        covariances = np.repeat(covariances[:, None], n_features, axis=1)
    elif target == "tied" and source == "diag":  # K = 1 only
        covariances = np.diag(covariances[0])
    return weights, means, covariances


def _split_start(weights, means, covariances, covariance_type, n_features):
    """Split the component with the largest weight * variance along its principal axis."""
    n_components = weights.shape[0]
    full = any_to_full(covariances[None], covariance_type, n_components, n_features)[0]
    values, vectors = np.linalg.eigh(full)
    chosen = int(np.argmax(weights * np.trace(full, axis1=1, axis2=2)))
    step = SPLIT_DISTANCE * np.sqrt(values[chosen, -1]) * vectors[chosen, :, -1]
    new_weights = np.append(weights, weights[chosen] / 2)
    new_weights[chosen] /= 2
    new_means = np.vstack([means, means[chosen] + step])
    new_means[chosen] = means[chosen] - step
    if covariance_type == "tied":
        return new_weights, new_means, covariances
    return new_weights, new_means, np.concatenate([covariances, covariances[chosen : chosen + 1]])


def _epsilon_start(X, weights, means, covariances, covariance_type):
    """Add a component of tiny weight at the worst-fitted row (likelihood barely changes)."""
    log_density = log_gaussian_density(X, means[None], covariances[None], covariance_type)[0]
    scores = logsumexp(log_density + np.log(weights), axis=1)
    scores[np.isnan(X).all(axis=1)] = np.inf
    worst_row = X[int(np.argmin(scores))]
    worst = np.where(np.isnan(worst_row), np.nanmean(X, axis=0), worst_row)
    new_weights = np.append(weights * (1 - NEW_COMPONENT_WEIGHT), NEW_COMPONENT_WEIGHT)
    new_means = np.vstack([means, worst])
    if covariance_type == "tied":
        return new_weights, new_means, covariances
    average = np.tensordot(weights, covariances, axes=(0, 0))
    return new_weights, new_means, np.concatenate([covariances, average[None]])


def nested_starts(lattice: MixtureLattice, n_components, covariance_type):
    """Starts from the contained models' solutions: (weights (J, K), means (J, K, d),
    covariances, origins) or None when the model contains none."""
    X = lattice.X
    d = X.shape[1]
    contained = list(CONTAINED[covariance_type])
    if covariance_type == "tied" and n_components == 1:
        contained.append("diag")
    starts, origins = [], []
    for source in contained:
        solution = lattice.fit(n_components, source)
        starts.append(
            _convert(
                solution.weights, solution.means, solution.covariances, source, covariance_type, d
            )
        )
        origins.append(f"nested:{source}")
    if n_components > 1:
        smaller = lattice.fit(n_components - 1, covariance_type)
        parts = (smaller.weights, smaller.means, smaller.covariances)
        starts.append(_split_start(*parts, covariance_type, d))
        origins.append(f"split:K={n_components - 1}")
        starts.append(_epsilon_start(X, *parts, covariance_type))
        origins.append(f"epsilon:K={n_components - 1}")
    if not starts:
        return None
    stacked = [np.stack([start[i] for start in starts]) for i in range(3)]
    return stacked[0], stacked[1], stacked[2], origins


# ---------------------------------------------------------------------------------------------
# polishing and the best start
# ---------------------------------------------------------------------------------------------


def _polish(X, fit, settings, prior, prepared, sample_weight=None):
    """(polished MixtureFit, rows of ``fit`` polished, row of the best polished start) or None
    when polishing found nothing usable at least as good as the unpolished best."""
    scale = np.sqrt(prepared.feature_variances) + 1e-300
    # only starts that met ``tol``: one stopped by ``max_iter`` is left where the user's cap
    # left it (as the HMM driver does)
    objective = np.where(fit.failed | ~fit.converged, -np.inf, fit.objective)
    chosen = distinct_best(objective, fit.weights, fit.means, scale, settings.polish_starts)
    if chosen.size == 0:
        return None
    polish = polish_em(
        X,
        fit.weights[chosen],
        fit.means[chosen],
        fit.covariances[chosen],
        fit.covariance_type,
        tol=settings.polish_tol,
        max_iter=10 * settings.max_iter,
        reg_covar=settings.reg_covar,
        prior=prior,
        prepared=prepared,
        sample_weight=sample_weight,
    )
    row = best_polished(polish, fit.objective[chosen[0]])
    if row is None:
        return None  # polishing failed (a collapse); keep the unpolished best
    return polish, chosen, row


# ---------------------------------------------------------------------------------------------
# the driver
# ---------------------------------------------------------------------------------------------


def fit_mixture(
    X,
    n_components,
    covariance_type,
    settings: MixtureSettings,
    random_state=None,
    *,
    lattice: MixtureLattice | None = None,
    initial: dict | None = None,
    sample_weight=None,
) -> MixtureFitResult:
    """Fit a Gaussian mixture: starts, nested starts, batched EM, polishing, best start.

    Parameters
    ----------
    X : (n_samples, n_features) array; NaN marks a missing entry (exact missing-data EM)
    n_components : int
    covariance_type : {"full", "diag", "spherical", "tied"}
    settings : MixtureSettings
    random_state : None, int, SeedSequence or Generator
        Seed of the random starts (and, through the lattice, of the contained fits).
    lattice : MixtureLattice, optional
        Where contained models are fitted and cached; a private one is made when nested
        starts are on and none is given.
    initial : dict, optional
        User-given starting parameters with a leading start axis: any of ``weights``
        (I, K), ``means`` (I, K, d), ``covariances`` (typed); those not given come from
        ``init_params``. With all three, no random start is drawn. Nested starts are not
        added to user-given starts.
    sample_weight : (n_samples,) array, optional
        Frequency weights of the rows (>= 0): an integer weight fits like that many copies of
        the row, scaling every weight changes nothing, and rows of weight 0 are left out.
        The result's ``n_samples`` is the total weight (the ``n`` of BIC). With a lattice,
        its own weights are used.

    Returns
    -------
    MixtureFitResult
    """
    settings = settings.validate()
    check_covariance_type(covariance_type)
    if lattice is not None:
        X, sample_weight = lattice.X, lattice.sample_weight
    else:
        X, sample_weight = positive_rows(X, sample_weight)
    if lattice is None and settings.nested_starts and initial is None:
        lattice = MixtureLattice(X, settings, random_state, sample_weight)
    prepared = (
        lattice.prepared(covariance_type)
        if lattice is not None
        else PreparedData(X, covariance_type, sample_weight=sample_weight)
    )
    prior = settings.prior_for(X, n_components, covariance_type, sample_weight)
    initial = dict(initial or {})
    given = ("weights", "means", "covariances")
    if all(name in initial for name in given):
        weights, means, covariances = (np.asarray(initial[name], dtype=float) for name in given)
        origin = ["user"] * weights.shape[0]
    else:
        rng = as_generator(random_state)
        weights, means, covariances = initial_parameters(
            X,
            n_components,
            covariance_type,
            settings.n_init,
            settings.init_params,
            rng,
            reg_covar=settings.reg_covar,
            prior=prior,
            prepared=prepared,
            sample_weight=sample_weight,
        )
        weights = np.asarray(initial.get("weights", weights), dtype=float)
        means = np.asarray(initial.get("means", means), dtype=float)
        covariances = np.asarray(initial.get("covariances", covariances), dtype=float)
        origin = (
            start_kinds(settings.init_params, settings.n_init)
            if not initial
            else ["user"] * settings.n_init
        )
    if settings.nested_starts and not initial:
        extra = nested_starts(lattice, n_components, covariance_type)
        if extra is not None:
            weights = np.concatenate([weights, extra[0]])
            means = np.concatenate([means, extra[1]])
            covariances = np.concatenate([covariances, extra[2]])
            origin = list(origin) + extra[3]
    fit = fit_mixture_em(
        X,
        weights,
        means,
        covariances,
        covariance_type,
        tol=settings.tol,
        tol_type=settings.tol_type,
        max_iter=settings.max_iter,
        reg_covar=settings.reg_covar,
        prior=prior,
        prepared=prepared,
        sample_weight=sample_weight,
    )
    best = fit.best_or_raise()
    polished = None
    if settings.polish_tol is not None and settings.max_iter > 0:
        polished = _polish(X, fit, settings, prior, prepared, sample_weight)
    pick = choose_fit(fit, best, polished)
    chosen, row = pick["chosen"], pick["row"]
    return MixtureFitResult(
        covariance_type=covariance_type,
        n_components=int(n_components),
        settings=settings,
        starts=fit,
        origin=np.array(origin, dtype=object),
        polish=pick["polish"],
        polished_starts=pick["polished_starts"],
        best_start=pick["best_start"],
        weights=chosen.weights[row],
        means=chosen.means[row],
        covariances=chosen.covariances[row],
        precisions_cholesky=chosen.precisions_cholesky[row],
        log_likelihood=float(chosen.log_likelihood[row]),
        log_prior=float(chosen.log_prior[row]),
        converged=pick["converged"],
        n_iter=pick["n_iter"],
        trace=pick["trace"],
        n_samples=float(fit.n_samples) if sample_weight is not None else int(fit.n_samples),
        prepared=prepared,
    )
