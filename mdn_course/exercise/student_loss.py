"""Let the student's own ``mdn_loss`` drive training, when it is right.

Lesson 4 trains the MDN-RNN. If the student has written ``mdn_loss`` in the
exercise notebook, it is more satisfying (and a real test of the answer) to
train with *that* function. ``load_student_loss`` reads the answer cell (tag
``answer``) of the exercise notebook, runs it in a fresh namespace, puts the
function through the exercise's checks, and returns it only if every check
passes. Otherwise it falls back to the package's reference ``mdn_loss`` and
says why, so the lesson always trains a correct model and always tells the
student which loss it used.

The slow checks (``learns``, a training run) are skipped by default: lesson 4
itself is the training run, and its loss curve against the floor shows whether
the loss learns. The answer runs in the names the exercise notebook defines
before its answer cell (:func:`mdn_course.sandboxed.oracle.answer_namespace`),
as it does in the grader's sandbox.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import torch

from ..device import get_device
from ..loss import mdn_loss as reference_mdn_loss
from ..sandboxed.oracle import answer_namespace
from .answer_cell import InvalidNotebook, read_answer
from .checks import MDN_LOSS
from .notebook import run_all_checks

__all__ = ["StudentLoss", "load_student_loss", "DEFAULT_EXERCISE"]

#: Where the student's exercise notebook lives, relative to the notebooks folder.
DEFAULT_EXERCISE = "03_exercise_mdn_loss_student.ipynb"


@dataclass
class StudentLoss:
    """The loss to train with, and the story of how it was chosen."""

    loss_fn: Callable[..., torch.Tensor]
    is_student: bool
    reason: str
    failed_checks: List[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line for the notebook: which loss is used and why."""
        who = "your mdn_loss" if self.is_student else "the reference mdn_loss (mdn_course.mdn_loss)"
        return f"training with {who}: {self.reason}"


def load_student_loss(notebook: Optional[Path] = None, *, checks: Optional[Sequence[str]] = None) -> StudentLoss:
    """The student's ``mdn_loss`` from the exercise notebook if it passes the checks, else the reference.

    Args:
        notebook: the exercise notebook (default: ``03_exercise_mdn_loss_student.ipynb`` in the
            current folder, which is ``notebooks/`` when a lesson runs).
        checks: names of the checks to run (default: all but the slow ones).
    Never raises for a student's mistake: any problem becomes the reason for the fallback.
    """
    path = Path(notebook) if notebook is not None else Path.cwd() / DEFAULT_EXERCISE
    fallback = lambda reason, failed=(): StudentLoss(reference_mdn_loss, False, reason, list(failed))  # noqa: E731
    if not path.is_file():
        return fallback(f"no exercise notebook at {path.name}; do lesson 3 to train with your own")
    try:
        source = read_answer(path, MDN_LOSS.function).source
    except InvalidNotebook as exc:
        return fallback(f"could not read your answer from {path.name} ({exc})")
    namespace: Dict[str, object] = {"__name__": "student_answer",
                                    **answer_namespace(MDN_LOSS.function, get_device())}
    try:
        exec(compile(source, f"<{path.name}: answer cell>", "exec"), namespace)
    except Exception as exc:  # the student's cell, whatever it does
        return fallback(f"your answer cell in {path.name} stops with {type(exc).__name__}: {exc}")
    student = namespace.get("mdn_loss")
    if not callable(student):
        return fallback(f"your answer cell in {path.name} defines no function mdn_loss")
    try:
        k = torch.ones(1, 1, 1)
        student(k, torch.zeros(1, 1, 1), k, torch.zeros(1, 1))
    except NotImplementedError:
        return fallback(f"mdn_loss in {path.name} is not written yet (lesson 3)")
    except Exception:  # noqa: BLE001 - wrong answers are the checks' business, below
        pass
    names = list(checks) if checks is not None else [n for n, c in MDN_LOSS.checks.items() if not c.slow]
    try:
        results = run_all_checks(student, names)
    except Exception as exc:  # a check harness problem must not stop the lesson
        return fallback(f"the checks could not run on your answer ({type(exc).__name__}: {exc})")
    failed = [name for name, result in results.items() if not result.passed]
    if failed:
        return fallback(f"your mdn_loss does not pass the check(s) {', '.join(failed)} yet (see lesson 3)", failed)
    return StudentLoss(student, True, f"it passes the checks {', '.join(names)}")
