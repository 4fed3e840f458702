"""The assistant's knowledge: passages of the course itself, read from the lessons at run time.

Why at run time: the lessons change (sections are added, text is rewritten), and an index
built from the notebooks as they are now can never drift out of sync with them. Reading the
notebooks and transcripts takes tens of milliseconds.

Three kinds of passage, each tagged with the lesson file and the section (``##`` heading)
a student should open:

* ``lesson``: one per markdown cell of a lesson, under the nearest ``##`` heading (cells before
  the first ``##`` belong to the lesson's title). Code cells are never read, so the exercise's
  answer cell, and with it the solution, cannot leak into an answer.
* ``narration``: the transcript ``narration/scripts/<id>.txt`` of every segment, placed in the
  section whose cell calls ``play("<id>")``.
* ``faq``: questions students often ask, with answers written for this course
  (``faq.json`` beside this module), each pointing at the section that explains more.

Cells tagged ``assistant`` (the cells at the end of each lesson that open the chat panel) are
skipped: they are about the assistant, not the course.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

__all__ = ["Passage", "course_root", "lesson_files", "load_passages", "heading_anchor", "lesson_title", "resolve_lesson",
           "FAQ_PATH"]

FAQ_PATH = Path(__file__).with_name("faq.json")
ASSISTANT_TAG = "assistant"      # cells with this tag (the lessons' chat cells) are left out of the corpus
_PLAY = re.compile(r"""play\(\s*["']([\w.-]+)["']""")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)
# The exercises are read from their student copies: those are the notebooks students open and should be sent to.
_SKIP = ("03_exercise_mdn_loss.ipynb", "04b_exercise_training_step.ipynb")


@dataclass(frozen=True)
class Passage:
    """One retrievable piece of course text, with where it lives."""
    notebook: str      # lesson file name, e.g. "04_training.ipynb"
    section: str       # the heading text of its section, as written in the notebook
    kind: str          # "lesson", "narration" or "faq"
    text: str          # what is shown to the student (markdown for lessons, plain text otherwise)
    question: str = "" # for FAQ entries: the question the answer was written for


def course_root() -> Path:
    """The folder holding ``notebooks/`` and ``narration/``.

    ``MDN_COURSE_ROOT`` wins; otherwise the checkout the package is installed from (an
    editable install, as in Colab's setup cell), then the current folder and its parent.
    """
    candidates: List[Path] = []
    if os.environ.get("MDN_COURSE_ROOT"):
        candidates.append(Path(os.environ["MDN_COURSE_ROOT"]))
    here = Path(__file__).resolve()
    candidates += [here.parents[2], Path.cwd(), Path.cwd().parent]
    for root in candidates:
        if (root / "notebooks").is_dir():
            return root
    raise FileNotFoundError(
        "cannot find the course's notebooks/ folder next to the package or in the current folder; "
        "install the course from its checkout (pip install -e .) or set MDN_COURSE_ROOT to the checkout")


def lesson_files(root: Optional[Path] = None) -> List[Path]:
    """The lesson notebooks, in order (the exercise as its student copy when there is one)."""
    folder = (root or course_root()) / "notebooks"
    files = sorted(folder.glob("[0-9][0-9]*_*.ipynb"))   # 04b_... sits after lesson 4
    names = {f.name for f in files}
    keep = []
    for f in files:
        if f.name in _SKIP and f.name.replace(".ipynb", "_student.ipynb") in names:
            continue
        keep.append(f)
    return keep


def heading_anchor(heading: str) -> str:
    """The fragment Jupyter gives a heading: its visible text with spaces turned into hyphens."""
    visible = re.sub(r"[`*$]", "", heading).strip()
    return re.sub(r"\s+", "-", visible)


def _cell_source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _sections(path: Path) -> Iterable[Tuple[str, str, str]]:
    """(section heading, cell type, text) in notebook order; markdown cells are split at ``#``/``##`` headings.

    A section is the latest level-1 or level-2 heading; deeper headings (``####``) stay inside it.
    """
    nb = json.loads(path.read_text(encoding="utf-8"))
    section = ""
    for cell in nb.get("cells", []):
        if ASSISTANT_TAG in cell.get("metadata", {}).get("tags", []):
            continue                     # the cells that open the assistant are not course content
        source = _cell_source(cell)
        if cell.get("cell_type") != "markdown":
            yield section, cell.get("cell_type", ""), source
            continue
        start = 0
        for match in _HEADING.finditer(source):
            if len(match.group(1)) > 2:
                continue
            if source[start:match.start()].strip():
                yield section, "markdown", source[start:match.start()]
            section, start = match.group(2).strip(), match.start()
        if source[start:].strip():
            yield section, "markdown", source[start:]


def lesson_title(notebook: str, root: Optional[Path] = None) -> str:
    """The ``#`` title of a lesson (its first section)."""
    for section, _, _ in _sections((root or course_root()) / "notebooks" / notebook):
        if section:
            return section
    return notebook


def _lesson_passages(path: Path, scripts: Dict[str, str]) -> List[Passage]:
    out: List[Passage] = []
    for section, kind, source in _sections(path):
        if kind == "markdown":
            out.append(Passage(path.name, section, "lesson", source.strip()))
        elif kind == "code":
            for segment in _PLAY.findall(source):
                if segment in scripts:
                    out.append(Passage(path.name, section, "narration", scripts[segment]))
    return out


def _faq_passages(path: Path = FAQ_PATH) -> List[Passage]:
    entries = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for i, e in enumerate(entries):
        missing = {"question", "answer", "notebook", "section"} - set(e)
        if missing:
            raise ValueError(f"{path.name} entry {i} lacks {sorted(missing)}; every entry needs "
                             "question, answer, notebook and section")
        out.append(Passage(e["notebook"], e["section"], "faq", e["answer"], question=e["question"]))
    return out


def load_passages(root: Optional[Path] = None, include_faq: bool = True) -> List[Passage]:
    """Every passage of the course: lesson markdown, narration transcripts, and the FAQ."""
    root = root or course_root()
    script_dir = root / "narration" / "scripts"
    scripts = {p.stem: p.read_text(encoding="utf-8").strip() for p in sorted(script_dir.glob("*.txt"))}
    passages: List[Passage] = []
    for path in lesson_files(root):
        passages += _lesson_passages(path, scripts)
    if include_faq:
        passages += _faq_passages()
    return passages


def resolve_lesson(lesson, root: Optional[Path] = None) -> str:
    """The lesson file for ``lesson`` given as 4, "04", "04_training" or "04_training.ipynb"."""
    files = [p.name for p in lesson_files(root)]
    key = f"{lesson:02d}" if isinstance(lesson, int) else str(lesson).strip()
    key = key[:-len(".ipynb")] if key.endswith(".ipynb") else key
    matches = [f for f in files if f[:-len(".ipynb")] == key or f.startswith(key + "_")
               or f[:-len(".ipynb")] == key + "_student"]
    if len(matches) != 1:
        raise ValueError(f"unknown lesson {lesson!r}; give its number or file name, one of: {', '.join(files)}")
    return matches[0]
