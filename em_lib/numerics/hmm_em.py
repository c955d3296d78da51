"""Batched Baum-Welch for hidden Markov models with Gaussian emissions.

Every start of a fit runs in one vectorised loop, as in :mod:`em_lib.numerics.mixture_em`:
at iteration ``t`` the E-step evaluates the objective of the parameters entering the
iteration (stored in ``trace[:, t - 1]``), the M-step produces new parameters, and a start
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

Forward-backward
----------------
Two engines compute the E-step, both vectorised over starts ``I`` and sequences:

* ``"numba"``: a compiled scaled (Rabiner) recursion. Emissions are shifted by their
  per-step maximum before exponentiation, so long sequences (``T = 10^5`` and beyond) neither
  underflow nor lose precision. A (start, sequence) pair whose scaling constant falls below
  ``1e-290`` or whose backward variables overflow (e.g. an observation that only a state
  with zero predicted probability can explain) is recomputed by a compiled log-space
  recursion.
* ``"numpy"``: a pure-numpy log-space reference (a Python loop over time steps, vectorised
  over starts and sequences). It is slow (tens of microseconds per step) and exists so the
  compiled path can be checked against it.

``"auto"`` picks numba when it is importable.

Emissions and missing values
----------------------------
The emission kernels are the mixture core's, built once per fit (see :class:`_Emissions`).
With NaN in ``X`` a :class:`~em_lib.numerics.gaussian.MissingDataEngine` gives the
log-emissions (an all-NaN step gets log-emission 0, a partially observed step the marginal
density of its observed features) and the emission statistics with the state posteriors as
responsibilities and the current parameters (exact missing-data EM). Without NaN the feature
matrix ``phi(X)`` is built once and the steps are ``estep_weight_matrix``,
``CompleteDataEngine.statistics_from_resp`` and ``mstep``.

Inside a fit, emission and posterior arrays are time first, (n, I, K), so that the compiled
recursion visits all starts of a time step together and the M-step's ``phi^T @ resp`` needs
no copy; the public functions take and return (I, n, K).

Shapes (init dimension first): ``startprob`` (I, K), ``transmat`` (I, K, K), ``means``
(I, K, d), covariances (I, K, d, d) full, (I, K, d) diag, (I, K) spherical, (I, d, d) tied.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np

from .covariance import (
    COVARIANCE_TYPES,
    check_covariance_type,
    estep_weight_matrix,
    precision_cholesky,
)
from .criteria import n_parameters
from .gaussian import CompleteDataEngine, MissingDataEngine, log_gaussian_density
from .mixture_em import fit_mixture_em, mstep
from .prior import ConjugatePrior, log_prior_density
from .starts import PerStartResults, as_generator

try:  # the compiled recursion; the numpy reference is used when numba is unavailable
    import numba
except ImportError:  # pragma: no cover - numba is a declared dependency
    numba = None

ENGINES = ("auto", "numba", "numpy")
INIT_STRATEGIES = ("gmm", "random")
PARAM_LETTERS = "stmc"
DECODERS = ("viterbi", "map")
# below this scaling constant the scaled recursion hands the pair to the log-space one
_SCALE_FLOOR = 1e-290

__all__ = [
    "COVARIANCE_TYPES",
    "as_generator",
    "DECODERS",
    "ENGINES",
    "INIT_STRATEGIES",
    "ForwardBackward",
    "HMMFit",
    "check_sequences",
    "emission_log_prob",
    "fit_hmm_em",
    "forward_backward",
    "forward_backward_reference",
    "hmm_n_parameters",
    "information_criteria",
    "initial_hmm_parameters",
    "log_dirichlet_prior",
    "validate_parameters",
    "viterbi",
]


# ---------------------------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------------------------


def check_sequences(X, lengths=None, *, min_length=1):
    """Validate observations and sequence lengths.

    Parameters
    ----------
    X : array-like (n_samples, n_features); NaN marks a missing entry, inf is an error
    lengths : sequence of int or None
        Lengths of the consecutive sequences in ``X`` (hmmlearn's convention); None means
        one sequence.
    min_length : int
        Smallest allowed sequence length (fitting needs 2: a transition).

    Returns
    -------
    X : float array (n, d)
    lengths : int64 array (S,)
    offsets : int64 array (S + 1,), sequence ``s`` is ``X[offsets[s]:offsets[s + 1]]``
    """
    try:
        X = np.asarray(X, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"X must be a numeric array: {exc}") from None
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (n_samples, n_features), got {X.ndim}-D")
    n, d = X.shape
    if n == 0 or d == 0:
        raise ValueError(f"X must have at least one sample and one feature, got shape {X.shape}")
    if np.isinf(X).any():
        raise ValueError("X contains infinite values (NaN marks a missing entry, inf is invalid)")
    if lengths is None:
        lengths = np.array([n], dtype=np.int64)
    else:
        raw = np.asarray(lengths)
        if raw.ndim == 0:
            raw = raw.reshape(1)
        if raw.ndim != 1 or raw.size == 0:
            raise ValueError("lengths must be a non-empty 1-D sequence of positive integers")
        if raw.dtype.kind not in "iu":
            if raw.dtype.kind != "f" or not np.all(np.isfinite(raw)) or np.any(raw % 1):
                raise ValueError(f"lengths must be integers, got {raw.tolist()!r}")
        lengths = raw.astype(np.int64)
    bad = np.flatnonzero(lengths <= 0)
    if bad.size:
        raise ValueError(
            f"every sequence length must be positive; lengths[{bad[0]}] = {lengths[bad[0]]}"
        )
    if int(lengths.sum()) != n:
        raise ValueError(f"lengths sum to {int(lengths.sum())}, but X has {n} rows")
    short = np.flatnonzero(lengths < min_length)
    if short.size:
        raise ValueError(
            f"every sequence needs at least {min_length} time steps (T >= {min_length}) to fit "
            f"an HMM; sequence {short[0]} has length {lengths[short[0]]}"
        )
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return X, lengths, offsets


def _check_engine(engine):
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
    if engine == "numba" and numba is None:
        raise ValueError("engine='numba' needs the numba package, which is not installed")
    if engine == "auto":
        return "numba" if numba is not None else "numpy"
    return engine


def _check_params(params, name="params"):
    if not isinstance(params, str) or any(letter not in PARAM_LETTERS for letter in params):
        raise ValueError(
            f"{name} must be a string of letters from {PARAM_LETTERS!r} "
            f"(s: start, t: transitions, m: means, c: covariances), got {params!r}"
        )
    return params


def validate_parameters(
    startprob, transmat, means, covariances, covariance_type, *, check_covariances=True
):
    """Check a batch of HMM parameters (init dimension first); raises ValueError.

    ``check_covariances=False`` skips the positive-definiteness check (a fit reports such
    starts as failed instead). Returns the arrays as float copies, probabilities
    renormalised.
    """
    check_covariance_type(covariance_type)
    startprob = np.array(startprob, dtype=float)
    transmat = np.array(transmat, dtype=float)
    means = np.array(means, dtype=float)
    covariances = np.array(covariances, dtype=float)
    if means.ndim != 3:
        raise ValueError(f"means must have shape (n_init, K, d), got {means.shape}")
    n_init, k, d = means.shape
    if startprob.shape != (n_init, k):
        raise ValueError(f"startprob must have shape {(n_init, k)}, got {startprob.shape}")
    if transmat.shape != (n_init, k, k):
        raise ValueError(f"transmat must have shape {(n_init, k, k)}, got {transmat.shape}")
    expected = {
        "full": (n_init, k, d, d),
        "diag": (n_init, k, d),
        "spherical": (n_init, k),
        "tied": (n_init, d, d),
    }[covariance_type]
    if covariances.shape != expected:
        raise ValueError(
            f"{covariance_type} covariances must have shape {expected}, got {covariances.shape}"
        )
    for name, arr in (("startprob", startprob), ("transmat", transmat)):
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ValueError(f"{name} must be finite and non-negative")
        if not np.allclose(arr.sum(-1), 1.0, rtol=0, atol=1e-8):
            raise ValueError(f"{name} rows must sum to 1, got sums {arr.sum(-1).ravel()[:5]}")
    if not np.all(np.isfinite(means)):
        raise ValueError("means must be finite")
    _, ok = precision_cholesky(covariances, covariance_type)
    if check_covariances and not ok.all():
        raise ValueError(
            f"covariances of start(s) {np.flatnonzero(~ok).tolist()} are not symmetric "
            "positive definite"
        )
    startprob /= startprob.sum(-1, keepdims=True)
    transmat /= transmat.sum(-1, keepdims=True)
    return startprob, transmat, means, covariances


# ---------------------------------------------------------------------------------------------
# emissions
# ---------------------------------------------------------------------------------------------


def _column_centre(X):
    observed = ~np.isnan(X)
    count = observed.sum(0)
    total = np.where(observed, X, 0.0).sum(0)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def emission_log_prob(X, means, covariances, covariance_type, center=None):
    """log N(x_t | mu_k, Sigma_k) for every start, step and state: (I, n, K).

    A thin wrapper of :func:`em_lib.numerics.gaussian.log_gaussian_density` that centres the
    data first (the density is translation invariant; centring conditions the quadratic
    forms). All-NaN steps get 0, partially observed steps the marginal of the observed
    features.
    """
    X = np.asarray(X, dtype=float)
    if center is None:
        center = _column_centre(X)
    means = np.asarray(means, dtype=float)
    return log_gaussian_density(X - center, means - center, covariances, covariance_type)


# ---------------------------------------------------------------------------------------------
# compiled kernels (numba)
# ---------------------------------------------------------------------------------------------

if numba is not None:
    # cache=True: the compiled machine code is written next to this module and reused by
    # later processes (the first import compiles, a few seconds)
    _compiled = numba.njit(cache=True, nogil=True)
else:  # pragma: no cover

    def _compiled(func):
        return func


@_compiled
def _fb_scaled_kernel(b, shift, startprob, transmat, offsets, backward, post, counts, loglik, ok):
    """Scaled forward-backward for every (start, sequence) pair, all starts per time step.

    Layout is time first: ``b`` (n, I, K) holds ``exp(log_b - shift)`` with ``shift`` (n, I)
    the per-step maximum over states. ``post`` (n, I, K) first receives the normalised
    forward variables, then the posteriors; ``counts`` (I, S, K, K) the expected transition
    counts; ``loglik`` (I, S). ``ok[i, s]`` is False where the scaling broke down (scaling
    constant below ``_SCALE_FLOOR``, a non-finite shift, or overflowing backward variables):
    the caller then hands the pair to the log-space kernel.
    """
    n_init = b.shape[1]
    n_states = b.shape[2]
    n_seq = offsets.shape[0] - 1
    new_beta = np.empty(n_states)
    weight = np.empty(n_states)
    for s in range(n_seq):
        lo = offsets[s]
        length = offsets[s + 1] - lo
        scale = np.empty((length, n_init))
        total = np.zeros(n_init)
        for i in range(n_init):
            ok[i, s] = True
        # forward: post[t] = P(s_t | x_1..x_t), scale[t] = p(x_t | x_1..x_{t-1}) / e^shift
        for t in range(length):
            row = lo + t
            for i in range(n_init):
                if not ok[i, s]:
                    continue
                if not np.isfinite(shift[row, i]):
                    ok[i, s] = False
                    continue
                norm = 0.0
                if t == 0:
                    for k in range(n_states):
                        value = startprob[i, k] * b[row, i, k]
                        post[row, i, k] = value
                        norm += value
                else:
                    for k in range(n_states):
                        acc = 0.0
                        for j in range(n_states):
                            acc += post[row - 1, i, j] * transmat[i, j, k]
                        value = acc * b[row, i, k]
                        post[row, i, k] = value
                        norm += value
                if not (norm > _SCALE_FLOOR and norm < np.inf):
                    ok[i, s] = False
                    continue
                scale[t, i] = norm
                inv = 1.0 / norm
                for k in range(n_states):
                    post[row, i, k] *= inv
                total[i] += np.log(norm) + shift[row, i]
        for i in range(n_init):
            if ok[i, s]:
                loglik[i, s] = total[i]
        if not backward:
            continue
        # backward: beta[t] = p(x_{t+1}..x_T | s_t) / prod(scale[t+1:]); posteriors in place
        beta = np.ones((n_init, n_states))
        xi = np.zeros((n_init, n_states, n_states))
        for t in range(length - 2, -1, -1):
            row = lo + t
            for i in range(n_init):
                if not ok[i, s]:
                    continue
                inv = 1.0 / scale[t + 1, i]
                for k in range(n_states):
                    weight[k] = b[row + 1, i, k] * beta[i, k] * inv
                norm = 0.0
                for j in range(n_states):
                    alpha_j = post[row, i, j]
                    acc = 0.0
                    for k in range(n_states):
                        p = transmat[i, j, k] * weight[k]
                        acc += p
                        xi[i, j, k] += alpha_j * p
                    new_beta[j] = acc
                    gamma = alpha_j * acc
                    post[row, i, j] = gamma
                    norm += gamma
                if not (norm > 0.0 and norm < np.inf):
                    ok[i, s] = False
                    continue
                inv = 1.0 / norm
                for j in range(n_states):
                    post[row, i, j] *= inv
                    beta[i, j] = new_beta[j]
        for i in range(n_init):
            if ok[i, s]:
                for j in range(n_states):
                    for k in range(n_states):
                        counts[i, s, j, k] = xi[i, j, k]


@_compiled
def _logsumexp_1d(values):
    shift = -np.inf
    for v in values:
        if v > shift:
            shift = v
    if not np.isfinite(shift):
        return shift
    acc = 0.0
    for v in values:
        acc += np.exp(v - shift)
    return shift + np.log(acc)


@_compiled
def _fb_log_kernel(log_b, log_start, log_trans, offsets, todo, backward, post, counts, loglik, ok):
    """Log-space forward-backward (the fallback) for the pairs with ``todo[i, s]``; same
    time-first layout and outputs as :func:`_fb_scaled_kernel`."""
    n_init = log_b.shape[1]
    n_states = log_b.shape[2]
    n_seq = offsets.shape[0] - 1
    tmp = np.empty(n_states)
    beta = np.empty(n_states)
    new_beta = np.empty(n_states)
    nxt = np.empty(n_states)
    for i in range(n_init):
        for s in range(n_seq):
            if not todo[i, s]:
                continue
            lo = offsets[s]
            length = offsets[s + 1] - lo
            for k in range(n_states):
                post[lo, i, k] = log_start[i, k] + log_b[lo, i, k]
            for t in range(1, length):
                row = lo + t
                for k in range(n_states):
                    for j in range(n_states):
                        tmp[j] = post[row - 1, i, j] + log_trans[i, j, k]
                    post[row, i, k] = _logsumexp_1d(tmp) + log_b[row, i, k]
            last = lo + length - 1
            for k in range(n_states):
                tmp[k] = post[last, i, k]
            total = _logsumexp_1d(tmp)
            if not np.isfinite(total):
                ok[i, s] = False
                continue
            loglik[i, s] = total
            ok[i, s] = True
            if not backward:
                continue
            counts[i, s, :, :] = 0.0
            for k in range(n_states):
                beta[k] = 0.0
            norm = 0.0
            for k in range(n_states):
                post[last, i, k] = np.exp(post[last, i, k] - total)
                norm += post[last, i, k]
            for k in range(n_states):
                post[last, i, k] /= norm
            for t in range(length - 2, -1, -1):
                row = lo + t
                for k in range(n_states):
                    nxt[k] = log_b[row + 1, i, k] + beta[k]
                norm = 0.0
                for j in range(n_states):
                    for k in range(n_states):
                        tmp[k] = log_trans[i, j, k] + nxt[k]
                        counts[i, s, j, k] += np.exp(post[row, i, j] + tmp[k] - total)
                    new_beta[j] = _logsumexp_1d(tmp)
                for j in range(n_states):
                    gamma = np.exp(post[row, i, j] + new_beta[j] - total)
                    post[row, i, j] = gamma
                    norm += gamma
                    beta[j] = new_beta[j]
                if not (norm > 0.0 and norm < np.inf):
                    ok[i, s] = False
                    break
                for j in range(n_states):
                    post[row, i, j] /= norm


@_compiled
def _viterbi_kernel(log_b, log_start, log_trans, offsets, states, logprob):
    n_init = log_b.shape[0]
    n_states = log_b.shape[2]
    n_seq = offsets.shape[0] - 1
    delta = np.empty(n_states)
    new = np.empty(n_states)
    for i in range(n_init):
        for s in range(n_seq):
            lo = offsets[s]
            length = offsets[s + 1] - lo
            back = np.zeros((length, n_states), dtype=np.int64)
            for k in range(n_states):
                delta[k] = log_start[i, k] + log_b[i, lo, k]
            for t in range(1, length):
                for k in range(n_states):
                    best = -np.inf
                    arg = 0
                    for j in range(n_states):
                        v = delta[j] + log_trans[i, j, k]
                        if v > best:
                            best = v
                            arg = j
                    new[k] = best + log_b[i, lo + t, k]
                    back[t, k] = arg
                for k in range(n_states):
                    delta[k] = new[k]
            best = -np.inf
            arg = 0
            for k in range(n_states):
                if delta[k] > best:
                    best = delta[k]
                    arg = k
            logprob[i, s] = best
            states[i, lo + length - 1] = arg
            for t in range(length - 1, 0, -1):
                arg = back[t, arg]
                states[i, lo + t - 1] = arg


# ---------------------------------------------------------------------------------------------
# forward-backward and Viterbi front ends
# ---------------------------------------------------------------------------------------------


@dataclass
class ForwardBackward:
    """E-step quantities for a batch of starts.

    Attributes
    ----------
    log_likelihood : (I, S) array, per start and sequence (-inf where impossible)
    posteriors : (I, n, K) array, P(state_t = k | X) (None when not requested)
    transition_counts : (I, K, K) array, expected transitions summed over sequences
    start_counts : (I, K) array, posteriors of the first step summed over sequences
    """

    log_likelihood: np.ndarray
    posteriors: np.ndarray | None
    transition_counts: np.ndarray | None
    start_counts: np.ndarray | None


def _logs(startprob, transmat):
    with np.errstate(divide="ignore"):
        return np.log(startprob), np.log(transmat)


def _lse(values, axis):
    shift = np.max(values, axis=axis, keepdims=True)
    shift = np.where(np.isfinite(shift), shift, 0.0)
    with np.errstate(divide="ignore", invalid="ignore", under="ignore"):
        out = np.log(np.sum(np.exp(values - shift), axis=axis, keepdims=True)) + shift
    return np.squeeze(out, axis=axis)


def _padded_rows(lengths, offsets):
    """(S, Tmax) row indices into X and the validity mask of the padded layout."""
    steps = np.arange(int(lengths.max()))
    valid = steps[None, :] < lengths[:, None]
    rows = np.where(valid, offsets[:-1, None] + steps[None, :], 0)
    return rows, valid


def forward_backward_reference(log_emission, startprob, transmat, lengths, *, want_lattices=False):
    """Pure-numpy log-space forward-backward (reference path).

    Vectorised over starts and sequences (sequences padded to the longest); a Python loop
    over time steps. Returns a :class:`ForwardBackward`; with ``want_lattices`` also the
    log forward and backward lattices ``(log_alpha, log_beta)``, each (I, n, K), with
    ``log_alpha[t, k] = log p(x_1..x_t, s_t = k)`` and
    ``log_beta[t, k] = log p(x_{t+1}..x_T | s_t = k)``.
    """
    log_b = np.asarray(log_emission, dtype=float)
    n_init, n, k = log_b.shape
    lengths = np.asarray(lengths, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    rows, valid = _padded_rows(lengths, offsets)
    n_seq, t_max = rows.shape
    lb = np.where(valid[None, :, :, None], log_b[:, rows], 0.0)  # (I, S, Tmax, K)
    log_pi, log_a = _logs(startprob, transmat)
    log_a = log_a[:, None]  # (I, 1, K, K)
    alpha = np.empty((n_init, n_seq, t_max, k))
    alpha[:, :, 0] = log_pi[:, None] + lb[:, :, 0]
    for t in range(1, t_max):
        alpha[:, :, t] = _lse(alpha[:, :, t - 1, :, None] + log_a, axis=-2) + lb[:, :, t]
    seq = np.arange(n_seq)
    loglik = _lse(alpha[:, seq, lengths - 1], axis=-1)  # (I, S)
    beta = np.zeros((n_init, n_seq, t_max, k))
    for t in range(t_max - 2, -1, -1):
        ahead = _lse(log_a + (lb[:, :, t + 1] + beta[:, :, t + 1])[:, :, None, :], axis=-1)
        beta[:, :, t] = np.where((t + 1 < lengths)[None, :, None], ahead, 0.0)
    with np.errstate(invalid="ignore"):
        log_gamma = alpha + beta - loglik[..., None, None]
        log_gamma -= _lse(log_gamma, axis=-1)[..., None]
    with np.errstate(under="ignore"):
        gamma = np.exp(log_gamma)
    posteriors = np.zeros((n_init, n, k))
    posteriors[:, rows[valid]] = gamma[:, valid]
    counts = np.zeros((n_init, k, k))
    for t in range(t_max - 1):
        live = t + 1 < lengths
        if not live.any():
            break
        with np.errstate(invalid="ignore", under="ignore"):
            log_xi = (
                alpha[:, live, t, :, None]
                + log_a
                + (lb[:, live, t + 1] + beta[:, live, t + 1])[:, :, None, :]
                - loglik[:, live, None, None]
            )
            counts += np.exp(log_xi).sum(1)
    start_counts = posteriors[:, offsets[:-1]].sum(1)
    result = ForwardBackward(loglik, posteriors, counts, start_counts)
    if not want_lattices:
        return result
    log_alpha = np.zeros((n_init, n, k))
    log_beta = np.zeros((n_init, n, k))
    log_alpha[:, rows[valid]] = alpha[:, valid]
    log_beta[:, rows[valid]] = beta[:, valid]
    return result, (log_alpha, log_beta)


def _forward_backward_time_first(log_b, startprob, transmat, lengths, engine, posteriors):
    """Forward-backward on time-first log-emissions ``log_b`` (n, I, K).

    Returns ``(log_likelihood (I, S), posteriors (n, I, K) or None, transition_counts
    (I, K, K) or None, start_counts (I, K) or None)``.
    """
    n, n_init, k = log_b.shape
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if engine == "numpy":
        ref = forward_backward_reference(
            np.transpose(log_b, (1, 0, 2)), startprob, transmat, lengths
        )
        if not posteriors:
            return ref.log_likelihood, None, None, None
        return (
            ref.log_likelihood,
            np.transpose(ref.posteriors, (1, 0, 2)),
            ref.transition_counts,
            ref.start_counts,
        )
    log_b = np.ascontiguousarray(log_b, dtype=float)
    startprob = np.ascontiguousarray(startprob, dtype=float)
    transmat = np.ascontiguousarray(transmat, dtype=float)
    # the exponentials are taken here, vectorised (a scalar exp per step in the compiled
    # loop costs more than the whole recursion)
    shift = log_b[..., 0].copy()
    for state in range(1, k):  # K - 1 elementwise maxima: faster than a short-axis max
        np.maximum(shift, log_b[..., state], out=shift)
    with np.errstate(invalid="ignore", under="ignore"):
        scaled = np.exp(log_b - shift[..., None])
    post = np.empty((n, n_init, k))
    counts = np.zeros((n_init, lengths.size, k, k))
    loglik = np.full((n_init, lengths.size), -np.inf)
    ok = np.zeros((n_init, lengths.size), dtype=np.bool_)
    _fb_scaled_kernel(
        scaled, shift, startprob, transmat, offsets, posteriors, post, counts, loglik, ok
    )
    if not ok.all():
        log_pi, log_a = _logs(startprob, transmat)
        _fb_log_kernel(log_b, log_pi, log_a, offsets, ~ok, posteriors, post, counts, loglik, ok)
        loglik[~ok] = -np.inf
    if not posteriors:
        return loglik, None, None, None
    return loglik, post, counts.sum(1), post[offsets[:-1]].sum(0)


def forward_backward(log_emission, startprob, transmat, lengths, *, engine="auto", posteriors=True):
    """Forward-backward for a batch of starts over all sequences.

    Parameters
    ----------
    log_emission : (I, n, K) array of log emission densities
    startprob : (I, K) array
    transmat : (I, K, K) array
    lengths : (S,) int array summing to n
    engine : {"auto", "numba", "numpy"}
    posteriors : bool
        False computes only the log-likelihoods (forward pass).

    Returns
    -------
    ForwardBackward (``posteriors`` (I, n, K), possibly a transposed view)
    """
    engine = _check_engine(engine)
    lengths = np.asarray(lengths, dtype=np.int64)
    log_b = np.transpose(np.asarray(log_emission, dtype=float), (1, 0, 2))
    loglik, post, counts, start = _forward_backward_time_first(
        log_b, startprob, transmat, lengths, engine, posteriors
    )
    if post is not None:
        post = np.transpose(post, (1, 0, 2))
    return ForwardBackward(loglik, post, counts, start)


def viterbi(log_emission, startprob, transmat, lengths, *, engine="auto"):
    """Most likely state paths (log-space Viterbi) for a batch of starts.

    Returns
    -------
    log_prob : (I, S) array, log p(best path, X) per sequence
    states : (I, n) int array
    """
    engine = _check_engine(engine)
    log_b = np.ascontiguousarray(log_emission, dtype=float)
    lengths = np.asarray(lengths, dtype=np.int64)
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    log_pi, log_a = _logs(np.asarray(startprob, dtype=float), np.asarray(transmat, dtype=float))
    n_init, n, k = log_b.shape
    if engine == "numba":
        states = np.zeros((n_init, n), dtype=np.int64)
        logprob = np.empty((n_init, lengths.size))
        _viterbi_kernel(
            log_b,
            np.ascontiguousarray(log_pi),
            np.ascontiguousarray(log_a),
            offsets,
            states,
            logprob,
        )
        return logprob, states
    rows, valid = _padded_rows(lengths, offsets)
    n_seq, t_max = rows.shape
    lb = log_b[:, rows]  # (I, S, Tmax, K)
    delta = log_pi[:, None] + lb[:, :, 0]
    back = np.zeros((n_init, n_seq, t_max, k), dtype=np.int64)
    final = delta.copy()
    for t in range(1, t_max):
        scores = delta[..., :, None] + log_a[:, None]  # (I, S, K_from, K_to)
        back[:, :, t] = np.argmax(scores, axis=-2)
        delta = np.max(scores, axis=-2) + lb[:, :, t]
        ends = (lengths - 1 == t)[None, :, None]
        final = np.where(ends, delta, final)
    logprob = final.max(-1)
    path = np.zeros((n_init, n_seq, t_max), dtype=np.int64)
    seq = np.arange(n_seq)
    current = final.argmax(-1)  # (I, S)
    for t in range(t_max - 1, -1, -1):
        here = (t <= lengths - 1)[None, :]
        at_end = (t == lengths - 1)[None, :]
        current = np.where(at_end, final.argmax(-1), current)
        path[:, :, t] = np.where(here, current, 0)
        if t > 0:
            prev = np.take_along_axis(back[:, seq, t], current[..., None], axis=-1)[..., 0]
            current = np.where(here, prev, current)
    states = np.zeros((n_init, n), dtype=np.int64)
    states[:, rows[valid]] = path[:, valid]
    return logprob, states


# ---------------------------------------------------------------------------------------------
# priors, parameter counts, information criteria
# ---------------------------------------------------------------------------------------------


def _concentration(value, shape, name):
    if value is None:
        return None
    alpha = np.asarray(value, dtype=float)
    try:
        alpha = np.broadcast_to(alpha, shape)
    except ValueError:
        raise ValueError(f"{name} must broadcast to shape {shape}, got {alpha.shape}") from None
    if not np.all(np.isfinite(alpha)) or np.any(alpha <= 0):
        raise ValueError(f"{name} must hold positive Dirichlet concentrations")
    if np.all(alpha == 1.0):
        return None  # a flat Dirichlet is no prior
    return alpha


def log_dirichlet_prior(probabilities, alpha):
    """Unnormalised Dirichlet log density ``sum (alpha - 1) log p`` (0 for alpha None).

    Entries with ``p == 0`` are left out (they only occur where ``alpha <= 1``).
    """
    if alpha is None:
        return np.zeros(probabilities.shape[0])
    positive = probabilities > 0
    with np.errstate(divide="ignore"):
        terms = np.where(
            positive, (alpha - 1.0) * np.log(np.where(positive, probabilities, 1)), 0.0
        )
    return terms.reshape(probabilities.shape[0], -1).sum(-1)


def _dirichlet_map(counts, alpha, previous):
    """hmmlearn's MAP update: ``max(counts + alpha - 1, 0)`` normalised along the last axis;
    entries that were exactly zero stay zero; a row without mass keeps its previous value."""
    value = counts if alpha is None else np.maximum(counts + alpha - 1.0, 0.0)
    value = np.where(previous == 0, 0.0, value)
    total = value.sum(-1, keepdims=True)
    empty = total <= 0
    return np.where(empty, previous, value / np.where(empty, 1.0, total))


def hmm_n_parameters(n_components, n_features, covariance_type, params="stmc"):
    """Free parameters of a Gaussian HMM (those named in ``params``).

    ``s``: K - 1, ``t``: K (K - 1), ``m``: K d, ``c``: the covariance count of
    :func:`em_lib.numerics.covariance.n_parameters`. With all four this is the mixture count
    plus ``K (K - 1)`` (start + transitions replace the mixture's ``K - 1`` weights); it
    agrees with hmmlearn's count.
    """
    _check_params(params)
    k, d = n_components, n_features
    mixture = n_parameters(k, d, covariance_type)
    counts = {"s": k - 1, "t": k * (k - 1), "m": k * d, "c": mixture - k * d - (k - 1)}
    return int(sum(counts[letter] for letter in set(params)))


def information_criteria(log_likelihood, n_params, n_samples):
    """``(bic, aic)`` with the scikit-learn convention (lower is better)."""
    log_likelihood = np.asarray(log_likelihood, dtype=float)
    bic = -2.0 * log_likelihood + n_params * np.log(n_samples)
    aic = -2.0 * log_likelihood + 2.0 * n_params
    return bic, aic


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------

@dataclass
class HMMFit(PerStartResults):
    """Results of every start of a batched Baum-Welch fit (init dimension first).

    Attributes
    ----------
    covariance_type : str
    startprob : (I, K) array
    transmat : (I, K, K) array
    means : (I, K, d) array
    covariances : (I, K, d, d) full, (I, K, d) diag, (I, K) spherical, (I, d, d) tied
    log_likelihood : (I,) array
        Observed-data log-likelihood of the returned parameters, summed over sequences.
    log_prior : (I,) array
        Log prior of the returned parameters (Dirichlet terms unnormalised; 0 without priors).
    trace : (I, max_iter) array
        Objective per iteration (mean per-observed-step log-likelihood, plus log prior / n
        with priors) of the parameters entering that iteration; NaN after a start stopped.
    n_iter : (I,) int array
    converged : (I,) bool array
        True only if ``|change| < tol`` was met; never because ``max_iter`` was reached.
    failed : (I,) bool array
    failure_reason : (I,) object array of str ('' where the start did not fail)
    max_decrease : (I,) array
        Largest decrease of the objective between iterations (0 if none).
    n_samples : int
        Observed time steps (at least one non-NaN feature).
    settings : dict
    """

    covariance_type: str
    startprob: np.ndarray
    transmat: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    log_likelihood: np.ndarray
    log_prior: np.ndarray
    trace: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray
    failed: np.ndarray
    failure_reason: np.ndarray
    max_decrease: np.ndarray
    n_samples: int
    settings: dict = field(default_factory=dict)

    PER_START = (
        "startprob", "transmat", "means", "covariances", "log_likelihood", "log_prior",
        "trace", "n_iter", "converged", "failed", "failure_reason", "max_decrease",
    )

    @property
    def n_init(self) -> int:
        return self.startprob.shape[0]


# ---------------------------------------------------------------------------------------------
# initialisation
# ---------------------------------------------------------------------------------------------


def _data_covariance(X):
    """Covariance of data with NaN: observed variances on the diagonal, off-diagonal terms
    from mean-imputed data, plus a small ridge so that it is positive definite."""
    center = _column_centre(X)
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


def initial_hmm_parameters(
    X,
    lengths,
    n_components,
    covariance_type,
    n_init,
    *,
    init="gmm",
    random_state=None,
    reg_covar=1e-6,
    gmm_init="kmeans",
    gmm_max_iter=20,
    gmm_tol=1e-3,
):
    """Starting parameters for ``n_init`` starts, all drawn from one explicit Generator.

    Strategies
    ----------
    ``"gmm"`` (the default of :class:`em_lib.hmm.GaussianHMM`): the mixture core's batched
        initialisation (:func:`em_lib.numerics.init.initial_parameters`, method ``gmm_init``,
        k-means++ seeds and Lloyd steps by default) on the pooled data, refined by a short
        batched run of em_lib's mixture EM (:func:`~em_lib.numerics.mixture_em.fit_mixture_em`,
        at most ``gmm_max_iter`` iterations). Emissions = the mixture components,
        ``startprob`` = mixture weights, ``transmat`` rows from the soft transition counts of
        consecutive mixture posteriors, ``sum_t r_tj r_{t+1,k} + 1`` normalised (the +1 keeps
        every transition possible: Baum-Welch can never revive a zero). A start whose
        mixture fit fails keeps its k-means means with the pooled data covariance.
        Default because the pooled mixture is the HMM's stationary marginal: it puts the
        emissions near a good optimum, the posterior-based transitions start the chain near
        the data's persistence, and the k-means++ seeding keeps the starts diverse.
    ``"random"``: means from distinct random rows (fully observed rows when there are at
        least ``K``, else rows with NaN replaced by column means), the pooled data covariance
        for every state, start and transition rows from a flat Dirichlet(1).

    Returns
    -------
    dict with ``startprob`` (I, K), ``transmat`` (I, K, K), ``means`` (I, K, d),
    ``covariances`` (typed).
    """
    from .init import initial_parameters

    if init not in INIT_STRATEGIES:
        raise ValueError(f"init must be one of {list(INIT_STRATEGIES)}, got {init!r}")
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
    data_covariances = _typed_from_full(cov, covariance_type, n_init, k)
    if init == "random":
        points = pooled[~np.isnan(pooled).any(axis=1)]
        if points.shape[0] < k:
            points = np.where(np.isnan(pooled), _column_centre(pooled), pooled)
        means = np.stack(
            [points[rng.choice(points.shape[0], size=k, replace=False)] for _ in range(n_init)]
        )
        startprob = rng.dirichlet(np.ones(k), size=n_init)
        transmat = rng.dirichlet(np.ones(k), size=(n_init, k))
        return {
            "startprob": startprob,
            "transmat": transmat,
            "means": means,
            "covariances": data_covariances,
        }
    weights, means, covariances = initial_parameters(
        pooled, k, covariance_type, n_init, gmm_init, rng, reg_covar=reg_covar
    )
    gmm = fit_mixture_em(
        pooled,
        weights,
        means,
        covariances,
        covariance_type,
        tol=gmm_tol,
        max_iter=gmm_max_iter,
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
    center = _column_centre(X)
    log_resp = emission_log_prob(X, means, covariances, covariance_type, center)
    log_resp += np.log(weights)[:, None, :]
    log_resp -= _lse(log_resp, axis=-1)[..., None]
    with np.errstate(under="ignore"):
        resp = np.exp(log_resp)
    first = _pair_rows(offsets)
    counts = np.einsum("inj,ink->ijk", resp[:, first], resp[:, first + 1]) + 1.0
    transmat = counts / counts.sum(-1, keepdims=True)
    return {"startprob": weights, "transmat": transmat, "means": means, "covariances": covariances}


class _Emissions:
    """The mixture core's Gaussian kernels for the emissions of one fit, on centred data.

    Without NaN the feature matrix ``phi(X)`` is built once: log-densities are ``phi @ W``
    (:func:`~em_lib.numerics.covariance.estep_weight_matrix`), the M-step statistics come from
    :meth:`~em_lib.numerics.gaussian.CompleteDataEngine.statistics_from_resp` and the update
    from :func:`~em_lib.numerics.mixture_em.mstep`. With NaN, a
    :class:`~em_lib.numerics.gaussian.MissingDataEngine` over the steps with something
    observed is also built once (missingness patterns grouped, features cached) and gives the
    observed-block log-densities and the exact missing-data statistics; an all-NaN step has
    log-density 0 and no statistics. Log-densities are returned time first, (n, I, K).
    """

    def __init__(self, Xc, covariance_type, reg_covar, prior_c):
        self.X = Xc
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.prior = prior_c
        self.missing = bool(np.isnan(Xc).any())
        if self.missing:
            self.keep = ~np.isnan(Xc).all(axis=1)
            self.engine = MissingDataEngine(Xc[self.keep], covariance_type)
        else:
            self.engine = CompleteDataEngine(Xc, covariance_type)
            self.phi = self.engine.features()

    def log_density(self, means, covariances, prec_chol):
        n_init, k, _ = means.shape
        if self.missing:
            log_b = np.zeros((self.X.shape[0], n_init, k))
            if self.keep.any():
                result = self.engine.estep(np.zeros((n_init, k)), means, covariances,
                                           want_stats=False, want_log_prob=True)
                log_b[self.keep] = np.transpose(result["weighted_log_prob"], (1, 0, 2))
            return log_b
        W = estep_weight_matrix(np.zeros((n_init, k)), means, prec_chol, self.covariance_type)
        return (self.phi @ W).reshape(self.X.shape[0], n_init, k)

    def mstep(self, resp, means, covariances):
        """New (means, covariances) from posteriors ``resp`` (I, n, K), any memory layout."""
        if self.missing:
            stats = self.engine.statistics_from_resp(resp[:, self.keep], means, covariances)
        else:
            stats = self.engine.statistics_from_resp(resp)
        _, new_means, new_cov = mstep(stats, self.covariance_type, self.reg_covar, self.prior)
        return new_means, new_cov


# ---------------------------------------------------------------------------------------------
# Baum-Welch
# ---------------------------------------------------------------------------------------------


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
    _check_params(params)
    if ("m" in params) != ("c" in params):
        raise ValueError(
            "params must contain both 'm' and 'c' or neither (emission means and "
            "covariances are updated together)"
        )
    engine = _check_engine(engine)
    if not (isinstance(max_iter, numbers.Integral) and max_iter >= 1):
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    if not (np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be a non-negative number, got {tol!r}")
    if not (np.isfinite(reg_covar) and reg_covar >= 0):
        raise ValueError(f"reg_covar must be a non-negative number, got {reg_covar!r}")
    X, lengths, offsets = check_sequences(X, lengths, min_length=2)
    startprob, transmat, means, covariances = validate_parameters(
        startprob, transmat, means, covariances, covariance_type, check_covariances=False
    )
    n_init, k, d = means.shape
    if d != X.shape[1]:
        raise ValueError(f"means have {d} features, X has {X.shape[1]}")
    alpha_start = _concentration(startprob_prior, (k,), "startprob_prior")
    alpha_trans = _concentration(transmat_prior, (k, k), "transmat_prior")
    observed_rows = ~np.isnan(X).all(axis=1)
    n_samples = int(observed_rows.sum())
    if n_samples == 0:
        raise ValueError("X has no observed entry")
    center = _column_centre(X)
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

    trace = np.full((n_init, max_iter), np.nan)
    n_iter = np.zeros(n_init, dtype=int)
    converged = np.zeros(n_init, dtype=bool)
    emissions = _Emissions(Xc, covariance_type, reg_covar, prior_c)
    prec_chol, initial_ok = precision_cholesky(covariances, covariance_type)
    failed = ~initial_ok
    reason = np.array(
        ["" if good else "initial covariance not positive definite" for good in initial_ok],
        dtype=object,
    )
    max_decrease = np.zeros(n_init)
    previous = np.full(n_init, -np.inf)
    active = initial_ok.copy()

    for iteration in range(1, max_iter + 1):
        index = np.flatnonzero(active)
        if index.size == 0:
            break
        log_b = emissions.log_density(means[index], covariances[index], prec_chol[index])
        loglik, post, trans_counts, start_counts = _forward_backward_time_first(
            log_b, startprob[index], transmat[index], lengths, engine, True
        )
        total = loglik.sum(-1) + log_prior_of(
            startprob[index], transmat[index], means[index], covariances[index]
        )
        objective = total / n_samples
        finite = np.isfinite(objective)
        trace[index[finite], iteration - 1] = objective[finite]
        for start in index[~finite]:
            failed[start] = True
            reason[start] = f"log-likelihood not finite at iteration {iteration}"
            n_iter[start] = iteration - 1
        active[index[~finite]] = False
        change = objective - previous[index]
        drop = np.where(finite & np.isfinite(change), -change, 0.0)
        max_decrease[index] = np.maximum(max_decrease[index], drop)

        idx = index[finite]
        new_sp, new_tm = startprob[idx], transmat[idx]
        if update_start:
            new_sp = _dirichlet_map(start_counts[finite], alpha_start, new_sp)
        if update_trans:
            new_tm = _dirichlet_map(trans_counts[finite], alpha_trans, new_tm)
        new_mu, new_cov, new_pc = means[idx], covariances[idx], prec_chol[idx]
        new_ok = np.ones(idx.size, dtype=bool)
        if update_emission:
            resp = np.transpose(post, (1, 0, 2))
            if not finite.all():
                resp = resp[finite]
            new_mu, new_cov = emissions.mstep(resp, means[idx], covariances[idx])
            new_pc, new_ok = precision_cholesky(new_cov, covariance_type)
            new_ok &= np.isfinite(new_mu).all(axis=(1, 2))
        new_ok &= np.isfinite(new_sp).all(-1) & np.isfinite(new_tm).all(axis=(1, 2))
        for start in idx[~new_ok]:
            failed[start] = True
            reason[start] = (
                f"covariance collapsed (not positive definite after the M-step) at iteration "
                f"{iteration}"
            )
        active[idx[~new_ok]] = False
        good = idx[new_ok]
        startprob[good] = new_sp[new_ok]
        transmat[good] = new_tm[new_ok]
        means[good] = new_mu[new_ok]
        covariances[good] = new_cov[new_ok]
        prec_chol[good] = new_pc[new_ok]
        n_iter[idx] = iteration
        done = (np.abs(change[finite]) < tol) & new_ok
        converged[idx[done]] = True
        active[idx[done]] = False
        previous[idx] = objective[finite]

    # final pass: the objective of the parameters actually returned
    valid = np.flatnonzero(initial_ok)
    log_likelihood = np.full(n_init, -np.inf)
    log_prior = np.zeros(n_init)
    if valid.size:
        log_b = emissions.log_density(means[valid], covariances[valid], prec_chol[valid])
        log_likelihood[valid] = _forward_backward_time_first(
            log_b, startprob[valid], transmat[valid], lengths, engine, False
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
    return HMMFit(
        covariance_type=covariance_type,
        startprob=startprob,
        transmat=transmat,
        means=means + center,
        covariances=covariances,
        log_likelihood=log_likelihood,
        log_prior=log_prior,
        trace=trace,
        n_iter=n_iter,
        converged=converged,
        failed=failed,
        failure_reason=reason,
        max_decrease=max_decrease,
        n_samples=n_samples,
        settings=settings,
    )
