"""What the notebook tools share: where the notebooks are, how one is stored, a student copy's name, badges.

A leaf: it imports only nbformat and :mod:`mdn_course.links`, so every authoring tool
(``student_version``, ``notebook_sync``, ``notebook_runner``, ``lab``) can use it and none of
them needs another's internals.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import List, Sequence

import nbformat
from nbformat import NotebookNode

from .. import links

__all__ = ["REPO_ROOT", "NOTEBOOK_DIR", "NARRATION_DIR", "read", "notebook_text", "tags", "student_path",
           "is_student_copy", "lessons", "BADGE_RE", "badge_markdown", "set_badge", "report_out_of_sync"]

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The repository's notebook folder: the lessons (solutions) and the generated student copies.
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
NARRATION_DIR = REPO_ROOT / "narration"

BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
#: An "Open In Colab" badge, whatever address it points to.
BADGE_RE = re.compile(r"\[!\[Open In Colab\]\(" + re.escape(BADGE_IMAGE) + r"\)\]\([^)\s]*\)")


def read(path: Path) -> NotebookNode:
    return nbformat.read(path, as_version=4)


def notebook_text(nb: NotebookNode) -> str:
    """The exact text a notebook is stored as (what ``nbformat.write`` produces)."""
    return nbformat.writes(nb) + "\n"


def tags(cell: NotebookNode) -> List[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def student_path(solution_path: Path) -> Path:
    """Where the student copy of the solution notebook ``solution_path`` lives (``<stem>_student.ipynb``)."""
    solution_path = Path(solution_path)
    return solution_path.with_name(f"{solution_path.stem}_student.ipynb")


def is_student_copy(path: Path) -> bool:
    return Path(path).stem.endswith("_student")


def lessons(nb_dir: Path = NOTEBOOK_DIR) -> List[Path]:
    """The lesson notebooks in ``nb_dir``, in order (the solutions; student copies left out)."""
    return sorted(p for p in Path(nb_dir).glob("*.ipynb") if not is_student_copy(p))


def badge_markdown(notebook_name: str) -> str:
    """The Markdown of the "Open In Colab" badge of ``notebooks/<notebook_name>``."""
    return f"[![Open In Colab]({BADGE_IMAGE})]({links.colab_url(notebook_name)})"


def set_badge(nb: NotebookNode, notebook_name: str) -> bool:
    """Point the badge of ``nb``'s first markdown cell at ``notebook_name`` (in place); True if changed."""
    title = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if title is None or not BADGE_RE.search(title.source):
        raise ValueError(f"{notebook_name}: the first markdown cell has no 'Open In Colab' badge; "
                         f"add {badge_markdown(notebook_name)} under the title")
    new = BADGE_RE.sub(lambda _: badge_markdown(notebook_name), title.source, count=1)
    changed = new != title.source
    title.source = new
    return changed


def report_out_of_sync(stale: Sequence[Path], fix: str, in_sync: str) -> int:
    """Print one line per stale notebook naming the command ``fix``, or ``in_sync``; return the exit status."""
    for path in stale:
        print(f"out of sync: {path.name} (run: {fix})")
    if not stale:
        print(in_sync)
    return 1 if stale else 0
