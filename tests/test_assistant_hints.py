"""hint(): the right mistake for every wrong answer the checks know, a three-rung ladder, no solution code."""
import ast
import inspect
import json
from pathlib import Path

import pytest

from mdn_course.assistant import hints as hints_module
from mdn_course.loss import mdn_loss as reference_loss
from mdn_course.assistant.hints import HINTS_ENV, hint, reset_hints
from mdn_course.exercise import CHECKS, MISTAKES
from wrong_answers import EXPECTED as CHECKS_TABLE
from wrong_answers import correct as right
from wrong_answers import not_float, raises, unrecognised

ROOT = Path(__file__).resolve().parents[1]


def first_failure(expected):
    name = next(n for n in CHECKS if n in expected)
    return name, expected[name]


# One wrong answer per mistake the hint ladder is tested on: the first answer in the checks' table whose
# first failing check names that mistake, plus not_float and raises (tests/wrong_answers.py's EXTRA).
WRONG = {}
for _answer, _expected in CHECKS_TABLE:
    _mistake = first_failure(_expected)[1]
    if _mistake is not None:
        WRONG.setdefault(_mistake, _answer)
WRONG.update({"not_float": not_float, "raises": raises})
# Mistakes no wrong answer here produces as the first failure, and why.
NOT_WRITTEN = {
    "wrong_gradient": "a right value with wrong gradients needs a custom autograd function",
    "too_slow": "needs a deliberately slow loop; timing is never tested here",
}
wrong_sign, missing_half = WRONG["wrong_sign"], WRONG["missing_half"]


@pytest.fixture(autouse=True)
def fresh_ladder(monkeypatch):
    monkeypatch.delenv(HINTS_ENV, raising=False)
    reset_hints()
    yield
    reset_hints()


def test_every_known_mistake_has_a_wrong_answer_or_a_reason():
    assert set(MISTAKES) <= set(WRONG) | set(NOT_WRITTEN), sorted(set(MISTAKES) - set(WRONG) - set(NOT_WRITTEN))


@pytest.mark.parametrize("mistake", sorted(WRONG))
def test_hint_names_the_mistake_and_climbs_the_ladder(mistake):
    wrong = WRONG[mistake]
    m = MISTAKES[mistake]
    first, second, third, fourth = (hint(wrong) for _ in range(4))
    assert [h.level for h in (first, second, third, fourth)] == [1, 2, 3, 3]
    assert all(h.mistake == mistake for h in (first, second, third)), (first.mistake, first.text)
    assert m.nudge in first.text and m.name not in first.text.split("Hint 1 of 3:")[1]
    assert m.name in second.text and m.maths in second.text
    assert m.fix in third.text
    assert not any(h.passed for h in (first, second, third))


def test_a_new_mistake_starts_at_the_nudge_and_a_right_answer_resets():
    assert hint(wrong_sign).level == 1
    assert hint(wrong_sign).level == 2
    assert hint(missing_half).level == 1           # a different mistake: back to the nudge
    done = hint(right)
    assert done.passed and done.level == 0 and "pass" in done.text
    assert hint(missing_half).level == 1           # the ladder was reset


def test_a_chance_diagnosis_does_not_send_the_student_back_to_the_nudge():
    from mdn_course.assistant.hints import _next_level

    reset_hints()
    assert _next_level("single_gaussian", None) == 1
    assert _next_level("single_gaussian", "missing_half") == 2   # named by chance on one draw
    assert _next_level("single_gaussian", None) == 3
    assert _next_level("single_gaussian", "wrong_sign") == 1     # a different named mistake starts again
    assert _next_level("mixture", "wrong_sign") == 1             # so does a different first failing check
    reset_hints()


def test_a_mistake_the_checks_cannot_name_still_gets_three_rungs():
    rungs = [hint(unrecognised) for _ in range(3)]
    assert [h.level for h in rungs] == [1, 2, 3]
    assert all(h.mistake is None and h.check for h in rungs)
    assert "none of the usual mistakes" in rungs[0].text
    assert "logsumexp over k" in rungs[2].text


def test_hints_can_be_switched_off(monkeypatch):
    calls = []
    monkeypatch.setenv(HINTS_ENV, "off")
    monkeypatch.setattr(hints_module, "_first_failure", lambda fn: calls.append(fn))
    off = hint(wrong_sign)
    assert off.level == 0 and HINTS_ENV in off.text and calls == []
    monkeypatch.setenv(HINTS_ENV, "on")
    monkeypatch.undo()
    assert hint(wrong_sign).level == 1


def test_bad_argument_says_what_to_pass():
    with pytest.raises(TypeError, match=r"hint\(mdn_loss\)"):
        hint(42)
    with pytest.raises(TypeError, match=r"hint\(mdn_loss\)"):
        hint()                                        # no notebook namespace here


# ------------------------------------------------------------------ the solution never leaks

def _code_lines(source: str):
    for line in source.splitlines():
        code = line.split("#")[0].strip()
        if len(code) >= 12:
            yield code


def solution_lines():
    """Every substantial code line of the reference loss and of the solution's answer cell."""
    lines = set()
    loss_py = Path(inspect.getsourcefile(reference_loss)).read_text()   # where the library's mdn_loss is defined
    for node in ast.parse(loss_py).body:
        if isinstance(node, ast.FunctionDef) and node.name in ("mdn_loss", "mdn_nll_from_logs"):
            body = node.body[1:] if ast.get_docstring(node) else node.body
            for stmt in body:
                lines |= set(_code_lines(ast.get_source_segment(loss_py, stmt)))
    nb = json.loads((ROOT / "notebooks" / "03_exercise_mdn_loss.ipynb").read_text())
    answer = next("".join(c["source"]) for c in nb["cells"] if "answer" in c["metadata"].get("tags", []))
    solution = answer.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
    lines |= set(_code_lines(solution))
    return lines


def leaks(text: str, lines) -> list:
    flat = " ".join(text.split())
    return [line for line in lines if " ".join(line.split()) in flat]


def test_leak_detector_would_catch_a_solution_line():
    lines = solution_lines()
    assert len(lines) >= 8
    some = sorted(lines)[0]
    assert leaks(f"try this:\n    {some}\n", lines) == [some]


def test_no_hint_at_any_rung_contains_solution_code():
    lines = solution_lines()
    for mistake in MISTAKES.values():          # everything a ladder can quote about a named mistake
        assert leaks(" ".join((mistake.nudge, mistake.maths, mistake.fix)), lines) == [], mistake.id
    for name, wrong in [*WRONG.items(), ("unrecognised", unrecognised)]:
        if name == "trains_wrong_model":       # a training run per rung; its texts are checked just above
            continue
        reset_hints()
        for _ in range(3):
            h = hint(wrong)
            assert leaks(h.text, lines) == [], (name, h.text)
            assert leaks(h._repr_html_(), lines) == []


# ------------------------------------------------------------------ the checks' own table of wrong answers

@pytest.mark.parametrize("answer, expected", CHECKS_TABLE, ids=[a.__name__ for a, _ in CHECKS_TABLE])
def test_hint_names_what_the_first_failing_check_names(answer, expected):
    first, mistake = first_failure(expected)
    got = hint(answer)
    assert (got.check, got.mistake) == (first, mistake), got.text
    if mistake is not None:
        assert MISTAKES[mistake].nudge in got.text
    assert leaks(got.text, solution_lines()) == []
