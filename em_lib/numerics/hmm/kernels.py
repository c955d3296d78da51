"""The compiled (numba) forward-backward and Viterbi kernels of the HMM core.

Layouts: the forward-backward kernels work time first, ``(n, I, K)``, so that one time step
of every start is visited together (and ``(n, I * K)`` is the layout of ``phi(X) @ W`` and of
the M-step's ``phi^T @ resp``); the Viterbi kernel takes ``(I, n, K)``.

* :func:`scaled_forward_backward`: the scaled (Rabiner) recursion with the sufficient
  statistics fused in. Emissions are first scaled, ``b = exp(log_b - shift)`` with ``shift``
  the per-(step, start) maximum over states, so that long sequences and many features
  neither underflow nor lose precision; the exponential is the mixture core's vectorised one
  (:func:`em_lib.numerics._normalise._exp_nonpositive`) in one flat loop over the whole array
  (a libm ``exp`` per element, or numpy's, costs about twice as much). Then one forward and one
  backward sweep give the log-likelihoods, posteriors and expected transition counts;
  nothing of size (n, K, K) is ever stored.
* :func:`fb_log_kernel`: the log-space recursion, run for the (start, sequence) pairs where
  the scaling broke down (scaling constant below :data:`SCALE_FLOOR`, overflowing backward
  variables: e.g. an observation that only a state with zero predicted probability can
  explain).
* :func:`viterbi_kernel`: log-space Viterbi with back pointers.

The scaled recursion has one compiled entry point per small number of states (K = 2, 3, 4:
the loops over states are then unrolled, 1.3-1.7x faster) and a generic one; each compiles on
its first use only (1-2 s each, the generic one about 4 s, on these 2-core machines).
Floating-point contraction (fused multiply-add) is the only fast-math licence taken: no
reassociation, and NaN and infinity keep their meaning (a start whose values turn NaN fails
its checks and goes to the log-space kernel).

``cache=True``: the compiled machine code is written next to this module and reused by later
processes.
"""

from __future__ import annotations

import numba
import numpy as np

from .._normalise import _exp_nonpositive

# below this scaling constant the scaled recursion hands the pair to the log-space one
SCALE_FLOOR = 1e-290
# the running product of scaling constants is folded into the log-likelihood (one log)
# whenever it leaves [_FOLD_BELOW, 1 / _FOLD_BELOW]: it then stays above
# _FOLD_BELOW * SCALE_FLOOR, a normal double (a scaling constant is at most 1 with stochastic
# parameters; the upper bound only guards against rows that do not sum to 1)
_FOLD_BELOW = 1e-16

__all__ = ["SCALE_FLOOR", "fb_log_kernel", "scaled_forward_backward", "viterbi_kernel"]

_compiled = numba.njit(cache=True, nogil=True)
_fused = numba.njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
_inlined = numba.njit(inline="always", fastmath={"contract"}, error_model="numpy")


def scaled_forward_backward(
    log_b, b, shift, startprob, transmat, offsets, backward, post, scale, counts, loglik, ok
):
    """Scaled forward-backward for every (start, sequence) pair, all starts per time step.

    Parameters
    ----------
    log_b : (n, I, K) array, log-emissions (C-contiguous; not modified)
    b : (n, I, K) array, work space: the scaled emissions ``exp(log_b - shift)``
    shift : (n, I) array, work space: the per-step maxima of the log-emissions
    startprob : (I, K) array
    transmat : (I, K, K) array
    offsets : (S + 1,) int array, sequence boundaries in the rows
    backward : bool, False runs the forward sweep only (log-likelihoods)
    post : (n, I, K) array, output: the posteriors (the normalised forward variables
        without ``backward``)
    scale : (n, I) array, work space: the scaling constants
    counts : (I, K, K) array, output: expected transition counts, *added* for every pair
        that succeeded
    loglik : (I, S) array, output (written only where ``ok``)
    ok : (I, S) bool array, output: False where the scaling broke down (scaling constant
        below ``SCALE_FLOOR``, a non-finite or NaN log-emission maximum, overflowing
        backward variables); the caller then hands the pair to :func:`fb_log_kernel`.

    The expected transition count ``sum_t P(s_t = j, s_t+1 = k | X)`` is accumulated as
    ``A[j, k] * sum_t alpha_t(j) w_t+1(k)`` with ``w_t+1(k) = b_t+1(k) beta_t+1(k) / c_t+1``:
    one multiply-add per (j, k) and step, the transition probability applied once at the
    end.
    """
    arrays = (log_b, b, shift, startprob, transmat, offsets, post, scale, counts, loglik, ok)
    _BY_STATES.get(log_b.shape[2], _scaled_any)(arrays, bool(backward))


@_fused
def _scaled_2(arrays, backward):
    _scale_emissions(arrays, 2)
    _sweeps(arrays, backward, 2, True)


@_fused
def _scaled_3(arrays, backward):
    _scale_emissions(arrays, 3)
    _sweeps(arrays, backward, 3, True)


@_fused
def _scaled_4(arrays, backward):
    _scale_emissions(arrays, 4)
    _sweeps(arrays, backward, 4, True)


@_fused
def _scaled_any(arrays, backward):
    n_states = arrays[0].shape[2]
    _scale_emissions(arrays, n_states)
    _sweeps(arrays, backward, n_states, False)


_BY_STATES = {2: _scaled_2, 3: _scaled_3, 4: _scaled_4}


@_inlined
def _scale_emissions(arrays, n_states):
    """``b = exp(log_b - shift)``, ``shift`` the maximum over states. A NaN in ``log_b``
    gives NaN in ``b``, and so does a row of -inf (-inf - -inf): the pair then fails the
    sweeps' checks."""
    log_b, b, shift = arrays[0], arrays[1], arrays[2]
    for row in range(log_b.shape[0]):
        for i in range(log_b.shape[1]):
            values = log_b[row, i]
            out = b[row, i]
            top = values[0]
            for k in range(1, n_states):
                top = max(top, values[k])
            shift[row, i] = top
            for k in range(n_states):
                out[k] = values[k] - top
    flat = b.reshape(-1)
    for index in range(flat.size):
        flat[index] = _exp_nonpositive(flat[index])


@_inlined
def _sweeps(arrays, backward, n_states, unrolled):
    """The forward and backward sweeps of :func:`scaled_forward_backward` (inlined into
    every entry point: ``n_states`` a compile-time constant there, except in the generic
    one)."""
    _, b, shift, startprob, transmat, offsets, post, scale, counts, loglik, ok = arrays
    n_init = b.shape[1]
    n_seq = offsets.shape[0] - 1
    total = np.empty(n_init)
    product = np.empty(n_init)
    good = np.empty(n_init, dtype=np.bool_)
    beta = np.empty((n_init, n_states))
    outer = np.empty((n_init, n_states, n_states))
    weight = np.empty(n_states)
    # into_state[i, k] = transmat[i, :, k] (contiguous), for the generic forward step
    into_state = np.empty((n_init, n_states, n_states))
    if not unrolled:
        for i in range(n_init):
            for j in range(n_states):
                for k in range(n_states):
                    into_state[i, k, j] = transmat[i, j, k]
    for s in range(n_seq):
        lo = offsets[s]
        hi = offsets[s + 1]
        for i in range(n_init):
            total[i] = 0.0
            product[i] = 1.0
            good[i] = True
        # forward: post[t] = P(s_t | x_1..x_t), scale[t] = p(x_t | x_1..x_t-1) / e^shift[t]
        for row in range(lo, hi):
            for i in range(n_init):
                if not good[i]:
                    continue
                top = shift[row, i]
                emission = b[row, i]
                alpha = post[row, i]
                if row == lo:
                    for k in range(n_states):
                        alpha[k] = startprob[i, k] * emission[k]
                else:
                    previous = post[row - 1, i]
                    # measured: with K known, row updates (alpha += alpha_j * A[j]) are
                    # fastest; in the generic code, dot products (no short loops that the
                    # compiler vectorises behind run-time checks)
                    if unrolled:
                        trans = transmat[i]
                        for k in range(n_states):
                            alpha[k] = 0.0
                        for j in range(n_states):
                            alpha_j = previous[j]
                            for k in range(n_states):
                                alpha[k] += alpha_j * trans[j, k]
                        for k in range(n_states):
                            alpha[k] *= emission[k]
                    else:
                        into = into_state[i]
                        for k in range(n_states):
                            acc = 0.0
                            for j in range(n_states):
                                acc += previous[j] * into[k, j]
                            alpha[k] = acc * emission[k]
                norm = 0.0
                for k in range(n_states):
                    norm += alpha[k]
                if not (norm > SCALE_FLOOR and norm < np.inf and np.isfinite(top)):
                    good[i] = False
                    continue
                scale[row, i] = norm
                inverse = 1.0 / norm
                for k in range(n_states):
                    alpha[k] *= inverse
                total[i] += top
                running = product[i] * norm
                if running < _FOLD_BELOW or running > 1.0 / _FOLD_BELOW:
                    total[i] += np.log(running)
                    running = 1.0
                product[i] = running
        for i in range(n_init):
            ok[i, s] = good[i]
            if good[i]:
                loglik[i, s] = total[i] + np.log(product[i])
        if not backward:
            continue
        # backward: beta[t] = p(x_t+1..x_T | s_t) / prod(scale[t+1:]); posteriors in place
        for i in range(n_init):
            for j in range(n_states):
                beta[i, j] = 1.0
                for k in range(n_states):
                    outer[i, j, k] = 0.0
        for row in range(hi - 2, lo - 1, -1):
            for i in range(n_init):
                if not good[i]:
                    continue
                ahead = b[row + 1, i]
                gamma = post[row, i]
                trans = transmat[i]
                beta_i = beta[i]
                outer_i = outer[i]
                inverse = 1.0 / scale[row + 1, i]
                for k in range(n_states):
                    weight[k] = ahead[k] * beta_i[k] * inverse
                norm = 0.0
                for j in range(n_states):
                    alpha_j = gamma[j]
                    acc = 0.0
                    for k in range(n_states):
                        acc += trans[j, k] * weight[k]
                        outer_i[j, k] += alpha_j * weight[k]
                    beta_i[j] = acc
                    value = alpha_j * acc
                    gamma[j] = value
                    norm += value
                if not (norm > 0.0 and norm < np.inf):
                    good[i] = False
                    continue
                inverse = 1.0 / norm
                for j in range(n_states):
                    gamma[j] *= inverse
        for i in range(n_init):
            ok[i, s] = good[i]
            if good[i]:
                for j in range(n_states):
                    for k in range(n_states):
                        counts[i, j, k] += transmat[i, j, k] * outer[i, j, k]


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
def fb_log_kernel(log_b, log_start, log_trans, offsets, todo, backward, post, counts, loglik, ok):
    """Log-space forward-backward (the fallback) for the pairs with ``todo[i, s]``; same
    time-first layout and outputs as :func:`scaled_forward_backward` (``counts`` (I, K, K) added
    to for every pair that succeeds)."""
    n_init = log_b.shape[1]
    n_states = log_b.shape[2]
    n_seq = offsets.shape[0] - 1
    tmp = np.empty(n_states)
    beta = np.empty(n_states)
    new_beta = np.empty(n_states)
    nxt = np.empty(n_states)
    pair_counts = np.empty((n_states, n_states))
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
            pair_counts[:, :] = 0.0
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
                        pair_counts[j, k] += np.exp(post[row, i, j] + tmp[k] - total)
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
            if ok[i, s]:
                for j in range(n_states):
                    for k in range(n_states):
                        counts[i, j, k] += pair_counts[j, k]


@_compiled
def viterbi_kernel(log_b, log_start, log_trans, offsets, states, logprob):
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
