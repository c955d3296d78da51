"""Dirichlet priors of the start and transition probabilities (hmmlearn's MAP update).

Emission priors are the mixture core's conjugate prior (:mod:`em_lib.numerics.prior`);
parameter counts and information criteria are in :mod:`em_lib.numerics.criteria`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_concentration", "dirichlet_map", "log_dirichlet_prior"]


def check_concentration(value, shape, name):
    """Dirichlet concentrations ``value`` broadcast to ``shape``; None for no prior (None, or
    every concentration 1: a flat Dirichlet is no prior). Raises ValueError naming ``name``."""
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
        return None
    return alpha


def log_dirichlet_prior(probabilities, alpha):
    """Unnormalised Dirichlet log density ``sum (alpha - 1) log p`` per start (0 for alpha
    None).

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


def dirichlet_map(counts, alpha, previous):
    """hmmlearn's MAP update: ``max(counts + alpha - 1, 0)`` normalised along the last axis;
    entries that were exactly zero stay zero; a row without mass keeps its previous value."""
    value = counts if alpha is None else np.maximum(counts + alpha - 1.0, 0.0)
    value = np.where(previous == 0, 0.0, value)
    total = value.sum(-1, keepdims=True)
    empty = total <= 0
    return np.where(empty, previous, value / np.where(empty, 1.0, total))
