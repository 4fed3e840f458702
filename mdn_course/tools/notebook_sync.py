"""Keep every lesson's Colab badge and Colab install cell generated from :mod:`mdn_course.links`.

The badge (first markdown cell) and the install cell (the code cell that runs
only ``if "google.colab" in sys.modules``) are the two places where a notebook
names the repository. They are not written by hand: this tool rewrites them from
the one setting, the way nbdev keeps notebooks and library in step, so moving the
repository is one edit in ``links.py`` plus::

    python -m mdn_course sync-notebooks          # rewrite badges and install cells, regenerate student copies
    python -m mdn_course sync-notebooks --check  # write nothing; exit 1 naming notebooks out of sync

A student copy's badge opens the student copy (``student_version`` applies
:func:`~mdn_course.tools.notebooks.set_badge` when it generates one). Only those two
cells change; outputs, ids and metadata stay as they are.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from nbformat import NotebookNode

from .. import links
from . import student_version
from .notebooks import NOTEBOOK_DIR, lessons, notebook_text, read, report_out_of_sync, set_badge

__all__ = ["install_cell_source", "is_install_cell", "sync_notebook", "out_of_sync", "sync", "main"]

_COLAB_TEST = 'if "google.colab" in sys.modules'
SYNC_COMMAND = "python -m mdn_course sync-notebooks"


def install_cell_source() -> str:
    """The first code cell of every lesson: in Colab only, clone the course and install it.

    The clone's ``mdn_course/colab_install.py`` does the installing: it adds only
    what the runtime lacks and never upgrades, downgrades or removes a package
    Colab brought (see that file), so a restarted runtime still works.
    Plain Python (no ``!`` shell magics) so that a failed clone or install stops
    the lesson with the command's error, and so that the test suite can run the
    cell as it is against a local bare repository (``$MDN_COURSE_REPO_URL``).
    """
    return (
        "import sys\n"
        "\n"
        f"{_COLAB_TEST}:  # only in Colab: fetch the course, add what Colab lacks, replace nothing\n"
        "    import os, subprocess\n"
        f'    url = os.environ.get("{links.ENV_REPO_URL}", "{links.REPO_URL}")\n'
        '    course = os.path.abspath("mdn-course")  # Colab starts in /content\n'
        "    if not os.path.isdir(course):\n"
        '        subprocess.run(["git", "clone", "-q", "--depth", "1", url, course], check=True)\n'
        '    installer = os.path.join(course, "mdn_course", "colab_install.py")\n'
        "    done = subprocess.run([sys.executable, installer, course], capture_output=True, text=True)\n"
        '    print(done.stdout + done.stderr, end="")\n'
        "    done.check_returncode()  # stops the lesson here if the course could not be installed\n"
        "    sys.path.insert(0, course)"
    )


def is_install_cell(cell: NotebookNode) -> bool:
    """The Colab install cell: a code cell guarded by ``if "google.colab" in sys.modules``."""
    return cell.cell_type == "code" and _COLAB_TEST in cell.source


def sync_notebook(nb: NotebookNode, notebook_name: str) -> bool:
    """Rewrite the badge and the install cell of ``nb`` (in place); True if anything changed."""
    changed = set_badge(nb, notebook_name)
    install = next((c for c in nb.cells if is_install_cell(c)), None)
    if install is None:
        raise ValueError(f"{notebook_name}: no Colab install cell (a code cell with '{_COLAB_TEST}'); "
                         "put one before the setup cell")
    if install.source != install_cell_source():
        install.source = install_cell_source()
        changed = True
    return changed


def out_of_sync(nb_dir: Path = NOTEBOOK_DIR) -> List[Path]:
    """Lesson notebooks (student copies included) whose badge or install cell differ from the setting."""
    stale = [p for p in lessons(nb_dir) if sync_notebook(read(p), p.name)]
    return stale + [p for p in student_version.out_of_sync(nb_dir) if p not in stale]


def sync(nb_dir: Path = NOTEBOOK_DIR) -> List[Path]:
    """Rewrite every lesson's badge and install cell, then regenerate the student copies; return files written."""
    written = []
    for path in lessons(nb_dir):
        nb = read(path)
        if sync_notebook(nb, path.name):
            path.write_text(notebook_text(nb), encoding="utf-8")
            written.append(path)
    return written + student_version.write_student_notebooks(nb_dir)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mdn_course sync-notebooks",
                                     description="Rewrite the lessons' Colab badges and install cells from "
                                                 "mdn_course/links.py, and regenerate the student copies.")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 naming notebooks out of sync")
    parser.add_argument("--dir", type=Path, default=NOTEBOOK_DIR, help="notebook folder (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        if args.check:
            return report_out_of_sync(out_of_sync(args.dir), SYNC_COMMAND,
                                      f"badges and install cells follow mdn_course/links.py ({links.REPO_URL})")
        for path in sync(args.dir):
            print(f"wrote {path.name}")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
