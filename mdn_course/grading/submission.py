"""Read a submitted notebook without trusting it: the answer source and signs of tampering.

Only the answer cell(s) of a submission are ever executed (in the sandbox, see
:mod:`.server`); everything else is *inspected*, with bounded work (the file and the
answer have size caps, the scan is linear):

* check cells deleted, edited (source, check name, points in the cell or its
  nbgrader metadata) or added with an unknown name; the setup import removed;
* nbval comment markers (``# NBVAL_SKIP`` ...) or nbval/nbclient tags
  (``nbval-skip``, ``raises-exception``, ``skip-execution`` ...) on a check or
  answer cell (the distributed notebook tags its setup and narration cells
  ``nbval-ignore-output`` itself; cells other than the answer are never run);
* outputs that no kernel wrote: outputs on a cell without an execution count,
  or a check cell whose output reports a different check or other points.

None of this can change a grade (the points come from the trusted judge); it is
reported as the ``tampered`` flag. IPython line magics and shell escapes in the answer
(``%matplotlib inline``, ``!pip ...``) are commented out: there is no IPython in the sandbox.
"""
from __future__ import annotations

import json
import os
import stat
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

from ..exercise.checks import CHECKS

NBVAL_TAGS = {"nbval-ignore-output", "nbval-check-output", "nbval-raises-exception", "nbval-skip",
              "raises-exception", "skip-execution", "pytest-validate-ignore-output"}
_MARKER = re.compile(r"^[ \t]*#+[ \t]*(NBVAL_[A-Z_]*|PYTEST_VALIDATE_IGNORE_OUTPUT)\b.*$", re.MULTILINE)
_SETUP_LINE = "from mdn_course.exercise import run_check"
_CHECK_SRC = re.compile(r"""^run_check\(\s*(['"])(?P<name>\w+)\1\s*,\s*mdn_loss\s*\)\s*;?$""")
_DEFINES = re.compile(r"^[ \t]*(async[ \t]+)?def[ \t]+mdn_loss[ \t]*\(|^[ \t]*mdn_loss[ \t]*=", re.MULTILINE)
_CLAIM = re.compile(r"[✓✗]\s+(\w+)\s+\((\d+)\s+pt\)")

_MAGIC = re.compile(r"^([ \t]*)([%!].*)$", re.MULTILINE)
MAX_NOTEBOOK_BYTES = 8 * 1024 * 1024   # a notebook with its outputs; bigger is refused unread
MAX_ANSWER_CHARS = 200_000             # the answer cell(s); an honest answer is a few hundred


class InvalidSubmission(Exception):
    """The file cannot be graded at all (not JSON, not a notebook, no answer)."""


@dataclass
class Submission:
    path: Path
    answer_sources: List[str]
    answer_cells: List[int]            # indices in the submitted notebook
    fallback: bool                     # no cell tagged 'answer'; used the cell(s) defining mdn_loss
    tampering: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    @property
    def source(self) -> str:
        """The answer source(s) as one program, magics commented out."""
        return "\n\n".join(_MAGIC.sub(r"\1# (magic removed by the grader) \2", s) for s in self.answer_sources)


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _tags(cell) -> List[str]:
    tags = (cell.get("metadata") or {}).get("tags") or []
    return [str(t) for t in tags] if isinstance(tags, list) else []


def strip_markers(source: str) -> str:
    """The source without nbval comment markers."""
    return _MARKER.sub("", source)


def load(path: Path) -> Submission:
    """Read and inspect ``path`` (a regular file of at most MAX_NOTEBOOK_BYTES); raise InvalidSubmission."""
    if os.path.islink(path):  # never followed: it could point at the solution or a classmate's notebook
        raise InvalidSubmission("a symbolic link, not a file; submit the .ipynb file itself")
    try:
        # O_NOFOLLOW: no link swapped in after the check; O_NONBLOCK: a FIFO cannot hang the batch
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise InvalidSubmission("not a regular file (a pipe, device or folder); submit the .ipynb file itself")
            raw = f.read(MAX_NOTEBOOK_BYTES + 1)
    except OSError as exc:
        raise InvalidSubmission(f"cannot read the file: {exc.strerror or exc}") from None
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise InvalidSubmission(f"the notebook is over {MAX_NOTEBOOK_BYTES // 2 ** 20} MiB; clear its outputs "
                                "(Edit > Clear All Outputs) and submit again")
    try:
        nb = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidSubmission(f"not a notebook: the file is not valid JSON ({exc})") from None
    except RecursionError:  # e.g. 100,000 nested brackets: no notebook is built like that
        raise InvalidSubmission("not a notebook: its JSON is nested too deeply to read") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise InvalidSubmission("not a notebook: the JSON has no 'cells' list")
    cells = [c for c in nb["cells"] if isinstance(c, dict)]
    code = [(i, c) for i, c in enumerate(cells) if c.get("cell_type") == "code"]
    tagged = [(i, c) for i, c in code if "answer" in _tags(c)]
    fallback = False
    if not tagged:
        tagged = [(i, c) for i, c in code
                  if _DEFINES.search(_source(c)) and not _CHECK_SRC.match(_source(c).strip())]
        fallback = True
    if not tagged:
        raise InvalidSubmission("no answer cell: no code cell is tagged 'answer' and none defines mdn_loss")
    sub = Submission(path, [strip_markers(_source(c)) for _, c in tagged], [i for i, _ in tagged], fallback)
    if fallback:
        sub.notes.append("no cell is tagged 'answer'; graded the cell(s) defining mdn_loss "
                         f"(cell {', '.join(str(i + 1) for i in sub.answer_cells)})")
    size = sum(len(s) for s in sub.answer_sources)
    if size > MAX_ANSWER_CHARS:
        raise InvalidSubmission(f"the answer cell(s) hold {size} characters, over the limit of {MAX_ANSWER_CHARS}; "
                                "an answer to this exercise needs a few hundred")
    sub.tampering = find_tampering(cells, set(sub.answer_cells))
    if any(_MAGIC.search(s) for s in sub.answer_sources):
        sub.notes.append("IPython magics or shell escapes in the answer were commented out")
    return sub


def find_tampering(cells: List[dict], answer_cells: set) -> List[str]:
    found: List[str] = []
    seen: Dict[str, int] = {}
    has_setup = False
    for i, cell in enumerate(cells):
        src = _source(cell)
        meta = cell.get("metadata") or {}
        meta = meta if isinstance(meta, dict) else {}
        where = f"cell {i + 1}"
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs") and cell.get("execution_count") is None:
            found.append(f"{where} has outputs but no execution count (outputs written by hand)")
        if _SETUP_LINE in src:
            has_setup = True
        name = meta.get("check")
        is_check = i not in answer_cells and ("check" in _tags(cell) or name is not None or "run_check(" in src)
        if is_check or i in answer_cells:
            # nbval markers only matter on the cells that are graded; the distributed notebook itself
            # tags its setup and narration cells nbval-ignore-output, and those cells are never run here
            bad_tags = sorted(set(_tags(cell)) & NBVAL_TAGS)
            if bad_tags:
                found.append(f"{where} carries the nbval tag(s) {', '.join(bad_tags)}")
            markers = sorted(set(m.group(1) for m in _MARKER.finditer(src)))
            if markers:
                found.append(f"{where} carries the nbval comment(s) {', '.join('# ' + m for m in markers)}")
        if not is_check:
            continue
        m = _CHECK_SRC.match(strip_markers(src).strip())
        label = name or (m.group("name") if m else None)
        if label not in CHECKS:
            found.append(f"{where} is a check cell for an unknown check {label!r}")
            continue
        seen[label] = seen.get(label, 0) + 1
        if m is None or m.group("name") != label:
            found.append(f"check cell {label!r} ({where}) was edited")
        points = CHECKS[label].points
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
    for name in CHECKS:
        if name not in seen:
            found.append(f"check cell {name!r} was deleted")
        elif seen[name] > 1:
            found.append(f"check cell {name!r} appears {seen[name]} times")
    if not has_setup and seen:
        found.append(f"the setup line '{_SETUP_LINE}' was removed")
    return found
