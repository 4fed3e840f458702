"""Every exercise of the course, by the function its students write: the one list checks are looked up in.

The notebook's check cells (``run_check("mixture", mdn_loss)``), the hints and the grader find
a check's exercise here. A second exercise is a new module declaring its ``Exercise`` and its
checks (as :mod:`.checks` does for ``mdn_loss``) plus one entry in :data:`EXERCISES`.
"""
from __future__ import annotations

from typing import Dict, Tuple

from .checks import MDN_LOSS
from .registry import Check, Exercise

__all__ = ["EXERCISES", "find_check"]

EXERCISES: Dict[str, Exercise] = {exercise.function: exercise for exercise in (MDN_LOSS,)}


def find_check(name: str) -> Tuple[Exercise, Check]:
    """The exercise that declares check ``name``, and the check; KeyError naming every check otherwise."""
    for exercise in EXERCISES.values():
        if name in exercise.checks:
            return exercise, exercise.checks[name]
    known = ", ".join(n for e in EXERCISES.values() for n in e.checks)
    raise KeyError(f"unknown check {name!r}; the checks are {known}")
