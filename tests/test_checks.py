"""The exercise checks pass a correct answer and fail each common mistake with its diagnosis."""
import importlib
import math

import pytest
import torch

from mdn_course.exercise.checks import CHECKS, CheckFailed, run_all_checks, run_check

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def log_normal(z, mu, sigma):
    return -0.5 * ((z.unsqueeze(-1) - mu) / sigma) ** 2 - torch.log(sigma) - HALF_LOG_2PI


def correct(pi, mu, sigma, z):
    return -torch.logsumexp(torch.log(pi) + log_normal(z, mu, sigma), dim=-1).sum(-1).mean()


def wrong_sign(pi, mu, sigma, z):
    return -correct(pi, mu, sigma, z)


def mean_over_dims(pi, mu, sigma, z):
    return -torch.logsumexp(torch.log(pi) + log_normal(z, mu, sigma), dim=-1).mean()


def missing_log_weights(pi, mu, sigma, z):
    return -torch.logsumexp(log_normal(z, mu, sigma), dim=-1).sum(-1).mean()


def naive_log_sum_exp(pi, mu, sigma, z):
    return -torch.log((pi * torch.exp(log_normal(z, mu, sigma))).sum(-1)).sum(-1).mean()


def variance_as_std(pi, mu, sigma, z):
    return correct(pi, mu, torch.sqrt(sigma), z)


def returns_float(pi, mu, sigma, z):
    return correct(pi, mu, sigma, z).item()


def not_reduced(pi, mu, sigma, z):
    return -torch.logsumexp(torch.log(pi) + log_normal(z, mu, sigma), dim=-1).sum(-1)


def uses_reference(pi, mu, sigma, z):
    from mdn_course import mdn_loss
    return mdn_loss(pi, mu, sigma, z)


def uses_reference_dynamically(pi, mu, sigma, z):
    module = importlib.import_module("mdn_" + "course.loss")
    return getattr(module, "mdn_" + "loss")(pi, mu, sigma, z)


class AlwaysEqual:
    def __eq__(self, other): return True
    def __lt__(self, other): return True
    def __gt__(self, other): return True
    def __le__(self, other): return True
    def __ge__(self, other): return True
    def __float__(self): return 0.0


def cheating_object(pi, mu, sigma, z):
    return AlwaysEqual()


def not_implemented(pi, mu, sigma, z):
    raise NotImplementedError("write the loss")


def test_correct_answer_passes_every_check(capsys):
    for name in CHECKS:
        run_check(name, correct)
    out = capsys.readouterr().out
    assert out.count("✓") == len(CHECKS)


@pytest.mark.parametrize("answer, failing, words", [
    (wrong_sign, "single_gaussian", "wrong sign"),
    (mean_over_dims, "mixture", "mean over latent dimensions"),
    (missing_log_weights, "mixture", "missing log-weights"),
    (naive_log_sum_exp, "far_from_means", "logsumexp"),
    (variance_as_std, "mixture", "sigma used as a variance"),
    (returns_float, "returns_scalar", "did you call .item()"),
    (not_reduced, "returns_scalar", "scalar (0-dimensional)"),
    (uses_reference, "mixture", "reference implementation"),
    (uses_reference_dynamically, "single_gaussian", "reference implementation"),
    (cheating_object, "mixture", "must return a torch.Tensor"),
    (not_implemented, "returns_scalar", "not implemented yet"),
])
def test_each_mistake_fails_with_its_diagnosis(answer, failing, words):
    with pytest.raises(CheckFailed, match=words.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        run_check(failing, answer)


@pytest.mark.parametrize("answer", [wrong_sign, mean_over_dims, missing_log_weights, naive_log_sum_exp,
                                    variance_as_std, returns_float, not_reduced, uses_reference, cheating_object])
def test_no_wrong_answer_passes_all_checks(answer):
    results = run_all_checks(answer, names=[n for n in CHECKS if n != "learns"])
    assert any(message is not None for message in results.values())


def test_reference_is_restored_after_a_check():
    from mdn_course import mdn_loss
    run_all_checks(uses_reference, names=["mixture"])
    pi = torch.full((2, 1, 1), 1.0)
    assert torch.isfinite(mdn_loss(pi, torch.zeros(2, 1, 1), torch.ones(2, 1, 1), torch.zeros(2, 1)))


def test_unknown_check_name():
    with pytest.raises(KeyError, match="unknown check"):
        run_check("nope", correct)
