"""The exercise checks pass a correct answer and fail each common mistake with its named diagnosis.

Every wrong answer (tests/wrong_answers.py) is one a student might write; each test says which
checks it must fail and which mistake each must name. The checks are driven through the same
protocol the grader uses (judges that only see the oracle's answers).
"""
import pytest
import torch

from mdn_course.exercise import (CHECKS, EXERCISES, MDN_LOSS, MISTAKES, CheckFailed, CheckResult, drive, find_check,
                                 local_oracle, run_all_checks, run_check)
from mdn_course.exercise import checks as C
from mdn_course.exercise import mistakes as M
from mdn_course.exercise.answer_cell import check_cell_pattern
from mdn_course.exercise.registry import check_cell_source
from mdn_course.sandboxed.oracle import Answer, Request
from wrong_answers import (EXPECTED, VALUE_CHECKS, correct, in_place_mu, in_place_unsqueeze, max_over_k,
                           mean_over_dims, mean_over_k, missing_log_sigma, missing_log_weights, naive_log_sum_exp,
                           not_implemented, not_reduced, numpy_round_trip, returns_float, sigma_as_variance,
                           uses_reference, wrong_sign)


def failures(answer, seed=0):
    results = {n: drive(c, local_oracle(answer), torch.Generator().manual_seed(seed)) for n, c in CHECKS.items()}
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
    """Answers with the float64 truth (computed here, not by the judges' own code): what a perfect answer reports."""
    t = {n: a.detach().cpu().double().requires_grad_(n in request.grad_of) for n, a in request.args.items()}
    value = correct(t["pi"], t["mu"], t["sigma"], t["z_next"])
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
            margins.append(M.separation(request.args, among[0]))
            if name in ("far_from_means", "leading_dims"):   # these judges narrow the suspects after each request
                among[0] = M.survivors(request.args, among[0])
            return truth_oracle(request)

        assert drive(CHECKS[name], oracle, torch.Generator().manual_seed(seed)).passed
        assert margins and min(margins) > 0, (name, seed, margins)


def test_the_tolerance_is_absolute_and_matches_what_mistakes_return():
    """A value DIAGNOSIS_TOL nats from a mistake's is named; the same answer shifted by 3 * DIAGNOSIS_TOL is not."""
    g = torch.Generator().manual_seed(5)
    args = C.pick(lambda: C.mixture_args(g, lead=(256,), d=3, k=5))
    truth = float(correct(args["pi"].double(), args["mu"].double(), args["sigma"].double(), args["z_next"].double()))
    value = M.wrong_values(args)["missing_log_sigma"][0]
    assert M.diagnose(value + 0.9 * M.DIAGNOSIS_TOL, truth, args)[1] == "missing_log_sigma"
    assert M.diagnose(value + 3 * M.DIAGNOSIS_TOL, truth, args)[1] is None


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
        CHECKS["nope"]


def test_drive_turns_an_unusable_answer_into_a_result_not_a_traceback():
    def bad_grads(request):
        answer = truth_oracle(request)
        answer.grads = {n: torch.zeros(3) for n in request.grad_of}
        return answer
    result = drive(CHECKS["learns"], bad_grads, torch.Generator().manual_seed(0))
    assert not result.passed and "wrong shape" in result.message and result.mistake == "wrong_gradient"


def test_learns_warns_about_a_slow_answer_and_stops_a_very_slow_one():
    def slow(seconds):
        def oracle(request):
            answer = truth_oracle(request)
            answer.seconds = seconds
            return answer
        return oracle
    result = drive(CHECKS["learns"], slow(0.05), torch.Generator().manual_seed(0))
    assert result.passed and "Warning" in result.detail and "50 ms a call" in result.detail
    result = drive(CHECKS["learns"], slow(1.0), torch.Generator().manual_seed(0))
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
    result = drive(CHECKS["learns"], unimodal, torch.Generator().manual_seed(0))
    assert not result.passed and result.mistake == "trains_wrong_model"


def test_every_mistake_is_described():
    for key, mistake in MISTAKES.items():
        assert mistake.id == key and mistake.name and mistake.nudge and mistake.maths and mistake.fix
    g = torch.Generator().manual_seed(0)
    args = C.mixture_args(g, lead=(4, 2), d=3, k=2)
    assert set(M.wrong_values(args)) <= set(MISTAKES)


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
        drive(CHECKS["mixture"], gone)


def test_a_non_finite_value_is_blamed_on_underflow_only_where_the_naive_route_underflows():
    def nan_answer(pi, mu, sigma, z):
        return correct(pi, mu, sigma, z) + torch.log(-sigma).sum()
    result = drive(CHECKS["mixture"], local_oracle(nan_answer), torch.Generator().manual_seed(0))
    assert not result.passed and result.mistake is None and "log of a negative number" in result.message


# ---------------------------------------------------------------- the registry

def test_each_check_is_declared_once_where_its_judge_is():
    assert [c.judge.__name__ for c in CHECKS.values()] == list(CHECKS)
    assert all(c.name == n and c.note and c.description for n, c in CHECKS.items())
    assert [n for n, c in CHECKS.items() if c.slow] == ["learns"]
    with pytest.raises(ValueError, match="declared twice"):
        MDN_LOSS.check(points=1, description="again")(C.mixture)
    assert list(CHECKS) == ["returns_scalar", "single_gaussian", "mixture", "far_from_means", "leading_dims",
                            "gradients", "learns"]


def test_checks_are_found_by_name_across_exercises():
    assert find_check("mixture") == (MDN_LOSS, CHECKS["mixture"])
    assert EXERCISES["mdn_loss"] is MDN_LOSS and MDN_LOSS.max_points == 10
    with pytest.raises(KeyError, match="unknown check 'nope'; the checks are returns_scalar"):
        find_check("nope")


def test_a_check_cell_is_written_and_recognised_the_same_way():
    for name in CHECKS:
        source = check_cell_source(name, MDN_LOSS.function)
        assert check_cell_pattern(MDN_LOSS.function).match(source).group("name") == name
    assert not check_cell_pattern("other_fn").match(check_cell_source("mixture", "mdn_loss"))
