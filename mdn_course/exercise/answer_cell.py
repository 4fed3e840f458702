"""The answer cell(s) of an exercise notebook, read as untrusted input (standard library only).

Lesson 4 (:mod:`.student_loss`) trains with the student's own ``mdn_loss``, and the instructor's
grader runs it in a sandbox: both take it from here. The notebook is read without trusting it:
a symbolic link is never followed, a FIFO cannot block (``O_NONBLOCK``), the file and the answer
have size caps, JSON nested too deeply is refused, and the scan is linear. The answer is every
code cell tagged ``answer``; a notebook that lost its tags falls back to the code cells that
define the function (check cells excluded), and says so. nbval comment markers are stripped,
and IPython line magics and shell escapes (``%matplotlib inline``, ``!pip ...``) are commented
out in :attr:`AnswerCells.source`: the answer runs without IPython.

Which exercise a notebook answers is read from its answer cell's metadata
(:func:`exercise_of_cells`): the nbgrader ``grade_id`` of the cell tagged ``answer`` is
``<function>_answer`` (``mdn_loss_answer``, ``training_step_answer``); a notebook that lost that
metadata is recognised by the function its code defines.
"""
from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence

__all__ = ["ANSWER_TAG", "MAX_NOTEBOOK_BYTES", "MAX_ANSWER_CHARS", "InvalidNotebook", "AnswerCells",
           "read_cells", "find_answer", "read_answer", "cell_source", "cell_tags", "strip_markers",
           "check_cell_pattern", "defines_pattern", "answer_grade_id", "exercise_of_cells", "defines_function"]

ANSWER_TAG = "answer"
MAX_NOTEBOOK_BYTES = 8 * 1024 * 1024   # a notebook with its outputs; bigger is refused unread
MAX_ANSWER_CHARS = 200_000             # the answer cell(s); an honest answer is a few hundred
NBVAL_MARKER = re.compile(r"^[ \t]*#+[ \t]*(NBVAL_[A-Z_]*|PYTEST_VALIDATE_IGNORE_OUTPUT)\b.*$", re.MULTILINE)
_MAGIC = re.compile(r"^([ \t]*)([%!].*)$", re.MULTILINE)


class InvalidNotebook(Exception):
    """The file cannot be graded or used at all (not a regular file, not JSON, not a notebook, no answer)."""


@dataclass
class AnswerCells:
    """The answer of one notebook: the source of each answer cell and where the cells are."""
    path: Path
    answer_sources: List[str]
    answer_cells: List[int]            # indices in the notebook
    fallback: bool                     # no cell tagged 'answer'; used the cell(s) defining the function
    notes: List[str] = field(default_factory=list)

    @property
    def source(self) -> str:
        """The answer source(s) as one program, magics commented out."""
        return "\n\n".join(_MAGIC.sub(r"\1# (magic removed by the grader) \2", s) for s in self.answer_sources)


def cell_source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def cell_tags(cell: dict) -> List[str]:
    tags = (cell.get("metadata") or {}).get("tags") or []
    return [str(t) for t in tags] if isinstance(tags, list) else []


def strip_markers(source: str) -> str:
    """The source without nbval comment markers."""
    return NBVAL_MARKER.sub("", source)


def check_cell_pattern(function: str) -> re.Pattern:
    """What a check cell of the exercise of ``function`` holds: ``run_check("<name>", <function>)``."""
    return re.compile(r"""^run_check\(\s*(['"])(?P<name>\w+)\1\s*,\s*""" + re.escape(function) + r"""\s*\)\s*;?$""")


def answer_grade_id(function: str) -> str:
    """The nbgrader ``grade_id`` of the answer cell of the exercise whose students write ``function``."""
    return f"{function}_answer"


def defines_function(source: str, function: str) -> bool:
    """Whether ``source`` defines ``function`` (a ``def`` or an assignment at the start of a line)."""
    return bool(defines_pattern(function).search(source))


def exercise_of_cells(cells: List[dict], functions: Sequence[str]) -> Optional[str]:
    """Which of ``functions`` the notebook's exercise asks for: the one named by the nbgrader ``grade_id`` of a
    cell tagged ``answer``, else the first one a code cell other than a check cell defines, else None."""
    code = [c for c in cells if c.get("cell_type") == "code"]
    for cell in code:
        meta = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        grade_id = (meta.get("nbgrader") or {}).get("grade_id") if isinstance(meta.get("nbgrader"), dict) else None
        if ANSWER_TAG in cell_tags(cell):
            for function in functions:
                if grade_id == answer_grade_id(function):
                    return function
    for function in functions:
        check_cell = check_cell_pattern(function)
        if any(defines_pattern(function).search(cell_source(c)) and not check_cell.match(cell_source(c).strip())
               for c in code):
            return function
    return None


def _read_regular_file(path: Path, limit: int, kind: str) -> bytes:
    """At most ``limit`` + 1 bytes of ``path``, which must be a regular file and not a link; raise InvalidNotebook."""
    if os.path.islink(path):  # never followed: it could point at the solution or a classmate's notebook
        raise InvalidNotebook(f"a symbolic link, not a file; submit the {kind} itself")
    try:
        # O_NOFOLLOW: no link swapped in after the check; O_NONBLOCK: a FIFO cannot hang the batch
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise InvalidNotebook(f"not a regular file (a pipe, device or folder); submit the {kind} itself")
            return f.read(limit + 1)
    except OSError as exc:
        raise InvalidNotebook(f"cannot read the file: {exc.strerror or exc}") from None


def read_cells(path: Path) -> List[dict]:
    """The cells of the notebook at ``path`` (a regular file of at most MAX_NOTEBOOK_BYTES); raise InvalidNotebook."""
    raw = _read_regular_file(path, MAX_NOTEBOOK_BYTES, ".ipynb file")
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise InvalidNotebook(f"the notebook is over {MAX_NOTEBOOK_BYTES // 2 ** 20} MiB; clear its outputs "
                              "(Edit > Clear All Outputs) and submit again")
    try:
        nb = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidNotebook(f"not a notebook: the file is not valid JSON ({exc})") from None
    except RecursionError:  # e.g. 100,000 nested brackets: no notebook is built like that
        raise InvalidNotebook("not a notebook: its JSON is nested too deeply to read") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise InvalidNotebook("not a notebook: the JSON has no 'cells' list")
    return [c for c in nb["cells"] if isinstance(c, dict)]


def defines_pattern(function: str) -> re.Pattern:
    """What source that defines ``function`` holds: ``def function(`` or ``function = ...`` at the start of a line."""
    return re.compile(r"^[ \t]*(async[ \t]+)?def[ \t]+" + re.escape(function) + r"[ \t]*\(|^[ \t]*"
                      + re.escape(function) + r"[ \t]*=", re.MULTILINE)


def find_answer(cells: List[dict], path: Path, function: str = "mdn_loss") -> AnswerCells:
    """The answer cell(s) among ``cells`` for the exercise whose students write ``function``."""
    defines = defines_pattern(function)
    check_cell = check_cell_pattern(function)
    code = [(i, c) for i, c in enumerate(cells) if c.get("cell_type") == "code"]
    tagged = [(i, c) for i, c in code if ANSWER_TAG in cell_tags(c)]
    fallback = False
    if not tagged:
        tagged = [(i, c) for i, c in code
                  if defines.search(cell_source(c)) and not check_cell.match(cell_source(c).strip())]
        fallback = True
    if not tagged:
        raise InvalidNotebook(f"no answer cell: no code cell is tagged '{ANSWER_TAG}' and none defines {function}")
    answer = AnswerCells(path, [strip_markers(cell_source(c)) for _, c in tagged], [i for i, _ in tagged], fallback)
    if fallback:
        answer.notes.append(f"no cell is tagged '{ANSWER_TAG}'; graded the cell(s) defining {function} "
                            f"(cell {', '.join(str(i + 1) for i in answer.answer_cells)})")
    size = sum(len(s) for s in answer.answer_sources)
    if size > MAX_ANSWER_CHARS:
        raise InvalidNotebook(f"the answer cell(s) hold {size} characters, over the limit of {MAX_ANSWER_CHARS}; "
                              "an answer to this exercise needs a few hundred")
    if any(_MAGIC.search(s) for s in answer.answer_sources):
        answer.notes.append("IPython magics or shell escapes in the answer were commented out")
    return answer


def read_answer(path: Path, function: str = "mdn_loss") -> AnswerCells:
    """The answer in ``path``: a notebook's answer cell(s), or a ``.py`` file's whole text (a saved answer).

    A ``.py`` file is what :func:`mdn_course.exercise.saved_answer.save_answer` writes; it is read with
    the same care as a notebook. Raise InvalidNotebook when there is no answer to read.
    """
    if Path(path).suffix != ".py":
        return find_answer(read_cells(path), path, function)
    raw = _read_regular_file(path, MAX_ANSWER_CHARS * 4, ".py file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidNotebook(f"not a Python file: it is not UTF-8 text ({exc})") from None
    if len(text) > MAX_ANSWER_CHARS:
        raise InvalidNotebook(f"the file holds over {MAX_ANSWER_CHARS} characters; an answer needs a few hundred")
    if not defines_pattern(function).search(text):
        raise InvalidNotebook(f"the file defines no function {function}")
    return AnswerCells(Path(path), [strip_markers(text)], [], False)
