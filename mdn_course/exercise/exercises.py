"""Every exercise of the course, by the function its students write: the one list checks are looked up in.

The notebook's check cells (``run_check("mixture", mdn_loss)``), the hints and the grader find
a check's exercise here (check names are unique across exercises). Each exercise is a module
declaring its ``Exercise`` and its checks (:mod:`.checks` for ``mdn_loss``, :mod:`.step_checks`
for ``training_step``) plus one entry in :data:`EXERCISES`.
"""
from __future__ import annotations

from typing import Dict, Tuple

from .checks import MDN_LOSS
from .registry import Check, Exercise
from .step_checks import TRAINING_STEP

__all__ = ["EXERCISES", "find_check"]

EXERCISES: Dict[str, Exercise] = {exercise.function: exercise for exercise in (MDN_LOSS, TRAINING_STEP)}


def _check_names_are_unique() -> None:
    seen: Dict[str, str] = {}
    for exercise in EXERCISES.values():
        for name in exercise.checks:
            if name in seen:
                raise ValueError(f"check {name!r} is declared by both {seen[name]} and {exercise.function}: "
                                 "a check cell names its check alone, so names must be unique across exercises")
            seen[name] = exercise.function


_check_names_are_unique()


def find_check(name: str) -> Tuple[Exercise, Check]:
    """The exercise that declares check ``name``, and the check; KeyError naming every check otherwise."""
    for exercise in EXERCISES.values():
        if name in exercise.checks:
            return exercise, exercise.checks[name]
    known = ", ".join(n for e in EXERCISES.values() for n in e.checks)
    raise KeyError(f"unknown check {name!r}; the checks are {known}")
