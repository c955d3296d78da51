"""em_lib: batched, reproducible Expectation-Maximization.

Gaussian mixtures (full / diag / spherical / tied covariances, exact missing-data EM) and
Gaussian hidden Markov models, with every initialisation fitted at once in one batched run.
"""

__version__ = "0.1.0"
