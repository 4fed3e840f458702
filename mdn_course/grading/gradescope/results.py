"""Gradescope's ``results.json`` for one student's upload, from the grader's rows."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import List

from ...exercise.exercises import EXERCISES
from ..report import Row

__all__ = ["results_json", "write_results", "failure_json"]


def results_json(rows: List[Row]) -> dict:
    """The results of one upload (the best-scoring notebook if several): ``score``, ``output`` and one
    test per check of that notebook's exercise with ``name``, ``score``, ``max_score``, ``status`` and
    ``output`` (the diagnostic)."""
    if not rows:
        return {"score": 0.0, "output": "No .ipynb file was found in the submission: upload your exercise notebook."}
    row = max(rows, key=lambda r: (r.status != "invalid", r.points))
    tests = []
    checks = EXERCISES[row.exercise].checks if row.exercise else {}
    for name, check in checks.items():
        passed = name in row.passed
        text = row.passed.get(name) if passed else row.failed.get(name, "not run")
        tests.append({"name": f"{name}: {check.description}", "score": float(row.check_points[name]),
                      "max_score": float(check.points), "status": "passed" if passed else "failed",
                      "output": text or ""})
    output = f"Score {row.points} / {row.max_points} (status: {row.status}) for {os.path.basename(row.submission)}.\n"
    output += row.message.replace(" | ", "\n")
    others = [r for r in rows if r is not row]
    if others:
        output += "\n\nOther notebooks in this upload (not counted): " + ", ".join(
            f"{os.path.basename(r.submission)} ({r.points})" for r in others)
    return {"score": float(row.points), "output": output, "tests": tests, "stdout_visibility": "hidden"}


def failure_json() -> dict:
    """What the student sees when the autograder could not grade at all (the log says why)."""
    return {"score": 0.0, "output": "The autograder could not grade this submission (no working sandbox on the "
                                    "grading machine, or a configuration error); your instructor has been told "
                                    "by the autograder log. Your notebook was not run."}


def write_results(rows: List[Row], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results_json(rows), indent=1) + "\n", encoding="utf-8")
