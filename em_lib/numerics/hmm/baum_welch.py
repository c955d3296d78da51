"""Batched Baum-Welch for hidden Markov models with Gaussian emissions.

Every start of a fit runs in one vectorised loop, as in :mod:`em_lib.numerics.mixture_em`,
with the shared :class:`~em_lib.numerics.monitor.EMMonitor` keeping the per-start
bookkeeping: at iteration ``t`` the E-step evaluates the objective of the parameters entering
the iteration (stored in ``trace[:, t - 1]``), the M-step produces new parameters, and a start
stops once ``|objective_t - objective_{t-1}| < tol``. Converged and failed starts leave the
active set and stop changing while the others go on.

Objective and tolerance
-----------------------
The objective is the observed-data log-likelihood summed over all sequences (plus the log
prior densities when priors are given), divided by the number of observed time steps (steps
with at least one non-NaN feature). ``tol`` is therefore an absolute tolerance on the change
of the *mean per-observation* objective, the scale used by the mixture core and by
scikit-learn. hmmlearn's ``ConvergenceMonitor`` applies its ``tol`` to the *total*
log-likelihood; ``tol_hmmlearn = tol * n_observed`` gives the same rule (except that hmmlearn
also stops on any decrease, and calls a fit that hit ``n_iter`` converged, which this module
never does).

The E-step is :func:`~em_lib.numerics.hmm.forward_backward.forward_backward_time_first`
(engines ``"numba"`` and ``"numpy"``), the emission M-step the mixture core's
(:class:`~em_lib.numerics.hmm.emissions.Emissions`), the start and transition updates
hmmlearn's Dirichlet MAP (:mod:`em_lib.numerics.hmm.priors`). The (n, I, K) arrays of an
iteration (log-emissions, scaled emissions, posteriors) live in one
:class:`~em_lib.numerics.hmm.forward_backward.Workspace` for the whole fit.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..covariance import check_covariance_type, precision_cholesky
from ..monitor import EMMonitor
from ..prior import ConjugatePrior, log_prior_density
from .checks import check_engine, check_params, check_sequences, validate_parameters
from .emissions import Emissions, column_centre
from .forward_backward import Workspace, forward_backward_time_first
from .priors import check_concentration, dirichlet_map, log_dirichlet_prior
from .results import HMMFit

__all__ = ["fit_hmm_em"]


def fit_hmm_em(
    X,
    lengths,
    startprob,
    transmat,
    means,
    covariances,
    covariance_type,
    *,
    tol=1e-4,
    max_iter=100,
    reg_covar=1e-6,
    prior: ConjugatePrior | None = None,
    startprob_prior=None,
    transmat_prior=None,
    params="stmc",
    engine="auto",
) -> HMMFit:
    """Run Baum-Welch from ``I`` starting points at once.

    Parameters
    ----------
    X : (n_samples, n_features) array; NaN marks a missing entry
    lengths : sequence of int or None (one sequence); every sequence needs T >= 2
    startprob, transmat, means, covariances : starting parameters, init dimension first
    covariance_type : {"full", "diag", "spherical", "tied"}
    tol : float
        Absolute tolerance on the change of the mean per-observed-step objective between
        iterations (see the module docstring for hmmlearn's total-log-likelihood scale).
    max_iter : int
    reg_covar : float
        Added to covariance diagonals in the emission M-step (scikit-learn's convention; not
        added with a ``prior``, which regularises instead).
    prior : ConjugatePrior or None
        MAP emission update of the mixture core (hyperparameters in data coordinates).
    startprob_prior, transmat_prior : Dirichlet concentrations (scalar, (K,) / (K, K)) or None
        MAP update ``max(counts + alpha - 1, 0)`` normalised, as hmmlearn.
    params : str
        Parameters to update: any of ``s`` (start), ``t`` (transitions) and ``mc``
        (emissions; means and covariances are updated together).
    engine : {"auto", "numba", "numpy"}

    Returns
    -------
    HMMFit
    """
    check_covariance_type(covariance_type)
    check_params(params)
    if ("m" in params) != ("c" in params):
        raise ValueError(
            "params must contain both 'm' and 'c' or neither (emission means and "
            "covariances are updated together)"
        )
    engine = check_engine(engine)
    if not (isinstance(max_iter, numbers.Integral) and max_iter >= 1):
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    if not (np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be a non-negative number, got {tol!r}")
    if not (np.isfinite(reg_covar) and reg_covar >= 0):
        raise ValueError(f"reg_covar must be a non-negative number, got {reg_covar!r}")
    X, lengths, _ = check_sequences(X, lengths, min_length=2)
    startprob, transmat, means, covariances = validate_parameters(
        startprob, transmat, means, covariances, covariance_type, check_covariances=False
    )
    n_init, n_states, d = means.shape
    if d != X.shape[1]:
        raise ValueError(f"means have {d} features, X has {X.shape[1]}")
    alpha_start = check_concentration(startprob_prior, (n_states,), "startprob_prior")
    alpha_trans = check_concentration(transmat_prior, (n_states, n_states), "transmat_prior")
    observed_rows = ~np.isnan(X).all(axis=1)
    n_samples = int(observed_rows.sum())
    if n_samples == 0:
        raise ValueError("X has no observed entry")
    center = column_centre(X)
    Xc = X - center
    means = means - center
    prior_c = prior.shifted(center) if prior is not None else None
    update_start, update_trans, update_emission = "s" in params, "t" in params, "m" in params

    def log_prior_of(sp, tm, mu, cov):
        value = log_dirichlet_prior(sp, alpha_start) + log_dirichlet_prior(tm, alpha_trans)
        if prior_c is not None:
            pc, _ = precision_cholesky(cov, covariance_type)
            value = value + log_prior_density(mu, cov, pc, covariance_type, prior_c)
        return value

    emissions = Emissions(Xc, covariance_type, reg_covar, prior_c)
    workspace = Workspace()  # the (n, I, K) arrays of every iteration, allocated once
    prec_chol, initial_ok = precision_cholesky(covariances, covariance_type)
    monitor = EMMonitor(n_init, max_iter, tol=tol, n_samples=n_samples, initial_ok=initial_ok)

    for _ in range(max_iter):
        index = monitor.active_index()
        if index.size == 0:
            break
        sp, tm, mu, cov, pc = (
            array[index] for array in (startprob, transmat, means, covariances, prec_chol)
        )
        log_b = emissions.log_density(
            mu, cov, pc, out=workspace.array("log_emissions", (X.shape[0], index.size, n_states))
        )
        loglik, post, trans_counts, start_counts = forward_backward_time_first(
            log_b, sp, tm, lengths, engine, True, workspace
        )
        total = loglik.sum(-1) + log_prior_of(sp, tm, mu, cov)
        finite = monitor.observe(index, total)

        idx = index
        if not finite.all():
            idx = index[finite]
            sp, tm, mu, cov, pc = (array[finite] for array in (sp, tm, mu, cov, pc))
            start_counts, trans_counts = start_counts[finite], trans_counts[finite]
        new_sp, new_tm, new_mu, new_cov, new_pc = sp, tm, mu, cov, pc
        if update_start:
            new_sp = dirichlet_map(start_counts, alpha_start, sp)
        if update_trans:
            new_tm = dirichlet_map(trans_counts, alpha_trans, tm)
        new_ok = np.ones(idx.size, dtype=bool)
        if update_emission:
            resp = np.transpose(post, (1, 0, 2))
            if idx.size < index.size:
                resp = resp[finite]
            new_mu, new_cov = emissions.mstep(resp, mu, cov)
            new_pc, new_ok = precision_cholesky(new_cov, covariance_type)
            new_ok &= np.isfinite(new_mu).all(axis=(1, 2))
        new_ok &= np.isfinite(new_sp).all(-1) & np.isfinite(new_tm).all(axis=(1, 2))
        monitor.advance(
            idx,
            new_ok,
            (
                (startprob, new_sp),
                (transmat, new_tm),
                (means, new_mu),
                (covariances, new_cov),
                (prec_chol, new_pc),
            ),
        )

    # final pass: the objective of the parameters actually returned
    valid = np.flatnonzero(initial_ok)
    log_likelihood = np.full(n_init, -np.inf)
    log_prior = np.zeros(n_init)
    if valid.size:
        log_b = emissions.log_density(
            means[valid],
            covariances[valid],
            prec_chol[valid],
            out=workspace.array("log_emissions", (X.shape[0], valid.size, n_states)),
        )
        log_likelihood[valid] = forward_backward_time_first(
            log_b, startprob[valid], transmat[valid], lengths, engine, False, workspace
        )[0].sum(-1)
        log_prior[valid] = log_prior_of(
            startprob[valid], transmat[valid], means[valid], covariances[valid]
        )
    settings = {
        "tol": tol,
        "max_iter": max_iter,
        "reg_covar": reg_covar,
        "params": params,
        "prior": prior is not None,
        "startprob_prior": alpha_start is not None,
        "transmat_prior": alpha_trans is not None,
        "engine": engine,
        "missing_data": bool(np.isnan(X).any()),
        "n_empty_steps": int((~observed_rows).sum()),
        "n_sequences": int(lengths.size),
    }
    parameters = {
        "startprob": startprob,
        "transmat": transmat,
        "means": means + center,
        "covariances": covariances,
    }
    record = {"log_likelihood": log_likelihood, "log_prior": log_prior, **monitor.results()}
    return HMMFit(
        covariance_type=covariance_type,
        **parameters,
        **record,
        n_samples=n_samples,
        settings=settings,
    )
