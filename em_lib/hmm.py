"""``GaussianHMM``: an hmmlearn-style estimator over the HMM fitting driver
(:func:`em_lib.numerics.hmm.fit_hmm`)."""

from __future__ import annotations

import sys
import warnings
from dataclasses import replace

import numpy as np

from ._estimator import (
    EstimatorMixin,
    _not_fitted_error_class,
    check_positive_int,
    convergence_warning_class,
    validate_X,
)
from .numerics.covariance import any_to_full, check_covariance_type
from .numerics.criteria import hmm_n_parameters, information_criteria
from .numerics.hmm import (
    DECODERS,
    HMMSettings,
    check_sequences,
    emission_log_prob,
    fit_hmm,
    forward_backward,
    validate_parameters,
    viterbi,
)
from .numerics.starts import as_generator

# (letter in init_params / params, attribute holding the value, public name)
_PARAMETERS = (
    ("s", "startprob_", "startprob_"),
    ("t", "transmat_", "transmat_"),
    ("m", "means_", "means_"),
    ("c", "_covars_", "covars_"),
)


class GaussianHMM(EstimatorMixin):
    """Hidden Markov model with Gaussian emissions, fitted by batched Baum-Welch.

    Names follow ``hmmlearn.hmm.GaussianHMM``; all ``n_init`` starts are fitted at once and
    the one with the highest final log-likelihood (penalised, with priors) is kept.

    Parameters
    ----------
    n_components : int, default 1
        Number of hidden states ``K``.
    covariance_type : {"full", "diag", "spherical", "tied"}, default "diag"
    n_iter : int, default 100
        Maximum number of Baum-Welch iterations per start. 0 only initialises (as hmmlearn):
        the start with the highest initial log-likelihood is kept, ``n_iter_ = 0``,
        ``converged_ = False`` and no ConvergenceWarning.
    tol : float, default 1e-4
        Convergence threshold on the absolute change of the *mean per-observed-step*
        log-likelihood between iterations (hmmlearn: the total log-likelihood; use
        ``tol = tol_hmmlearn / n_samples`` for the same rule).
    n_init : int, default 10
        Number of starts, all fitted in one batched run.
    init : {"auto", "gmm", "random"}, default "auto"
        Strategy for the parameters named in ``init_params``; see
        :func:`em_lib.numerics.hmm.initial_hmm_parameters`. ``"auto"`` mixes kinds of start
        by index: start 0 from em_lib's Gaussian mixture fitted on the pooled data, the
        others in turn from random rows as means with persistent random transitions, from
        k-means centres with sparse random (Dirichlet(1/K)) start and transition rows, again
        random persistent, and from mixtures started at random rows
        (:func:`em_lib.numerics.hmm.hmm_start_kinds`); each start of the random kinds is the
        best of 8 candidates of its kind after 10 batched Baum-Welch iterations (screening;
        candidates collapsing onto a few points ranked last). Changed: the default was ``"gmm"``,
        which remains available and gives the previous behaviour (every start from the
        k-means-initialised mixture, transitions from its consecutive posteriors; its starts
        often all reach the same optimum).
    init_params : str, default "stmc"
        Parameters initialised by ``init`` (s: startprob, t: transmat, m: means,
        c: covariances). Those left out are taken from ``startprob_``, ``transmat_``,
        ``means_`` and ``covars_`` as they are when ``fit`` is called (set by the user, with
        the shape of one model or a leading ``n_init`` axis for one value per start, or left
        by an earlier ``fit``); one left out but not set is initialised like the others
        (hmmlearn's rule). A parameter set by the user whose letter *is* in ``init_params``
        is overwritten by ``fit``, with a UserWarning "... will be overwritten during
        initialization ..." (hmmlearn logs the same text through ``logging``); values left by
        an earlier ``fit`` are replaced silently.
    params : str, default "stmc"
        Parameters updated by Baum-Welch; means and covariances only together.
    reg_covar : float, default 1e-6
        Added to the covariance diagonals in every M-step (scikit-learn's convention).
    prior : None, "default" or ConjugatePrior
        MAP update of the emissions with the mixture core's conjugate prior.
    startprob_prior, transmat_prior : float or array, default 1.0
        Dirichlet concentrations; MAP update ``max(counts + alpha - 1, 0)`` normalised.
        1.0 is no prior.
    random_state : None, int, SeedSequence or Generator
    algorithm : {"viterbi", "map"}, default "viterbi"
        Decoder used by ``predict`` and ``decode``.
    engine : {"auto", "numba", "numpy"}, default "auto"
        Forward-backward engine (numba's compiled recursion, or the numpy reference).
    verbose : bool or int, default False
        After ``fit``, report to stderr (as hmmlearn) every start's outcome, the polishing,
        the kept start and its objective per iteration with the change from the previous
        one (hmmlearn prints the same per-iteration lines while it fits).

    Attributes
    ----------
    startprob_ : (K,) array
    transmat_ : (K, K) array, ``transmat_[i, j] = P(s_{t+1} = j | s_t = i)``
    means_ : (K, d) array
    covars_ : (K, d, d) array
        Always full matrices, like hmmlearn's ``covars_`` property; the setter takes the
        covariance type's own shape ((K, d, d) full, (K, d) diag, (K,) spherical, (d, d)
        tied), as hmmlearn's does.
    covariances_ : the same covariances in the type's own shape
    converged_ : bool
        True if the kept start met ``tol`` in the batch or the polishing tolerance.
    n_iter_ : int
        Baum-Welch iterations of the kept start, batch and polishing together.
    starts_ : :class:`em_lib.numerics.hmm.HMMFit`
        Per-start results as the batch stopped at ``tol`` (before polishing): ``trace``
        (mean per-step log-likelihood per iteration, NaN after stopping), ``n_iter``,
        ``converged``, ``log_likelihood``, ``failed``, ``failure_reason`` and the parameters
        of every start.
    start_origin_ : array of str
        The kind of every start (``gmm``, ``random-persistent``, ``kmeans-random_transitions``,
        ``gmm-random_from_data``, ``random``; ``user`` when ``init_params`` is empty).
    polish_ : :class:`em_lib.numerics.hmm.HMMFit` or None
        After the batch, the best starts at distinct optima (up to 3) are continued by
        Baum-Welch to a relative change of 1e-8 of the total log-likelihood (at most
        ``10 * n_iter`` more iterations; :class:`em_lib.numerics.hmm.HMMSettings`'s
        ``polish_tol`` and ``polish_starts``) and the best is kept: these are the polished
        starts (rows ``fit_result_.polished_starts`` of ``starts_``); None when nothing was
        polished (``n_iter=0``).
    best_start_ : int
        Row of ``starts_`` whose (polished) solution was kept.
    fit_result_ : :class:`em_lib.numerics.hmm.HMMFitResult`
        What :func:`em_lib.numerics.hmm.fit_hmm` returned (the attributes above come from it).
    n_features_in_ : int

    A model set by hand works without ``fit``: once ``startprob_``, ``transmat_``,
    ``means_`` and ``covars_`` are all assigned with shapes consistent with
    ``n_components`` and ``covariance_type``, the estimator counts as fitted, ``sample``,
    ``score``, ``score_samples``, ``predict``, ``predict_proba``, ``decode`` and the criteria
    use them, and ``n_features_in_`` is taken from ``means_``. Probabilities must sum to 1
    and covariances be positive definite (ValueError otherwise). Spherical ``covars_`` may
    also be given with trailing axes of length one ((K, 1), (K, 1, 1), (K, 1, 1, 1), as
    hmmlearn accepts).

    Notes
    -----
    Deliberate differences from hmmlearn:

    * ``n_iter`` defaults to 100 (hmmlearn: 10, which often stops far from convergence), and
      ``n_init`` starts are fitted (hmmlearn fits one);
    * ``tol`` is on the mean per-observation log-likelihood (see above); ``converged_`` is
      True only when the tolerance was met, never merely because ``n_iter`` was reached (a
      :class:`~em_lib._estimator.ConvergenceWarning` is issued then, as by em_lib's
      ``GaussianMixture``);
    * the default initialisation mixes kinds of start, the first a fitted Gaussian mixture
      (hmmlearn: k-means means, the data covariance and Dirichlet(1/K) random
      start/transition rows), and the best starts are polished to a tight tolerance;
    * the emission M-step adds ``reg_covar`` to the covariance diagonals (scikit-learn);
      hmmlearn's ``min_covar`` (used at initialisation), ``covars_prior``/``covars_weight`` and
      ``means_prior``/``means_weight`` are not offered; use ``prior`` for a conjugate prior;
    * NaN entries are missing values: an all-NaN step has emission 1, a partially observed
      step the marginal density of its observed features (exact EM);
    * fitting requires every sequence to have at least 2 steps; scoring and decoding accept
      sequences of length 1;
    * ``decode(..., algorithm="map")`` returns the sum of the *log* maximal posteriors
      (hmmlearn sums the posteriors themselves);
    * ``score``, ``bic`` and ``aic`` count ``n`` as the steps with at least one observed
      feature; ``bic``/``aic`` follow scikit-learn's sign (lower is better);
    * problems are reported with ``warnings`` (hmmlearn logs them through ``logging``), and
      ``verbose`` reports after ``fit`` rather than while it runs.

    hmmlearn's own tests, run against this class, pass except for the differences listed in
    ``benchmarks/peer_tests/DIFFERENCES.md`` (``benchmarks/peer_tests/run_peer_tests.py``).
    """

    def __init__(
        self,
        n_components=1,
        covariance_type="diag",
        *,
        n_iter=100,
        tol=1e-4,
        n_init=10,
        init="auto",
        init_params="stmc",
        params="stmc",
        reg_covar=1e-6,
        prior=None,
        startprob_prior=1.0,
        transmat_prior=1.0,
        random_state=None,
        algorithm="viterbi",
        engine="auto",
        verbose=False,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.n_iter = n_iter
        self.tol = tol
        self.n_init = n_init
        self.init = init
        self.init_params = init_params
        self.params = params
        self.reg_covar = reg_covar
        self.prior = prior
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.random_state = random_state
        self.algorithm = algorithm
        self.engine = engine
        self.verbose = verbose

    # ------------------------------------------------------------------ parameters
    @property
    def covars_(self):
        """Covariances as full (K, d, d) matrices (hmmlearn's convention)."""
        typed = self._covars_
        d = np.shape(self.means_)[-1]
        return any_to_full(typed[None], self.covariance_type, self.n_components, d)[0]

    @covars_.setter
    def covars_(self, covars):
        covars = np.array(covars, dtype=float, copy=True)
        check_covariance_type(self.covariance_type)
        k = self.n_components
        if (
            self.covariance_type == "spherical"
            and covars.ndim >= 2
            and covars.shape[0] == k
            and all(size == 1 for size in covars.shape[1:])
        ):
            covars = covars.reshape(k)  # one variance per state: a column, 1x1 matrices, ...
        ndim = {"full": 3, "diag": 2, "spherical": 1, "tied": 2}[self.covariance_type]
        if covars.ndim not in (ndim, ndim + 1):
            raise ValueError(
                f"{self.covariance_type} covars_ must have {ndim} dimensions (one model) or "
                f"{ndim + 1} (one per start), got shape {covars.shape}"
            )
        if self.covariance_type != "tied" and covars.shape[covars.ndim - ndim] != k:
            raise ValueError(
                f"covars_ must describe n_components={k} states, got shape {covars.shape}"
            )
        self._covars_ = covars

    @property
    def covariances_(self):
        """Covariances in the covariance type's own shape."""
        return self._covars_

    def _settings(self) -> HMMSettings:
        """Check the estimator's parameters; the fitting ones as :class:`HMMSettings`."""
        check_positive_int(self.n_components, "n_components")
        check_covariance_type(self.covariance_type)
        check_positive_int(self.n_iter, "n_iter", minimum=0)
        if self.algorithm not in DECODERS:
            raise ValueError(f"algorithm must be one of {list(DECODERS)}, got {self.algorithm!r}")
        return HMMSettings(
            n_init=self.n_init,
            init=self.init,
            tol=self.tol,
            max_iter=max(self.n_iter, 1),
            reg_covar=self.reg_covar,
            prior=self.prior,
            startprob_prior=self.startprob_prior,
            transmat_prior=self.transmat_prior,
            params=self.params if self.n_iter else "",
            init_params=self._initialised_letters(),
            engine=self.engine,
        ).validate()

    def _initialised_letters(self):
        """The letters ``fit`` initialises: those in ``init_params`` and, as hmmlearn, those
        left out whose parameter is not set (in the order s, t, m, c)."""
        init_params = self.init_params
        if not isinstance(init_params, str) or set(init_params) - set("stmc"):
            return init_params  # as given: HMMSettings.validate names the problem
        return "".join(
            letter
            for letter, attribute, _ in _PARAMETERS
            if letter in init_params or not hasattr(self, attribute)
        )

    # ------------------------------------------------------------------ the model
    def _shape_problem(self):
        """Why the four parameters do not form one model of ``n_components`` states of the
        covariance type (a message), or None when they do."""
        k, covariance_type = self.n_components, self.covariance_type
        try:
            arrays = {
                name: np.asarray(getattr(self, attribute), dtype=float)
                for _, attribute, name in _PARAMETERS
            }
        except (TypeError, ValueError) as err:
            return f"the model parameters must be numeric arrays ({err})"
        means = arrays["means_"]
        if means.ndim != 2 or means.shape[0] != k:
            return (
                f"means_ must have shape (n_components, n_features) with "
                f"n_components={k}, got {means.shape}"
            )
        d = means.shape[1]
        expected = {
            "startprob_": (k,),
            "transmat_": (k, k),
            "covars_": {"full": (k, d, d), "diag": (k, d), "spherical": (k,), "tied": (d, d)}[
                covariance_type
            ],
        }
        for name, shape in expected.items():
            if arrays[name].shape != shape:
                what = f"{covariance_type} covars_" if name == "covars_" else name
                return (
                    f"{what} must have shape {shape} for n_components={k} and "
                    f"n_features={d} (from means_), got {arrays[name].shape}"
                )
        return None

    def __sklearn_is_fitted__(self):
        """Fitted, or set by hand: all four parameters present with consistent shapes."""
        if not all(hasattr(self, attribute) for _, attribute, _ in _PARAMETERS):
            return False
        try:
            check_covariance_type(self.covariance_type)
            return self._shape_problem() is None
        except (TypeError, ValueError):
            return False

    def _model(self):
        """``(startprob, transmat, means, covariances)`` of the model, each with a leading axis
        of one, after checking that they are set (NotFittedError), consistent (ValueError
        naming the parameter) and valid; sets ``n_features_in_`` from ``means_``."""
        missing = [name for _, attribute, name in _PARAMETERS if not hasattr(self, attribute)]
        if missing:
            raise _not_fitted_error_class()(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator, or set startprob_, "
                f"transmat_, means_ and covars_ (missing: {', '.join(missing)})."
            )
        check_covariance_type(self.covariance_type)
        check_positive_int(self.n_components, "n_components")
        problem = self._shape_problem()
        if problem is not None:
            raise ValueError(problem)
        startprob, transmat, means, covariances = validate_parameters(
            np.asarray(self.startprob_, dtype=float)[None],
            np.asarray(self.transmat_, dtype=float)[None],
            np.asarray(self.means_, dtype=float)[None],
            self._covars_[None],
            self.covariance_type,
        )
        self.n_features_in_ = means.shape[2]
        self.n_features = means.shape[2]
        return startprob, transmat, means, covariances

    def _check_fitted(self):
        self._model()

    def _validate(self, X, lengths, *, fitting):
        name = type(self).__name__
        n_features = None if fitting else self.n_features_in_
        X = validate_X(X, estimator_name=name, n_features=n_features)
        X, lengths, _ = check_sequences(X, lengths, min_length=2 if fitting else 1)
        return X, lengths

    def _fixed(self, initialised):
        """The set parameters whose letters are not ``initialised``: fit starts from them."""
        fixed = {}
        for key, letter, attribute in (
            ("startprob", "s", "startprob_"),
            ("transmat", "t", "transmat_"),
            ("means", "m", "means_"),
            ("covariances", "c", "_covars_"),
        ):
            if letter not in initialised:
                fixed[key] = getattr(self, attribute)
        return fixed

    # ------------------------------------------------------------------ fitting
    def _set_result(self, result, n_features):
        """Copy a fit's solution into the fitted attributes (also used by model selection)."""
        self.fit_result_ = result
        self.starts_ = result.starts
        self.start_origin_ = result.origin
        self.polish_ = result.polish
        self.best_start_ = result.best_start
        self.startprob_ = result.startprob
        self.transmat_ = result.transmat
        self.means_ = result.means
        self._covars_ = result.covariances
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.n_features_in_ = n_features
        self.n_features = n_features
        self._fitted_values = {
            attribute: getattr(self, attribute) for _, attribute, _ in _PARAMETERS
        }

    def fit(self, X, lengths=None):
        """Fit all ``n_init`` starts by Baum-Welch and keep the best. Returns self."""
        settings = self._settings()
        X, lengths = self._validate(X, lengths, fitting=True)
        fixed = self._fixed(settings.init_params)
        self._warn_overwritten()
        result = fit_hmm(
            X,
            lengths,
            self.n_components,
            self.covariance_type,
            settings,
            self.random_state,
            fixed=fixed,
        )
        if self.n_iter == 0:
            result = self._initialisation_only(result)
        self._set_result(result, X.shape[1])
        if self.verbose:
            self._print_fit(result)
        if not self.converged_ and self.n_iter > 0:
            warnings.warn(
                f"Best start did not converge in {self.n_iter} iterations (tol={self.tol} on "
                "the mean per-step log-likelihood); increase n_iter or tol.",
                convergence_warning_class(),
                stacklevel=2,
            )
        return self

    def _warn_overwritten(self):
        """Warn for every parameter the user set that ``init_params`` makes fit overwrite
        (values a previous fit left are not the user's)."""
        fitted = getattr(self, "_fitted_values", {})
        for letter, attribute, name in _PARAMETERS:
            if (
                letter in self.init_params
                and attribute in self.__dict__
                and self.__dict__[attribute] is not fitted.get(attribute)
            ):
                warnings.warn(
                    f"{name} is set, but it will be overwritten during initialization because "
                    f"init_params={self.init_params!r} contains {letter!r}; leave {letter!r} "
                    f"out of init_params to start from the given {name}.",
                    UserWarning,
                    stacklevel=3,
                )

    def _print_fit(self, result):
        """The verbose report (stderr, as hmmlearn): every start, the polishing, the kept
        start and its objective per iteration."""
        starts = result.starts

        def say(line):
            print(line, file=sys.stderr)

        say(
            f"{type(self).__name__}: {starts.n_init} start(s) of K={self.n_components} "
            f"{self.covariance_type}, batched Baum-Welch"
        )
        width = max(len(str(origin)) for origin in result.origin)
        for i in range(starts.n_init):
            if starts.failed[i]:
                status = f"failed ({starts.failure_reason[i]})"
            elif self.n_iter == 0:
                status = "initialised only (n_iter=0)"
            else:
                status = "converged" if starts.converged[i] else "did not converge"
            say(
                f"  start {i:3d}  {str(result.origin[i]):<{width}}  log-likelihood "
                f"{starts.log_likelihood[i]:.6f}  n_iter {int(starts.n_iter[i]):4d}  {status}"
            )
        if result.polish is None:
            say("  polishing: none")
        else:
            polish = result.polish
            say(f"  polishing {polish.n_init} start(s)")
            for row, start in enumerate(result.polished_starts):
                status = "converged" if polish.converged[row] else "did not converge"
                if polish.failed[row]:
                    status = f"failed ({polish.failure_reason[row]})"
                say(
                    f"  start {int(start):3d}  log-likelihood "
                    f"{starts.log_likelihood[start]:.6f} -> {polish.log_likelihood[row]:.6f}"
                    f"  n_iter {int(polish.n_iter[row]):4d}  {status}"
                )
        say(
            f"  kept start {result.best_start} ({result.origin[result.best_start]}): "
            f"log-likelihood {result.log_likelihood:.6f}, n_iter {result.n_iter}, "
            f"converged {result.converged}"
        )
        if len(result.trace):
            batch = int(np.isfinite(starts.trace[result.best_start]).sum())
            say(
                f"  objective per iteration of start {result.best_start} (mean per-step "
                "log-likelihood of the parameters entering it; with priors, penalised):"
            )
            previous = None
            for step, value in enumerate(result.trace, 1):
                stage = "batch" if step <= batch else "polish"
                change = "" if previous is None else f"  change {value - previous:+.3e}"
                say(f"    iter {step:4d}  {stage:<6}  {value:.10f}{change}")
                previous = value

    def _initialisation_only(self, result):
        """``n_iter=0``: the driver ran one E-step with nothing updated (it needs at least
        one iteration) to score the starts; report no iteration."""
        starts = result.starts
        none = np.zeros(starts.n_init, dtype=int)
        starts = replace(
            starts,
            trace=np.empty((starts.n_init, 0)),
            n_iter=none,
            converged=none.astype(bool),
            settings={**starts.settings, "max_iter": 0, "params": self.params},
        )
        return replace(result, starts=starts, n_iter=0, converged=False, trace=np.empty(0))

    # ------------------------------------------------------------------ inference
    def _forward_backward(self, X, lengths, posteriors):
        startprob, transmat, means, covariances = self._model()
        X, lengths = self._validate(X, lengths, fitting=False)
        fb = forward_backward(
            emission_log_prob(X, means, covariances, self.covariance_type),
            startprob,
            transmat,
            lengths,
            engine=self.engine,
            posteriors=posteriors,
        )
        return X, lengths, fb

    def score_samples(self, X, lengths=None):
        """Log-likelihood of ``X`` (summed over sequences) and state posteriors (n, K)."""
        _, _, fb = self._forward_backward(X, lengths, True)
        return float(fb.log_likelihood.sum()), fb.posteriors[0]

    def score(self, X, lengths=None):
        """Log-likelihood of ``X``, summed over sequences (as hmmlearn)."""
        _, _, fb = self._forward_backward(X, lengths, False)
        return float(fb.log_likelihood.sum())

    def predict_proba(self, X, lengths=None):
        """Posterior state probabilities (n, K)."""
        return self.score_samples(X, lengths)[1]

    def decode(self, X, lengths=None, algorithm=None):
        """Most likely states: ``(log_prob, states)``.

        ``"viterbi"``: the jointly most likely path, ``log_prob`` = log p(path, X) summed
        over sequences. ``"map"``: the most probable state of every step,
        ``log_prob`` = sum of the log maximal posteriors.
        """
        algorithm = self.algorithm if algorithm is None else algorithm
        if algorithm not in DECODERS:
            raise ValueError(f"algorithm must be one of {list(DECODERS)}, got {algorithm!r}")
        if algorithm == "map":
            _, posteriors = self.score_samples(X, lengths)
            with np.errstate(divide="ignore"):
                log_prob = float(np.log(posteriors.max(axis=1)).sum())
            return log_prob, posteriors.argmax(axis=1)
        startprob, transmat, means, covariances = self._model()
        X, lengths = self._validate(X, lengths, fitting=False)
        log_prob, states = viterbi(
            emission_log_prob(X, means, covariances, self.covariance_type),
            startprob,
            transmat,
            lengths,
            engine=self.engine,
        )
        return float(log_prob.sum()), states[0]

    def predict(self, X, lengths=None):
        """Most likely state of every step (decoder ``algorithm``)."""
        return self.decode(X, lengths)[1]

    def sample(self, n_samples=1, random_state=None, currstate=None):
        """Draw one sequence ``(X (n_samples, d), states (n_samples,))`` from the model.

        ``random_state`` None uses the estimator's ``random_state`` (as hmmlearn);
        ``currstate`` fixes the first state.
        """
        self._check_fitted()
        n_samples = check_positive_int(n_samples, "n_samples")
        rng = as_generator(self.random_state if random_state is None else random_state)
        k = self.n_components
        uniforms = rng.random(n_samples)
        start_cdf = np.cumsum(np.asarray(self.startprob_, dtype=float))
        trans_cdf = np.cumsum(np.asarray(self.transmat_, dtype=float), axis=1)
        states = np.empty(n_samples, dtype=int)
        if currstate is None:
            state = min(
                int(np.searchsorted(start_cdf, uniforms[0] * start_cdf[-1], side="right")), k - 1
            )
        else:
            state = check_positive_int(currstate, "currstate", minimum=0)
            if state >= k:
                raise ValueError(f"currstate must be < n_components={k}, got {currstate}")
        states[0] = state
        for t in range(1, n_samples):
            row = trans_cdf[state]
            state = min(int(np.searchsorted(row, uniforms[t] * row[-1], side="right")), k - 1)
            states[t] = state
        full = self.covars_
        factors = np.linalg.cholesky(full)
        noise = rng.standard_normal((n_samples, self.n_features_in_))
        X = np.asarray(self.means_, dtype=float)[states] + np.einsum(
            "nde,ne->nd", factors[states], noise
        )
        return X, states

    def get_stationary_distribution(self):
        """Stationary distribution of ``transmat_`` (left eigenvector for eigenvalue 1)."""
        self._check_fitted()
        values, vectors = np.linalg.eig(np.asarray(self.transmat_, dtype=float).T)
        vector = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
        return vector / vector.sum()

    # ------------------------------------------------------------------ model selection
    def _n_parameters(self):
        return hmm_n_parameters(
            self.n_components, self.n_features_in_, self.covariance_type, self.params
        )

    def _criteria(self, X, lengths):
        X, lengths, fb = self._forward_backward(X, lengths, False)
        n_used = int((~np.isnan(X).all(axis=1)).sum())
        return information_criteria(fb.log_likelihood.sum(), self._n_parameters(), n_used)

    def bic(self, X, lengths=None):
        """Bayesian information criterion ``-2 log L + p log n``; lower is better."""
        return float(self._criteria(X, lengths)["bic"])

    def aic(self, X, lengths=None):
        """Akaike information criterion ``-2 log L + 2 p``; lower is better."""
        return float(self._criteria(X, lengths)["aic"])
