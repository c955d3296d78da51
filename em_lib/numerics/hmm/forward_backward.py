"""Forward-backward and Viterbi front ends of the HMM core, vectorised over starts.

Two engines, both vectorised over starts ``I`` and sequences:

* ``"numba"`` (``"auto"``): the compiled scaled recursion with the sufficient statistics
  fused in (:func:`~em_lib.numerics.hmm.kernels.scaled_forward_backward`), with the log-space
  kernel for the (start, sequence) pairs where scaling breaks down;
* ``"numpy"``: a pure-numpy log-space reference (a Python loop over time steps, vectorised
  over starts and sequences). It is slow (tens of microseconds per step) and exists so the
  compiled path can be checked against it.

The public functions take and return (I, n, K) arrays; inside a fit the arrays are time
first, (n, I, K) (:func:`forward_backward_time_first`), so that the compiled recursion visits
all starts of a time step together and the M-step's ``phi^T @ resp`` needs no copy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..criteria import logsumexp
from .checks import check_engine
from .kernels import fb_log_kernel, scaled_forward_backward, viterbi_kernel

__all__ = [
    "ForwardBackward",
    "Workspace",
    "forward_backward",
    "forward_backward_reference",
    "forward_backward_time_first",
    "viterbi",
]


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


def log_parameters(startprob, transmat):
    """``(log startprob, log transmat)``; structural zeros give -inf without a warning."""
    with np.errstate(divide="ignore"):
        return np.log(startprob), np.log(transmat)


def padded_rows(lengths, offsets):
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
    rows, valid = padded_rows(lengths, offsets)
    n_seq, t_max = rows.shape
    lb = np.where(valid[None, :, :, None], log_b[:, rows], 0.0)  # (I, S, Tmax, K)
    log_pi, log_a = log_parameters(startprob, transmat)
    log_a = log_a[:, None]  # (I, 1, K, K)
    alpha = np.empty((n_init, n_seq, t_max, k))
    alpha[:, :, 0] = log_pi[:, None] + lb[:, :, 0]
    for t in range(1, t_max):
        alpha[:, :, t] = logsumexp(alpha[:, :, t - 1, :, None] + log_a, axis=-2) + lb[:, :, t]
    seq = np.arange(n_seq)
    loglik = logsumexp(alpha[:, seq, lengths - 1], axis=-1)  # (I, S)
    beta = np.zeros((n_init, n_seq, t_max, k))
    for t in range(t_max - 2, -1, -1):
        ahead = logsumexp(log_a + (lb[:, :, t + 1] + beta[:, :, t + 1])[:, :, None, :], axis=-1)
        beta[:, :, t] = np.where((t + 1 < lengths)[None, :, None], ahead, 0.0)
    with np.errstate(invalid="ignore"):
        log_gamma = alpha + beta - loglik[..., None, None]
        log_gamma -= logsumexp(log_gamma, axis=-1)[..., None]
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


class Workspace:
    """Named buffers reused across the iterations of one fit.

    On these machines a freshly allocated large temporary costs more than the arithmetic done
    in it (page faults on first touch), so the (n, I, K) arrays of every iteration (log- and
    scaled emissions, posteriors) live here; a buffer grows when a larger one is asked for and
    is otherwise handed out again (a view of its first ``prod(shape)`` entries). An array
    obtained from it is valid until the next request under the same name.
    """

    def __init__(self):
        self._buffers: dict[str, np.ndarray] = {}

    def array(self, name, shape):
        """A C-contiguous float array of ``shape`` (contents undefined)."""
        size = math.prod(shape)
        buffer = self._buffers.get(name)
        if buffer is None or buffer.size < size:
            buffer = np.empty(size)
            self._buffers[name] = buffer
        return buffer[:size].reshape(shape)


def forward_backward_time_first(
    log_b, startprob, transmat, lengths, engine, posteriors, workspace=None
):
    """Forward-backward on time-first log-emissions ``log_b`` (n, I, K).

    ``workspace`` (a :class:`Workspace`, optional) supplies the (n, I, K) buffers; the
    posteriors returned are then one of them, valid until the workspace's next use.

    Returns ``(log_likelihood (I, S), posteriors (n, I, K) or None, transition_counts
    (I, K, K) or None, start_counts (I, K) or None)``; the counts are summed over sequences.
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
    if workspace is None:
        workspace = Workspace()
    log_b = np.ascontiguousarray(log_b, dtype=float)
    startprob = np.ascontiguousarray(startprob, dtype=float)
    transmat = np.ascontiguousarray(transmat, dtype=float)
    scaled = workspace.array("scaled_emissions", (n, n_init, k))
    shift = workspace.array("shift", (n, n_init))
    post = workspace.array("posteriors", (n, n_init, k))
    scale = workspace.array("scale", (n, n_init))
    counts = np.zeros((n_init, k, k))
    loglik = np.full((n_init, lengths.size), -np.inf)
    ok = np.zeros((n_init, lengths.size), dtype=np.bool_)
    scaled_forward_backward(
        log_b,
        scaled,
        shift,
        startprob,
        transmat,
        offsets,
        posteriors,
        post,
        scale,
        counts,
        loglik,
        ok,
    )
    if not ok.all():
        log_pi, log_a = log_parameters(startprob, transmat)
        fb_log_kernel(log_b, log_pi, log_a, offsets, ~ok, posteriors, post, counts, loglik, ok)
        loglik[~ok] = -np.inf
    if not posteriors:
        return loglik, None, None, None
    return loglik, post, counts, post[offsets[:-1]].sum(0)


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
    engine = check_engine(engine)
    lengths = np.asarray(lengths, dtype=np.int64)
    log_b = np.transpose(np.asarray(log_emission, dtype=float), (1, 0, 2))
    loglik, post, counts, start = forward_backward_time_first(
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
    engine = check_engine(engine)
    log_b = np.ascontiguousarray(log_emission, dtype=float)
    lengths = np.asarray(lengths, dtype=np.int64)
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    log_pi, log_a = log_parameters(
        np.asarray(startprob, dtype=float), np.asarray(transmat, dtype=float)
    )
    n_init, n, k = log_b.shape
    if engine == "numba":
        states = np.zeros((n_init, n), dtype=np.int64)
        logprob = np.empty((n_init, lengths.size))
        viterbi_kernel(
            log_b,
            np.ascontiguousarray(log_pi),
            np.ascontiguousarray(log_a),
            offsets,
            states,
            logprob,
        )
        return logprob, states
    rows, valid = padded_rows(lengths, offsets)
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
