"""em_lib: batched, reproducible Expectation-Maximization.

Gaussian mixtures (full / diag / spherical / tied covariances, exact missing-data EM) and
Gaussian hidden Markov models, with every initialisation fitted at once in one batched run.

The library is :mod:`em_lib` (estimators), :mod:`em_lib.numerics`, :mod:`em_lib.data` and
:mod:`em_lib.metrics`; the workflow's study layer is :mod:`em_lib.study`, which the library
never imports. Importing ``em_lib`` itself is cheap: the estimators (numpy, scipy, numba) load
on first use, and no plotting, xarray or snakemake module is ever loaded by the library.
"""

__version__ = "0.1.0"

__all__ = [
    "GaussianHMM",
    "GaussianMixture",
    "MixtureFit",
    "bootstrap",
    "bootstrap_lrt",
    "fit_mixture_em",
    "select_hmm",
    "select_mixture",
    "__version__",
]

_LAZY = {
    "GaussianMixture": "em_lib.mixture",
    "GaussianHMM": "em_lib.hmm",
    "MixtureFit": "em_lib.numerics.mixture_em",
    "bootstrap": "em_lib.uncertainty",
    "bootstrap_lrt": "em_lib.uncertainty",
    "fit_mixture_em": "em_lib.numerics.mixture_em",
    "select_mixture": "em_lib.selection",
    "select_hmm": "em_lib.selection",
}


def __getattr__(name):
    # estimators load numpy, scipy and numba kernels: only when asked for
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'em_lib' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
