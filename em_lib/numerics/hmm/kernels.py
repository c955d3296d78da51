"""The compiled (numba) forward-backward and Viterbi kernels of the HMM core.

Layouts: the forward-backward kernels work time first, ``(n, I, K)``, so that one time step
of every start is visited together; the Viterbi kernel takes ``(I, n, K)``.

* :func:`fb_scaled_kernel`: the scaled (Rabiner) recursion on emissions shifted by their
  per-step maximum before exponentiation, so long sequences (``T = 10^5`` and beyond) neither
  underflow nor lose precision.
* :func:`fb_log_kernel`: the log-space recursion, run for the (start, sequence) pairs where
  the scaling broke down (scaling constant below :data:`SCALE_FLOOR`, overflowing backward
  variables: e.g. an observation that only a state with zero predicted probability can
  explain).
* :func:`viterbi_kernel`: log-space Viterbi with back pointers.

``cache=True``: the compiled machine code is written next to this module and reused by later
processes (the first import compiles, a few seconds).
"""

from __future__ import annotations

import numba
import numpy as np

# below this scaling constant the scaled recursion hands the pair to the log-space one
SCALE_FLOOR = 1e-290

__all__ = ["SCALE_FLOOR", "fb_log_kernel", "fb_scaled_kernel", "viterbi_kernel"]

_compiled = numba.njit(cache=True, nogil=True)


@_compiled
def fb_scaled_kernel(b, shift, startprob, transmat, offsets, backward, post, counts, loglik, ok):
    """Scaled forward-backward for every (start, sequence) pair, all starts per time step.

    Layout is time first: ``b`` (n, I, K) holds ``exp(log_b - shift)`` with ``shift`` (n, I)
    the per-step maximum over states. ``post`` (n, I, K) first receives the normalised
    forward variables, then the posteriors; ``counts`` (I, S, K, K) the expected transition
    counts; ``loglik`` (I, S). ``ok[i, s]`` is False where the scaling broke down (scaling
    constant below ``SCALE_FLOOR``, a non-finite shift, or overflowing backward variables):
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
                if not (norm > SCALE_FLOOR and norm < np.inf):
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
def fb_log_kernel(log_b, log_start, log_trans, offsets, todo, backward, post, counts, loglik, ok):
    """Log-space forward-backward (the fallback) for the pairs with ``todo[i, s]``; same
    time-first layout and outputs as :func:`fb_scaled_kernel`."""
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
