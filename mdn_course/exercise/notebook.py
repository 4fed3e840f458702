"""The exercises' front end in the notebook: ``run_check("mixture", mdn_loss)``, :func:`check_summary` and
:func:`run_all_checks`.

The check cells call :func:`run_check` (it raises on a failure, for nbval and nbgrader); the
summary cell above them calls :func:`check_summary` (a table of every verdict, never raising, so
*Run All* shows everything that is wrong at once); the stored example of a failing check calls
:func:`explain_check`; ``hint()`` and lesson 4 call :func:`run_all_checks`. All of them play the
check's judge (:func:`~.registry.drive`) against :func:`local_oracle`: the student's function
called in this process by the exercise's caller (:func:`mdn_course.sandboxed.oracle.make_caller`:
a loss on copies of the judge's inputs, a training step on a model built from the judge's
parameters), with the package's own answers booby-trapped while it runs
(:class:`reference_guard`), so an answer that calls ``mdn_course.mdn_loss`` in the loss
exercise scores nothing however it reached it. (The instructor's grader plays the same judges
against a sandbox instead: :mod:`mdn_course.grading`.)
"""
from __future__ import annotations

import textwrap
from typing import Callable, Dict, List, Optional, Sequence

import torch

from ..device import get_device
from ..sandboxed.oracle import Answer, Request, make_caller
from .exercises import EXERCISES, find_check
from .registry import CheckFailed, CheckResult, Exercise, Oracle, drive

__all__ = ["run_check", "run_all_checks", "check_summary", "explain_check", "local_oracle", "reference_guard",
           "ReferenceUsed", "exercise_of"]

_GUARD_STATE = {"calls": 0}


class ReferenceUsed(RuntimeError):
    """Raised inside a student's function when it calls the package's reference answer."""


def _tripwire(*args, **kwargs):
    # This code object replaces the reference functions' own while a check runs, so it executes with
    # *their* globals (mdn_course.loss), not this module's: it must import this module to reach the
    # counter and the exception. (Not an import circle: the import happens only while a check runs.)
    import mdn_course.exercise.notebook as guard

    guard._GUARD_STATE["calls"] += 1
    raise guard.ReferenceUsed("the package's reference answer was called")


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


def local_oracle(answer_fn: Callable, references: Optional[Sequence[Callable]] = None,
                 function: str = "mdn_loss") -> Oracle:
    """An oracle that calls ``answer_fn`` in this process, the way the exercise of ``function`` calls it,
    with the package's reference answers booby-trapped (default: every exercise's).

    A call that reached a reference (even one that caught the error and fell back to
    something else) is reported as raising ``ReferenceUsed``. The caller lives as long as the
    oracle: a training step's model and optimiser carry over from one request to the next.
    """
    call = make_caller(function, get_device())

    def oracle(request: Request) -> Answer:
        with reference_guard(references) as guard:
            answer = call(answer_fn, request)
        if guard.tripped:
            return Answer("raised", error="ReferenceUsed: the package's reference mdn_loss was called",
                          mutated=answer.mutated, seconds=answer.seconds)
        return answer
    return oracle


def exercise_of(answer_fn: Callable, exercise: Optional[str] = None) -> Exercise:
    """The exercise ``answer_fn`` answers: ``exercise`` if given, else the one whose function has its name,
    else the loss exercise (a lambda or a renamed function is taken as a loss)."""
    if exercise is not None:
        if exercise not in EXERCISES:
            raise KeyError(f"unknown exercise {exercise!r}; the exercises are {', '.join(EXERCISES)}")
        return EXERCISES[exercise]
    return EXERCISES.get(getattr(answer_fn, "__name__", ""), EXERCISES["mdn_loss"])


def _not_callable(answer_fn, exercise: Exercise) -> Optional[CheckFailed]:
    if callable(answer_fn):
        return None
    return CheckFailed(f"{exercise.function} must be a function, got {type(answer_fn).__name__}: define it with "
                       f"def {exercise.function}({', '.join(exercise.args)}): in the answer cell",
                       mistake="not_implemented")


def _run(exercise: Exercise, name: str, answer_fn: Callable, seed: Optional[int] = None) -> CheckResult:
    check = exercise.checks[name]
    problem = _not_callable(answer_fn, exercise)
    if problem:
        return CheckResult(name, check.points, False, check.description, str(problem), problem.mistake)
    rng = torch.Generator().manual_seed(seed) if seed is not None else None
    return drive(check, local_oracle(answer_fn, exercise.references, exercise.function), rng)


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


def explain_check(name: str, answer_fn: Callable, seed: int = 0) -> None:
    """What :func:`run_check` shows when ``answer_fn`` fails check ``name``, printed instead of raised.

    The exercise notebooks run a deliberately wrong answer through it, so a student sees what a
    failing check says before meeting one. ``seed`` fixes the check's inputs, so the stored output
    is the same on every run.
    """
    exercise, check = find_check(name)
    result = _run(exercise, name, answer_fn, seed)
    if result.passed:
        print(f"✓ {name} ({check.points} pt): {result.detail}")
        return
    print(f"✗ {name} ({check.points} pt): {check.description}")
    print(f"CheckFailed: [{name}] {result.message}")


def run_all_checks(answer_fn: Callable, names: Optional[Sequence[str]] = None,
                   exercise: str = "mdn_loss") -> Dict[str, CheckResult]:
    """Run every check of ``exercise`` (or those in ``names``) with the local oracle; return {name: CheckResult}."""
    chosen = EXERCISES[exercise]
    return {name: _run(chosen, name, answer_fn) for name in (names or list(chosen.checks))}


def _wrapped(text: str, indent: str) -> str:
    return "\n".join(textwrap.fill(part, width=108, initial_indent=indent, subsequent_indent=indent)
                     for part in text.split("\n") if part.strip())


def check_summary(answer_fn: Callable, exercise: Optional[str] = None) -> None:
    """Run every check of the exercise on ``answer_fn`` and print one table of verdicts; never raises.

    The exercise notebooks call it right below the answer cell, above the check cells (which raise,
    so *Run All* stops at the first failing one): the table shows everything that is wrong at
    once, then what each failing check says, and how to ask for a hint.
    """
    chosen = exercise_of(answer_fn, exercise)
    results: Dict[str, CheckResult] = {}
    for name, check in chosen.checks.items():
        try:
            results[name] = _run(chosen, name, answer_fn)
        except Exception as exc:  # noqa: BLE001 - the summary must show every check, whatever happens
            results[name] = CheckResult(name, check.points, False, check.description,
                                        f"the check could not run ({type(exc).__name__}: {exc})", None)
    passed = [r for r in results.values() if r.passed]
    points = sum(r.points for r in passed)
    width = max(len(n) for n in results)
    print(f"{chosen.function}: {len(passed)} of {len(results)} checks pass, {points} / {chosen.max_points} points")
    for name, result in results.items():
        mark = "✓" if result.passed else "✗"
        mistake = chosen.mistakes.get(result.mistake or "")
        what = result.detail if result.passed else (f"likely mistake: {mistake.name}" if mistake else
                                                    chosen.checks[name].description)
        print(f"  {mark} {name:<{width}}  {result.points} pt  {what}")
    failed = [r for r in results.values() if not r.passed]
    if failed:
        print("\nWhat the failing checks say:")
        for result in failed:
            print(f"  ✗ {result.name}:")
            print(_wrapped(result.message or result.detail, "      "))
        print(f"\nFor a hint, run hint({chosen.function}); each call goes one step further.")
