"""A workspace for a student running the course locally: ``python -m mdn_course lab``.

Opening the repository's notebooks directly in JupyterLab autosaves into tracked
files (a ``git pull`` of course updates then conflicts) and, for the exercise,
shows the solution. This command instead copies what a student works on into a
git-ignored folder (default ``./workspace/``) and opens JupyterLab there:

* every lesson as it is, except the exercise, whose student copy
  (``*_student.ipynb``) is copied instead of the solution;
* the narration (``audio/`` and ``scripts/``) into ``workspace/narration/``, so
  the player links each mp3 by a relative path instead of embedding it and a
  saved notebook stays small.

A notebook already in the workspace is **never overwritten** once the student
may have edited it: the workspace remembers (``.mdn-course-lab.json``) the hash of
each copy it made, updates a notebook only while it is still byte-for-byte that
copy, and otherwise keeps it and says so. Delete a notebook to get a fresh copy.

Kernels get the ``ipc`` transport (``--KernelManager.transport=ipc``, see
:func:`mdn_course.tools.notebook_runner.local_kernel_manager_class`) on POSIX.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from .notebooks import NARRATION_DIR, NOTEBOOK_DIR, lessons, student_path

__all__ = ["DEFAULT_WORKSPACE", "Copied", "lesson_sources", "prepare_workspace", "jupyterlab_command", "main"]

DEFAULT_WORKSPACE = Path("workspace")
STATE_FILE = ".mdn-course-lab.json"
INSTALL_HINT = "python -m pip install jupyterlab"


@dataclass(frozen=True)
class Copied:
    """What happened to one notebook: ``action`` is "copied", "updated", "unchanged" or "kept"."""

    name: str
    action: str


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lesson_sources(nb_dir: Path = NOTEBOOK_DIR) -> List[Path]:
    """The notebooks a student works on, in order: each lesson, the exercise as its student copy."""
    found = lessons(nb_dir)
    if not found:
        raise FileNotFoundError(f"no lesson notebooks in {nb_dir}; run this from a checkout of the course")
    return [student_path(p) if student_path(p).exists() else p for p in found]


def _copy_narration(workspace: Path, narration_dir: Path) -> int:
    """Mirror narration/audio and narration/scripts into the workspace (course files, not student work)."""
    copied = 0
    for sub in ("audio", "scripts"):
        source = narration_dir / sub
        if not source.is_dir():
            continue
        target = workspace / "narration" / sub
        target.mkdir(parents=True, exist_ok=True)
        for item in sorted(source.iterdir()):
            destination = target / item.name
            if item.is_file() and (not destination.exists() or destination.read_bytes() != item.read_bytes()):
                shutil.copyfile(item, destination)
                copied += 1
    return copied


def prepare_workspace(workspace: Path = DEFAULT_WORKSPACE, nb_dir: Path = NOTEBOOK_DIR,
                      narration_dir: Path = NARRATION_DIR) -> List[Copied]:
    """Copy the lessons and narration into ``workspace`` without overwriting a student's edits."""
    workspace = Path(workspace)
    workspace.mkdir(parents=True, exist_ok=True)
    state_path = workspace / STATE_FILE
    try:
        state: Dict[str, str] = json.loads(state_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        state = {}
    report = []
    for source in lesson_sources(nb_dir):
        target = workspace / source.name
        fresh = _sha256(source)
        if not target.exists():
            action = "copied"
        elif _sha256(target) == fresh:
            action = "unchanged"
        elif state.get(source.name) == _sha256(target):
            action = "updated"   # still exactly our earlier copy: nothing of the student's is lost
        else:
            report.append(Copied(source.name, "kept"))
            continue
        if action != "unchanged":
            shutil.copyfile(source, target)
        state[source.name] = fresh
        report.append(Copied(source.name, action))
    _copy_narration(workspace, narration_dir)
    state_path.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return report


def jupyterlab_command(workspace: Path) -> List[str]:
    """The command that opens JupyterLab in ``workspace`` with this Python's kernel."""
    command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={Path(workspace).resolve()}"]
    if os.name == "posix":  # Unix sockets, not TCP: see notebook_runner.local_kernel_manager_class
        command.append("--KernelManager.transport=ipc")
    return command


def _print_report(report: Sequence[Copied], workspace: Path) -> None:
    words = {"copied": "copied", "updated": "updated (you had not changed it)", "unchanged": "up to date",
             "kept": "KEPT your edited copy, not overwritten (delete it to get a fresh one)"}
    print(f"workspace: {workspace.resolve()}")
    for item in report:
        print(f"  {item.name}: {words[item.action]}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mdn_course lab",
        description="Copy the lessons (the exercise as its student copy) into a git-ignored workspace and open "
                    "JupyterLab there. Notebooks you have edited are never overwritten.")
    parser.add_argument("--dir", type=Path, default=DEFAULT_WORKSPACE, metavar="WORKSPACE",
                        help="workspace folder (default: ./workspace)")
    parser.add_argument("--no-open", action="store_true", help="prepare the workspace only; do not start JupyterLab")
    args = parser.parse_args(argv)
    try:
        report = prepare_workspace(args.dir)
    except OSError as exc:
        print(f"error: could not prepare the workspace {args.dir}: {exc}", file=sys.stderr)
        return 1
    _print_report(report, args.dir)
    command = jupyterlab_command(args.dir)
    if args.no_open:
        print("open it with: python -m mdn_course lab" + ("" if args.dir == DEFAULT_WORKSPACE else f" --dir {args.dir}"))
        return 0
    if importlib.util.find_spec("jupyterlab") is None:
        print(f"JupyterLab is not installed in this Python. Install it with:\n    {INSTALL_HINT}\n"
              f"then run this command again (or open the workspace with any Jupyter: jupyter notebook {args.dir})",
              file=sys.stderr)
        return 1
    print("starting JupyterLab (stop it with Ctrl-C) ...", flush=True)
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0
