"""``hint(mdn_loss)``, ``hint(training_step)``: an exercise's checks, turned into a hint ladder that never shows code.

Each call runs the diagnostic checks of the exercise the function answers (the one named like
it: :data:`mdn_course.exercise.exercises.EXERCISES`) on the student's current function and
looks at the first failing check (in the checks' order; the slow ones, a training run, only
once every fast one passes). The checks name the mistake they recognise (a key of the
exercise's mistakes); the ladder climbs one rung per call on the same mistake:

1. a nudge: a question that points at the problem without naming it;
2. the mistake by name, and the line of maths it breaks;
3. the corrected formula, in maths.

A different mistake starts again at rung 1; a passing function resets the ladder. The hint
text comes from the mistake's ``nudge``, ``maths`` and ``fix`` (maths, not code), so the
reference solution cannot leak through it. Check names are unique across exercises, so a
ladder never mixes the two.

Instructors switch hints off for an assessed run with one setting: the environment variable
``MDN_COURSE_HINTS=off`` (also ``0``, ``false`` or ``no``), set before Jupyter starts, e.g.
``MDN_COURSE_HINTS=off jupyter lab``, or in the grading environment. ``hint`` then runs no
check and says that hints are off.
"""
from __future__ import annotations

import html
import os
from dataclasses import dataclass, replace
from typing import Callable, Dict, List, Optional

from ..exercise.notebook import exercise_of, local_oracle, run_all_checks
from ..exercise.registry import Exercise, drive
from ..kernel import notebook_variable

__all__ = ["Hint", "hint", "hints_enabled", "reset_hints", "student_function", "HINTS_ENV"]

HINTS_ENV = "MDN_COURSE_HINTS"
_OFF = {"off", "0", "false", "no"}
CONFIRMATIONS = 4              # fresh draws that must name the same mistake before the ladder uses it
_LADDER: Dict[str, object] = {}   # "check", "mistake", "level": the failure the last rung was about
#: The notebook names looked up when hint() is called without a function: the training step first, because
#: its notebook also imports the package's mdn_loss (which is right, and no answer of the student's).
LOOKUP_ORDER = ("training_step", "mdn_loss")


@dataclass(frozen=True)
class Hint:
    """One rung of the ladder: ``level`` 1-3 (0 when there is nothing to hint or hints are off)."""
    text: str
    level: int = 0
    mistake: Optional[str] = None
    check: Optional[str] = None
    passed: bool = False

    def __str__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return "<div class='mdn-hint'>" + "".join(f"<p>{html.escape(line)}</p>"
                                                  for line in self.text.split("\n") if line) + "</div>"

    def __repr__(self) -> str:
        return f"Hint(level={self.level}, mistake={self.mistake!r}, check={self.check!r})\n{self.text}"


def hints_enabled() -> bool:
    """False when the instructor has set ``MDN_COURSE_HINTS=off``."""
    return os.environ.get(HINTS_ENV, "on").strip().lower() not in _OFF


def reset_hints() -> None:
    """Start every ladder again at the nudge."""
    _LADDER.clear()


def student_function() -> Optional[Callable]:
    """The notebook's answer: its ``training_step`` if it defines one, else its ``mdn_loss`` (None outside IPython)."""
    return next((fn for fn in map(notebook_variable, LOOKUP_ORDER) if callable(fn)), None)


def _first_failure(answer_fn: Callable, exercise: Exercise):
    checks = exercise.checks
    fast = [n for n, c in checks.items() if not c.slow]
    results = run_all_checks(answer_fn, names=fast, exercise=exercise.function)
    failed = [r for r in results.values() if not r.passed]
    if not failed:
        slow = [n for n, c in checks.items() if c.slow]
        results.update(run_all_checks(answer_fn, names=slow, exercise=exercise.function) if slow else {})
        failed = [r for r in results.values() if not r.passed]
    # The first failing check in the checks' own order (cheapest, most basic first), not the first
    # one that names a mistake: a later check's diagnosis of a wrong value can vary with its random
    # inputs, and the ladder must not jump between mistakes from one call to the next.
    if not failed:
        return None, len(results)
    return _confirmed(failed[0], answer_fn, exercise), len(results)


def _confirmed(failure, answer_fn: Callable, exercise: Exercise):
    """The failure, with its mistake kept only if the check names it again on fresh inputs every time.

    The checks diagnose a wrong value by the known mistake whose value it is closest to; an answer
    that is wrong in an unknown way can land near one by chance on some inputs. A real mistake is
    named on every draw, so asking again (a few milliseconds) keeps the ladder on one mistake.
    """
    check = exercise.checks[failure.name]
    if failure.mistake is None or check.slow:   # a training run: too slow to repeat
        return failure
    for _ in range(CONFIRMATIONS):
        oracle = local_oracle(answer_fn, exercise.references, exercise.function)
        if drive(check, oracle).mistake != failure.mistake:
            return replace(failure, mistake=None)
    return failure


def _next_level(check: str, mistake: Optional[str]) -> int:
    """Climb one rung while the same check fails for the same reason; start again at the nudge otherwise.

    The same reason means the same named mistake, or an unnamed one on either side: an answer that
    is wrong in a way no known mistake explains can sit near one on some draws (``1.7 * loss + 0.3``
    looks like a missing 1/2 on many inputs), and that must not send the student back to the nudge.
    Two different named mistakes, or a different first failing check, do start again.
    """
    last_mistake = _LADDER.get("mistake")
    same = (_LADDER.get("check") == check
            and (mistake == last_mistake or mistake is None or last_mistake is None))
    level = min(int(_LADDER.get("level", 0)) + 1, 3) if same else 1
    _LADDER.update(check=check, mistake=mistake if mistake is not None else last_mistake if same else None,
                   level=level)
    return level


def hint(answer_fn: Optional[Callable] = None, exercise: Optional[str] = None) -> Hint:
    """Run the checks on ``answer_fn`` (default: the notebook's ``training_step``, else its ``mdn_loss``) and give
    the next hint. The exercise is the one named like the function (``exercise`` says it otherwise)."""
    if not hints_enabled():
        return Hint(f"Hints are switched off for this session ({HINTS_ENV}=off, set by your instructor). "
                    "The check cells still say which check fails.")
    if answer_fn is None:
        answer_fn = student_function()
        if answer_fn is None:
            raise TypeError("hint() needs your function: run your answer cell, then call hint(mdn_loss) "
                            "(or hint(training_step) in the training-step exercise)")
    if not callable(answer_fn):
        raise TypeError(f"hint() takes your function, got {type(answer_fn).__name__}; call hint(mdn_loss) "
                        "(or hint(training_step) in the training-step exercise)")
    chosen = exercise_of(answer_fn, exercise)
    failure, n_checks = _first_failure(answer_fn, chosen)
    if failure is None:
        reset_hints()
        return Hint(f"All {n_checks} checks pass: your {chosen.function} is right. Nothing to hint; {chosen.after}!",
                    passed=True)
    level = _next_level(failure.name, failure.mistake)
    head = f"Check `{failure.name}` fails ({chosen.checks[failure.name].description})."
    mistake = chosen.mistakes.get(failure.mistake) if failure.mistake else None
    lines: List[str] = [head, f"Hint {level} of 3:"]
    if mistake is not None:
        lines.append({1: mistake.nudge,
                      2: f"The mistake: {mistake.name}. The maths it breaks: {mistake.maths}",
                      3: f"The corrected formula: {mistake.fix}"}[level])
    else:
        lines.append({1: "Your result matches none of the usual mistakes. Re-read the check's description "
                         "above and compare each step of your function with the maths above the answer cell.",
                      2: f"What the check saw: {failure.message}",
                      3: f"Step by step, in maths: {chosen.maths}"}[level])
    lines.append(f"Call hint({chosen.function}) again for the next step." if level < 3 else
                 "That is the last hint for this mistake: fix your answer cell, run it, then the checks.")
    return Hint("\n".join(lines), level, failure.mistake, failure.name)
