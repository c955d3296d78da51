"""em_lib: batched, reproducible Expectation-Maximization.

Gaussian mixtures (full / diag / spherical / tied covariances, exact missing-data EM) and
Gaussian hidden Markov models, with every initialisation fitted at once in one batched run.
"""

__version__ = "0.1.0"

from .mixture import GaussianMixture  # noqa: E402
from .numerics.mixture_em import MixtureFit, fit_mixture_em  # noqa: E402

__all__ = ["GaussianHMM", "GaussianMixture", "MixtureFit", "fit_mixture_em", "__version__"]


def __getattr__(name):
    # GaussianHMM loads numba (about a second); import it only when asked for
    if name == "GaussianHMM":
        from .hmm import GaussianHMM

        return GaussianHMM
    raise AttributeError(f"module 'em_lib' has no attribute {name!r}")
