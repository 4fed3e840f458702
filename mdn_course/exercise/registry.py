"""What every exercise's checks are made of: a named mistake, a check declared once, its result, and :func:`drive`.

A check is a *judge*: a generator that yields :class:`~mdn_course.sandboxed.oracle.Request`
objects (inputs to call the student's function on), receives
:class:`~mdn_course.sandboxed.oracle.Answer` objects (plain facts about what the call did) and
either returns a one-line detail (pass) or raises :class:`CheckFailed` naming the most likely
:class:`Mistake`. :func:`drive` plays a judge against any *oracle* (a function
``Request -> Answer``): in the notebook the student's function in this process
(:mod:`.notebook`), in the instructor's grader a pipe to a sandbox (:mod:`mdn_course.grading`),
so nothing that decides a grade runs where student code runs.

An :class:`Exercise` names the function its students write and its arguments, its catalogue
of mistakes, the reference functions no answer may call, and its checks in order, each
declared once where its judge is defined::

    @MDN_LOSS.check(points=2, description="...", note="...")
    def mixture(rng): ...

The judge's name is the check's name; ``slow=True`` marks a check (a training run) that hints
and lesson 4 run only when needed. Each exercise is a module with its own ``Exercise`` and
judges (``checks`` for ``mdn_loss``, ``step_checks`` for ``training_step``), plus one entry in
:mod:`.exercises`.
"""
from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from typing import Callable, Dict, Generator, Iterator, List, Mapping, Optional, Sequence, Tuple, TypeVar

import torch

from ..sandboxed.oracle import Answer, Request

__all__ = ["Mistake", "CheckFailed", "Check", "CheckResult", "Checks", "Exercise", "Judge", "Oracle", "drive",
           "check_cell_source", "fresh_generator", "separation_margin"]

Judge = Callable[[torch.Generator], Generator[Request, Answer, str]]
Oracle = Callable[[Request], Answer]
Outcome = TypeVar("Outcome")


@dataclass(frozen=True)
class Mistake:
    """A named mistake: a short title, a gentle first hint, the maths it breaks, and the corrected maths."""
    id: str
    name: str
    nudge: str
    maths: str
    fix: str


class CheckFailed(AssertionError):
    """A check found a wrong answer; the message says what is wrong, in the course's words.

    ``check`` names the check, ``mistake`` is a key of the exercise's mistakes (or None when
    the answer matches no known mistake). In a notebook, IPython shows only the message (see
    :meth:`_render_traceback_`), never the checker's frames.
    """

    def __init__(self, message: str, check: Optional[str] = None, mistake: Optional[str] = None):
        super().__init__(message)
        self.check = check
        self.mistake = mistake

    def _render_traceback_(self) -> List[str]:
        """IPython calls this to render the exception: the course message alone, no package frames."""
        return [f"\x1b[0;31mCheckFailed\x1b[0m: {self}"]


@dataclass(frozen=True)
class Check:
    """One check: its name, its points, what it tests (one line), its judge, the paragraph the
    exercise notebook shows above its cell (``note``), whether it is slow (a training run), and
    what to tell a student whose answer the judge cannot use at all (``unusable_hint``)."""
    name: str
    points: int
    description: str
    judge: Judge
    note: str = ""
    slow: bool = False
    unusable_hint: str = "make sure your function returns what the exercise asks for"

    def cell_metadata(self) -> dict:
        """Metadata of the notebook cell running this check: the ``check`` tag, its points, and an
        nbgrader grade cell (points from this registry, so nbgrader and the grader agree)."""
        return {"tags": ["check"], "check": self.name, "points": self.points,
                "nbgrader": {"grade": True, "solution": False, "locked": True, "points": self.points,
                             "grade_id": f"check_{self.name}", "schema_version": 3}}


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check. ``detail`` is the pass line; ``message`` the course message of a failure."""
    name: str
    points: int
    passed: bool
    detail: str
    message: Optional[str]
    mistake: Optional[str]


class Checks(Mapping[str, Check]):
    """An exercise's checks by name, in the order they were declared (cheapest, most basic first)."""

    def __init__(self) -> None:
        self._checks: Dict[str, Check] = {}

    def __getitem__(self, name: str) -> Check:
        if name not in self._checks:
            raise KeyError(f"unknown check {name!r}; the checks are {', '.join(self._checks)}")
        return self._checks[name]

    def __contains__(self, name) -> bool:
        return name in self._checks

    def __iter__(self) -> Iterator[str]:
        return iter(self._checks)

    def __len__(self) -> int:
        return len(self._checks)

    def __repr__(self) -> str:
        return f"Checks({', '.join(self._checks)})"

    def add(self, check: Check) -> None:
        if check.name in self._checks:
            raise ValueError(f"check {check.name!r} is declared twice")
        self._checks[check.name] = check


class Exercise:
    """One exercise: the function students write (``function(*args)``), its mistakes, and its checks.

    ``maths`` is what the function computes, in maths, step by step (the last rung of the hint
    ladder for a failure no check can name); ``after`` is where the course goes next once every
    check passes."""

    def __init__(self, function: str, args: Sequence[str], mistakes: Mapping[str, Mistake], *,
                 references: Sequence[Callable] = (), unusable_hint: str = Check.unusable_hint,
                 maths: str = "", after: str = ""):
        self.function = function
        self.args: Tuple[str, ...] = tuple(args)
        self.mistakes = mistakes
        self.references = tuple(references)   # the package's own answers: calling one scores nothing
        self.unusable_hint = unusable_hint
        self.maths = maths
        self.after = after
        self.checks = Checks()

    def check(self, *, points: int, description: str, note: str = "", slow: bool = False
              ) -> Callable[[Judge], Judge]:
        """Declare the decorated judge as the next check of this exercise, named after the judge."""
        def declare(judge: Judge) -> Judge:
            self.checks.add(Check(judge.__name__, points, description, judge, note, slow, self.unusable_hint))
            return judge
        return declare

    @property
    def max_points(self) -> int:
        return sum(c.points for c in self.checks.values())

    def __repr__(self) -> str:
        return f"Exercise({self.function!r}, checks: {', '.join(self.checks)})"


def check_cell_source(name: str, function: str) -> str:
    """The source of the notebook cell that runs check ``name`` on the student's ``function``
    (:func:`mdn_course.exercise.answer_cell.check_cell_pattern` recognises it)."""
    return f'run_check("{name}", {function})'


def fresh_generator() -> torch.Generator:
    """A generator with a fresh random seed: inputs an answer cannot be tuned to."""
    return torch.Generator().manual_seed(secrets.randbits(62))


def drive(check: Check, oracle: Oracle, rng: Optional[torch.Generator] = None) -> CheckResult:
    """Play ``check``'s judge against ``oracle``; never raises for a student's mistake.

    ``rng`` seeds the check's inputs (a fresh random one by default, so answers cannot be
    tuned to fixed inputs). A judge that cannot use an answer at all reports it as a failure
    in the course's words rather than a traceback. Exceptions raised by ``oracle`` itself
    (the grader's sandbox died, a malformed message) propagate: they are not the student's.
    """
    judge = check.judge(rng if rng is not None else fresh_generator())
    try:
        answer: Optional[Answer] = None
        while True:
            try:
                request = next(judge) if answer is None else judge.send(answer)
            except StopIteration as stop:
                return CheckResult(check.name, check.points, True, str(stop.value), None, None)
            except CheckFailed as exc:
                return CheckResult(check.name, check.points, False, check.description, str(exc), exc.mistake)
            except (ArithmeticError, ValueError, TypeError, RuntimeError, IndexError, KeyError) as exc:
                return CheckResult(check.name, check.points, False, check.description,
                                   f"the check could not use your answer ({type(exc).__name__}: {exc}); "
                                   + check.unusable_hint, None)
            answer = oracle(request)   # the oracle's own failures (a sandbox gone) are the caller's to handle
    finally:
        judge.close()


def separation_margin(candidates: Mapping[str, Sequence[Outcome]], off_truth: Callable[[Outcome], float],
                      apart: Callable[[Outcome, Outcome], float], pass_tol: float,
                      diagnosis_tol: float) -> Tuple[float, List[Tuple[str, Outcome]]]:
    """By how much a check's inputs tell every mistake apart (positive: all of them), and the outcomes that count.

    Every exercise keeps a check's inputs only where a wrong answer can be named. Each mistake's outcome
    on the inputs (``candidates``: every outcome it can have) must either be the truth's, within half
    the pass tolerance (the mistake makes no difference here: that answer passes this request and
    fails another), or lie more than ``pass_tol + 2 * diagnosis_tol`` from it (``off_truth``); and
    the outcomes of two different mistakes must be more than ``2 * diagnosis_tol`` apart (``apart``).
    Then an answer within ``diagnosis_tol`` of one mistake's outcome fails and is nearest that mistake
    alone. Returns the smallest of those margins and the (mistake, outcome) pairs that differ from
    the truth.
    """
    margin, distinct = math.inf, []
    for mistake, outcomes in candidates.items():
        for outcome in outcomes:
            gap = off_truth(outcome)
            if gap <= pass_tol / 2:
                continue
            margin = min(margin, gap - pass_tol - 2 * diagnosis_tol)
            distinct.append((mistake, outcome))
    for i, (m1, o1) in enumerate(distinct):
        for m2, o2 in distinct[i + 1:]:
            if m1 != m2:
                margin = min(margin, apart(o1, o2) - 2 * diagnosis_tol)
    return margin, distinct
