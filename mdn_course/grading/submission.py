"""A submitted notebook, read without trusting it: its answer (:mod:`mdn_course.exercise.answer_cell`) and signs of tampering.

Only the answer cell(s) of a submission are ever executed (in the sandbox, see
:mod:`mdn_course.sandboxed`); reading them is :func:`mdn_course.exercise.answer_cell.read_cells`
and :func:`~mdn_course.exercise.answer_cell.find_answer` (bounded, linear). Everything else
is *inspected* here, with bounded work:

* check cells deleted, edited (source, check name, points in the cell or its
  nbgrader metadata) or added with an unknown name; the setup import removed;
* nbval comment markers (``# NBVAL_SKIP`` ...) or nbval/nbclient tags
  (``nbval-skip``, ``raises-exception``, ``skip-execution`` ...) on a check or
  answer cell (the distributed notebook tags its setup and narration cells
  ``nbval-ignore-output`` itself; cells other than the answer are never run);
* outputs that no kernel wrote: outputs on a cell without an execution count,
  or a check cell whose output reports a different check or other points.

None of this can change a grade (the points come from the trusted judge); it is
reported as the ``tampered`` flag.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from ..exercise.answer_cell import (NBVAL_MARKER, AnswerCells, InvalidNotebook, cell_source, cell_tags, defines_function,
                                    check_cell_pattern, exercise_of_cells, find_answer, read_cells, strip_markers)
from ..exercise.exercises import EXERCISES
from ..exercise.registry import Exercise

__all__ = ["Submission", "InvalidNotebook", "load", "detect_exercise", "find_tampering", "NBVAL_TAGS", "SETUP_LINE"]

NBVAL_TAGS = {"nbval-ignore-output", "nbval-check-output", "nbval-raises-exception", "nbval-skip",
              "raises-exception", "skip-execution", "pytest-validate-ignore-output"}
SETUP_LINE = "from mdn_course.exercise import run_check"   # every exercise notebook's setup cell holds it
_CLAIM = re.compile(r"[✓✗]\s+(\w+)\s+\((\d+)\s+pt\)")


@dataclass
class Submission(AnswerCells):
    """A submission's answer, and what the scan found (``tampering``: one line per finding), and the exercise
    it answers (``exercise``, a key of EXERCISES)."""
    tampering: List[str] = field(default_factory=list)
    exercise: str = "mdn_loss"


class UnknownExercise(InvalidNotebook):
    """No answer cell says which exercise the notebook is, and no code cell defines an exercise's function."""


def detect_exercise(cells: List[dict]) -> Exercise:
    """The exercise ``cells`` answer, from the answer cell's metadata (or the function a cell defines)."""
    function = exercise_of_cells(cells, list(EXERCISES))
    if function is None:
        raise UnknownExercise("no answer cell: no code cell is tagged 'answer' with an exercise's grade_id, and "
                              f"none defines {' or '.join(EXERCISES)}")
    return EXERCISES[function]


def load(path: Path, exercise: Optional[Exercise] = None) -> Submission:
    """Read and inspect ``path`` as a submission of ``exercise`` (default: the exercise its answer cell names);
    raise InvalidNotebook when it cannot be graded."""
    cells = read_cells(path)
    exercise = exercise if exercise is not None else detect_exercise(cells)
    try:
        answer = find_answer(cells, path, exercise.function)
    except InvalidNotebook as exc:
        exc.exercise = exercise.function   # the row still says which exercise it was
        raise
    if not any(defines_function(source, exercise.function) for source in answer.answer_sources):
        problem = InvalidNotebook(f"the answer cell does not define {exercise.function}: this notebook is not a "
                                  f"submission of the {exercise.function} exercise")
        problem.exercise = exercise.function
        raise problem
    return Submission(answer.path, answer.answer_sources, answer.answer_cells, answer.fallback, answer.notes,
                      tampering=find_tampering(cells, set(answer.answer_cells), exercise), exercise=exercise.function)


def find_tampering(cells: List[dict], answer_cells: set, exercise: Exercise) -> List[str]:
    """One line per sign that ``cells`` were changed where only the answer may change."""
    checks = exercise.checks
    check_src = check_cell_pattern(exercise.function)
    found: List[str] = []
    seen: Dict[str, int] = {}
    has_setup = False
    for i, cell in enumerate(cells):
        src = cell_source(cell)
        meta = cell.get("metadata") or {}
        meta = meta if isinstance(meta, dict) else {}
        where = f"cell {i + 1}"
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs") and cell.get("execution_count") is None:
            found.append(f"{where} has outputs but no execution count (outputs written by hand)")
        if SETUP_LINE in src:
            has_setup = True
        name = meta.get("check")
        is_check = i not in answer_cells and ("check" in cell_tags(cell) or name is not None or "run_check(" in src)
        if is_check or i in answer_cells:
            # nbval markers only matter on the cells that are graded; the distributed notebook itself
            # tags its setup and narration cells nbval-ignore-output, and those cells are never run here
            bad_tags = sorted(set(cell_tags(cell)) & NBVAL_TAGS)
            if bad_tags:
                found.append(f"{where} carries the nbval tag(s) {', '.join(bad_tags)}")
            markers = sorted(set(m.group(1) for m in NBVAL_MARKER.finditer(src)))
            if markers:
                found.append(f"{where} carries the nbval comment(s) {', '.join('# ' + m for m in markers)}")
        if not is_check:
            continue
        m = check_src.match(strip_markers(src).strip())
        label = name or (m.group("name") if m else None)
        if label not in checks:
            found.append(f"{where} is a check cell for an unknown check {label!r}")
            continue
        seen[label] = seen.get(label, 0) + 1
        if m is None or m.group("name") != label:
            found.append(f"check cell {label!r} ({where}) was edited")
        points = checks[label].points
        nbg = meta.get("nbgrader") if isinstance(meta.get("nbgrader"), dict) else {}
        for what, value in (("points", meta.get("points")), ("nbgrader points", nbg.get("points"))):
            if value is not None and value != points:
                found.append(f"check cell {label!r} claims {value} {what}; the registry gives {points}")
        for out in cell.get("outputs") or []:
            text = out.get("text", "") if isinstance(out, dict) else ""
            text = "".join(text) if isinstance(text, list) else str(text)
            for claim, pts in _CLAIM.findall(text):
                if claim != label or int(pts) != points:
                    found.append(f"check cell {label!r} shows output for {claim} ({pts} pt) (faked output)")
    for name in checks:
        if name not in seen:
            found.append(f"check cell {name!r} was deleted")
        elif seen[name] > 1:
            found.append(f"check cell {name!r} appears {seen[name]} times")
    if not has_setup and seen:
        found.append(f"the setup line '{SETUP_LINE}' was removed")
    return found
