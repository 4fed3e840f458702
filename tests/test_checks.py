"""The exercise checks pass a correct answer and fail each common mistake with its named diagnosis.

Every wrong answer below is one a student might write; each test says which checks it must
fail and which mistake each must name. The checks are driven through the same protocol the
grader uses (judges that only see the oracle's answers).
"""
import importlib
import math

import numpy as np
import pytest
import torch

from mdn_course.exercise import checks as C
from mdn_course.exercise.checks import (CHECKS, MISTAKES, CheckFailed, CheckResult, drive, local_oracle,
                                        run_all_checks, run_check, separation, survivors)
from mdn_course.exercise.oracle import Answer, Request

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


ALL = {c: None for c in CHECKS}
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


def failures(answer, seed=0):
    results = {n: drive(n, local_oracle(answer), torch.Generator().manual_seed(seed)) for n in CHECKS}
    return {n: r.mistake for n, r in results.items() if not r.passed}, results


def test_correct_answer_passes_every_check(capsys):
    for name in CHECKS:
        run_check(name, correct)
    out = capsys.readouterr().out
    assert out.count("✓") == len(CHECKS)
    assert "two branches at the fork" in out


@pytest.mark.parametrize("answer, expected", EXPECTED, ids=[a.__name__ for a, _ in EXPECTED])
def test_each_mistake_fails_the_checks_it_should_with_its_name(answer, expected):
    got, results = failures(answer)
    assert got == expected
    for name, result in results.items():
        if not result.passed:
            assert result.message and "Traceback" not in result.message
            if result.mistake is not None:
                assert result.mistake in MISTAKES


@pytest.mark.parametrize("answer", [mean_over_dims, missing_log_sigma, max_over_k, mean_over_k, sigma_as_variance])
def test_diagnoses_do_not_depend_on_the_seed(answer):
    expected = dict(EXPECTED)[answer]
    for seed in (1, 2, 3):
        got, _ = failures(answer, seed)
        assert got == expected


def truth_oracle(request: Request) -> Answer:
    """Answers with the float64 truth: what a perfect answer would report."""
    t = {n: a.detach().cpu().double().requires_grad_(n in request.grad_of) for n, a in request.args.items()}
    value = C._nll64(t["pi"], t["mu"], t["sigma"], t["z_next"])
    grads = {}
    if request.grad_of:
        value.backward()
        grads = {n: t[n].grad for n in request.grad_of}
    return Answer("tensor", "Tensor", [], "float64", True, float(value.detach()), grads)


@pytest.mark.parametrize("name", VALUE_CHECKS)
def test_every_pair_of_mistakes_is_told_apart_on_every_request(name):
    """On each check's inputs, for many seeds, any two mistakes differ by more than 2 * DIAGNOSIS_TOL nats,
    and each differs from the truth by that much beyond the pass tolerance (or not at all), among the
    mistakes an answer can still have at that request."""
    for seed in range(40):
        margins, among = [], [None]

        def oracle(request):
            margins.append(separation(request.args, among[0]))
            if name in ("far_from_means", "leading_dims"):   # these judges narrow the suspects after each request
                among[0] = survivors(request.args, among[0])
            return truth_oracle(request)

        assert drive(name, oracle, torch.Generator().manual_seed(seed)).passed
        assert margins and min(margins) > 0, (name, seed, margins)


def test_the_tolerance_is_absolute_and_matches_what_mistakes_return():
    """A value DIAGNOSIS_TOL nats from a mistake's is named; the same answer shifted by 3 * DIAGNOSIS_TOL is not."""
    g = torch.Generator().manual_seed(5)
    args = C._pick(lambda: C._mixture_args(g, lead=(256,), d=3, k=5))
    truth = float(C._nll64(args["pi"], args["mu"], args["sigma"], args["z_next"]))
    value = C._wrong_values(args["pi"], args["mu"], args["sigma"], args["z_next"])["missing_log_sigma"][0]
    assert C._diagnose(value + 0.9 * C.DIAGNOSIS_TOL, truth, args)[1] == "missing_log_sigma"
    assert C._diagnose(value + 3 * C.DIAGNOSIS_TOL, truth, args)[1] is None


def test_in_place_change_gives_a_course_message_and_the_truth_is_not_corrupted():
    with pytest.raises(CheckFailed, match=r"changed its input z_next in place") as info:
        run_check("mixture", in_place_unsqueeze)
    assert info.value.mistake == "in_place" and info.value.check == "mixture"
    with pytest.raises(CheckFailed, match=r"changed its input mu in place"):
        run_check("single_gaussian", in_place_mu)


def test_messages_name_the_mistake_in_course_words():
    with pytest.raises(CheckFailed, match=r"^\[mixture\] .*Likely mistake: missing log-weights") as info:
        run_check("mixture", missing_log_weights)
    assert info.value.mistake == "missing_log_weights"
    with pytest.raises(CheckFailed, match=r"did you call \.item\(\)"):
        run_check("returns_scalar", returns_float)
    with pytest.raises(CheckFailed, match=r"scalar \(0-dimensional\)"):
        run_check("returns_scalar", not_reduced)
    with pytest.raises(CheckFailed, match=r"not implemented yet"):
        run_check("returns_scalar", not_implemented)
    with pytest.raises(CheckFailed, match=r"NumPy"):
        run_check("learns", numpy_round_trip)
    with pytest.raises(CheckFailed, match=r"underflows to 0"):
        run_check("far_from_means", naive_log_sum_exp)
    with pytest.raises(CheckFailed, match=r"must be a function"):
        run_check("mixture", 3.0)


def test_a_failed_check_prints_a_cross_line(capsys):
    with pytest.raises(CheckFailed):
        run_check("mixture", wrong_sign)
    assert capsys.readouterr().out.startswith("✗ mixture (2 pt)")


def test_render_traceback_shows_only_the_course_message():
    exc = CheckFailed("[mixture] mdn_loss returned 1 where 2 was expected.", check="mixture", mistake="wrong_sign")
    assert exc._render_traceback_() == [
        "\x1b[0;31mCheckFailed\x1b[0m: [mixture] mdn_loss returned 1 where 2 was expected."]


def test_in_a_notebook_a_failed_check_shows_the_message_without_package_frames():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import torch\nfrom mdn_course.exercise import run_check\n"
        "def mdn_loss(pi, mu, sigma, z):\n    z.unsqueeze_(-1)\n"
        "    return -torch.logsumexp(torch.log(pi) - 0.5 * ((z - mu) / sigma) ** 2, -1).sum(-1).mean()"),
        nbformat.v4.new_code_cell('run_check("mixture", mdn_loss)')]
    nbclient.NotebookClient(nb, timeout=120, allow_errors=True).execute()
    outputs = nb.cells[1].outputs
    assert outputs[0]["text"].startswith("✗ mixture")
    error = outputs[-1]
    assert error["output_type"] == "error" and error["ename"] == "CheckFailed"
    assert "changed its input z_next in place" in error["evalue"]
    assert len(error["traceback"]) == 1
    assert not any(word in "".join(error["traceback"]) for word in ("checks.py", "File ", "Traceback", "site-packages"))


def test_run_all_checks_returns_results():
    results = run_all_checks(max_over_k, names=["single_gaussian", "mixture"])
    assert set(results) == {"single_gaussian", "mixture"}
    assert all(isinstance(r, CheckResult) for r in results.values())
    assert results["single_gaussian"].passed and not results["mixture"].passed
    assert results["mixture"].mistake == "max_over_k" and results["mixture"].points == 2


def test_reference_is_restored_after_a_check():
    from mdn_course import mdn_loss
    run_all_checks(uses_reference, names=["mixture"])
    pi = torch.full((2, 1, 1), 1.0)
    assert torch.isfinite(mdn_loss(pi, torch.zeros(2, 1, 1), torch.ones(2, 1, 1), torch.zeros(2, 1)))


def test_unknown_check_name():
    with pytest.raises(KeyError, match="unknown check"):
        run_check("nope", correct)
    with pytest.raises(KeyError, match="unknown check"):
        drive("nope", truth_oracle)


def test_drive_turns_an_unusable_answer_into_a_result_not_a_traceback():
    def bad_grads(request):
        answer = truth_oracle(request)
        answer.grads = {n: torch.zeros(3) for n in request.grad_of}
        return answer
    result = drive("learns", bad_grads, torch.Generator().manual_seed(0))
    assert not result.passed and "wrong shape" in result.message and result.mistake == "wrong_gradient"


def test_learns_warns_about_a_slow_answer_and_stops_a_very_slow_one():
    def slow(seconds):
        def oracle(request):
            answer = truth_oracle(request)
            answer.seconds = seconds
            return answer
        return oracle
    result = drive("learns", slow(0.05), torch.Generator().manual_seed(0))
    assert result.passed and "Warning" in result.detail and "50 ms a call" in result.detail
    result = drive("learns", slow(1.0), torch.Generator().manual_seed(0))
    assert not result.passed and result.mistake == "too_slow"


def test_learns_fails_a_loss_that_reports_the_right_value_but_trains_one_gaussian():
    """The value is the truth, the gradients those of a mean over components: the fork collapses."""
    def unimodal(request):
        answer = truth_oracle(request)
        t = {n: a.detach().cpu().double().requires_grad_(n in request.grad_of) for n, a in request.args.items()}
        log_n = -0.5 * ((t["z_next"].unsqueeze(-1) - t["mu"]) / t["sigma"]) ** 2 - torch.log(t["sigma"])
        (-log_n.mean(-1).sum(-1).mean()).backward()
        answer.grads = {n: t[n].grad if t[n].grad is not None else torch.zeros_like(t[n]) for n in request.grad_of}
        return answer
    result = drive("learns", unimodal, torch.Generator().manual_seed(0))
    assert not result.passed and result.mistake == "trains_wrong_model"


def test_every_mistake_is_described():
    for key, mistake in MISTAKES.items():
        assert mistake.id == key and mistake.name and mistake.nudge and mistake.maths and mistake.fix
    g = torch.Generator().manual_seed(0)
    args = C._mixture_args(g, lead=(4, 2), d=3, k=2)
    assert set(C._wrong_values(args["pi"], args["mu"], args["sigma"], args["z_next"])) <= set(MISTAKES)


def test_points_are_unchanged():
    assert {n: c.points for n, c in CHECKS.items()} == {
        "returns_scalar": 1, "single_gaussian": 2, "mixture": 2, "far_from_means": 2, "leading_dims": 1,
        "gradients": 1, "learns": 1}


def test_an_oracle_failure_is_the_callers_not_the_students():
    class Gone(Exception):
        pass

    def gone(request):
        raise Gone("the sandbox died")
    with pytest.raises(Gone):
        drive("mixture", gone)


def test_a_non_finite_value_is_blamed_on_underflow_only_where_the_naive_route_underflows():
    def nan_answer(pi, mu, sigma, z):
        return correct(pi, mu, sigma, z) + torch.log(-sigma).sum()
    result = drive("mixture", local_oracle(nan_answer), torch.Generator().manual_seed(0))
    assert not result.passed and result.mistake is None and "log of a negative number" in result.message
