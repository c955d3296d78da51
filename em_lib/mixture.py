"""``GaussianMixture``: a scikit-learn-style estimator over the batched EM core.

Differences from ``sklearn.mixture.GaussianMixture``, all deliberate:

* all ``n_init`` starts are fitted at once, and every start's results stay available in
  ``starts_`` (:class:`em_lib.numerics.mixture_em.MixtureFit`: parameters, final
  log-likelihood, per-iteration trace, ``n_iter``, ``converged``, failure reasons);
* NaN entries of ``X`` are missing values, fitted by exact EM on the observed-data likelihood;
* ``init_params="auto"`` by default: start 0 from Ward hierarchical clustering (the kind of
  start R's mclust uses), start 1 from Ward on the whitened data, the rest from k-means
  (k-means++ and Lloyd steps) and, for a third of them, from random data rows as centres
  (see :mod:`em_lib.numerics.init`). With ``n_init=1`` this is a deterministic mclust-style
  start; with more starts the best of all is kept. ``"kmeans"`` gives scikit-learn's
  behaviour;
* the best start is the one with the highest log-likelihood of its *final* parameters
  (scikit-learn compares the lower bound of the iteration before);
* a start whose covariance collapses is reported as failed in ``starts_`` and never chosen;
* ``tol_type="relative"`` offers mclust's criterion ``|L_t - L_{t-1}| / (1 + |L_t|) < tol``
  on the total log-likelihood; the default ``"absolute"`` is scikit-learn's (change of the mean
  per-sample log-likelihood);
* the best starts are polished to a relative change of 1e-10 after the batch stopped at
  ``tol`` (``polish_tol``; ``None`` stops where scikit-learn stops);
* ``prior="default"`` (or a :class:`~em_lib.numerics.prior.ConjugatePrior`) gives MAP EM with
  mclust's default conjugate prior.

As in scikit-learn: float32 input gives float32 ``weights_``, ``means_``, ``covariances_``,
``precisions_`` and ``precisions_cholesky_`` (and float32 ``score_samples`` /
``predict_proba``), all computed in float64 and cast at the end; ``lower_bound_`` and
``lower_bounds_`` stay float64. With ``warm_start`` the convergence test continues across
fits, so repeated ``max_iter=1`` fits report ``converged_`` once successive objectives agree
within ``tol``.

Criteria use scikit-learn's sign convention throughout: ``bic``, ``aic`` and ``icl`` are
``-2 log L + penalty``, so **lower is better** (mclust reports the negative: higher is better).
``icl`` is ``bic`` plus twice the entropy of the hard classification,
``-2 sum_n log tau_{n, z_n}`` with ``z_n`` the most probable component (Biernacki, Celeux &
Govaert 2000). With missing data, ``n`` counts the rows with at least one observed entry.

``fit(X, sample_weight=w)`` takes frequency weights of the rows (scikit-learn's
``GaussianMixture`` has none): an integer weight counts the row that many times, so the fit
equals the fit of the repeated rows from the same starts, and scaling all weights changes
nothing. Weights that differ per start (one row of weights per bootstrap replicate) go
through :func:`em_lib.bootstrap`.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._estimator import (
    EstimatorMixin,
    check_mixture_data,
    check_positive_int,
    convergence_warning_class,
    make_rng,
    validate_X,
)
from .numerics.covariance import (
    any_to_full,
    check_covariance_type,
    triangular_inverse,
)
from .numerics.criteria import information_criteria, logsumexp, n_parameters
from .numerics.fitting import MixtureFitResult, MixtureSettings, fit_mixture
from .numerics.gaussian import (
    check_sample_weight,
    impute_mixture,
    log_gaussian_density,
    run_estep,
)
from .numerics.monitor import EMMonitor


def _fit_dtype(X):
    """float32 for float32 input (array or all-float32 DataFrame), else float64: the dtype of
    the fitted parameters, as scikit-learn keeps it."""
    dtype = getattr(X, "dtype", None)
    if dtype is None and hasattr(X, "dtypes"):
        return np.float32 if {str(d) for d in X.dtypes} == {"float32"} else np.float64
    try:
        return np.float32 if np.dtype(dtype) == np.float32 else np.float64
    except TypeError:
        return np.float64


class GaussianMixture(EstimatorMixin):
    """Gaussian mixture fitted by batched EM over many starts.

    Parameters
    ----------
    n_components : int, default 1
    covariance_type : {"full", "diag", "spherical", "tied"}, default "full"
    tol : float, default 1e-3
        Convergence threshold, see ``tol_type``.
    reg_covar : float, default 1e-6
        Added to the diagonal of every covariance (ignored with a prior).
    max_iter : int, default 100
    n_init : int, default 1
        Number of starts, all fitted in one batched run.
    init_params : {"auto", "kmeans", "k-means++", "random", "random_from_data",
        "hierarchical", "short-em"}, default "auto"
        See :mod:`em_lib.numerics.init`.
    weights_init, means_init, precisions_init : array, optional
        User-given starting parameters (scikit-learn shapes, or with a leading ``n_init``
        axis for one set per start); parameters not given come from ``init_params``.
    random_state : None, int, SeedSequence or Generator
    warm_start : bool, default False
        Start the next ``fit`` from the current solution (one start).
    tol_type : {"absolute", "relative"}, default "absolute"
    prior : None, "default" or ConjugatePrior
        MAP EM with a conjugate prior (mclust's defaults for "default").
    nested_starts : bool, default False
        Add starts built from the solutions of the models this one contains, fitted with the
        same settings and seed (:mod:`em_lib.numerics.fitting`): the diag and tied solutions
        for ``full``, spherical for ``diag``, and for ``K > 1`` the ``K - 1`` solution with
        one component split along its principal axis and with a new component of weight 1e-8
        at the worst-fitted row. EM only climbs from a start, so a richer model's best
        log-likelihood is then never below that of a model it contains (full >= diag >=
        spherical, full >= tied, K >= K - 1) except for round-off. An isolated fit pays for
        the whole lattice of contained models (up to ``4 K`` fits for ``full``), so it is off
        by default; model selection over a grid (where the lattice is fitted anyway) and the
        workflow turn it on. Ignored with user-given starting parameters or ``warm_start``.
    polish_tol : float or None, default 1e-10
        After every start has stopped at ``tol``, the best starts (up to ``polish_starts``
        at distinct optima: starts whose matched means and weights agree within 0.1 data
        standard deviations count as one) continue EM, accelerated by SQUAREM
        (:mod:`em_lib.numerics.squarem`), until one EM step changes the total objective by
        less than ``polish_tol`` relative, ``|L_t - L_{t-1}| / (1 + |L_t|)`` (at most
        ``10 * max_iter`` more EM steps), and the best polished start is kept. Starts are
        compared and stopped at the user's ``tol`` (cheap), while the reported solution sits
        at the optimum instead of wherever the loose default ``tol`` happened to stop it
        (scikit-learn's 1e-3 per sample leaves totals of order ``1e-3 n / (1 - rate)`` on the
        table; mclust iterates to a relative 1e-5, StepMix to 1e-10). ``None`` turns polishing
        off: the fit then stops exactly where scikit-learn's would.
    polish_starts : int, default 5

    Attributes (besides scikit-learn's)
    -----------------------------------
    fit_result_ : em_lib.numerics.fitting.MixtureFitResult
        The driver's whole result (starts, their origins, polishing, the chosen start).
    starts_ : MixtureFit
        Every start as it stopped at ``tol`` (before polishing).
    start_origin_ : array of str
        How each start was made (``init_params`` or a nested-start label).
    best_start_ : int
        Index in ``starts_`` of the start whose (polished) solution was kept.
    polish_ : MixtureFit or None
        The polished starts (``None`` when polishing is off). Only starts that met ``tol``
        within ``max_iter`` are polished. ``n_iter_`` counts the batch's EM steps of the kept
        start (at most ``max_iter``, as in scikit-learn; polishing's are in
        ``polish_.n_iter``); ``lower_bounds_`` covers both stages, ``converged_`` is true if
        either stage met its tolerance.
    verbose : int, default 0
        1 prints, after the batched run, every start (index, kind from ``start_origin_``,
        final log-likelihood, ``n_iter``, converged) and the polishing result; 2 also the
        kept start's objective per iteration. Printed to stdout, as scikit-learn does.
    """

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="auto",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state=None,
        warm_start=False,
        tol_type="absolute",
        prior=None,
        nested_starts=False,
        polish_tol=1e-10,
        polish_starts=5,
        verbose=0,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.tol_type = tol_type
        self.prior = prior
        self.nested_starts = nested_starts
        self.polish_tol = polish_tol
        self.polish_starts = polish_starts
        self.verbose = verbose

    # ------------------------------------------------------------------ validation
    def _settings(self) -> MixtureSettings:
        check_positive_int(self.n_components, "n_components")
        check_covariance_type(self.covariance_type)
        return MixtureSettings(
            n_init=self.n_init,
            init_params=self.init_params,
            tol=self.tol,
            tol_type=self.tol_type,
            max_iter=self.max_iter,
            reg_covar=self.reg_covar,
            prior=self.prior,
            nested_starts=self.nested_starts,
            polish_tol=self.polish_tol,
            polish_starts=self.polish_starts,
        ).validate()

    def _validate_fit_data(self, X, sample_weight=None):
        X, n_used = check_mixture_data(X, type(self).__name__)
        if sample_weight is not None:
            weights = check_sample_weight(sample_weight, X.shape[0])
            n_used = int(((weights > 0) & ~np.isnan(X).all(axis=1)).sum())
        if n_used < self.n_components:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = "
                f"{self.n_components}, n_samples = {n_used}"
                + (" (rows with at least one observed value)" if n_used < X.shape[0] else "")
            )
        return X

    def _user_init(self, name, value, shape_tail, n_init):
        array = np.asarray(value, dtype=float)
        if array.shape == shape_tail:
            return np.broadcast_to(array, (n_init,) + shape_tail).copy()
        if array.shape == (n_init,) + shape_tail:
            return array.copy()
        raise ValueError(
            f"{name} has shape {array.shape}; expected {shape_tail} or {(n_init,) + shape_tail}"
        )

    def _initial(self, n_features):
        """User-given starting parameters for :func:`fit_mixture` (``initial``), or None."""
        n_init, n_comp, ct = self.n_init, self.n_components, self.covariance_type
        if self.warm_start and self.__sklearn_is_fitted__():
            return {
                name: np.array(getattr(self, attribute), dtype=float)[None]
                for name, attribute in (
                    ("weights", "weights_"),
                    ("means", "means_"),
                    ("covariances", "covariances_"),
                )
            }
        initial = {}
        if self.weights_init is not None:
            weights = self._user_init("weights_init", self.weights_init, (n_comp,), n_init)
            if np.any(weights < 0) or not np.allclose(weights.sum(-1), 1.0):
                raise ValueError("weights_init must be non-negative and sum to 1")
            initial["weights"] = weights
        if self.means_init is not None:
            initial["means"] = self._user_init(
                "means_init", self.means_init, (n_comp, n_features), n_init
            )
        if self.precisions_init is not None:
            shape = {
                "full": (n_comp, n_features, n_features),
                "tied": (n_features, n_features),
                "diag": (n_comp, n_features),
                "spherical": (n_comp,),
            }[ct]
            precisions = self._user_init("precisions_init", self.precisions_init, shape, n_init)
            if ct in ("full", "tied"):
                try:
                    lower = np.linalg.cholesky(precisions)  # precision = L L^T
                except np.linalg.LinAlgError:
                    raise ValueError(
                        "precisions_init must be symmetric positive definite"
                    ) from None
                inv_lower = triangular_inverse(lower)
                initial["covariances"] = np.swapaxes(inv_lower, -1, -2) @ inv_lower
            else:
                if np.any(precisions <= 0):
                    raise ValueError("precisions_init must be positive")
                initial["covariances"] = 1.0 / precisions
        return initial or None

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None, sample_weight=None):
        """Fit all starts; keep the best. Returns self.

        ``sample_weight`` (n,), optional: frequency weights of the rows (>= 0). An integer
        weight fits exactly like that many copies of the row (same starts given, same fit),
        scaling every weight by the same factor changes nothing, rows of weight 0 are left
        out. ``lower_bound_`` is the weighted mean per-row log-likelihood; for the criteria
        the weights count as rows (``n`` = their sum), so pass counts, or weights rescaled to
        the effective sample size, when BIC is to be used.
        """
        self.fit_predict(X, y, sample_weight=sample_weight)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit (rows weighted by ``sample_weight``, see :meth:`fit`) and return the most
        probable component of every row of X."""
        settings = self._settings()
        dtype = _fit_dtype(X)
        X = self._validate_fit_data(X, sample_weight)
        sample_weight = check_sample_weight(sample_weight, X.shape[0])
        warm = self.warm_start and self.__sklearn_is_fitted__()
        previous = getattr(self, "lower_bound_", -np.inf) if warm else -np.inf
        result = fit_mixture(
            X,
            self.n_components,
            self.covariance_type,
            settings,
            self.random_state,
            initial=self._initial(X.shape[1]),
            sample_weight=sample_weight,
        )
        self._set_result(result, X.shape[1], dtype=dtype)
        if warm and not self.converged_:
            self.converged_ = self._converged_across_fits(previous, result)
        if self.verbose:
            self._print_fit(result)
        if not self.converged_ and self.max_iter > 0:
            warnings.warn(
                f"Best start did not converge in {self.max_iter} iterations (tol={self.tol}, "
                f"{self.tol_type}); increase max_iter or tol.",
                convergence_warning_class(),
                stacklevel=2,
            )
        if sample_weight is not None and (sample_weight == 0).any():
            return self.predict(X)  # the fit's engine holds only the rows of positive weight
        return self._labels(X, result)

    def _converged_across_fits(self, previous, result: MixtureFitResult) -> bool:
        """scikit-learn's warm-start rule: the tolerance test continues across fits, so the
        first objective of this fit (that of the parameters the previous fit returned) is
        compared with the previous fit's last objective, as between two iterations."""
        if result.trace.size == 0 or not np.isfinite(previous):
            return False
        monitor = EMMonitor(1, 0, tol=self.tol, tol_type=self.tol_type, n_samples=result.n_samples)
        return bool(monitor.is_converged(np.array([result.trace[0]]), np.array([previous]))[0])

    def _print_fit(self, result: MixtureFitResult):
        """The verbose report (stdout): every start, the polishing, the kept start and, for
        ``verbose >= 2``, the kept start's objective per iteration."""
        starts = result.starts
        print(
            f"{type(self).__name__}: {starts.n_init} start(s) of K={self.n_components} "
            f"{self.covariance_type}, batched run"
        )
        for i in range(starts.n_init):
            if starts.failed[i]:
                status = f"failed ({starts.failure_reason[i]})"
            else:
                status = "converged" if starts.converged[i] else "did not converge"
            print(
                f"  start {i:3d}  {str(result.origin[i]):<22}  log-likelihood "
                f"{starts.log_likelihood[i]:.6f}  n_iter {int(starts.n_iter[i]):4d}  {status}"
            )
        if result.polish is None:
            reason = (
                "off (polish_tol=None)"
                if self.polish_tol is None or self.max_iter == 0
                else "no improvement kept"
            )
            print(f"  polishing: {reason}")
        else:
            polish = result.polish
            print(
                f"  polishing {polish.n_init} start(s) to a relative change of {self.polish_tol:g}"
            )
            for row, start in enumerate(result.polished_starts):
                status = "converged" if polish.converged[row] else "did not converge"
                if polish.failed[row]:
                    status = f"failed ({polish.failure_reason[row]})"
                print(
                    f"  start {int(start):3d}  log-likelihood "
                    f"{starts.log_likelihood[start]:.6f} -> {polish.log_likelihood[row]:.6f}"
                    f"  n_iter {int(polish.n_iter[row]):4d}  {status}"
                )
        print(
            f"  kept start {result.best_start} ({result.origin[result.best_start]}): "
            f"log-likelihood {result.log_likelihood:.6f}, n_iter {result.n_iter}, "
            f"converged {self.converged_}"
        )
        if self.verbose >= 2:
            batch = int(np.isfinite(starts.trace[result.best_start]).sum())
            print(
                f"  objective per iteration of start {result.best_start} "
                "(mean per-sample log-likelihood of the parameters entering it):"
            )
            previous = None
            for step, value in enumerate(result.trace, 1):
                stage = "batch" if step <= batch else "polish"
                change = "" if previous is None else f"  change {value - previous:.3e}"
                print(f"    iter {step:4d}  {stage:<6}  {value:.10f}{change}")
                previous = value

    def _set_result(self, result: MixtureFitResult, n_features, dtype=np.float64):
        """Copy a fit's solution into the fitted attributes (also used by model selection);
        ``dtype`` is that of the fitted parameters (float32 for float32 input)."""
        self.fit_result_ = result
        self.starts_ = result.starts
        self.start_origin_ = result.origin
        self.best_start_ = result.best_start
        self.polish_ = result.polish
        chol = result.precisions_cholesky
        if self.covariance_type in ("full", "tied"):
            precisions = chol @ np.swapaxes(chol, -1, -2)
        else:
            precisions = chol**2
        self.weights_ = result.weights.astype(dtype, copy=False)
        self.means_ = result.means.astype(dtype, copy=False)
        self.covariances_ = result.covariances.astype(dtype, copy=False)
        self.precisions_cholesky_ = chol.astype(dtype, copy=False)
        self.precisions_ = precisions.astype(dtype, copy=False)
        self.converged_ = result.converged
        # EM steps of the batch, at most max_iter as in scikit-learn; polishing's steps are
        # in polish_.n_iter (fit_result_.n_iter counts both)
        self.n_iter_ = int(result.starts.n_iter[result.best_start])
        self.lower_bounds_ = result.trace.tolist()
        self.lower_bound_ = self.lower_bounds_[-1] if self.lower_bounds_ else -np.inf
        self.n_features_in_ = n_features

    def _labels(self, X, fit: MixtureFitResult):
        """Most probable component of every row, through the fit's engine (no second pass
        building features); rows with nothing observed get the heaviest component."""
        prepared = fit.prepared
        result = run_estep(
            prepared.engine,
            np.log(fit.weights)[None],
            (fit.means - prepared.center)[None],
            fit.covariances[None],
            fit.precisions_cholesky[None],
            want_stats=False,
            want_log_prob=True,
        )
        labels = np.full(X.shape[0], int(np.argmax(fit.weights)))
        labels[prepared.keep] = result["weighted_log_prob"][0].argmax(axis=1)
        return labels

    # ------------------------------------------------------------------ inference
    def _parameters64(self):
        """(weights, means, covariances) as float64 arrays (the attributes may be float32)."""
        return (
            np.asarray(self.weights_, dtype=float),
            np.asarray(self.means_, dtype=float),
            np.asarray(self.covariances_, dtype=float),
        )

    def _weighted_log_prob(self, X):
        self._check_fitted()
        X = validate_X(X, n_features=self.n_features_in_, estimator_name=type(self).__name__)
        weights, means, covariances = self._parameters64()
        log_density = log_gaussian_density(X, means[None], covariances[None], self.covariance_type)[
            0
        ]
        empty = np.isnan(X).all(axis=1)
        return X, log_density + np.log(weights), empty

    def _weighted_rows(self, X, sample_weight):
        """Per-row log-likelihood, its weights (ones when None), the rows used and the
        weighted log-probabilities of every row under the fit."""
        X, weighted, empty = self._weighted_log_prob(X)
        weights = check_sample_weight(sample_weight, X.shape[0])
        weights = np.ones(X.shape[0]) if weights is None else weights
        log_norm = logsumexp(weighted, axis=1)
        log_norm[empty] = 0.0
        return log_norm, weights, ~empty, weighted

    def score_samples(self, X):
        """Observed-data log-likelihood of every row (n,); rows with nothing observed get 0."""
        dtype = _fit_dtype(X)
        _, weighted, empty = self._weighted_log_prob(X)
        out = logsumexp(weighted, axis=1)
        out[empty] = 0.0
        return out.astype(dtype, copy=False)

    def score(self, X, y=None, sample_weight=None):
        """Mean per-row observed-data log-likelihood (weighted by ``sample_weight``)."""
        if sample_weight is None:
            return float(np.mean(self.score_samples(X)))
        log_norm, weights, _, _ = self._weighted_rows(X, sample_weight)
        return float(np.average(log_norm, weights=weights))

    def predict_proba(self, X):
        """Posterior component probabilities (n, K)."""
        dtype = _fit_dtype(X)
        _, weighted, _ = self._weighted_log_prob(X)
        return np.exp(weighted - logsumexp(weighted, axis=1)[:, None]).astype(dtype, copy=False)

    def predict(self, X):
        """Most probable component of every row (n,)."""
        _, weighted, _ = self._weighted_log_prob(X)
        return np.argmax(weighted, axis=1)

    def _n_parameters(self):
        return n_parameters(self.n_components, self.n_features_in_, self.covariance_type)

    def criteria(self, X, sample_weight=None) -> dict:
        """``{"bic", "aic", "icl"}`` of the fit on ``X`` (lower is better); ``n`` counts the
        rows with at least one observed value, or sums their ``sample_weight`` (frequency
        weights), which also weight the log-likelihood and the classification entropy."""
        log_norm, weights, used, weighted = self._weighted_rows(X, sample_weight)
        weights = np.where(used, weights, 0.0)
        certainty = (weighted[used] - log_norm[used, None]).max(axis=1)
        entropy = -(weights[used] * certainty).sum()
        total = weights.sum()
        n_rows = int(total) if sample_weight is None else float(total)
        return information_criteria(
            (weights * log_norm).sum(), self._n_parameters(), n_rows, entropy
        )

    def bic(self, X, sample_weight=None):
        """Bayesian information criterion, ``-2 log L + p log n``; lower is better."""
        return float(self.criteria(X, sample_weight)["bic"])

    def aic(self, X, sample_weight=None):
        """Akaike information criterion, ``-2 log L + 2 p``; lower is better."""
        return float(self.criteria(X, sample_weight)["aic"])

    def icl(self, X, sample_weight=None):
        """Integrated completed likelihood in BIC units (lower is better):
        ``bic(X) - 2 sum_n log tau_{n, z_n}``."""
        return float(self.criteria(X, sample_weight)["icl"])

    def sample(self, n_samples=1):
        """Draw (X, y) from the fitted mixture; rows grouped by component as scikit-learn."""
        self._check_fitted()
        check_positive_int(n_samples, "n_samples")
        rng = make_rng(self.random_state)
        weights, means, covariances = self._parameters64()
        counts = rng.multinomial(n_samples, weights)
        d = self.n_features_in_
        full = any_to_full(covariances[None], self.covariance_type, self.n_components, d)[0]
        pieces = [
            rng.multivariate_normal(means[k], full[k], size=counts[k])
            for k in range(self.n_components)
        ]
        labels = np.repeat(np.arange(self.n_components), counts)
        return np.vstack(pieces), labels

    def impute(self, X):
        """Replace NaN entries by their conditional expectation under the fitted mixture."""
        self._check_fitted()
        X = validate_X(X, n_features=self.n_features_in_, estimator_name=type(self).__name__)
        return impute_mixture(X, *self._parameters64(), self.covariance_type)

    def impute_draws(self, X, n_draws=5, random_state=None):
        """Multiple imputation: ``n_draws`` random completions of X, (n_draws, n, d)."""
        self._check_fitted()
        X = validate_X(X, n_features=self.n_features_in_, estimator_name=type(self).__name__)
        check_positive_int(n_draws, "n_draws")
        return impute_mixture(
            X,
            *self._parameters64(),
            self.covariance_type,
            n_draws=n_draws,
            rng=make_rng(random_state),
        )
