"""Synthetic data with known ground truth: Gaussian mixtures and Gaussian HMMs.

Every generator takes an explicit ``random_state`` (an ``int`` seed, a
:class:`numpy.random.SeedSequence` or a :class:`numpy.random.Generator`); nothing here
touches numpy's global random state or the clock, so the same seed always gives the same
data on the same numpy version.

Scale convention
----------------
The true covariances are normalised so that the *average per-coordinate variance* over
all components is exactly one::

    mean_k trace(covariances[k]) / n_features == 1

and ``separation`` is measured in that unit (a "typical" standard deviation of 1):

* if ``n_components <= n_features + 1`` the means are the vertices of a randomly rotated
  regular simplex, so **every** pairwise distance between true means equals
  ``separation`` exactly;
* otherwise the means are the best of 16 random configurations (largest smallest
  distance relative to the spread), rescaled so that the **smallest** pairwise distance
  equals ``separation`` exactly (other pairs are further apart).

Individual components have variances between about 1/3 and 3 times the unit before
normalisation, so the actual overlap of a given pair also depends on its covariances;
``separation`` of 3 gives clearly but not trivially separated clusters, 1 gives heavy
overlap, 0 puts every mean at the origin.
"""

from __future__ import annotations

import bisect
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "COVARIANCE_TYPES",
    "SyntheticHMM",
    "SyntheticMixture",
    "as_generator",
    "make_gaussian_mixture",
    "make_hmm_sequences",
]

COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")

# Per-axis variances (before the global normalisation) are log-uniform in this range.
_VARIANCE_RANGE = (1.0 / 3.0, 3.0)
# Number of random candidate configurations tried when a regular simplex does not fit.
_N_MEAN_CANDIDATES = 16


def as_generator(
    random_state: int | np.integer | np.random.SeedSequence | np.random.Generator,
) -> np.random.Generator:
    """Turn a seed-like object into a :class:`numpy.random.Generator`.

    Parameters
    ----------
    random_state : int, numpy.random.SeedSequence or numpy.random.Generator
        A non-negative integer seed or a ``SeedSequence`` gives a fresh ``Generator``
        (PCG64) seeded from it, so equal seeds give equal streams. A ``Generator`` is
        returned unchanged (the caller's stream is consumed, not copied).

    Returns
    -------
    numpy.random.Generator

    Raises
    ------
    ValueError
        If ``random_state`` is ``None`` (an explicit seed is required; the clock is never
        used) or a negative integer.
    TypeError
        If ``random_state`` is of any other type (including ``bool`` and ``float``).
    """
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.SeedSequence):
        return np.random.default_rng(random_state)
    if random_state is None:
        raise ValueError(
            "random_state is None; pass an int seed, a numpy.random.SeedSequence or a "
            "numpy.random.Generator (results must be reproducible)"
        )
    if isinstance(random_state, bool | np.bool_) or not isinstance(random_state, numbers.Integral):
        raise TypeError(
            "random_state must be an int, a numpy.random.SeedSequence or a "
            f"numpy.random.Generator, got {type(random_state).__name__}: {random_state!r}"
        )
    if random_state < 0:
        raise ValueError(f"random_state must be a non-negative integer seed, got {random_state}")
    return np.random.default_rng(int(random_state))


@dataclass(frozen=True, eq=False)
class SyntheticMixture:
    """A sample from a Gaussian mixture together with its true parameters.

    All arrays are read-only.

    Attributes
    ----------
    X : numpy.ndarray, shape (n_samples, n_features)
        The observations.
    labels : numpy.ndarray of int64, shape (n_samples,)
        The true component of each observation.
    weights : numpy.ndarray, shape (n_components,)
        True mixing weights (sum to one).
    means : numpy.ndarray, shape (n_components, n_features)
        True component means.
    covariances : numpy.ndarray, shape (n_components, n_features, n_features)
        True covariances, always stored as full matrices whatever ``covariance_type``.
    covariance_type : str
        One of ``"full"``, ``"diag"``, ``"spherical"``, ``"tied"``: the structure of the
        true covariances.
    """

    X: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    covariance_type: str


@dataclass(frozen=True, eq=False)
class SyntheticHMM:
    """Sequences sampled from a Gaussian HMM together with its true parameters.

    All arrays are read-only. Sequence ``i`` occupies rows
    ``offsets[i]:offsets[i] + lengths[i]`` of ``X`` and ``states``, where
    ``offsets = concatenate([[0], cumsum(lengths)[:-1]])``.

    Attributes
    ----------
    X : numpy.ndarray, shape (sum(lengths), n_features)
        The concatenated observation sequences.
    lengths : numpy.ndarray of int64, shape (n_sequences,)
        Length of each sequence.
    states : numpy.ndarray of int64, shape (sum(lengths),)
        The true hidden state of each observation.
    startprob : numpy.ndarray, shape (n_components,)
        True initial state distribution.
    transmat : numpy.ndarray, shape (n_components, n_components)
        True transition matrix; ``transmat[i, j] = P(s_{t+1} = j | s_t = i)``, rows sum
        to one.
    means : numpy.ndarray, shape (n_components, n_features)
        True emission means.
    covariances : numpy.ndarray, shape (n_components, n_features, n_features)
        True emission covariances, always stored as full matrices.
    covariance_type : str
        Structure of the true covariances (see :data:`COVARIANCE_TYPES`).
    """

    X: np.ndarray
    lengths: np.ndarray
    states: np.ndarray
    startprob: np.ndarray
    transmat: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    covariance_type: str


# ----------------------------------------------------------------------------- validation


def _check_positive_int(value: object, name: str) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return int(value)


def _check_separation(separation: object) -> float:
    try:
        value = float(separation)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"separation must be a finite number >= 0, got {separation!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"separation must be a finite number >= 0, got {separation!r}")
    return value


def _check_covariance_type(covariance_type: object) -> str:
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(
            f"unknown covariance_type {covariance_type!r}; expected one of {COVARIANCE_TYPES}"
        )
    return str(covariance_type)


def _check_weights(weights: object, n_components: int) -> np.ndarray:
    if weights is None:
        return np.full(n_components, 1.0 / n_components)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n_components,):
        raise ValueError(
            f"weights must have shape ({n_components},) to match n_components, got shape {w.shape}"
        )
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"weights must be finite and non-negative, got {w.tolist()}")
    total = float(w.sum())
    if abs(total - 1.0) > 1e-8:
        raise ValueError(f"weights must sum to 1 (within 1e-8), got sum {total!r}")
    return w / total


# ----------------------------------------------------------------------------- truth


def _random_rotation(rng: np.random.Generator, d: int) -> np.ndarray:
    """Haar-distributed orthogonal matrix, shape (d, d)."""
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)


def _log_uniform_variances(rng: np.random.Generator, size: int | tuple[int, ...]) -> np.ndarray:
    low, high = np.log(_VARIANCE_RANGE[0]), np.log(_VARIANCE_RANGE[1])
    return np.exp(rng.uniform(low, high, size=size))


def _make_covariances(
    rng: np.random.Generator, n_components: int, d: int, covariance_type: str
) -> np.ndarray:
    """Random true covariances, shape (K, d, d), normalised to mean trace / d == 1."""
    if covariance_type == "spherical":
        covs = _log_uniform_variances(rng, n_components)[:, None, None] * np.eye(d)
    elif covariance_type == "diag":
        variances = _log_uniform_variances(rng, (n_components, d))
        covs = variances[:, :, None] * np.eye(d)
    elif covariance_type == "full":
        covs = np.empty((n_components, d, d))
        for k in range(n_components):
            rot = _random_rotation(rng, d)
            covs[k] = (rot * _log_uniform_variances(rng, d)) @ rot.T
    else:  # tied
        rot = _random_rotation(rng, d)
        shared = (rot * _log_uniform_variances(rng, d)) @ rot.T
        covs = np.broadcast_to(shared, (n_components, d, d)).copy()
    covs = 0.5 * (covs + np.swapaxes(covs, 1, 2))
    scale = np.trace(covs, axis1=1, axis2=2).mean() / d
    return covs / scale


def _pairwise_min_distance(points: np.ndarray) -> float:
    diff = points[:, None, :] - points[None, :, :]
    dist = np.sqrt((diff**2).sum(axis=-1))
    return float(dist[np.triu_indices(points.shape[0], k=1)].min())


def _place_means(
    rng: np.random.Generator, n_components: int, d: int, separation: float
) -> np.ndarray:
    """True means, shape (K, d); see the module docstring for the distance guarantee."""
    if n_components == 1:
        return np.zeros((1, d))
    if n_components <= d + 1:
        # Helmert contrasts: the rows of ``helmert.T`` are the vertices of a regular
        # simplex in R^(K-1) with edge sqrt(2), centred at the origin.
        k = n_components
        helmert = np.zeros((k - 1, k))
        for j in range(1, k):
            helmert[j - 1, :j] = 1.0
            helmert[j - 1, j] = -float(j)
            helmert[j - 1] /= math.sqrt(j * (j + 1))
        basis = _random_rotation(rng, d)[:, : k - 1]
        return (helmert.T @ basis.T) * (separation / math.sqrt(2.0))
    best, best_score = None, -np.inf
    for _ in range(_N_MEAN_CANDIDATES):
        cand = rng.uniform(size=(n_components, d))
        cand -= cand.mean(axis=0)
        spread = math.sqrt(float((cand**2).sum(axis=1).mean()))
        score = _pairwise_min_distance(cand) / spread
        if score > best_score:
            best, best_score = cand, score
    assert best is not None
    return best * (separation / _pairwise_min_distance(best))


def _sample_emissions(
    rng: np.random.Generator, assignments: np.ndarray, means: np.ndarray, covs: np.ndarray
) -> np.ndarray:
    """Gaussian draws ``X[i] ~ N(means[a_i], covs[a_i])``, shape (n, d)."""
    n, d = assignments.shape[0], means.shape[1]
    noise = rng.standard_normal((n, d))
    chol = np.linalg.cholesky(covs)
    X = np.empty((n, d))
    for k in range(means.shape[0]):
        idx = assignments == k
        X[idx] = means[k] + noise[idx] @ chol[k].T
    return X


def _freeze(*arrays: np.ndarray) -> None:
    for arr in arrays:
        arr.setflags(write=False)


# ----------------------------------------------------------------------------- public


def make_gaussian_mixture(
    n_samples: int,
    n_features: int,
    n_components: int,
    *,
    separation: float = 3.0,
    covariance_type: str = "full",
    weights: Sequence[float] | np.ndarray | None = None,
    random_state: int | np.random.SeedSequence | np.random.Generator,
) -> SyntheticMixture:
    """Sample from a random Gaussian mixture with known parameters.

    Parameters
    ----------
    n_samples : int
        Number of observations, >= 1.
    n_features : int
        Dimension ``d``, >= 1.
    n_components : int
        Number of components ``K``, >= 1.
    separation : float, default 3.0
        Distance between true means in units of the average per-coordinate standard
        deviation (exact for every pair when ``K <= d + 1``, for the closest pair
        otherwise; see the module docstring). Must be finite and >= 0.
    covariance_type : {"full", "diag", "spherical", "tied"}, default "full"
        Structure of the true covariances: ``"full"`` gives each component its own
        random rotation and axis variances; ``"diag"`` its own axis-aligned variances;
        ``"spherical"`` its own multiple of the identity; ``"tied"`` one random full
        covariance shared by all components. Axis variances are log-uniform in
        [1/3, 3] before the global normalisation.
    weights : array-like, shape (n_components,), optional
        True mixing weights (non-negative, summing to 1 within 1e-8). Default: uniform.
    random_state : int, numpy.random.SeedSequence or numpy.random.Generator
        Source of randomness (required).

    Returns
    -------
    SyntheticMixture
        ``X`` (n_samples, d), ``labels`` (n_samples,), and the truth ``weights`` (K,),
        ``means`` (K, d), ``covariances`` (K, d, d).

    Notes
    -----
    Labels are drawn i.i.d. from ``weights``; nothing guarantees that every component
    receives a sample (``n_samples < n_components`` is allowed, and a component with a
    small weight may be empty).
    """
    n_samples = _check_positive_int(n_samples, "n_samples")
    d = _check_positive_int(n_features, "n_features")
    k = _check_positive_int(n_components, "n_components")
    separation = _check_separation(separation)
    covariance_type = _check_covariance_type(covariance_type)
    w = _check_weights(weights, k)
    rng = as_generator(random_state)

    covs = _make_covariances(rng, k, d, covariance_type)
    means = _place_means(rng, k, d, separation)
    labels = rng.choice(k, size=n_samples, p=w).astype(np.int64)
    X = _sample_emissions(rng, labels, means, covs)
    _freeze(X, labels, w, means, covs)
    return SyntheticMixture(
        X=X,
        labels=labels,
        weights=w,
        means=means,
        covariances=covs,
        covariance_type=covariance_type,
    )


def _check_lengths(lengths: object) -> np.ndarray:
    if isinstance(lengths, numbers.Integral) and not isinstance(lengths, bool | np.bool_):
        lengths = [lengths]
    arr = np.asarray(lengths, dtype=object)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(
            f"lengths must be a non-empty 1-D sequence of positive integers, got {lengths!r}"
        )
    items = arr.tolist()
    out = np.empty(len(items), dtype=np.int64)
    for i, value in enumerate(items):
        if (
            isinstance(value, bool | np.bool_)
            or not isinstance(value, numbers.Integral)
            or value < 1
        ):
            raise ValueError(f"lengths[{i}] must be a positive integer, got {value!r}")
        out[i] = int(value)
    return out


def make_hmm_sequences(
    lengths: Sequence[int] | np.ndarray | int,
    n_features: int,
    n_components: int,
    *,
    separation: float = 3.0,
    self_transition: float = 0.9,
    covariance_type: str = "diag",
    random_state: int | np.random.SeedSequence | np.random.Generator,
) -> SyntheticHMM:
    """Sample observation sequences from a random Gaussian HMM with known parameters.

    Parameters
    ----------
    lengths : sequence of int, shape (n_sequences,), or int
        Length of each independent sequence (each >= 1); a single int means one
        sequence.
    n_features : int
        Emission dimension ``d``, >= 1.
    n_components : int
        Number of hidden states ``K``, >= 1.
    separation : float, default 3.0
        Distance between emission means, with the same meaning as in
        :func:`make_gaussian_mixture`.
    self_transition : float, default 0.9
        Diagonal of the true transition matrix, in [0, 1]. The remaining mass
        ``1 - self_transition`` of each row is split over the other states with
        proportions drawn from a flat Dirichlet distribution. Ignored when ``K == 1``
        (the transition matrix is then ``[[1.0]]``).
    covariance_type : {"full", "diag", "spherical", "tied"}, default "diag"
        Structure of the true emission covariances (as in
        :func:`make_gaussian_mixture`).
    random_state : int, numpy.random.SeedSequence or numpy.random.Generator
        Source of randomness (required).

    Returns
    -------
    SyntheticHMM
        ``X`` (sum(lengths), d), ``lengths`` (n_sequences,), ``states``
        (sum(lengths),), and the truth ``startprob`` (K,) (uniform), ``transmat``
        (K, K), ``means`` (K, d), ``covariances`` (K, d, d).
    """
    lengths_arr = _check_lengths(lengths)
    d = _check_positive_int(n_features, "n_features")
    k = _check_positive_int(n_components, "n_components")
    separation = _check_separation(separation)
    covariance_type = _check_covariance_type(covariance_type)
    try:
        stay = float(self_transition)
    except (TypeError, ValueError):
        stay = math.nan
    if not 0.0 <= stay <= 1.0:
        raise ValueError(f"self_transition must be a number in [0, 1], got {self_transition!r}")
    rng = as_generator(random_state)

    covs = _make_covariances(rng, k, d, covariance_type)
    means = _place_means(rng, k, d, separation)
    startprob = np.full(k, 1.0 / k)
    transmat = np.eye(k)
    if k > 1:
        for i in range(k):
            others = [j for j in range(k) if j != i]
            transmat[i, others] = (1.0 - stay) * rng.dirichlet(np.ones(k - 1))
            transmat[i, i] = stay

    total = int(lengths_arr.sum())
    # Inverse-CDF sampling of the chain; the last cumulative value is forced to 1 so a
    # uniform draw in [0, 1) always maps to a valid state.
    start_cdf = np.cumsum(startprob)
    start_cdf[-1] = 1.0
    trans_cdf = np.cumsum(transmat, axis=1)
    trans_cdf[:, -1] = 1.0
    start_cdf_list = start_cdf.tolist()
    trans_cdf_list = trans_cdf.tolist()
    uniforms = rng.random(total).tolist()
    states_list = [0] * total
    t = 0
    for length in lengths_arr.tolist():
        state = bisect.bisect_right(start_cdf_list, uniforms[t])
        states_list[t] = state
        for step in range(t + 1, t + length):
            state = bisect.bisect_right(trans_cdf_list[state], uniforms[step])
            states_list[step] = state
        t += length
    states = np.asarray(states_list, dtype=np.int64)
    X = _sample_emissions(rng, states, means, covs)
    _freeze(X, lengths_arr, states, startprob, transmat, means, covs)
    return SyntheticHMM(
        X=X,
        lengths=lengths_arr,
        states=states,
        startprob=startprob,
        transmat=transmat,
        means=means,
        covariances=covs,
        covariance_type=covariance_type,
    )
