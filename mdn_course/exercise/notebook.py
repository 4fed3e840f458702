"""The exercises' front end in the notebook: ``run_check("mixture", mdn_loss)`` and :func:`run_all_checks`.

The check cells call :func:`run_check`; ``hint()`` and lesson 4 call :func:`run_all_checks`.
Both play the check's judge (:func:`~.registry.drive`) against :func:`local_oracle`: the
student's function called in this process, on copies of the judge's inputs
(:func:`mdn_course.sandboxed.oracle.evaluate`), with the package's own answers booby-trapped
while it runs (:class:`reference_guard`), so an answer that calls ``mdn_course.mdn_loss``
scores nothing however it reached it. (The instructor's grader plays the same judges against a
sandbox instead: :mod:`mdn_course.grading`.)
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

from ..sandboxed.oracle import Answer, Request, evaluate
from .exercises import EXERCISES, find_check
from .registry import CheckFailed, CheckResult, Exercise, Oracle, drive

__all__ = ["run_check", "run_all_checks", "local_oracle", "reference_guard", "ReferenceUsed"]

_GUARD_STATE = {"calls": 0}


class ReferenceUsed(RuntimeError):
    """Raised inside a student's function when it calls the package's reference answer."""


def _tripwire(*args, **kwargs):
    # This code object replaces the reference functions' own while a check runs, so it executes with
    # *their* globals (mdn_course.loss), not this module's: it must import this module to reach the
    # counter and the exception. (Not an import circle: the import happens only while a check runs.)
    import mdn_course.exercise.notebook as guard

    guard._GUARD_STATE["calls"] += 1
    raise guard.ReferenceUsed("the package's reference mdn_loss was called")


def _all_references() -> List[Callable]:
    return [f for exercise in EXERCISES.values() for f in exercise.references]


class reference_guard:
    """Context manager: while active, any call of the package's reference answers raises ``ReferenceUsed``.

    It swaps the *code* of the reference functions (default: every exercise's), so the reference
    is caught however it was reached (``from mdn_course import mdn_loss``, ``importlib``,
    ``getattr`` on the module, a copy of the function object made earlier).
    """

    def __init__(self, functions: Optional[Sequence[Callable]] = None):
        self._functions = list(functions) if functions is not None else _all_references()

    def __enter__(self):
        self._codes = [f.__code__ for f in self._functions]
        self.calls_before = _GUARD_STATE["calls"]
        for f in self._functions:
            f.__code__ = _tripwire.__code__
        return self

    @property
    def tripped(self) -> bool:
        return _GUARD_STATE["calls"] > self.calls_before

    def __exit__(self, *exc):
        for f, code in zip(self._functions, self._codes):
            f.__code__ = code
        return False


def local_oracle(answer_fn: Callable, references: Optional[Sequence[Callable]] = None) -> Oracle:
    """An oracle that calls ``answer_fn`` in this process, with the package's reference answers booby-trapped.

    A call that reached a reference (even one that caught the error and fell back to
    something else) is reported as raising ``ReferenceUsed``.
    """
    def oracle(request: Request) -> Answer:
        with reference_guard(references) as guard:
            answer = evaluate(answer_fn, request)
        if guard.tripped:
            return Answer("raised", error="ReferenceUsed: the package's reference mdn_loss was called",
                          mutated=answer.mutated, seconds=answer.seconds)
        return answer
    return oracle


def _not_callable(answer_fn, exercise: Exercise) -> Optional[CheckFailed]:
    if callable(answer_fn):
        return None
    return CheckFailed(f"{exercise.function} must be a function, got {type(answer_fn).__name__}: define it with "
                       f"def {exercise.function}({', '.join(exercise.args)}): in the answer cell",
                       mistake="not_implemented")


def _run(exercise: Exercise, name: str, answer_fn: Callable) -> CheckResult:
    check = exercise.checks[name]
    problem = _not_callable(answer_fn, exercise)
    if problem:
        return CheckResult(name, check.points, False, check.description, str(problem), problem.mistake)
    return drive(check, local_oracle(answer_fn, exercise.references))


def run_check(name: str, answer_fn: Callable) -> None:
    """Run one check in the notebook: print a one-line verdict, and raise ``CheckFailed`` if it fails.

    The exception's message is ``[name] <course message>``; in a notebook it shows without
    the checker's frames.
    """
    exercise, check = find_check(name)
    result = _run(exercise, name, answer_fn)
    if result.passed:
        print(f"✓ {name} ({check.points} pt): {result.detail}")
        return
    print(f"✗ {name} ({check.points} pt): {check.description}")
    raise CheckFailed(f"[{name}] {result.message}", check=name, mistake=result.mistake) from None


def run_all_checks(answer_fn: Callable, names: Optional[Sequence[str]] = None,
                   exercise: str = "mdn_loss") -> Dict[str, CheckResult]:
    """Run every check of ``exercise`` (or those in ``names``) with the local oracle; return {name: CheckResult}."""
    chosen = EXERCISES[exercise]
    return {name: _run(chosen, name, answer_fn) for name in (names or list(chosen.checks))}
