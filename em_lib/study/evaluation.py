"""What the workflow measures of a fitted parameter set, batched over starts.

Every measure is taken on the damaged data ``X_obs`` (the data's own missing values plus the
synthetic mask), the same data for every method, so methods are comparable:

* ``log_likelihood``, ``bic``, ``aic``, ``icl`` (:mod:`em_lib.numerics.criteria`);
* with ground truth (simulated data): ``ari`` of the MAP labels, and the parameter-recovery
  errors after label matching (:func:`em_lib.metrics.parameter_errors`);
* without ground truth, what can be measured: ``imputation_rmse`` on the synthetically masked
  entries (their values are known), and the agreement (``ari``) with labels given by the data
  (a table's ``label_column``);
* ``imputation_rmse`` uses the one posterior-mean imputation
  (:func:`em_lib.numerics.gaussian.impute_posterior_means`).
"""

from __future__ import annotations

import numpy as np

from em_lib.metrics import adjusted_rand_index, parameter_errors
from em_lib.numerics.covariance import any_to_full
from em_lib.numerics.criteria import (
    classification_entropy,
    hmm_n_parameters,
    information_criteria,
    n_parameters,
    normalise_log,
)
from em_lib.numerics.gaussian import impute_posterior_means, log_gaussian_density

RECOVERY = ("weights_abs_error", "means_rmse", "covariances_rel_frobenius", "transmat_abs_error")
MEASURES = ("log_likelihood", "bic", "aic", "icl", "ari", *RECOVERY, "imputation_rmse")


def mixture_posteriors(X_obs, weights, means, covariances, covariance_type):
    """Per-start log-likelihood (I,) and log posteriors (I, n, K) of a mixture on ``X_obs``."""
    with np.errstate(divide="ignore"):
        log_joint = log_gaussian_density(X_obs, means, covariances, covariance_type)
        log_joint += np.log(weights)[:, None, :]
    log_norm, log_post = normalise_log(log_joint, axis=-1)
    empty = np.isnan(X_obs).all(axis=1)
    log_norm[:, empty] = 0.0
    return log_norm.sum(-1), log_post


def hmm_posteriors(X_obs, lengths, startprob, transmat, means, covariances, covariance_type):
    """Per-start log-likelihood (I,) and log state posteriors (I, n, K) of an HMM."""
    from em_lib.numerics import hmm

    log_b = hmm.emission_log_prob(X_obs, means, covariances, covariance_type)
    result = hmm.forward_backward(
        log_b, startprob, transmat, lengths if lengths is not None else [X_obs.shape[0]]
    )
    with np.errstate(divide="ignore"):
        log_post = np.log(result.posteriors)
    return result.log_likelihood.sum(-1), log_post


def evaluate(
    X_obs, mask, X_true, truth, params, covariance_type, *, lengths=None, is_hmm=False
) -> dict[str, np.ndarray]:
    """Measures of every parameter set in ``params`` (init dimension first), each (I,).

    ``params``: ``weights`` (mixture) or ``startprob`` / ``transmat`` (HMM), ``means``,
    ``covariances`` (typed). ``mask`` (n, d) marks the synthetically masked entries (their
    true values are ``X_true``); ``truth`` may hold ``labels``, ``true_weights``,
    ``true_means``, ``true_covariances``, ``true_transmat``.
    """
    means = params["means"]
    n_init, n_comp, d = means.shape
    if is_hmm:
        log_lik, log_post = hmm_posteriors(
            X_obs,
            lengths,
            params["startprob"],
            params["transmat"],
            means,
            params["covariances"],
            covariance_type,
        )
        n_params = hmm_n_parameters(n_comp, d, covariance_type)
    else:
        log_lik, log_post = mixture_posteriors(
            X_obs, params["weights"], means, params["covariances"], covariance_type
        )
        n_params = n_parameters(n_comp, d, covariance_type)
    used = ~np.isnan(X_obs).all(axis=1)
    out = {"log_likelihood": log_lik}
    out.update(
        information_criteria(
            log_lik, n_params, int(used.sum()), classification_entropy(log_post[:, used])
        )
    )
    nan = np.full(n_init, np.nan)
    labels = log_post.argmax(-1)
    out["ari"] = (
        np.array([adjusted_rand_index(truth["labels"], row) for row in labels])
        if "labels" in truth
        else nan.copy()
    )
    for key in RECOVERY:
        out[key] = nan.copy()
    full = any_to_full(params["covariances"], covariance_type, n_comp, d)
    if "true_means" in truth:
        posteriors = np.exp(log_post)
        weights = params["weights"] if "weights" in params else posteriors[:, used].mean(1)
        for i in range(n_init):
            errors = parameter_errors(
                truth["true_weights"],
                truth["true_means"],
                truth["true_covariances"],
                weights[i],
                means[i],
                full[i],
            )
            for key in RECOVERY[:3]:
                out[key][i] = errors[key]
            if is_hmm and "true_transmat" in truth and n_comp == truth["true_transmat"].shape[0]:
                order = errors["permutation"]
                estimate = params["transmat"][i][np.ix_(order, order)]
                out["transmat_abs_error"][i] = np.abs(estimate - truth["true_transmat"]).mean()
    if mask.any():
        filled = impute_posterior_means(X_obs, np.exp(log_post), means, full)
        out["imputation_rmse"] = np.sqrt(((filled[:, mask] - X_true[mask]) ** 2).mean(-1))
    else:
        out["imputation_rmse"] = nan.copy()
    return out
