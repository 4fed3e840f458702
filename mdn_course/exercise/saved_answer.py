"""Carry a passing ``mdn_loss`` from the exercise (lesson 3) to lesson 4, in Colab too.

Locally, lesson 4 finds the exercise notebook beside it and reads the answer from there. In Colab every
notebook runs in its own runtime, so nothing of lesson 3 is on lesson 4's disk. Two ways across, both
found by :func:`answer_locations` (which lesson 4's :func:`~.student_loss.load_student_loss` searches):

* ``save_answer(mdn_loss)`` at the end of the exercise: the checks run once more and, if they pass, the
  answer cell's source goes to Google Drive (``MyDrive/mdn-course/mdn_loss_answer.py``; Colab asks for
  Drive access once), or, when Drive is refused, to ``mdn_loss_answer.py`` in the runtime's folder,
  which the browser downloads so the student can upload it into lesson 4's runtime (Files panel);
* *File > Save a copy in Drive* of the exercise: Colab keeps that copy in ``MyDrive/Colab Notebooks/``
  (named ``Copy of 03_exercise_mdn_loss_student.ipynb``), and lesson 4 reads the answer cell from it.

``save_answer`` itself (check, then store) is in :mod:`.student_loss`, beside the loader that checks
what it finds. Only the student's own code moves, in the student's own runtime; nothing here is used
by the grader.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Tuple

from ..kernel import in_colab, notebook_variable
from .answer_cell import defines_pattern, strip_markers

__all__ = ["ANSWER_FILE", "DRIVE_MOUNT", "DRIVE_ANSWER", "COLAB_NOTEBOOKS", "EXERCISE_STEM", "STUDENT_EXERCISE",
           "Location", "mount_drive", "answer_locations", "answer_source", "store_answer"]

#: The file ``save_answer`` writes.
ANSWER_FILE = "mdn_loss_answer.py"
#: Where Colab mounts Google Drive (the folder ``drive.mount`` is given; Colab starts in /content).
DRIVE_MOUNT = Path("/content/drive")
#: The saved answer, inside the mounted Drive.
DRIVE_ANSWER = Path("MyDrive") / "mdn-course" / ANSWER_FILE
#: Where Colab keeps the notebooks a student saves to Drive (File > Save a copy in Drive).
COLAB_NOTEBOOKS = Path("MyDrive") / "Colab Notebooks"
#: What the exercise notebook's file name contains, whatever Colab prefixed ("Copy of ...").
EXERCISE_STEM = "03_exercise_mdn_loss"
#: The exercise notebook students work in.
STUDENT_EXERCISE = f"{EXERCISE_STEM}_student.ipynb"


def mount_drive() -> Tuple[Optional[Path], str]:
    """(the mounted Drive folder, or None; a note saying what happened). In Colab this may ask for access."""
    if (DRIVE_MOUNT / "MyDrive").is_dir():
        return DRIVE_MOUNT, "already mounted"
    try:
        from google.colab import drive

        drive.mount(str(DRIVE_MOUNT))
    except Exception as exc:  # refused, timed out, no Colab: say so, never stop the lesson
        return None, f"not mounted ({type(exc).__name__}: {exc})"
    if (DRIVE_MOUNT / "MyDrive").is_dir():
        return DRIVE_MOUNT, "mounted"
    return None, f"not mounted (no MyDrive folder under {DRIVE_MOUNT})"


@dataclass(frozen=True)
class Location:
    """One place lesson 4 looks for the answer."""
    label: str                # how the lesson names it to the student
    path: Optional[Path]      # None: a place that could not be opened (Drive not mounted)


def answer_locations(folder: Optional[Path] = None, drive: Optional[bool] = None) -> List[Location]:
    """Where lesson 4 looks, in order: this folder, then (in Colab, unless ``drive`` is False) Google Drive.

    In this folder: a saved (or uploaded) ``mdn_loss_answer.py``, then the exercise notebook. In Drive:
    the answer ``save_answer`` put there, then the student's saved copies of the exercise, newest first.
    """
    folder = Path.cwd() if folder is None else Path(folder)
    places = [Location(f"this folder: {ANSWER_FILE}", folder / ANSWER_FILE),
              Location(f"this folder: {STUDENT_EXERCISE}", folder / STUDENT_EXERCISE)]
    if drive is False or (drive is None and not in_colab()):
        return places
    mounted, note = mount_drive()
    if mounted is None:
        return places + [Location(f"Google Drive: {note}", None)]
    places.append(Location(f"Google Drive: {DRIVE_ANSWER.as_posix()}", mounted / DRIVE_ANSWER))
    copies = sorted((p for p in (mounted / COLAB_NOTEBOOKS).glob(f"*{EXERCISE_STEM}*.ipynb") if p.is_file()),
                    key=lambda p: p.stat().st_mtime, reverse=True) if (mounted / COLAB_NOTEBOOKS).is_dir() else []
    if not copies:
        places.append(Location(f"Google Drive: {COLAB_NOTEBOOKS.as_posix()}/*{EXERCISE_STEM}*.ipynb (none there)", None))
    places += [Location(f"Google Drive: {(COLAB_NOTEBOOKS / p.name).as_posix()}", p) for p in copies]
    return places


def answer_source(fn: Callable) -> str:
    """The source of the cell that defined ``fn`` (the answer cell, helpers included), else of ``fn`` alone.

    In a notebook this is the newest cell in the kernel's input history that defines the function, so what
    is saved is what ran; anywhere else, :func:`inspect.getsource`.
    """
    name = getattr(fn, "__name__", "mdn_loss")
    history = list(notebook_variable("In") or [])
    defines = defines_pattern(name)
    for source in reversed(history):
        if isinstance(source, str) and defines.search(source):
            return strip_markers(source).strip() + "\n"
    return inspect.getsource(fn)


def store_answer(source: str, passed: List[str]) -> Tuple[Path, str]:
    """Write a passing answer where lesson 4 in another Colab runtime finds it; return (file, what to tell).

    Google Drive when it can be mounted (Colab asks for access once), else ``mdn_loss_answer.py`` in
    this folder, which the browser is asked to download so the student can upload it into lesson 4.
    """
    text = ("# mdn_loss from lesson 3 of mdn-course, saved by save_answer(); lesson 4 trains with it.\n"
            f"# It passed the checks {', '.join(passed)}. Edit it in the exercise and save again.\n\n" + source)
    mounted, note = mount_drive()
    if mounted is not None:
        target = mounted / DRIVE_ANSWER
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        return target, (f"Saved to your Google Drive as {DRIVE_ANSWER.as_posix()}: lesson 4 finds it there "
                        "(it asks for Drive access in its own runtime).")
    target = Path.cwd() / ANSWER_FILE
    target.write_text(text, encoding="utf-8")
    try:
        from google.colab import files

        files.download(str(target))
        fetched = "your browser downloads it"
    except Exception as exc:  # noqa: BLE001 - the file is still there to download by hand
        fetched = f"download it from the Files panel on the left ({type(exc).__name__}: {exc})"
    return target, (f"Google Drive is {note}, so it is saved as {ANSWER_FILE} here and {fetched}. In lesson 4, "
                    "upload that file (Files panel, Upload) before the cell that loads your loss.")
