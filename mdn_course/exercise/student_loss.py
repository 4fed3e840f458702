"""Let the student's own ``mdn_loss`` drive training, when it is right.

Lesson 4 trains the MDN-RNN. If the student has written ``mdn_loss`` in the
exercise, it is more satisfying (and a real test of the answer) to train with
*that* function. ``load_student_loss`` looks for the answer where
:func:`.saved_answer.answer_locations` says (this folder's saved answer or
exercise notebook, and in Colab, where each lesson has its own runtime, the
student's Google Drive), runs it in a fresh namespace, puts the function through
the exercise's checks, and returns the first that passes every check. Otherwise
it falls back to the package's reference ``mdn_loss`` and says why and where it
looked, so the lesson always trains a correct model and always tells the
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
from ..kernel import in_colab, notebook_variable
from ..loss import mdn_loss as reference_mdn_loss
from ..sandboxed.oracle import answer_namespace
from .answer_cell import InvalidNotebook, read_answer
from .checks import MDN_LOSS
from .notebook import run_all_checks
from .saved_answer import STUDENT_EXERCISE, Location, answer_locations, answer_source, store_answer

__all__ = ["StudentLoss", "load_student_loss", "load_answer_source", "save_answer", "DEFAULT_EXERCISE"]

#: Where the student's exercise notebook lives, relative to the notebooks folder.
DEFAULT_EXERCISE = STUDENT_EXERCISE


@dataclass
class StudentLoss:
    """The loss to train with, and the story of how it was chosen."""

    loss_fn: Callable[..., torch.Tensor]
    is_student: bool
    reason: str
    failed_checks: List[str] = field(default_factory=list)
    checks: List[str] = field(default_factory=list)       # the checks it passed (a student's loss)
    found_in: Optional[str] = None                         # where the answer came from
    looked_in: List[str] = field(default_factory=list)     # every place searched, in order

    def describe(self) -> str:
        """One line for the notebook: which loss is used, why, and where the answer was looked for."""
        who = "your mdn_loss" if self.is_student else "the reference mdn_loss (mdn_course.mdn_loss)"
        line = f"training with {who}: {self.reason}"
        if self.found_in:
            line += f" (from {self.found_in})"
        if not self.is_student and self.looked_in:
            line += "; looked in " + "; ".join(self.looked_in)
        return line


def _fallback(reason: str, failed: Sequence[str] = ()) -> StudentLoss:
    return StudentLoss(reference_mdn_loss, False, reason, list(failed))


def load_answer_source(source: str, where: str, checks: Optional[Sequence[str]] = None) -> StudentLoss:
    """Run an answer's ``source`` in a fresh namespace and check its ``mdn_loss``; ``where`` names it in messages."""
    namespace: Dict[str, object] = {"__name__": "student_answer",
                                    **answer_namespace(MDN_LOSS.function, get_device())}
    try:
        exec(compile(source, f"<{where}>", "exec"), namespace)
    except Exception as exc:  # the student's cell, whatever it does
        return _fallback(f"{where} stops with {type(exc).__name__}: {exc}")
    student = namespace.get("mdn_loss")
    if not callable(student):
        return _fallback(f"{where} defines no function mdn_loss")
    try:
        k = torch.ones(1, 1, 1)
        student(k, torch.zeros(1, 1, 1), k, torch.zeros(1, 1))
    except NotImplementedError:
        return _fallback(f"mdn_loss in {where} is not written yet (lesson 3)")
    except Exception:  # noqa: BLE001 - wrong answers are the checks' business, below
        pass
    names = list(checks) if checks is not None else [n for n, c in MDN_LOSS.checks.items() if not c.slow]
    try:
        results = run_all_checks(student, names)
    except Exception as exc:  # a check harness problem must not stop the lesson
        return _fallback(f"the checks could not run on {where} ({type(exc).__name__}: {exc})")
    failed = [name for name, result in results.items() if not result.passed]
    if failed:
        return _fallback(f"mdn_loss in {where} does not pass the check(s) {', '.join(failed)} yet (see lesson 3)",
                         failed)
    return StudentLoss(student, True, f"it passes the checks {', '.join(names)}", checks=names)


def _load_from(path: Path, checks: Optional[Sequence[str]]) -> StudentLoss:
    try:
        source = read_answer(path, MDN_LOSS.function).source
    except InvalidNotebook as exc:
        return _fallback(f"could not read your answer from {path.name} ({exc})")
    where = f"your saved answer {path.name}" if path.suffix == ".py" else f"your answer cell in {path.name}"
    return load_answer_source(source, where, checks)


def load_student_loss(notebook: Optional[Path] = None, *, checks: Optional[Sequence[str]] = None,
                      drive: Optional[bool] = None) -> StudentLoss:
    """The student's ``mdn_loss`` if one passes the checks, else the reference; it says where it looked.

    Args:
        notebook: read only this exercise notebook (or saved answer file). Default: every place in
            :func:`.saved_answer.answer_locations`: this folder (``mdn_loss_answer.py``, then
            ``03_exercise_mdn_loss_student.ipynb``), then in Colab the student's Google Drive.
        checks: names of the checks to run (default: all but the slow ones).
        drive: look in Google Drive (default: in Colab only, which may ask for Drive access).
    Never raises for a student's mistake: any problem becomes the reason for the fallback.
    """
    if notebook is not None:
        path = Path(notebook)
        if not path.is_file():
            return _fallback(f"no exercise notebook at {path.name}; do lesson 3 to train with your own")
        places = [Location(str(path), path)]
    else:
        places = answer_locations(drive=drive)
    looked = [place.label for place in places]
    first_failure: Optional[StudentLoss] = None
    for place in places:
        if place.path is None or not place.path.is_file():
            continue
        chosen = _load_from(place.path, checks)
        chosen.looked_in = looked
        if chosen.is_student:
            chosen.found_in = place.label
            return chosen
        first_failure = first_failure or chosen
    if first_failure is not None:
        return first_failure
    chosen = _fallback("no answer found; do lesson 3 (and in Colab, run its save_answer cell) to train with your own")
    chosen.looked_in = looked
    return chosen


def save_answer(fn: Optional[Callable] = None) -> Optional[Path]:
    """Check ``fn`` (default: the notebook's ``mdn_loss``) and, in Colab, save it where lesson 4 finds it.

    The exercise's last section calls ``save_answer(mdn_loss)``. In Colab the passing answer cell goes
    to Google Drive (or, when Drive is refused, to a file the browser downloads; see
    :func:`.saved_answer.store_answer`). Outside Colab nothing needs saving: lesson 4 reads the exercise
    notebook beside it. Returns the file written, or None. Never raises for a student's mistake.
    """
    if fn is None:
        fn = notebook_variable("mdn_loss")
    if not callable(fn):
        print("Nothing saved: there is no function mdn_loss yet; run the answer cell first.")
        return None
    try:
        source = answer_source(fn)
    except (OSError, TypeError) as exc:
        print(f"Nothing saved: the source of mdn_loss cannot be found ({exc}); run the answer cell again.")
        return None
    chosen = load_answer_source(source, "your answer cell")
    if not chosen.is_student:
        print(f"Nothing saved: {chosen.reason}.")
        return None
    passes = f"Your mdn_loss passes the checks {', '.join(chosen.checks)}."
    if not in_colab():
        print(f"{passes} Nothing to save outside Colab: lesson 4 reads your answer from "
              f"{STUDENT_EXERCISE} in this folder (save the notebook first).")
        return None
    target, told = store_answer(source, chosen.checks)
    print(f"{passes} {told}")
    return target
