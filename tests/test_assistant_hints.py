"""hint(): the right mistake for every wrong answer the checks know, a three-rung ladder, no solution code."""
import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mdn_course.assistant import hints as hints_module
from mdn_course.assistant.hints import HINTS_ENV, hint, reset_hints
from mdn_course.exercise.checks import MISTAKES

ROOT = Path(__file__).resolve().parents[1]
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def log_normal(z, mu, sigma):
    return -0.5 * ((z.unsqueeze(-1) - mu) / sigma) ** 2 - torch.log(sigma) - HALF_LOG_2PI


def right(pi, mu, sigma, z):
    return -torch.logsumexp(torch.log(pi) + log_normal(z, mu, sigma), dim=-1).sum(-1).mean()


# One deliberately wrong answer per mistake the checks can name (the key is the mistake's id).
def wrong_sign(pi, mu, sigma, z):
    return -right(pi, mu, sigma, z)


def mean_over_dims(pi, mu, sigma, z):
    return -torch.logsumexp(torch.log(pi) + log_normal(z, mu, sigma), dim=-1).mean()


def sum_over_batch(pi, mu, sigma, z):
    return -torch.logsumexp(torch.log(pi) + log_normal(z, mu, sigma), dim=-1).sum()


def missing_log_weights(pi, mu, sigma, z):
    return -torch.logsumexp(log_normal(z, mu, sigma), dim=-1).sum(-1).mean()


def weights_times_log(pi, mu, sigma, z):
    return -torch.logsumexp(pi * log_normal(z, mu, sigma), dim=-1).sum(-1).mean()


def sigma_as_variance(pi, mu, sigma, z):
    log_n = -0.5 * (z.unsqueeze(-1) - mu) ** 2 / sigma - 0.5 * torch.log(sigma) - HALF_LOG_2PI
    return -torch.logsumexp(torch.log(pi) + log_n, dim=-1).sum(-1).mean()


def missing_log_2pi(pi, mu, sigma, z):
    log_n = -0.5 * ((z.unsqueeze(-1) - mu) / sigma) ** 2 - torch.log(sigma)
    return -torch.logsumexp(torch.log(pi) + log_n, dim=-1).sum(-1).mean()


def missing_log_sigma(pi, mu, sigma, z):
    log_n = -0.5 * ((z.unsqueeze(-1) - mu) / sigma) ** 2 - HALF_LOG_2PI
    return -torch.logsumexp(torch.log(pi) + log_n, dim=-1).sum(-1).mean()


def missing_half(pi, mu, sigma, z):
    log_n = -((z.unsqueeze(-1) - mu) / sigma) ** 2 - torch.log(sigma) - HALF_LOG_2PI
    return -torch.logsumexp(torch.log(pi) + log_n, dim=-1).sum(-1).mean()


def max_over_k(pi, mu, sigma, z):
    return -(torch.log(pi) + log_normal(z, mu, sigma)).max(dim=-1).values.sum(-1).mean()


def logsumexp_over_dims(pi, mu, sigma, z):
    return -torch.logsumexp(torch.log(pi) + log_normal(z, mu, sigma), dim=-2).sum(-1).mean()


def mean_over_k(pi, mu, sigma, z):
    return -(log_normal(z, mu, sigma)).mean(-1).sum(-1).mean()


def naive_log_sum_exp(pi, mu, sigma, z):
    return -torch.log((pi * torch.exp(log_normal(z, mu, sigma))).sum(-1)).sum(-1).mean()


def in_place(pi, mu, sigma, z):
    mu -= z.unsqueeze(-1)
    return -torch.logsumexp(torch.log(pi) - 0.5 * (mu / sigma) ** 2 - torch.log(sigma) - HALF_LOG_2PI,
                            dim=-1).sum(-1).mean()


def returns_number(pi, mu, sigma, z):
    return right(pi, mu, sigma, z).item()


def detached(pi, mu, sigma, z):
    return right(pi, mu, sigma, z).detach()


def numpy_round_trip(pi, mu, sigma, z):
    p, m, s, t = (x.cpu().numpy() for x in (pi, mu, sigma, z))
    log_n = -0.5 * ((t[..., None] - m) / s) ** 2 - np.log(s) - HALF_LOG_2PI
    with np.errstate(divide="ignore"):
        return torch.as_tensor(-np.log((p * np.exp(log_n)).sum(-1)).sum(-1).mean())


def not_float(pi, mu, sigma, z):
    return right(pi, mu, sigma, z).round().long()


def not_scalar(pi, mu, sigma, z):
    return -torch.logsumexp(torch.log(pi) + log_normal(z, mu, sigma), dim=-1).sum(-1)


def not_tensor(pi, mu, sigma, z):
    return [right(pi, mu, sigma, z)]


def raises(pi, mu, sigma, z):
    return -torch.logsumexp(torch.log(pi) + (z - mu) / sigma, dim=-1).sum(-1).mean()


def not_implemented(pi, mu, sigma, z):
    raise NotImplementedError("write your loss here")


def uses_reference(pi, mu, sigma, z):
    from mdn_course import mdn_loss

    return mdn_loss(pi, mu, sigma, z)


WRONG = {f.__name__: f for f in (
    wrong_sign, mean_over_dims, sum_over_batch, missing_log_weights, weights_times_log, sigma_as_variance,
    missing_log_2pi, missing_log_sigma, missing_half, max_over_k, logsumexp_over_dims, mean_over_k,
    naive_log_sum_exp, in_place, returns_number, detached, numpy_round_trip, not_float, not_scalar, not_tensor,
    raises, not_implemented, uses_reference)}
# Mistakes that no short wrong function here produces reliably, and why.
NOT_WRITTEN = {
    "wrong_gradient": "a right value with wrong gradients needs a custom autograd function",
    "too_slow": "needs a deliberately slow loop; timing is never tested here",
    "trains_wrong_model": "reported only by the training check after every value check passed",
}


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
    if mistake not in MISTAKES:
        pytest.skip(f"the checks do not name {mistake!r}")
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


def unrecognised(pi, mu, sigma, z):
    return 1.7 * right(pi, mu, sigma, z) + 0.3


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
    loss_py = (ROOT / "mdn_course" / "loss.py").read_text()
    for node in ast.parse(loss_py).body:
        if isinstance(node, ast.FunctionDef):
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
    for wrong in [*WRONG.values(), unrecognised]:
        reset_hints()
        for _ in range(3):
            h = hint(wrong)
            assert leaks(h.text, lines) == [], (wrong.__name__, h.text)
            assert leaks(h._repr_html_(), lines) == []


# ------------------------------------------------------------------ the checks' own table of wrong answers

def _checks_table():
    """tests/test_checks.py's EXPECTED: (wrong answer, {failing check: mistake it names})."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_checks_tests", ROOT / "tests" / "test_checks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.EXPECTED


CHECKS_TABLE = _checks_table()


@pytest.mark.parametrize("answer, expected", CHECKS_TABLE, ids=[a.__name__ for a, _ in CHECKS_TABLE])
def test_hint_names_what_the_first_failing_check_names(answer, expected):
    from mdn_course.exercise.checks import CHECKS

    first = next(name for name in CHECKS if name in expected)
    got = hint(answer)
    assert (got.check, got.mistake) == (first, expected[first]), got.text
    if expected[first] is not None:
        assert MISTAKES[expected[first]].nudge in got.text
    assert leaks(got.text, solution_lines()) == []
