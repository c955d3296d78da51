"""Data for EM experiments: synthetic ground truth, bundled real data, missingness.

Public API
----------
Synthetic data (:mod:`em_lib.data.synthetic`)
    :func:`make_gaussian_mixture`, :func:`make_hmm_sequences`, :func:`as_generator`,
    :class:`SyntheticMixture`, :class:`SyntheticHMM`.
Real data (:mod:`em_lib.data.datasets`)
    :func:`load_dataset`, :func:`available_datasets`, :func:`load_table`,
    :class:`Dataset`; ``airquality`` has real missing values of its own.
Missing-data mechanisms (:mod:`em_lib.data.missingness`)
    :func:`make_missing`, :class:`MissingResult`, :data:`MECHANISMS`; imposed on top of
    the data's own missing values (``NaN``), which are kept.
Images (:mod:`em_lib.data.image`)
    :func:`make_synthetic_image`, :func:`read_image`, :func:`check_image`,
    :func:`downsample`, :class:`SyntheticImage`.
"""

from em_lib.data.datasets import Dataset, available_datasets, load_dataset, load_table
from em_lib.data.image import (
    SyntheticImage,
    check_image,
    downsample,
    make_synthetic_image,
    read_image,
)
from em_lib.data.missingness import MECHANISMS, MissingResult, make_missing
from em_lib.data.synthetic import (
    COVARIANCE_TYPES,
    SyntheticHMM,
    SyntheticMixture,
    as_generator,
    make_gaussian_mixture,
    make_hmm_sequences,
)

__all__ = [
    "COVARIANCE_TYPES",
    "MECHANISMS",
    "Dataset",
    "MissingResult",
    "SyntheticHMM",
    "SyntheticImage",
    "SyntheticMixture",
    "as_generator",
    "available_datasets",
    "check_image",
    "downsample",
    "load_dataset",
    "load_table",
    "make_gaussian_mixture",
    "make_hmm_sequences",
    "make_missing",
    "make_synthetic_image",
    "read_image",
]
