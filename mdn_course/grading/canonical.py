"""The notebook the grader runs: built from the package, with only the answer source(s) taken from a submission.

Code cells, in order (nbval names them ``Cell 0``, ``Cell 1``, ...):

0. setup (locked): what the exercise notebook defines before its answer cell and
   an answer may use (``math``, ``torch``, ``device`` = CPU, the lesson's
   ``gaussian_log_density``), then arm the in-kernel watcher (``runtime.arm``)
   and ``from mdn_course.exercise import run_check``. Keep this in step with
   ``notebooks/03_exercise_mdn_loss.ipynb`` if it defines more before the answer.
1..n. the answer source(s), nbgrader *solution* cells, tag ``answer``.
then one check per ``CHECKS`` entry in registry order: nbgrader *grade* cells,
   locked, ``points`` from the registry, tag ``check``, metadata ``check``; the
   source re-imports ``run_check`` so an answer that rebinds the name gains nothing.
last: the audit cell (locked, 0 points): ``runtime.audit()``.

The layout (which cell index is which role) is returned with the notebook so
the report can map nbval's items back to check names.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

import nbformat

from ..exercise.checks import CHECKS, check_cell_metadata

SETUP_SOURCE = ("import math\n"
                "import torch\n"
                "device = torch.device('cpu')\n"
                "\n"
                "def gaussian_log_density(x, mu, sigma):  # as defined before the answer in the exercise notebook\n"
                "    return -0.5 * ((x - mu) / sigma) ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)\n"
                "\n"
                "from mdn_course.grading.runtime import arm as _mdn_grader_arm\n"
                "_mdn_grader_arm()\n"
                "from mdn_course.exercise import run_check")
AUDIT_SOURCE = "from mdn_course.grading.runtime import audit as _mdn_grader_audit\n_mdn_grader_audit()"


def check_source(name: str) -> str:
    return f'from mdn_course.exercise import run_check\nrun_check("{name}", mdn_loss)'


@dataclass
class Layout:
    setup: int
    answers: List[int]
    checks: Dict[int, str]   # code-cell index -> check name
    audit: int


def _nbgrader(grade_id: str, *, solution: bool, locked: bool) -> dict:
    """nbgrader metadata of an ungraded cell (check cells get theirs from ``check_cell_metadata``)."""
    return {"grade": False, "solution": solution, "locked": locked, "grade_id": grade_id, "schema_version": 3}


def build(answer_sources: List[str]):
    """(notebook, layout) for these answer sources."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    cells = [nbformat.v4.new_markdown_cell(
        "# Graded: implement `mdn_loss(pi, mu, sigma, z_next)`\n\n"
        "Built by `python -m mdn_course grade` from the package's check registry; "
        "only the answer cell comes from the submission.",
        metadata={"nbgrader": _nbgrader("header", solution=False, locked=True)})]
    cells.append(nbformat.v4.new_code_cell(SETUP_SOURCE, metadata={
        "tags": ["setup"], "nbgrader": _nbgrader("setup", solution=False, locked=True)}))
    layout = Layout(setup=0, answers=[], checks={}, audit=-1)
    code_index = 1
    for i, src in enumerate(answer_sources):
        grade_id = "mdn_loss_answer" if i == 0 else f"mdn_loss_answer_{i + 1}"
        cells.append(nbformat.v4.new_code_cell(src, metadata={
            "tags": ["answer"], "nbgrader": _nbgrader(grade_id, solution=True, locked=False)}))
        layout.answers.append(code_index)
        code_index += 1
    for name, check in CHECKS.items():
        cells.append(nbformat.v4.new_code_cell(check_source(name), metadata=check_cell_metadata(name, check.points)))
        layout.checks[code_index] = name
        code_index += 1
    cells.append(nbformat.v4.new_code_cell(AUDIT_SOURCE, metadata={
        "tags": ["audit"], "nbgrader": _nbgrader("grader_audit", solution=False, locked=True)}))
    layout.audit = code_index
    nb.cells = cells
    return nb, layout
