"""Bootstrap uncertainty of a fitted model: ``em_lib.bootstrap(estimator, X, ...)``.

Kinds (mclust's ``MclustBootstrap`` offers the same three for mixtures):

``"nonparametric"``
    Efron's bootstrap: each replicate draws ``N`` rows with replacement (``N`` the number of
    rows, or the total of ``sample_weight``, which then also sets the probability of each
    row). A replicate is a row of multinomial counts, i.e. row weights.
``"weighted"``
    The weighted likelihood bootstrap (Newton & Raftery 1994, JRSS B 56:3-48): every row
    gets a Dirichlet(1, ..., 1) weight scaled to ``N`` (with ``sample_weight``, a
    Dirichlet with those parameters, the distribution of repeated rows' summed weights).
    No row drops out, which keeps small components present in every replicate.
``"parametric"``
    Each replicate is a new data set simulated from the fitted model (for data with missing
    values every simulated row gets the NaN pattern of the same row of ``X``, i.e. the
    observed pattern is kept; for an HMM, sequences of the same lengths).

For mixtures the nonparametric and weighted replicates are row weights of the same data, so
all ``n_boot`` replicates are fitted **in one batched run**
(:func:`em_lib.numerics.replicates.fit_replicates`): each replicate is a start of the batched
EM with its own row weights, started from the maximum-likelihood fit (plus
``n_random_starts`` random starts per replicate, if asked), run to the estimator's ``tol``
and polished to its ``polish_tol`` (the default 1e-10 relative; without polishing, replicates
started at the ML fit stop early and the spread is underestimated). Parametric replicates
are different data, fitted one after the other through the same function.

For an HMM only the parametric bootstrap is offered: rows of a sequence are not exchangeable,
so resampling rows breaks the dependence the transition matrix describes, and a block
bootstrap needs a block length chosen against the (unknown) mixing time of the chain; the
parametric bootstrap simulates from the fitted chain itself (Zucchini, MacDonald & Langrock,
*Hidden Markov Models for Time Series*, 2nd ed., section 3.6.2 recommends it). Each replicate
is refitted by :class:`em_lib.GaussianHMM` from the ML parameters.

**Label alignment.** A replicate's components are matched to the ML fit's by the Hungarian
algorithm (:func:`scipy.optimize.linear_sum_assignment`) on the cost
``C[j, k] = (m_k - mu_j)^T Sigma_j^{-1} (m_k - mu_j)``: the squared Mahalanobis distance of
replicate mean ``m_k`` from ML component ``j``, measured in that component's covariance
(scale free, and the natural distance for a Gaussian component). The cost of the matching is
kept per replicate; a large one marks a replicate that found a different solution.

Summaries: standard errors (standard deviation over the usable replicates, ``ddof=1``) and
percentile intervals of weights, means, variances and correlations (and, for an HMM, the
start and transition probabilities). Replicates whose fit failed (a collapsed covariance)
are left out and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

KINDS = ("nonparametric", "weighted", "parametric")
HMM_KINDS = ("parametric",)


@dataclass
class BootstrapResult:
    """Bootstrap replicates of a fitted model, aligned to it.

    Attributes
    ----------
    kind : str
    model : {"mixture", "hmm"}
    estimate : dict of arrays
        The maximum-likelihood values: ``weights`` (K,), ``means`` (K, d), ``variances``
        (K, d), ``correlations`` (K, d, d); for an HMM also ``startprob`` (K,) and
        ``transmat`` (K, K) (``weights`` is then the stationary distribution).
    replicates : dict of arrays
        The same names with a leading replicate axis (B, ...), components aligned to the
        estimate; rows of failed replicates are NaN.
    failed : (B,) bool array
    converged : (B,) bool array
    log_likelihood : (B,) array
        Each replicate's objective on its own (weighted or simulated) data.
    alignment_cost : (B,) array
        Total Mahalanobis cost of each replicate's matching.
    feature_names : list of str
    """

    kind: str
    model: str
    estimate: dict
    replicates: dict
    failed: np.ndarray
    converged: np.ndarray
    log_likelihood: np.ndarray
    alignment_cost: np.ndarray
    feature_names: list
    covariance_type: str
    info: dict = field(default_factory=dict)

    @property
    def n_boot(self) -> int:
        return int(self.failed.size)

    @property
    def n_usable(self) -> int:
        return int((~self.failed).sum())

    def standard_errors(self) -> dict:
        """Standard deviation over the usable replicates (``ddof=1``) of every parameter."""
        usable = ~self.failed
        return {
            name: np.std(values[usable], axis=0, ddof=1) if usable.sum() > 1 else np.nan * values[0]
            for name, values in self.replicates.items()
        }

    def intervals(self, level=0.95) -> dict:
        """Percentile intervals ``(lower, upper)`` of every parameter at ``level``."""
        _check_level(level)
        usable = ~self.failed
        tail = 100 * (1 - level) / 2
        out = {}
        for name, values in self.replicates.items():
            if usable.any():
                lower, upper = np.percentile(values[usable], [tail, 100 - tail], axis=0)
            else:
                lower = upper = np.full(values.shape[1:], np.nan)
            out[name] = (lower, upper)
        return out

    def summary(self, level=0.95):
        """Tidy pandas table: one row per scalar parameter with ``parameter``, ``component``,
        ``feature``, ``feature2`` (correlations, and the target state of a transition),
        ``estimate``, ``se``, ``lower``, ``upper``, ``level`` and ``n_usable``. Correlations
        are listed once per pair (upper triangle)."""
        import pandas as pd

        errors = self.standard_errors()
        bounds = self.intervals(level)
        names = self.feature_names
        rows = []
        for name, estimate in self.estimate.items():
            for index in _indices(name, estimate.shape):
                component = int(index[0])
                feature = names[index[1]] if name in ("means", "variances", "correlations") else ""
                feature2 = ""
                if name == "correlations":
                    feature2 = names[index[2]]
                elif name == "transmat":
                    feature2 = f"to {index[1]}"
                rows.append(
                    {
                        "parameter": PARAMETER_NAMES[name],
                        "component": component,
                        "feature": feature,
                        "feature2": feature2,
                        "estimate": float(estimate[index]),
                        "se": float(errors[name][index]),
                        "lower": float(bounds[name][0][index]),
                        "upper": float(bounds[name][1][index]),
                    }
                )
        table = pd.DataFrame(rows)
        table["level"] = level
        table["n_usable"] = self.n_usable
        return table

    def to_xarray(self):
        """The replicates as an :class:`xarray.Dataset` with dimensions ``replicate``,
        ``component``, ``feature`` (and ``feature2``, ``state_to``), the estimate as
        variables ``<name>_estimate``, and ``failed``, ``converged``, ``log_likelihood``,
        ``alignment_cost`` per replicate."""
        import xarray as xr

        dims = {
            "weights": ("component",),
            "startprob": ("component",),
            "means": ("component", "feature"),
            "variances": ("component", "feature"),
            "correlations": ("component", "feature", "feature2"),
            "transmat": ("component", "state_to"),
        }
        variables = {}
        for name, values in self.replicates.items():
            variables[name] = (("replicate", *dims[name]), values)
            variables[f"{name}_estimate"] = (dims[name], self.estimate[name])
        for name in ("failed", "converged", "log_likelihood", "alignment_cost"):
            variables[name] = (("replicate",), getattr(self, name))
        n_comp = self.estimate["weights"].shape[0]
        coords = {
            "replicate": np.arange(self.n_boot),
            "component": np.arange(n_comp),
            "feature": list(self.feature_names),
            "feature2": list(self.feature_names),
        }
        if "transmat" in self.replicates:
            coords["state_to"] = np.arange(n_comp)
        attrs = {"kind": self.kind, "model": self.model, "covariance_type": self.covariance_type}
        attrs.update({key: value for key, value in self.info.items() if np.isscalar(value)})
        return xr.Dataset(variables, coords=coords, attrs=attrs)


PARAMETER_NAMES = {
    "weights": "weight",
    "means": "mean",
    "variances": "variance",
    "correlations": "correlation",
    "startprob": "start probability",
    "transmat": "transition probability",
}


def _indices(name, shape):
    """Index tuples of the scalar parameters of ``name`` listed in the summary."""
    if name == "correlations":
        n_comp, d, _ = shape
        return [(k, i, j) for k in range(n_comp) for i in range(d) for j in range(i + 1, d)]
    return list(np.ndindex(*shape))


def _check_level(level):
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level!r}")


# ---------------------------------------------------------------------------------------------
# parameters, alignment
# ---------------------------------------------------------------------------------------------


def describe(weights, means, full_covariances) -> dict:
    """Weights, means, variances and correlations of one model (or a batch, leading axes
    first) from full covariance matrices."""
    variances = np.diagonal(full_covariances, axis1=-2, axis2=-1).copy()
    scale = np.sqrt(variances)
    with np.errstate(invalid="ignore", divide="ignore"):
        correlations = full_covariances / (scale[..., :, None] * scale[..., None, :])
    return {
        "weights": np.asarray(weights, dtype=float),
        "means": np.asarray(means, dtype=float),
        "variances": variances,
        "correlations": correlations,
    }


def alignment(reference_means, reference_covariances, means):
    """Permutation aligning each replicate's components to the reference: ``perm`` (B, K)
    with ``means[b, perm[b, j]]`` matched to reference component ``j``, and each matching's
    total cost (squared Mahalanobis distance under the reference covariances)."""
    from scipy.optimize import linear_sum_assignment

    lower = np.linalg.cholesky(reference_covariances)  # (K, d, d)
    diff = means[:, None, :, :] - reference_means[None, :, None, :]  # (B, J, K, d)
    solved = np.linalg.solve(lower[None, :, None], diff[..., None])[..., 0]
    cost = np.einsum("bjkd,bjkd->bjk", solved, solved)
    perm = np.empty(means.shape[:2], dtype=int)
    total = np.empty(means.shape[0])
    for b in range(means.shape[0]):
        if not np.isfinite(cost[b]).all():
            perm[b] = np.arange(means.shape[1])
            total[b] = np.nan
            continue
        rows, cols = linear_sum_assignment(cost[b])
        perm[b, rows] = cols
        total[b] = cost[b][rows, cols].sum()
    return perm, total


def _aligned(parameters: dict, perm) -> dict:
    """Reorder the component axis (axis 1) of every replicate by ``perm``; a transition
    matrix is reordered on both axes."""
    index = np.arange(perm.shape[0])[:, None]
    out = {name: values[index, perm] for name, values in parameters.items()}
    if "transmat" in out:
        out["transmat"] = np.take_along_axis(out["transmat"], perm[:, None, :], axis=2)
    return out


# ---------------------------------------------------------------------------------------------
# the entry point
# ---------------------------------------------------------------------------------------------


def bootstrap(
    estimator,
    X,
    *,
    n_boot=200,
    kind="nonparametric",
    sample_weight=None,
    lengths=None,
    n_random_starts=0,
    random_state=None,
    feature_names=None,
) -> BootstrapResult:
    """Bootstrap a fitted :class:`~em_lib.GaussianMixture` or :class:`~em_lib.GaussianHMM`.

    Parameters
    ----------
    estimator : GaussianMixture or GaussianHMM
        Fitted on ``X`` (it is fitted here, with ``sample_weight`` / ``lengths``, when it is
        not fitted yet). Its settings (tolerances, ``max_iter``, ``reg_covar``, prior,
        polishing) are the replicates' settings.
    X : (n_samples, n_features) array; NaN marks a missing entry
    n_boot : int
        Number of replicates B.
    kind : {"nonparametric", "weighted", "parametric"}
        See the module documentation; an HMM takes ``"parametric"`` only.
    sample_weight : (n_samples,) array, optional
        Frequency weights of the rows (mixtures): the fit's weights, which the replicates
        resample.
    lengths : sequence of int, optional
        Sequence lengths (HMM), as for ``GaussianHMM.fit``.
    n_random_starts : int
        Random starts per replicate besides the ML fit (mixtures; the best start of each
        replicate is kept). 0 (default) starts every replicate at the ML fit only.
    random_state : None, int, SeedSequence or Generator
    feature_names : list of str, optional
        Names of the columns (default: a DataFrame's columns, else ``x0, x1, ...``).

    Returns
    -------
    BootstrapResult
    """
    from .hmm import GaussianHMM
    from .mixture import GaussianMixture

    if isinstance(estimator, GaussianMixture):
        return _bootstrap_mixture(
            estimator, X, n_boot, kind, sample_weight, n_random_starts, random_state, feature_names
        )
    if isinstance(estimator, GaussianHMM):
        if sample_weight is not None:
            raise ValueError("sample_weight is not supported for GaussianHMM")
        return _bootstrap_hmm(estimator, X, lengths, n_boot, kind, random_state, feature_names)
    raise TypeError(
        f"bootstrap takes a GaussianMixture or GaussianHMM, got {type(estimator).__name__}"
    )


def _names(X, feature_names, n_features):
    if feature_names is None:
        columns = getattr(X, "columns", None)
        feature_names = [str(c) for c in columns] if columns is not None else None
    if feature_names is None:
        return [f"x{i}" for i in range(n_features)]
    feature_names = [str(name) for name in feature_names]
    if len(feature_names) != n_features:
        raise ValueError(f"feature_names has {len(feature_names)} names for {n_features} columns")
    return feature_names


def _check_common(n_boot, kind, kinds):
    from ._estimator import check_positive_int

    n_boot = check_positive_int(n_boot, "n_boot", minimum=2)
    if kind not in kinds:
        raise ValueError(f"kind must be one of {list(kinds)}, got {kind!r}")
    return n_boot


def replicate_weights(kind, n_boot, base, rng):
    """Row weights of ``n_boot`` replicates (B, n) of data with row weights ``base`` (n,):
    multinomial counts (nonparametric) or Dirichlet weights scaled to the total (weighted)."""
    total = base.sum()
    if kind == "nonparametric":
        draws = int(round(total))
        if not np.all(base == base[0]):
            return rng.multinomial(draws, base / total, size=n_boot).astype(float)
        # equal weights: N row indices per replicate, counted by one bincount (several times
        # faster than a multinomial over n categories, which draws n binomials per replicate)
        picks = rng.integers(0, base.size, size=(n_boot, draws))
        picks += base.size * np.arange(n_boot)[:, None]
        counts = np.bincount(picks.ravel(), minlength=n_boot * base.size)
        return counts.reshape(n_boot, base.size).astype(float)
    gamma = np.zeros((n_boot, base.size))
    positive = base > 0
    gamma[:, positive] = rng.gamma(base[positive], size=(n_boot, int(positive.sum())))
    return gamma / gamma.sum(axis=1, keepdims=True) * total


def _bootstrap_mixture(
    estimator, X, n_boot, kind, sample_weight, n_random_starts, random_state, feature_names
):
    from ._estimator import validate_X

    data = validate_X(X, estimator_name="bootstrap")
    if not estimator.__sklearn_is_fitted__():
        estimator.fit(X, sample_weight=sample_weight)
    result = estimator.fit_result_
    return bootstrap_mixture(
        data,
        (result.weights, result.means, result.covariances),
        estimator.covariance_type,
        estimator._settings(),
        n_boot=n_boot,
        kind=kind,
        sample_weight=sample_weight,
        n_random_starts=n_random_starts,
        random_state=random_state,
        feature_names=_names(X, feature_names, data.shape[1]),
    )


def bootstrap_mixture(
    X,
    parameters,
    covariance_type,
    settings,
    *,
    n_boot=200,
    kind="nonparametric",
    sample_weight=None,
    n_random_starts=0,
    random_state=None,
    feature_names=None,
) -> BootstrapResult:
    """The mixture bootstrap from a fitted model's parameters: what :func:`bootstrap` runs
    for a :class:`~em_lib.GaussianMixture`, and what the workflow runs for a model stored in
    its aggregate.

    Parameters
    ----------
    X : (n_samples, n_features) float array; NaN marks a missing entry
    parameters : (weights (K,), means (K, d), covariances of ``covariance_type``)
        The maximum-likelihood (or MAP) fit on ``X``.
    settings : em_lib.numerics.fitting.MixtureSettings
        The fit's settings: the replicates use its ``tol``, ``tol_type``, ``max_iter``,
        ``reg_covar``, ``prior``, ``polish_tol`` (and ``init_params`` for random starts).
    Other parameters as in :func:`bootstrap`.
    """
    from .numerics.covariance import any_to_full
    from .numerics.gaussian import check_sample_weight
    from .numerics.replicates import fit_replicates
    from .numerics.starts import as_generator

    n_boot = _check_common(n_boot, kind, KINDS)
    if n_random_starts < 0 or int(n_random_starts) != n_random_starts:
        raise ValueError(f"n_random_starts must be an integer >= 0, got {n_random_starts!r}")
    data = np.asarray(X, dtype=float)
    n, d = data.shape
    names = _names(None, feature_names, d)
    base = check_sample_weight(sample_weight, n)
    base = np.ones(n) if base is None else base
    ml = tuple(np.asarray(part, dtype=float) for part in parameters)
    n_comp = ml[0].shape[0]
    ct = covariance_type
    prior = settings.prior_for(data, n_comp, ct, None if sample_weight is None else base)
    rng = as_generator(random_state)
    per = 1 + int(n_random_starts)

    def starts_for(weights_rows):
        """The ML start plus random starts of each replicate, stacked replicate-major."""
        return _replicate_starts(data, ml, ct, settings, per, weights_rows, rng)

    if kind in ("nonparametric", "weighted"):
        W = replicate_weights(kind, n_boot, base, rng)
        groups = np.repeat(np.arange(n_boot), per)
        fits = fit_replicates(
            data,
            starts_for(W),
            ct,
            settings,
            W if per == 1 else np.repeat(W, per, axis=0),
            groups=groups,
            prior=prior,
        )
        fitted = (fits.weights, fits.means, fits.covariances)
        failed, converged, loglik = fits.failed, fits.converged, fits.log_likelihood
    else:
        parts = []
        missing = np.isnan(data)
        for _ in range(n_boot):
            simulated = _simulate_mixture(ml, ct, n, rng)
            simulated[missing] = np.nan
            ones = np.ones((per, n))
            parts.append(
                fit_replicates(
                    simulated,
                    starts_for(ones),
                    ct,
                    settings,
                    ones,
                    groups=np.zeros(per, dtype=int),
                    prior=prior,
                )
            )
        fitted = tuple(
            np.concatenate([getattr(p, name) for p in parts])
            for name in ("weights", "means", "covariances")
        )
        failed, converged, loglik = (
            np.concatenate([getattr(p, name) for p in parts])
            for name in ("failed", "converged", "log_likelihood")
        )

    full = any_to_full(fitted[2], ct, n_comp, d)
    ml_full = any_to_full(ml[2][None], ct, n_comp, d)[0]
    perm, cost = alignment(ml[1], ml_full, fitted[1])
    replicates = _aligned(describe(fitted[0], fitted[1], full), perm)
    for values in replicates.values():
        values[failed] = np.nan
    cost[failed] = np.nan
    return BootstrapResult(
        kind=kind,
        model="mixture",
        estimate=describe(ml[0], ml[1], ml_full),
        replicates=replicates,
        failed=np.asarray(failed, dtype=bool),
        converged=np.asarray(converged, dtype=bool),
        log_likelihood=np.where(failed, np.nan, loglik),
        alignment_cost=cost,
        feature_names=names,
        covariance_type=ct,
        info={"n_random_starts": int(n_random_starts), "n_samples": float(base.sum())},
    )


def _replicate_starts(data, ml, covariance_type, settings, per, weights_rows, rng):
    """Starts of every replicate, replicate-major: the ML fit, then ``per - 1`` random starts
    drawn (``settings.init_params``) with that replicate's row weights."""
    from .numerics.init import initial_parameters

    n_rep = len(weights_rows)
    stacked = [np.repeat(part[None, None], n_rep, axis=0) for part in ml]  # (R, 1, ...)
    if per > 1:
        drawn = [
            initial_parameters(
                data,
                ml[0].shape[0],
                covariance_type,
                per - 1,
                settings.init_params,
                rng,
                reg_covar=settings.reg_covar,
                sample_weight=row,
            )
            for row in weights_rows
        ]
        stacked = [
            np.concatenate([first, np.stack([d[i] for d in drawn])], axis=1)
            for i, first in enumerate(stacked)
        ]
    names = ("weights", "means", "covariances")
    return {
        name: part.reshape((-1,) + part.shape[2:])
        for name, part in zip(names, stacked, strict=True)
    }


def _simulate_mixture(parameters, covariance_type, n, rng):
    """``n`` rows drawn from a mixture (rows in random component order)."""
    from .numerics.covariance import any_to_full

    weights, means, covariances = parameters
    n_comp, d = means.shape
    full = any_to_full(covariances[None], covariance_type, n_comp, d)[0]
    labels = rng.choice(n_comp, size=n, p=weights / weights.sum())
    lower = np.linalg.cholesky(full)
    noise = rng.standard_normal((n, d))
    return means[labels] + np.einsum("nij,nj->ni", lower[labels], noise)


def _bootstrap_hmm(estimator, X, lengths, n_boot, kind, random_state, feature_names):
    from ._estimator import validate_X
    from .numerics.starts import as_generator

    n_boot = _check_common(n_boot, kind, HMM_KINDS)
    data = validate_X(X, estimator_name="bootstrap")
    names = _names(X, feature_names, data.shape[1])
    if not estimator.__sklearn_is_fitted__():
        estimator.fit(data, lengths)
    lengths = [data.shape[0]] if lengths is None else [int(v) for v in lengths]
    rng = as_generator(random_state)
    ml = {
        "startprob": np.array(estimator.startprob_, dtype=float),
        "transmat": np.array(estimator.transmat_, dtype=float),
        "means": np.array(estimator.means_, dtype=float),
        "covars": np.array(estimator.covars_, dtype=float),
    }
    n_comp = ml["means"].shape[0]
    outputs = {name: [] for name in ("startprob", "transmat", "means", "covars")}
    failed = np.zeros(n_boot, dtype=bool)
    converged = np.zeros(n_boot, dtype=bool)
    loglik = np.full(n_boot, np.nan)
    missing = np.isnan(data)
    for b in range(n_boot):
        pieces = [estimator.sample(length, random_state=rng)[0] for length in lengths]
        simulated = np.concatenate(pieces)
        simulated[missing] = np.nan
        refit = _hmm_from(estimator, ml)
        try:
            refit.fit(simulated, lengths)
        except ValueError:
            failed[b] = True
            for name in outputs:
                outputs[name].append(np.full_like(ml[name], np.nan))
            continue
        converged[b] = bool(refit.converged_)
        loglik[b] = refit.score(simulated, lengths)
        for name in outputs:
            outputs[name].append(np.array(getattr(refit, f"{name}_"), dtype=float))
    stacked = {name: np.stack(values) for name, values in outputs.items()}
    perm, cost = alignment(ml["means"], ml["covars"], stacked["means"])
    from .numerics.hmm.driver import _stationary

    stationary = _stationary(ml["transmat"])
    replicate_stationary = np.stack([_stationary(t) for t in stacked["transmat"]])
    described = describe(replicate_stationary, stacked["means"], stacked["covars"])
    described["startprob"] = stacked["startprob"]
    described["transmat"] = stacked["transmat"]
    replicates = _aligned(described, perm)
    for values in replicates.values():
        values[failed] = np.nan
    estimate = describe(stationary, ml["means"], ml["covars"])
    estimate["startprob"] = ml["startprob"]
    estimate["transmat"] = ml["transmat"]
    return BootstrapResult(
        kind=kind,
        model="hmm",
        estimate=estimate,
        replicates=replicates,
        failed=failed,
        converged=converged,
        log_likelihood=loglik,
        alignment_cost=np.where(failed, np.nan, cost),
        feature_names=names,
        covariance_type=estimator.covariance_type,
        info={"n_states": n_comp},
    )


def _hmm_from(estimator, parameters):
    """A copy of ``estimator``'s settings that starts from ``parameters`` (no random start)."""
    from .numerics.covariance import from_full

    params = estimator.get_params()
    params.update(init_params="", n_init=1)
    refit = type(estimator)(**params)
    refit.startprob_ = parameters["startprob"]
    refit.transmat_ = parameters["transmat"]
    refit.means_ = parameters["means"]
    full = parameters["covars"]
    weights = np.ones(full.shape[:1])  # tied: every component holds the same matrix
    refit.covars_ = from_full(full[None], estimator.covariance_type, weights[None])[0]
    return refit


# ---------------------------------------------------------------------------------------------
# the bootstrap likelihood-ratio test for the number of components
# ---------------------------------------------------------------------------------------------


@dataclass
class LRTResult:
    """McLachlan's (1987) parametric bootstrap likelihood-ratio test of K0 against K0 + 1
    components.

    Attributes
    ----------
    statistic : float
        ``2 (log L(K0 + 1) - log L(K0))`` on the data.
    p_value : float
        ``(1 + #{T_b >= statistic}) / (B + 1)`` over the usable replicates.
    null_statistics : (B,) array
        The statistic on each data set simulated from the K0 fit (NaN where a fit failed).
    n_components : int
        K0.
    """

    statistic: float
    p_value: float
    null_statistics: np.ndarray
    n_components: int
    covariance_type: str
    log_likelihoods: tuple


def bootstrap_lrt(
    X,
    n_components,
    covariance_type="full",
    *,
    n_boot=99,
    settings=None,
    random_state=None,
) -> LRTResult:
    """Parametric bootstrap likelihood-ratio test of ``n_components`` (K0) against K0 + 1
    (McLachlan 1987, Applied Statistics 36:318-324; mclust's ``mclustBootstrapLRT``).

    The asymptotic chi-squared distribution of the LRT does not hold for the number of
    components, so its null distribution is simulated: data sets of the same size are drawn
    from the K0 fit (each row keeping its own missing pattern), both models are refitted to
    each, and the p-value is the share of simulated statistics at least as large as the
    observed one. Every fit is a nested lattice fit (:class:`~em_lib.numerics.fitting.
    MixtureLattice`, the K0 + 1 fit starts from the K0 solution split), so every statistic is
    >= 0, as the test needs.

    Parameters
    ----------
    X : (n, d) array; NaN marks a missing entry
    n_components : int, K0 >= 1
    covariance_type : str
    n_boot : int
    settings : MixtureSettings, optional
        Fit settings (default: ``MixtureSettings(n_init=10)``); nested starts are always on.
    random_state : None, int, SeedSequence or Generator
    """
    from dataclasses import replace

    from ._estimator import check_positive_int, validate_X
    from .numerics.fitting import MixtureLattice, MixtureSettings
    from .numerics.starts import as_generator

    data = validate_X(X, estimator_name="bootstrap_lrt")
    k0 = check_positive_int(n_components, "n_components")
    n_boot = check_positive_int(n_boot, "n_boot")
    settings = replace(settings or MixtureSettings(n_init=10), nested_starts=True).validate()
    rng = as_generator(random_state)

    def statistic(values, seed):
        lattice = MixtureLattice(values, settings, seed)
        null = lattice.fit(k0, covariance_type)
        alternative = lattice.fit(k0 + 1, covariance_type)
        return null, alternative, 2.0 * (alternative.log_likelihood - null.log_likelihood)

    null, alternative, observed = statistic(data, rng.integers(2**63))
    missing = np.isnan(data)
    simulated_stats = np.full(n_boot, np.nan)
    parameters = (null.weights, null.means, null.covariances)
    for b in range(n_boot):
        simulated = _simulate_mixture(parameters, covariance_type, data.shape[0], rng)
        simulated[missing] = np.nan
        try:
            simulated_stats[b] = statistic(simulated, rng.integers(2**63))[2]
        except ValueError:  # every start of a fit failed
            continue
    usable = simulated_stats[np.isfinite(simulated_stats)]
    p_value = (1.0 + np.sum(usable >= observed)) / (usable.size + 1.0)
    return LRTResult(
        statistic=float(observed),
        p_value=float(p_value),
        null_statistics=simulated_stats,
        n_components=k0,
        covariance_type=covariance_type,
        log_likelihoods=(null.log_likelihood, alternative.log_likelihood),
    )
