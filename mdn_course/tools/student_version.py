"""Make the student version of an exercise notebook from its solution notebook.

The solution notebook (for example ``notebooks/03_exercise_mdn_loss.ipynb``) is
the single source of an exercise. Its answer cells carry the tag ``answer`` and
mark the part a student writes with nbgrader's markers::

    def mdn_loss(pi, mu, sigma, z_next):
        \"\"\"Docstring the student keeps.\"\"\"
        ### BEGIN SOLUTION
        ...reference answer...
        ### END SOLUTION

The student version keeps every cell, id, tag and metadata entry, replaces each
solution region by a stub that raises ``NotImplementedError`` with a hint (so
*defining* the function works and only *calling* it fails), and clears all
outputs and execution counts.

This module also owns the exercises' verification cells: ``check_cells()``
builds them from an exercise's registry (``mdn_course.exercise.exercises.EXERCISES``: one
explanatory markdown cell and one ``run_check`` cell per check, in registry order) and
``refresh_check_cells()`` puts them into a solution notebook, for the exercise its answer cell
names. It is an authoring tool
(it needs nbformat, a dev dependency); students never import it.

Command line (from the repository root)::

    python -m mdn_course student-version                   # regenerate notebooks/*_student.ipynb
    python -m mdn_course student-version --check           # exit 1 naming stale student notebooks
    python -m mdn_course student-version --refresh-checks  # rebuild check cells in solution notebooks
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import textwrap
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import nbformat
from nbformat import NotebookNode

from ..exercise.answer_cell import ANSWER_TAG, exercise_of_cells
from ..exercise.exercises import EXERCISES
from ..exercise.registry import Check, check_cell_source
from .notebooks import (BADGE_RE, NOTEBOOK_DIR, lessons, notebook_text, read, report_out_of_sync, set_badge,
                        student_path, tags)

__all__ = [
    "BEGIN_SOLUTION", "END_SOLUTION", "STUB_WIDTH", "MarkerError", "HINTS", "strip_solution",
    "make_student_notebook", "solution_notebooks", "write_student_notebooks", "out_of_sync",
    "check_cells", "refresh_check_cells", "exercise_of_notebook", "main",
]

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
CHECK_TAG = "check"

#: Text raised by the stub of each answer cell, by its nbgrader ``grade_id``: where to look, never the lines.
HINTS: Dict[str, str] = {
    "mdn_loss_answer": "write your mdn_loss here: the maths is above; hint(mdn_loss) gives hints",
    "training_step_answer": "write your training step here: the maths is above; hint(training_step) gives hints",
}
DEFAULT_HINT = "write your answer here, replacing this line"


class MarkerError(ValueError):
    """A solution notebook's BEGIN/END SOLUTION markers do not pair up."""


# ---------------------------------------------------------------- solution regions -> stubs

def _marker(line: str) -> Optional[str]:
    stripped = line.strip()
    if stripped == BEGIN_SOLUTION:
        return "begin"
    if stripped == END_SOLUTION:
        return "end"
    return None


def strip_solution(source: str, hint: str = DEFAULT_HINT, *, where: str = "cell",
                   cell_type: str = "code") -> str:
    """Replace every ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region of ``source``.

    In a code cell the region becomes two lines at the indentation of the
    BEGIN marker: a ``# YOUR CODE HERE`` comment and
    ``raise NotImplementedError("<hint>")`` (the hint split over lines of at
    most ``STUB_WIDTH`` columns). In a markdown cell it becomes
    ``YOUR ANSWER HERE``. Raises ``MarkerError`` (naming ``where`` and the
    line) for an END without a BEGIN, a nested BEGIN, or a BEGIN never closed.
    """
    out: List[str] = []
    open_at: Optional[int] = None
    for number, line in enumerate(source.split("\n"), start=1):
        kind = _marker(line)
        if kind == "begin":
            if open_at is not None:
                raise MarkerError(f"{where}: line {number} opens a solution region inside the one "
                                  f"opened at line {open_at}; add '{END_SOLUTION}' before it")
            open_at = number
            indent = line[: len(line) - len(line.lstrip())]
            if cell_type == "code":
                out.append(f"{indent}# YOUR CODE HERE")
                out.extend(_raise_lines(hint, indent))
            else:
                out.append(f"{indent}YOUR ANSWER HERE")
        elif kind == "end":
            if open_at is None:
                raise MarkerError(f"{where}: line {number} has '{END_SOLUTION}' without a matching "
                                  f"'{BEGIN_SOLUTION}' above it")
            open_at = None
        elif open_at is None:
            out.append(line)
    if open_at is not None:
        raise MarkerError(f"{where}: the solution region opened at line {open_at} is never closed; "
                          f"add '{END_SOLUTION}'")
    return "\n".join(out)


#: Longest line of a generated stub: the raise statement must not scroll sideways in a notebook.
STUB_WIDTH = 79


def _raise_lines(hint: str, indent: str) -> List[str]:
    """``raise NotImplementedError("<hint>")``, the hint split into string pieces of at most STUB_WIDTH columns."""
    one_line = f"{indent}raise NotImplementedError({json.dumps(hint, ensure_ascii=False)})"
    if len(one_line) <= STUB_WIDTH:
        return [one_line]
    inner = indent + "    "
    pieces = textwrap.wrap(hint, width=STUB_WIDTH - len(inner) - 3, drop_whitespace=False)
    lines = [f"{indent}raise NotImplementedError("]
    lines += [f"{inner}{json.dumps(piece, ensure_ascii=False)}" for piece in pieces]
    lines[-1] += ")"
    return lines


def _has_markers(source: str) -> bool:
    return any(_marker(line) for line in source.split("\n"))


def make_student_notebook(solution_nb: NotebookNode, *, name: str = "notebook") -> NotebookNode:
    """Return the student version of ``solution_nb`` (which is left unchanged).

    Solution regions become stubs with a hint (``HINTS`` by the cell's
    nbgrader ``grade_id``), every output is removed and every execution count
    set to None, and when ``name`` is the solution's file name the Colab badge
    is pointed at the student copy; cell ids, tags, metadata and all other cells
    stay as they are.
    """
    nb = copy.deepcopy(solution_nb)
    for index, cell in enumerate(nb.cells):
        source = cell.get("source", "")
        if _has_markers(source):
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")
            cell["source"] = strip_solution(source, HINTS.get(grade_id, DEFAULT_HINT),
                                            where=f"{name}, cell {index} (id {cell.get('id', '?')})",
                                            cell_type=cell.cell_type)
        if cell.cell_type == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    nb.metadata.pop("widgets", None)
    if name.endswith(".ipynb"):  # the student copy's "Open in Colab" badge opens the student copy
        if any(c.cell_type == "markdown" and BADGE_RE.search(c.source) for c in nb.cells[:1]):
            set_badge(nb, student_path(Path(name)).name)
    return nb


# ---------------------------------------------------------------- files

def solution_notebooks(nb_dir: Path = NOTEBOOK_DIR) -> List[Path]:
    """Notebooks in ``nb_dir`` with at least one ``answer`` cell (student versions excluded)."""
    return [path for path in lessons(nb_dir) if any(ANSWER_TAG in tags(c) for c in read(path).cells)]


def _expected_student_text(solution: Path) -> str:
    return notebook_text(make_student_notebook(read(solution), name=solution.name))


def write_student_notebooks(nb_dir: Path = NOTEBOOK_DIR) -> List[Path]:
    """Regenerate every ``*_student.ipynb``; return the files written."""
    written = []
    for solution in solution_notebooks(nb_dir):
        target = student_path(solution)
        target.write_text(_expected_student_text(solution), encoding="utf-8")
        written.append(target)
    return written


def out_of_sync(nb_dir: Path = NOTEBOOK_DIR) -> List[Path]:
    """Student notebooks that are missing or differ from what their solution generates."""
    stale = []
    for solution in solution_notebooks(nb_dir):
        target = student_path(solution)
        if not target.exists() or target.read_text(encoding="utf-8") != _expected_student_text(solution):
            stale.append(target)
    return stale


# ---------------------------------------------------------------- the verification cells

def _check_markdown(name: str, description: str, points: int, note: Optional[str]) -> str:
    unit = "point" if points == 1 else "points"
    body = note or f"This check tests that the answer {description}."
    return f"#### Check `{name}` ({points} {unit}): {description}\n\n{body}"


def exercise_of_notebook(nb: NotebookNode) -> str:
    """The function the exercise notebook ``nb`` asks for, from its answer cell; ValueError when it has none."""
    function = exercise_of_cells(nb.cells, list(EXERCISES))
    if function is None:
        raise ValueError("the notebook has no answer cell that names an exercise (nbgrader grade_id "
                         f"'<function>_answer' for one of {', '.join(EXERCISES)})")
    return function


def check_cells(checks: Optional[Mapping[str, Check]] = None, function: str = "mdn_loss") -> List[NotebookNode]:
    """Markdown + code cell pairs for every check in ``checks`` (default: the registry of ``function``), in order.

    Code cells: source ``run_check("<name>", <function>)``, tag ``check``, and
    metadata ``check``/``points``/``nbgrader``; ids ``check-<name>`` and
    ``about-check-<name>`` so regenerating them gives identical cells.
    """
    cells: List[NotebookNode] = []
    for name, check in (EXERCISES[function].checks if checks is None else checks).items():
        about = nbformat.v4.new_markdown_cell(_check_markdown(name, check.description, check.points, check.note or None))
        about["id"] = f"about-check-{name}".replace("_", "-")
        code = nbformat.v4.new_code_cell(check_cell_source(name, function))
        code["id"] = f"check-{name}".replace("_", "-")
        code["metadata"] = check.cell_metadata()
        cells.extend([about, code])
    return cells


def _is_check_cell(cell: NotebookNode) -> bool:
    return (CHECK_TAG in tags(cell)) or str(cell.get("id", "")).startswith("about-check-")


def refresh_check_cells(nb: NotebookNode, checks=None) -> NotebookNode:
    """Replace ``nb``'s check cells (in place) with ``check_cells(checks)``; return ``nb``.

    The existing check cells must form one contiguous block; the new block goes
    where it was (or at the end when there is none). Outputs of the old check
    cells are dropped, so re-execute the notebook afterwards.
    """
    positions = [i for i, c in enumerate(nb.cells) if _is_check_cell(c)]
    new = check_cells(checks, exercise_of_notebook(nb))
    if not positions:
        nb.cells.extend(new)
        return nb
    first, last = positions[0], positions[-1]
    if positions != list(range(first, last + 1)):
        raise ValueError("the check cells are not one contiguous block; move them together first")
    nb.cells[first:last + 1] = new
    return nb


# ---------------------------------------------------------------- command line

def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mdn_course student-version",
                                     description="Generate student notebooks from solution notebooks.")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 and name the student notebooks that are out of sync")
    parser.add_argument("--refresh-checks", action="store_true",
                        help="rebuild the check cells of every solution notebook from the registry "
                             "(re-execute them afterwards), then regenerate the student notebooks")
    parser.add_argument("--dir", type=Path, default=NOTEBOOK_DIR, help="notebook folder (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        if args.check:
            return report_out_of_sync(out_of_sync(args.dir), "python -m mdn_course student-version",
                                      "student notebooks are in sync")
        if args.refresh_checks:
            for solution in solution_notebooks(args.dir):
                solution.write_text(notebook_text(refresh_check_cells(read(solution))), encoding="utf-8")
                print(f"refreshed check cells: {solution.name} (re-execute it before committing)")
        for path in write_student_notebooks(args.dir):
            print(f"wrote {path.name}")
    except MarkerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
