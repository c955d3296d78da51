"""Batched hidden Markov models with Gaussian emissions.

Modules
-------
:mod:`.checks`
    input checks (sequences, parameter batches, option letters)
:mod:`.emissions`
    Gaussian log-emissions and the emission M-step (the mixture core's kernels)
:mod:`.kernels`
    the compiled (numba) forward-backward and Viterbi recursions
:mod:`.forward_backward`
    forward-backward and Viterbi front ends (numba engine and numpy reference)
:mod:`.priors`
    Dirichlet priors of the start and transition probabilities
:mod:`.results`
    :class:`HMMFit`, the per-start results of a batched fit
:mod:`.init`
    starting parameters (:func:`initial_hmm_parameters`; the kind of every start:
    :func:`hmm_start_kinds`)
:mod:`.baum_welch`
    batched Baum-Welch (:func:`fit_hmm_em`)
:mod:`.driver`
    the fitting driver (:class:`HMMSettings`, :func:`fit_hmm`, :class:`HMMFitResult`):
    starts, batched Baum-Welch, polishing of the best distinct starts, the best start

Parameter counts and information criteria are :mod:`em_lib.numerics.criteria`'s
(``hmm_n_parameters`` is re-exported here).

Shapes (init dimension first): ``startprob`` (I, K), ``transmat`` (I, K, K), ``means``
(I, K, d), covariances (I, K, d, d) full, (I, K, d) diag, (I, K) spherical, (I, d, d) tied.
"""

from ..criteria import hmm_n_parameters
from .baum_welch import fit_hmm_em
from .checks import DECODERS, ENGINES, PARAM_LETTERS, check_sequences, validate_parameters
from .driver import HMMFitResult, HMMSettings, fit_hmm
from .emissions import emission_log_prob
from .forward_backward import (
    ForwardBackward,
    forward_backward,
    forward_backward_reference,
    viterbi,
)
from .init import AUTO_KINDS, INIT_STRATEGIES, hmm_start_kinds, initial_hmm_parameters
from .priors import log_dirichlet_prior
from .results import HMMFit

__all__ = [
    "AUTO_KINDS",
    "DECODERS",
    "ENGINES",
    "INIT_STRATEGIES",
    "PARAM_LETTERS",
    "ForwardBackward",
    "HMMFit",
    "HMMFitResult",
    "HMMSettings",
    "check_sequences",
    "emission_log_prob",
    "fit_hmm",
    "fit_hmm_em",
    "forward_backward",
    "forward_backward_reference",
    "hmm_n_parameters",
    "hmm_start_kinds",
    "initial_hmm_parameters",
    "log_dirichlet_prior",
    "validate_parameters",
    "viterbi",
]
