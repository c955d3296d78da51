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

Criteria use scikit-learn's sign convention throughout: ``bic``, ``aic`` and ``icl`` are
``-2 log L + penalty``, so **lower is better** (mclust reports the negative: higher is better).
``icl`` is ``bic`` plus twice the entropy of the hard classification,
``-2 sum_n log tau_{n, z_n}`` with ``z_n`` the most probable component (Biernacki, Celeux &
Govaert 2000). With missing data, ``n`` counts the rows with at least one observed entry.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._estimator import (
    ConvergenceWarning,
    EstimatorMixin,
    check_nonnegative,
    check_positive_int,
    make_rng,
    validate_X,
)
from .numerics.covariance import (
    any_to_full,
    check_covariance_type,
    triangular_inverse,
)
from .numerics.criteria import n_parameters
from .numerics.gaussian import (
    PreparedData,
    impute_mixture,
    log_gaussian_density,
    run_estep,
)
from .numerics.init import check_init, initial_parameters
from .numerics.mixture_em import TOL_TYPES, fit_mixture_em
from .numerics.prior import ConjugatePrior, default_prior
from .numerics.squarem import polish_em
from .numerics.starts import same_solution

SAME_SOLUTION_TOLERANCE = 0.1  # data standard deviations: starts stopped at a loose ``tol``
# in one basin differ by less (0.01-0.07 on the benchmark data), distinct optima by more


def _logsumexp(values, axis):
    shift = np.max(values, axis=axis, keepdims=True)
    shift = np.where(np.isfinite(shift), shift, 0.0)
    return np.squeeze(shift, axis) + np.log(np.exp(values - shift).sum(axis=axis))


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
    nested_starts : bool, default True
        Add starts built from the solutions of the models this one contains, fitted with the
        same settings: the diag and tied solutions for ``full``, spherical for ``diag``, and
        for ``K > 1`` the ``K - 1`` solution with one component split along its principal
        axis and with a new component of weight 1e-8 at the worst-fitted row. EM only climbs
        from a start, so a richer model's best log-likelihood is then never below that of a
        model it contains (full >= diag >= spherical, full >= tied, K >= K - 1) except for
        round-off. The contained fits cost up to ``4 K`` fits for ``full``; their results are
        cached per data set and settings within the process (only with an integer
        ``random_state``). Ignored with user-given starting parameters or ``warm_start``.
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
    starts_ : MixtureFit
        Every start as it stopped at ``tol`` (before polishing).
    start_origin_ : array of str
        How each start was made (``init_params`` or a nested-start label).
    best_start_ : int
        Index in ``starts_`` of the start whose (polished) solution was kept.
    polish_ : MixtureFit or None
        The polished starts (``None`` when polishing is off); ``n_iter_`` and ``lower_bounds_``
        cover both stages, ``converged_`` is true if either stage met its tolerance.
    verbose : int, default 0
        Unused; kept for scikit-learn compatibility.
    """

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3, reg_covar=1e-6,
                 max_iter=100, n_init=1, init_params="auto", weights_init=None,
                 means_init=None, precisions_init=None, random_state=None, warm_start=False,
                 tol_type="absolute", prior=None, nested_starts=True, polish_tol=1e-10,
                 polish_starts=5, verbose=0):
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
    def _check_parameters(self):
        check_positive_int(self.n_components, "n_components")
        check_covariance_type(self.covariance_type)
        check_init(self.init_params)
        check_nonnegative(self.tol, "tol")
        check_nonnegative(self.reg_covar, "reg_covar")
        check_positive_int(self.max_iter, "max_iter", minimum=0)
        check_positive_int(self.n_init, "n_init")
        if not isinstance(self.nested_starts, bool | np.bool_):
            raise ValueError(f"nested_starts must be True or False, got {self.nested_starts!r}")
        if self.polish_tol is not None:
            check_nonnegative(self.polish_tol, "polish_tol")
        check_positive_int(self.polish_starts, "polish_starts")
        if self.tol_type not in TOL_TYPES:
            raise ValueError(f"tol_type must be one of {list(TOL_TYPES)}, got {self.tol_type!r}")
        if not (self.prior is None or self.prior == "default"
                or isinstance(self.prior, ConjugatePrior)):
            raise ValueError(f"prior must be None, 'default' or a ConjugatePrior, got "
                             f"{self.prior!r}")

    def _validate_fit_data(self, X):
        X = validate_X(X, estimator_name=type(self).__name__)
        n_samples, n_features = X.shape
        nan = np.isnan(X)
        all_nan_cols = np.flatnonzero(nan.all(axis=0))
        if all_nan_cols.size:
            raise ValueError(
                f"column(s) {all_nan_cols.tolist()} of X have no observed value; drop them"
            )
        empty_rows = int(nan.all(axis=1).sum())
        if empty_rows:
            warnings.warn(
                f"{empty_rows} row(s) of X have no observed value; they contribute zero to the "
                "log-likelihood and are ignored by the fit",
                UserWarning, stacklevel=3,
            )
        n_used = n_samples - empty_rows
        if n_used < self.n_components:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = "
                f"{self.n_components}, n_samples = {n_used}"
                + (" (rows with at least one observed value)" if empty_rows else "")
            )
        return X

    def _use_nested(self):
        user_given = any(
            value is not None for value in (self.weights_init, self.means_init,
                                            self.precisions_init)
        )
        warm = self.warm_start and self.__sklearn_is_fitted__()
        return bool(self.nested_starts) and not user_given and not warm

    def _prior_for(self, X):
        if self.prior is None:
            return None
        if isinstance(self.prior, ConjugatePrior):
            return self.prior
        return default_prior(X, self.n_components, self.covariance_type)

    def _user_init(self, name, value, shape_tail, n_init):
        array = np.asarray(value, dtype=float)
        if array.shape == shape_tail:
            return np.broadcast_to(array, (n_init,) + shape_tail).copy()
        if array.shape == (n_init,) + shape_tail:
            return array.copy()
        raise ValueError(
            f"{name} has shape {array.shape}; expected {shape_tail} or {(n_init,) + shape_tail}"
        )

    def _starting_parameters(self, X, rng, prior, prepared=None):
        n_init, n_comp, ct = self.n_init, self.n_components, self.covariance_type
        d = X.shape[1]
        if self.warm_start and self.__sklearn_is_fitted__():
            return (self.weights_[None].copy(), self.means_[None].copy(),
                    self.covariances_[None].copy())
        weights, means, covariances = initial_parameters(
            X, n_comp, ct, n_init, self.init_params, rng, reg_covar=self.reg_covar, prior=prior,
            prepared=prepared,
        )
        if self.weights_init is not None:
            weights = self._user_init("weights_init", self.weights_init, (n_comp,), n_init)
            if np.any(weights < 0) or not np.allclose(weights.sum(-1), 1.0):
                raise ValueError("weights_init must be non-negative and sum to 1")
        if self.means_init is not None:
            means = self._user_init("means_init", self.means_init, (n_comp, d), n_init)
        if self.precisions_init is not None:
            shape = {"full": (n_comp, d, d), "tied": (d, d), "diag": (n_comp, d),
                     "spherical": (n_comp,)}[ct]
            precisions = self._user_init("precisions_init", self.precisions_init, shape, n_init)
            if ct in ("full", "tied"):
                try:
                    lower = np.linalg.cholesky(precisions)  # precision = L L^T
                except np.linalg.LinAlgError:
                    raise ValueError(
                        "precisions_init must be symmetric positive definite") from None
                inv_lower = triangular_inverse(lower)
                covariances = np.swapaxes(inv_lower, -1, -2) @ inv_lower
            else:
                if np.any(precisions <= 0):
                    raise ValueError("precisions_init must be positive")
                covariances = 1.0 / precisions
        return weights, means, covariances

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None):
        """Fit all starts; keep the best. Returns self."""
        self.fit_predict(X, y)
        return self

    def fit_predict(self, X, y=None):
        """Fit and return the most probable component of every row of X."""
        self._check_parameters()
        X = self._validate_fit_data(X)
        rng = make_rng(self.random_state)
        prior = self._prior_for(X)
        prepared = PreparedData(X, self.covariance_type)
        weights, means, covariances = self._starting_parameters(X, rng, prior, prepared)
        origin = [self.init_params] * weights.shape[0]
        if self._use_nested():
            from .nested import nested_starting_parameters

            extra = nested_starting_parameters(self, X)
            if extra is not None:
                weights = np.concatenate([weights, extra[0]])
                means = np.concatenate([means, extra[1]])
                covariances = np.concatenate([covariances, extra[2]])
                origin += extra[3]
        fit = fit_mixture_em(
            X, weights, means, covariances, self.covariance_type, tol=self.tol,
            tol_type=self.tol_type, max_iter=self.max_iter, reg_covar=self.reg_covar,
            prior=prior, prepared=prepared,
        )
        best = fit.best_or_raise()
        self.starts_ = fit
        self.start_origin_ = np.array(origin, dtype=object)
        self.best_start_ = best
        result, trace = fit, fit.trace[best]
        converged, n_iter = fit.converged[best], fit.n_iter[best]
        self.polish_ = None
        if self.polish_tol is not None and self.max_iter > 0:
            polished = self._polish(X, fit, prior, prepared)
            if polished is not None:
                self.polish_, chosen, row = polished
                self.best_start_ = best = chosen
                result = self.polish_
                extra = self.polish_.trace[row]
                trace = np.concatenate([fit.trace[best][~np.isnan(fit.trace[best])], extra])
                converged = fit.converged[best] or self.polish_.converged[row]
                n_iter = fit.n_iter[best] + self.polish_.n_iter[row]
                best = row
        self.weights_ = result.weights[best]
        self.means_ = result.means[best]
        self.covariances_ = result.covariances[best]
        self.precisions_cholesky_ = result.precisions_cholesky[best]
        if self.covariance_type in ("full", "tied"):
            self.precisions_ = self.precisions_cholesky_ @ np.swapaxes(
                self.precisions_cholesky_, -1, -2)
        else:
            self.precisions_ = self.precisions_cholesky_**2
        self.converged_ = bool(converged)
        self.n_iter_ = int(n_iter)
        self.lower_bounds_ = trace[~np.isnan(trace)].tolist()
        self.lower_bound_ = self.lower_bounds_[-1] if self.lower_bounds_ else -np.inf
        self.n_features_in_ = X.shape[1]
        if not self.converged_ and self.max_iter > 0:
            warnings.warn(
                f"Best start did not converge in {self.max_iter} iterations (tol={self.tol}, "
                f"{self.tol_type}); increase max_iter or tol.",
                ConvergenceWarning, stacklevel=2,
            )
        # labels through the fit's engine (no second pass building features)
        result = run_estep(prepared.engine, np.log(self.weights_)[None],
                           (self.means_ - prepared.center)[None], self.covariances_[None],
                           self.precisions_cholesky_[None], want_stats=False,
                           want_log_prob=True)
        labels = np.full(X.shape[0], int(np.argmax(self.weights_)))
        labels[prepared.keep] = result["weighted_log_prob"][0].argmax(axis=1)
        return labels

    def _polish(self, X, fit, prior, prepared):
        """Continue the best distinct starts to ``polish_tol``; returns (MixtureFit of the
        polished starts, index of the chosen start in ``starts_``, its row in the polish fit)
        or None when no start could be polished."""
        objective = np.where(fit.failed, -np.inf, fit.objective)
        order = np.argsort(-objective, kind="stable")
        scale = np.sqrt(np.nanvar(X, axis=0)) + 1e-300
        chosen = []
        for start in order:
            if not np.isfinite(objective[start]) or len(chosen) == self.polish_starts:
                break
            if not any(same_solution(fit.weights[start], fit.means[start], fit.weights[other],
                                     fit.means[other], scale, SAME_SOLUTION_TOLERANCE)
                       for other in chosen):
                chosen.append(int(start))
        if not chosen:
            return None
        chosen = np.array(chosen)
        polish = polish_em(
            X, fit.weights[chosen], fit.means[chosen], fit.covariances[chosen],
            self.covariance_type, tol=self.polish_tol, max_iter=10 * self.max_iter,
            reg_covar=self.reg_covar, prior=prior, prepared=prepared,
        )
        score = np.where(polish.failed, -np.inf, polish.objective)
        row = int(np.argmax(score))
        if not np.isfinite(score[row]) or score[row] < objective[chosen[0]]:
            return None  # polishing failed (a collapse); keep the unpolished best
        return polish, int(chosen[row]), row

    # ------------------------------------------------------------------ inference
    def _weighted_log_prob(self, X):
        self._check_fitted()
        X = validate_X(X, n_features=self.n_features_in_, estimator_name=type(self).__name__)
        log_density = log_gaussian_density(X, self.means_[None], self.covariances_[None],
                                           self.covariance_type)[0]
        empty = np.isnan(X).all(axis=1)
        return X, log_density + np.log(self.weights_), empty

    def score_samples(self, X):
        """Observed-data log-likelihood of every row (n,); rows with nothing observed get 0."""
        _, weighted, empty = self._weighted_log_prob(X)
        out = _logsumexp(weighted, axis=1)
        out[empty] = 0.0
        return out

    def score(self, X, y=None):
        """Mean per-row observed-data log-likelihood."""
        return float(np.mean(self.score_samples(X)))

    def predict_proba(self, X):
        """Posterior component probabilities (n, K)."""
        _, weighted, _ = self._weighted_log_prob(X)
        return np.exp(weighted - _logsumexp(weighted, axis=1)[:, None])

    def predict(self, X):
        """Most probable component of every row (n,)."""
        _, weighted, _ = self._weighted_log_prob(X)
        return np.argmax(weighted, axis=1)

    def _n_parameters(self):
        return n_parameters(self.n_components, self.n_features_in_, self.covariance_type)

    def _n_used(self, X):
        return int((~np.isnan(X).all(axis=1)).sum())

    def bic(self, X):
        """Bayesian information criterion, ``-2 log L + p log n``; lower is better."""
        X = validate_X(X)
        return (-2 * self.score_samples(X).sum()
                + self._n_parameters() * np.log(self._n_used(X)))

    def aic(self, X):
        """Akaike information criterion, ``-2 log L + 2 p``; lower is better."""
        return -2 * self.score_samples(X).sum() + 2 * self._n_parameters()

    def icl(self, X):
        """Integrated completed likelihood in BIC units (lower is better):
        ``bic(X) - 2 sum_n log tau_{n, z_n}``."""
        X = validate_X(X)
        proba = self.predict_proba(X)
        used = ~np.isnan(X).all(axis=1)
        with np.errstate(divide="ignore"):
            entropy = -np.log(proba[used].max(axis=1)).sum()
        return self.bic(X) + 2 * entropy

    def sample(self, n_samples=1):
        """Draw (X, y) from the fitted mixture; rows grouped by component as scikit-learn."""
        self._check_fitted()
        check_positive_int(n_samples, "n_samples")
        rng = make_rng(self.random_state)
        counts = rng.multinomial(n_samples, self.weights_)
        d = self.n_features_in_
        full = any_to_full(self.covariances_[None], self.covariance_type, self.n_components,
                           d)[0]
        pieces = [
            rng.multivariate_normal(self.means_[k], full[k], size=counts[k])
            for k in range(self.n_components)
        ]
        labels = np.repeat(np.arange(self.n_components), counts)
        return np.vstack(pieces), labels

    def impute(self, X):
        """Replace NaN entries by their conditional expectation under the fitted mixture."""
        self._check_fitted()
        X = validate_X(X, n_features=self.n_features_in_, estimator_name=type(self).__name__)
        return impute_mixture(X, self.weights_, self.means_, self.covariances_,
                              self.covariance_type)

    def impute_draws(self, X, n_draws=5, random_state=None):
        """Multiple imputation: ``n_draws`` random completions of X, (n_draws, n, d)."""
        self._check_fitted()
        X = validate_X(X, n_features=self.n_features_in_, estimator_name=type(self).__name__)
        check_positive_int(n_draws, "n_draws")
        return impute_mixture(X, self.weights_, self.means_, self.covariances_,
                              self.covariance_type, n_draws=n_draws,
                              rng=make_rng(random_state))
