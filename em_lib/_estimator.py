"""Estimator plumbing shared by GaussianMixture and GaussianHMM: parameters, validation, seeds.

scikit-learn is not a runtime dependency: ``get_params``/``set_params`` follow its protocol
here, and ``__sklearn_tags__`` imports scikit-learn lazily (only its own tooling calls it).
"""

from __future__ import annotations

import inspect
import numbers
import sys
import warnings

import numpy as np

from .numerics.starts import as_generator


class NotFittedError(ValueError, AttributeError):
    """Raised when a method needs a fitted estimator (scikit-learn's convention)."""


_SKLEARN_COMPATIBLE = {}


def _not_fitted_error_class():
    """Our NotFittedError, also a subclass of scikit-learn's when scikit-learn is loaded (its
    tooling checks for its own class); scikit-learn is never imported here."""
    return _sklearn_subclass("_SklearnNotFittedError", NotFittedError, "NotFittedError")


class NonNumericError(ValueError, TypeError):
    """X holds values that are not numbers (a ValueError; also a TypeError as numpy raises)."""


class ConvergenceWarning(UserWarning):
    """The best start did not meet the convergence tolerance within max_iter iterations.

    scikit-learn compatibility, decided when the warning is issued (scikit-learn is never
    imported by em_lib): em_lib warns with :func:`convergence_warning_class`, which is this
    class itself while ``sklearn.exceptions`` is not loaded, and otherwise a cached subclass
    of both this class and ``sklearn.exceptions.ConvergenceWarning``. A filter or
    ``pytest.warns`` on either class therefore catches em_lib's warning: one on
    scikit-learn's class needs ``sklearn.exceptions`` imported to name it, so it is loaded
    whenever such a filter exists. (Importing it at warn time instead would cost about a
    second per process for nothing; only a check made after the warning, with scikit-learn
    imported later, sees the plain class.)
    """


def _sklearn_subclass(name, ours, sklearn_name):
    """``ours`` itself, or a cached subclass of ``ours`` and the scikit-learn class
    ``sklearn.exceptions.<sklearn_name>`` when ``sklearn.exceptions`` is already loaded."""
    sk_exceptions = sys.modules.get("sklearn.exceptions")
    if sk_exceptions is None:
        return ours
    if name not in _SKLEARN_COMPATIBLE:
        _SKLEARN_COMPATIBLE[name] = type(
            ours.__name__,
            (ours, getattr(sk_exceptions, sklearn_name)),
            {"__module__": __name__, "__qualname__": name, "__doc__": ours.__doc__},
        )
        globals()[name] = _SKLEARN_COMPATIBLE[name]  # picklable by its qualified name
    return _SKLEARN_COMPATIBLE[name]


def convergence_warning_class():
    """The class em_lib warns with when a fit did not converge (see
    :class:`ConvergenceWarning`)."""
    return _sklearn_subclass("_SklearnConvergenceWarning", ConvergenceWarning, "ConvergenceWarning")


class EstimatorMixin:
    """get_params / set_params / repr in the scikit-learn style."""

    _estimator_type = "density_estimator"

    @classmethod
    def _get_param_names(cls):
        signature = inspect.signature(cls.__init__)
        return sorted(
            name
            for name, p in signature.parameters.items()
            if name != "self" and p.kind != p.VAR_KEYWORD
        )

    def get_params(self, deep=True):
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        valid = self._get_param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(
                    f"invalid parameter {key!r} for {type(self).__name__}; valid: {valid}"
                )
            setattr(self, key, value)
        return self

    def __repr__(self):
        signature = inspect.signature(type(self).__init__)
        parts = []
        for name, param in signature.parameters.items():
            if name == "self":
                continue
            value = getattr(self, name)
            default = param.default
            same = value is default or (
                not isinstance(value, np.ndarray)
                and not isinstance(default, np.ndarray)
                and value == default
            )
            if not same:
                parts.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def __sklearn_is_fitted__(self):
        return hasattr(self, "n_features_in_")

    def __sklearn_tags__(self):
        from sklearn.utils import InputTags, Tags, TargetTags

        return Tags(
            estimator_type="density_estimator",
            target_tags=TargetTags(required=False),
            input_tags=InputTags(allow_nan=True),
        )

    def _check_fitted(self):
        if not self.__sklearn_is_fitted__():
            raise _not_fitted_error_class()(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )


make_rng = as_generator


def validate_X(
    X, *, name="X", allow_nan=True, min_samples=1, n_features=None, estimator_name="estimator"
):
    """Convert to a float64 2-D array and check it, with messages that name the problem."""
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(f"{name} is a sparse matrix; em_lib needs a dense array")
    if hasattr(X, "to_numpy") and not isinstance(X, np.ndarray):
        X = X.to_numpy()
    array = np.asarray(X)
    if np.iscomplexobj(array):
        raise ValueError(f"Complex data not supported: {name} has dtype {array.dtype}")
    if array.dtype.kind in "OUSV":
        try:
            array = array.astype(float)
        except (TypeError, ValueError) as err:
            raise NonNumericError(f"{name} contains non-numeric values ({err})") from None
    if array.ndim != 2:
        raise ValueError(
            f"Expected 2D array for {name}, got {array.ndim}D array instead (shape "
            f"{array.shape}). Reshape your data with X.reshape(-1, 1) for a single feature or "
            "X.reshape(1, -1) for a single sample"
        )
    if array.shape[0] < max(min_samples, 1):
        raise ValueError(
            f"Found array with {array.shape[0]} sample(s) (shape={array.shape}) while a "
            f"minimum of {max(min_samples, 1)} is required."
        )
    if array.shape[1] < 1:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={array.shape}) while a minimum of 1 is required."
        )
    try:
        array = np.array(array, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise NonNumericError(f"{name} contains non-numeric values ({err})") from None
    if np.isinf(array).any():
        row, col = np.argwhere(np.isinf(array))[0]
        raise ValueError(f"{name} contains infinity (first at row {row}, column {col})")
    nan = np.isnan(array)
    if not allow_nan and nan.any():
        row, col = np.argwhere(nan)[0]
        raise ValueError(f"{name} contains NaN (first at row {row}, column {col})")
    if n_features is not None and array.shape[1] != n_features:
        raise ValueError(
            f"X has {array.shape[1]} features, but {estimator_name} is expecting "
            f"{n_features} features as input."
        )
    return array


def check_positive_int(value, name, minimum=1):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_nonnegative(value, name):
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value >= 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def check_mixture_data(X, estimator_name, stacklevel=4):
    """``X`` for a mixture fit: validated (:func:`validate_X`), no column without an observed
    value (ValueError naming them); rows with nothing observed are reported in a UserWarning.
    Returns ``(X, n_used)`` with ``n_used`` the rows with at least one observed value."""
    X = validate_X(X, estimator_name=estimator_name)
    nan = np.isnan(X)
    empty_columns = np.flatnonzero(nan.all(axis=0))
    if empty_columns.size:
        raise ValueError(
            f"column(s) {empty_columns.tolist()} of X have no observed value; drop them"
        )
    empty_rows = int(nan.all(axis=1).sum())
    if empty_rows:
        warnings.warn(
            f"{empty_rows} row(s) of X have no observed value; they contribute zero to the "
            "log-likelihood and are ignored by the fit",
            UserWarning,
            stacklevel=stacklevel,
        )
    return X, X.shape[0] - empty_rows
