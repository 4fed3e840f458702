"""The one catalogue of wrong answers to the ``mdn_loss`` exercise, for every test that needs one.

Each wrong answer is one a student might write. ``EXPECTED`` pairs each with the checks it must
fail and the mistake each must name (``tests/test_checks.py`` proves it; the hint ladder's tests
and ``tests/test_grade.py`` use the same answers). ``EXTRA`` holds wrong answers the ladder is
tested on that the checks' table does not need.
"""
import importlib
import math

import numpy as np
import torch

from mdn_course.exercise import CHECKS

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
VALUE_CHECKS = ["single_gaussian", "mixture", "far_from_means", "leading_dims", "gradients"]


def log_normal(z, mu, sigma):
    return -0.5 * ((z.unsqueeze(-1) - mu) / sigma) ** 2 - torch.log(sigma) - HALF_LOG_2PI


def correct(pi, mu, sigma, z):
    return -torch.logsumexp(torch.log(pi) + log_normal(z, mu, sigma), dim=-1).sum(-1).mean()


# ---------------------------------------------------------------- wrong answers, one per mistake

def wrong_sign(pi, mu, sigma, z):
    return -correct(pi, mu, sigma, z)


def mean_over_dims(pi, mu, sigma, z):
    return -torch.logsumexp(torch.log(pi) + log_normal(z, mu, sigma), dim=-1).mean()


def sum_over_batch(pi, mu, sigma, z):
    return -torch.logsumexp(torch.log(pi) + log_normal(z, mu, sigma), dim=-1).sum()


def missing_log_weights(pi, mu, sigma, z):
    return -torch.logsumexp(log_normal(z, mu, sigma), dim=-1).sum(-1).mean()


def weights_times_log(pi, mu, sigma, z):
    return -torch.logsumexp(pi * log_normal(z, mu, sigma), dim=-1).sum(-1).mean()


def weighted_log_densities(pi, mu, sigma, z):  # sum_k pi_k log N_k: the other way to multiply in log space
    return -(pi * log_normal(z, mu, sigma)).sum(-1).sum(-1).mean()


def sigma_as_variance(pi, mu, sigma, z):
    return correct(pi, mu, torch.sqrt(sigma), z)


def missing_log_2pi(pi, mu, sigma, z):
    return -torch.logsumexp(torch.log(pi) + log_normal(z, mu, sigma) + HALF_LOG_2PI, dim=-1).sum(-1).mean()


def missing_log_sigma(pi, mu, sigma, z):
    return -torch.logsumexp(torch.log(pi) - 0.5 * ((z.unsqueeze(-1) - mu) / sigma) ** 2 - HALF_LOG_2PI,
                            dim=-1).sum(-1).mean()


def missing_half(pi, mu, sigma, z):
    log_n = -((z.unsqueeze(-1) - mu) / sigma) ** 2 - torch.log(sigma) - HALF_LOG_2PI
    return -torch.logsumexp(torch.log(pi) + log_n, dim=-1).sum(-1).mean()


def max_over_k(pi, mu, sigma, z):
    return -(torch.log(pi) + log_normal(z, mu, sigma)).max(dim=-1).values.sum(-1).mean()


def logsumexp_over_dims(pi, mu, sigma, z):
    return -torch.logsumexp(torch.log(pi) + log_normal(z, mu, sigma), dim=-2).sum(-1).mean()


def mean_over_k(pi, mu, sigma, z):
    return -log_normal(z, mu, sigma).mean(-1).sum(-1).mean()


def naive_log_sum_exp(pi, mu, sigma, z):
    return -torch.log((pi * torch.exp(log_normal(z, mu, sigma))).sum(-1)).sum(-1).mean()


def in_place_mu(pi, mu, sigma, z):
    mu -= z.unsqueeze(-1)
    return -torch.logsumexp(torch.log(pi) - 0.5 * (mu / sigma) ** 2 - torch.log(sigma) - HALF_LOG_2PI,
                            dim=-1).sum(-1).mean()


def in_place_unsqueeze(pi, mu, sigma, z):
    z.unsqueeze_(-1)
    return -torch.logsumexp(torch.log(pi) - 0.5 * ((z - mu) / sigma) ** 2 - torch.log(sigma) - HALF_LOG_2PI,
                            dim=-1).sum(-1).mean()


def returns_float(pi, mu, sigma, z):
    return correct(pi, mu, sigma, z).item()


def numpy_round_trip(pi, mu, sigma, z):
    p, m, s, t = (x.numpy() for x in (pi, mu, sigma, z))
    a = np.log(p) - 0.5 * ((t[..., None] - m) / s) ** 2 - np.log(s) - HALF_LOG_2PI
    top = a.max(-1, keepdims=True)
    return torch.tensor(-(top[..., 0] + np.log(np.exp(a - top).sum(-1))).sum(-1).mean())


def detached_numpy(pi, mu, sigma, z):
    return numpy_round_trip(pi.detach(), mu.detach(), sigma.detach(), z)


def not_reduced(pi, mu, sigma, z):
    return -torch.logsumexp(torch.log(pi) + log_normal(z, mu, sigma), dim=-1).sum(-1)


def scaled(pi, mu, sigma, z):  # a correct loss times a constant: trains the same model
    return 1.05 * correct(pi, mu, sigma, z)


def detached_pi(pi, mu, sigma, z):  # right value, but the weights never learn
    return correct(pi.detach(), mu, sigma, z)


def detached_mu(pi, mu, sigma, z):  # right value, but the means never learn
    return correct(pi, mu.detach(), sigma, z)


def uses_reference(pi, mu, sigma, z):
    from mdn_course import mdn_loss
    return mdn_loss(pi, mu, sigma, z)


def uses_reference_dynamically(pi, mu, sigma, z):
    module = importlib.import_module("mdn_" + "course.loss")
    return getattr(module, "mdn_" + "loss")(pi, mu, sigma, z)


def uses_reference_quietly(pi, mu, sigma, z):
    try:
        return uses_reference(pi, mu, sigma, z)
    except Exception:  # noqa: BLE001 - hides the tripwire, and is still caught
        return correct(pi, mu, sigma, z)


class AlwaysEqual:
    def __eq__(self, other): return True
    def __lt__(self, other): return True
    def __gt__(self, other): return True
    def __float__(self): return 0.0


def cheating_object(pi, mu, sigma, z):
    return AlwaysEqual()


def not_implemented(pi, mu, sigma, z):
    raise NotImplementedError("write the loss")


EVERY_VALUE_CHECK = ["single_gaussian", "mixture", "far_from_means", "leading_dims", "gradients", "learns"]
K_CHECKS = ["mixture", "far_from_means", "leading_dims", "gradients", "learns"]   # K = 1 hides these mistakes


def fails(names, mistake):
    return {n: mistake for n in names}


EXPECTED = [
    (wrong_sign, fails(EVERY_VALUE_CHECK, "wrong_sign")),
    (mean_over_dims, fails(EVERY_VALUE_CHECK, "mean_over_dims")),
    (sum_over_batch, fails(EVERY_VALUE_CHECK, "sum_over_batch")),
    (missing_log_weights, fails(K_CHECKS, "missing_log_weights")),
    (weights_times_log, fails(K_CHECKS, "weights_times_log")),
    (weighted_log_densities, fails(K_CHECKS, "weights_times_log")),
    (sigma_as_variance, fails(EVERY_VALUE_CHECK, "sigma_as_variance")),
    # a constant shift has the right gradients, so only the value checks (and learns' curve) see it
    (missing_log_2pi, fails(["single_gaussian", "mixture", "far_from_means", "leading_dims", "learns"],
                            "missing_log_2pi")),
    (missing_log_sigma, fails(EVERY_VALUE_CHECK, "missing_log_sigma")),
    (missing_half, fails(EVERY_VALUE_CHECK, "missing_half")),
    (max_over_k, fails(K_CHECKS, "max_over_k")),
    (logsumexp_over_dims, fails(EVERY_VALUE_CHECK, "logsumexp_over_dims")),
    (mean_over_k, fails(K_CHECKS, "mean_over_k")),
    (naive_log_sum_exp, fails(["far_from_means"], "naive_log_sum_exp")),
    (in_place_mu, fails(CHECKS, "in_place")),
    (in_place_unsqueeze, fails(CHECKS, "in_place")),
    (returns_float, fails(CHECKS, "returns_number")),
    (numpy_round_trip, fails(["returns_scalar", "gradients", "learns"], "numpy_round_trip")),
    (detached_numpy, fails(["returns_scalar", "gradients", "learns"], "detached")),
    (not_reduced, fails(CHECKS, "not_scalar")),
    (cheating_object, fails(CHECKS, "not_tensor")),
    (not_implemented, fails(CHECKS, "not_implemented")),
    (uses_reference, fails(CHECKS, "uses_reference")),
    (uses_reference_dynamically, fails(CHECKS, "uses_reference")),
    (uses_reference_quietly, fails(CHECKS, "uses_reference")),
    (scaled, fails(["single_gaussian", "mixture", "far_from_means", "leading_dims", "gradients", "learns"], None)),
    (detached_pi, {"learns": "trains_wrong_model"}),
    (detached_mu, {"returns_scalar": "detached", "gradients": "detached", "learns": "trains_wrong_model"}),
]


# ---------------------------------------------------------------- more wrong answers, for the hint ladder

def not_float(pi, mu, sigma, z):
    return correct(pi, mu, sigma, z).round().long()


def raises(pi, mu, sigma, z):
    return -torch.logsumexp(torch.log(pi) + (z - mu) / sigma, dim=-1).sum(-1).mean()   # (..., D) - (..., D, K)


def unrecognised(pi, mu, sigma, z):
    # 5 nats off everywhere: far from every known mistake on every draw. (1.7 * loss + 0.3 was not:
    # it sits within 0.05 nats of a missing 1/2 on many inputs, so the checks sometimes name that.)
    return correct(pi, mu, sigma, z) + 5.0


EXTRA = {"not_float": not_float, "raises": raises, "unrecognised": unrecognised}
