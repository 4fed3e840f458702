"""The training-step checks pass a right step and fail each common mistake with its named diagnosis.

Every wrong step (tests/wrong_steps.py) is one a student might write; each says which checks it must
fail and which mistake each must name. The checks are driven through the same protocol the grader
uses: judges that only see what the oracle reports (the loss returned, the parameters after the step).
"""
import math

import pytest
import torch

from mdn_course.exercise import (EXERCISES, TRAINING_STEP, CheckFailed, check_summary, drive, explain_check,
                                 find_check, local_oracle, run_check)
from mdn_course.exercise import step_checks as S
from mdn_course.exercise import step_mistakes as M
from mdn_course.sandboxed.oracle import Answer, Request
from mdn_course.sandboxed.step_oracle import TrainingStepCaller
import wrong_steps as W

CHECKS = TRAINING_STEP.checks


def verdicts(answer, seed=0, names=None):
    """{check: mistake} of the failing checks, running the checks in order from a fresh state, as a sandbox does."""
    W.forget_states()
    oracle_answer = W.step(answer)
    results = {n: drive(CHECKS[n], local_oracle(oracle_answer, (), "training_step"), torch.Generator().manual_seed(seed))
               for n in (names or CHECKS)}
    return {n: r.mistake for n, r in results.items() if not r.passed}, results


def test_a_right_step_passes_every_check(capsys):
    step = W.step(W.correct)
    for name in CHECKS:
        run_check(name, step)
    out = capsys.readouterr().out
    assert out.count("✓") == len(CHECKS) and "two branches at the fork" in out


@pytest.mark.parametrize("answer, expected", W.EXPECTED, ids=[a.__name__ for a, _ in W.EXPECTED])
def test_each_mistake_fails_the_checks_it_should_with_its_name(answer, expected):
    got, results = verdicts(answer)
    assert got == expected
    for result in results.values():
        if not result.passed:
            assert result.message and "Traceback" not in result.message
            assert result.mistake in M.MISTAKES


@pytest.mark.parametrize("answer", [W.both_shifted, W.next_action, W.no_zero_grad, W.clip_after_step, W.clip_by_value,
                                    W.clip_to_one, W.manual_update, W.returns_loss_after_step])
def test_diagnoses_do_not_depend_on_the_seed(answer):
    expected = dict(W.EXPECTED)[answer]
    fast = [n for n, c in CHECKS.items() if not c.slow]
    for seed in (1, 2):
        got, _ = verdicts(answer, seed, fast)
        assert got == {n: m for n, m in expected.items() if n in fast}, seed


def _margins(name, seed):
    seen = []
    original = S._margin

    def spy(*args, **kwargs):
        seen.append(original(*args, **kwargs))
        return seen[-1]
    S._margin = spy
    try:
        assert drive(CHECKS[name], local_oracle(W.step(W.correct), (), "training_step"),
                     torch.Generator().manual_seed(seed)).passed
    finally:
        S._margin = original
    return seen


@pytest.mark.parametrize("name", ["aligned", "updates", "clips", "fresh_gradients", "independent_batches"])
def test_every_check_finds_inputs_where_every_two_mistakes_are_told_apart(name):
    """On many seeds, the inputs a check keeps separate every value diagnosis by more than 2 * VALUE_TOL nats and
    every update diagnosis by more than 2 * UPDATE_TOL of the update (and keep clear of hand-coded learning rates)."""
    for seed in range(12):
        margins = _margins(name, seed)
        assert margins[-1] > 0, (name, seed, margins)


def test_the_right_recipe_is_a_real_training_step():
    """simulate(RIGHT) is what torch does: the update of an actual SGD step with clipping, on a real model."""
    z, a = S.batch(torch.Generator().manual_seed(0), 8, 5)
    params = S.trained_params()
    setup = M.Setup(lr=0.1, clip_norm=0.5)
    model = S.MDNRNN(hidden_dim=setup.hidden_dim, n_components=setup.n_components).double()
    M.load_flat(model, params.double())
    optimizer = torch.optim.SGD(model.parameters(), lr=setup.lr)
    loss = W.correct(model, optimizer, z.double(), a.double(), setup.clip_norm)
    outcome = M.simulate(M.RIGHT, setup, [M.Step(params, z, a)])
    assert outcome.value == pytest.approx(loss, abs=1e-9)
    assert torch.allclose(M.flat_parameters(model) - params.double(), outcome.delta, atol=1e-12)
    assert float(torch.linalg.vector_norm(outcome.grads)) == pytest.approx(0.5, rel=1e-5)   # clipped


def test_an_update_that_is_sgd_with_a_hand_coded_rate_ignores_the_optimiser():
    truth = M.Outcome(-1.0, torch.tensor([0.3, -0.4]), torch.tensor([-3.0, 4.0]))
    assert M.diagnose_update(truth.delta * (0.01 / 0.1), None, truth, {}, lr=0.1) == "ignores_optimizer"
    assert M.diagnose_update(truth.delta * 0.37, None, truth, {}, lr=0.1) == "ignores_optimizer"   # any other length
    fresh_adam = -1e-3 * torch.sign(truth.grads)
    assert M.diagnose_update(fresh_adam + torch.tensor([0.0, 1e-3]), None, truth, {}, lr=0.1) is None
    assert M.diagnose_update(-1e-3 * torch.sign(torch.tensor([-3.0, 2.0])), None,
                             M.Outcome(-1.0, torch.tensor([0.3, -0.2]), torch.tensor([-3.0, 2.0])), {},
                             lr=0.1) == "new_optimizer_each_step"


def test_a_step_that_cleared_its_gradients_at_the_end_and_did_not_clip_is_named_not_clipped():
    g = torch.tensor([3.0, 4.0])
    truth = M.Outcome(-1.0, -0.1 * g / 5, g / 5)
    candidates = {"not_clipped": [M.Outcome(-1.0, -0.1 * g, g)], "clip_after_step": [M.Outcome(-1.0, -0.1 * g, g / 5)]}
    assert M.diagnose_update(-0.1 * g, None, truth, candidates, lr=0.137) == "not_clipped"
    assert M.diagnose_update(-0.1 * g, g / 5, truth, candidates, lr=0.137) == "clip_after_step"
    assert M.diagnose_update(-0.1 * g, g, truth, candidates, lr=0.137) == "not_clipped"


def test_the_caller_reports_what_the_step_did():
    """The oracle builds the model the request describes, keeps it between requests unless fresh, loads the
    parameters, and reports the returned loss, the parameters after, the gradients left and inputs changed."""
    params = S.trained_params()
    z, a = S.batch(torch.Generator().manual_seed(1), 4, 3)
    setup = M.Setup(lr=0.1, clip_norm=NO_CLIP)
    caller = TrainingStepCaller()
    answer = caller(W.correct, Request({"params": params, "z": z, "a": a}, options=setup.options(True)))
    assert answer.kind == "other" and answer.type_name == "float" and math.isfinite(answer.value)
    assert answer.tensors["params_after"].shape == params.shape and answer.tensors["grads_present"].all()
    truth = M.simulate(M.RIGHT, setup, [M.Step(params, z, a)])
    assert torch.allclose(answer.tensors["params_after"].double() - params.double(), truth.delta, atol=1e-6)
    model = caller.model
    caller(W.correct, Request({"params": params, "z": z, "a": a}, options=setup.options(False)))
    assert caller.model is model                                  # kept: gradients and optimiser state carry over
    caller(W.correct, Request({"params": params, "z": z, "a": a}, options=setup.options(True)))
    assert caller.model is not model
    changed = caller(W.in_place_batch, Request({"params": params, "z": z, "a": a}, options=setup.options(True)))
    assert changed.mutated == ["a"] and torch.equal(a, S.batch(torch.Generator().manual_seed(1), 4, 3)[1])
    with pytest.raises(Exception, match="flat vector"):
        caller(W.correct, Request({"params": params[:-1], "z": z, "a": a}, options=setup.options(True)))


NO_CLIP = S.NO_CLIP


def test_trains_warns_about_a_slow_step_and_stops_a_very_slow_one():
    def slow(seconds):
        call = TrainingStepCaller()

        def oracle(request):
            answer = call(W.correct, request)
            answer.seconds = seconds
            return answer
        return oracle
    result = drive(CHECKS["trains"], slow(0.08), torch.Generator().manual_seed(0))
    assert result.passed and "Warning" in result.detail and "80 ms a call" in result.detail
    result = drive(CHECKS["trains"], slow(1.0), torch.Generator().manual_seed(0))
    assert not result.passed and result.mistake == "too_slow"


def test_a_step_that_lies_about_its_parameters_is_judged_on_them():
    """The facts are the oracle's; the judge computes everything from them: parameters from elsewhere fail."""
    def oracle(request):
        answer = TrainingStepCaller()(W.correct, request)
        answer.tensors["params_after"] = torch.zeros_like(answer.tensors["params_after"])
        return answer
    result = drive(CHECKS["updates"], oracle, torch.Generator().manual_seed(0))
    assert not result.passed and "moved the parameters by" in result.message


def test_messages_name_the_mistake_in_course_words():
    with pytest.raises(CheckFailed, match=r"^\[aligned\] .*Likely mistake: targets not shifted") as info:
        run_check("aligned", W.step(W.unshifted_targets))
    assert info.value.mistake == "unshifted_targets"
    with pytest.raises(CheckFailed, match=r"fresh state") as info:
        W.forget_states()
        run_check("returns_loss", W.step(W.carried_state))
        run_check("aligned", W.step(W.carried_state))
    with pytest.raises(CheckFailed, match=r"not implemented yet"):
        run_check("returns_loss", W.step(W.not_implemented))
    with pytest.raises(CheckFailed, match=r"must be a function"):
        run_check("updates", 3.0)


def test_every_mistake_is_described_and_proven_or_excused():
    for key, mistake in M.MISTAKES.items():
        assert mistake.id == key and mistake.name and mistake.nudge and mistake.maths and mistake.fix
    named = {m for _, expected in W.EXPECTED for m in expected.values()}
    excused = {"raises": "any other exception: its message is quoted as it is",
               "too_slow": "needs a step slower than 300 ms; timing is tested with a reported time instead"}
    assert set(M.MISTAKES) == named | set(excused), sorted(set(M.MISTAKES) - named - set(excused))
    assert set(M.VARIANTS) <= set(M.MISTAKES)


def test_the_exercise_is_registered_with_its_checks_once():
    assert EXERCISES["training_step"] is TRAINING_STEP and TRAINING_STEP.max_points == 10
    assert [c.judge.__name__ for c in CHECKS.values()] == list(CHECKS)
    assert list(CHECKS) == ["returns_loss", "aligned", "updates", "clips", "fresh_gradients", "independent_batches",
                            "trains"]
    assert [n for n, c in CHECKS.items() if c.slow] == ["trains"]
    assert find_check("clips") == (TRAINING_STEP, CHECKS["clips"])
    assert all(c.note and c.description for c in CHECKS.values())


def test_the_summary_shows_every_verdict_without_raising(capsys):
    W.forget_states()
    check_summary(W.step(W.no_zero_grad))
    out = capsys.readouterr().out
    assert out.startswith("training_step: 6 of 7 checks pass, 9 / 10 points")
    assert "✗ fresh_gradients" in out and "likely mistake: gradients accumulated" in out
    assert "hint(training_step)" in out
    check_summary(3.0, exercise="training_step")   # not even a function: still a table, no exception
    assert "0 of 7 checks pass" in capsys.readouterr().out


def test_explain_check_prints_a_failure_the_same_way_every_time(capsys):
    explain_check("fresh_gradients", W.step(W.no_zero_grad), seed=0)
    first = capsys.readouterr().out
    explain_check("fresh_gradients", W.step(W.no_zero_grad), seed=0)
    assert capsys.readouterr().out == first
    assert first.startswith("✗ fresh_gradients (1 pt)") and "CheckFailed: [fresh_gradients]" in first
    assert "Likely mistake: gradients accumulated" in first


def test_a_state_kept_from_another_batch_size_is_named_from_the_models_error():
    answer = Answer("raised", error="RuntimeError: Expected hidden[0] size (1, 50, 32), got [1, 6, 32]")
    assert S._raised(answer).mistake == "carried_state"
    answer = Answer("raised", error="ValueError: z and a must share batch and time sizes, got z (2, 6, 2)")
    assert S._raised(answer).mistake == "sequence_not_split"


def test_no_truth_of_the_step_reaches_student_code():
    """The trust boundary for the training step: the sandbox is given four files of mdn_course/sandboxed/ (the
    model and loss a step uses, the caller, the protocol), none of which holds the judge's step, its mistakes,
    tolerances or points; and every request of every check carries only the inputs of a step (parameters to
    start from, a batch) and the optimiser's settings, never an expected loss or update."""
    from pathlib import Path
    from mdn_course.sandboxed import oracle as O
    files = O.sandbox_files("training_step")
    assert files == ("oracle.py", "server.py", "mdn_rnn.py", "step_oracle.py")
    text = "".join(Path(O.__file__).with_name(f).read_text() for f in files)
    for judge_name in ("simulate", "step_mistakes", "step_checks", "diagnose", "VALUE_TOL", "UPDATE_TOL",
                       "trained_params", "points", "truth"):
        assert judge_name not in text, judge_name
    seen = []
    caller = TrainingStepCaller()

    def recording(request):
        seen.append(request)
        return caller(W.correct, request)
    for name in [n for n, c in CHECKS.items() if not c.slow]:
        assert drive(CHECKS[name], recording, torch.Generator().manual_seed(0)).passed
    assert seen
    for request in seen:
        assert set(request.args) == {"params", "z", "a"} and request.grad_of == ()
        assert set(request.options) == {"hidden_dim", "n_components", "optimizer", "lr", "clip_norm", "fresh"}
