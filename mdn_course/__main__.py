"""The course's one command line: python -m mdn_course COMMAND [options].

Commands:
  train            train the lesson model, print its held-out NLL beside the Bayes floor, save a checkpoint
  bench            benchmarks: training vs the reference recipe, batched dreaming
  run-notebooks    execute the whole lesson series headless into a folder (the main job)
  grade            grade a folder of submitted exercise notebooks (instructors)
  narration        build, check, pack or fetch the narration audio
  student-version  regenerate the student copy of the exercise from its solution
  lab              copy the lessons into a git-ignored workspace/ and open JupyterLab there (students)
  sync-notebooks   rewrite the lessons' Colab badges and install cells from mdn_course/links.py

Run python -m mdn_course COMMAND --help for a command's options.
"""
from __future__ import annotations

import importlib
import sys

#: Each command's module; it has a ``main(argv) -> int``. Imported only when its command runs, so
#: ``--help`` and every command load only what they need (the grader needs no nbformat, lab no torch).
COMMANDS = {"train": "mdn_course.tools.train", "bench": "mdn_course.tools.bench",
            "run-notebooks": "mdn_course.tools.notebook_runner", "grade": "mdn_course.grading.cli",
            "narration": "mdn_course.narration.cli", "student-version": "mdn_course.tools.student_version",
            "lab": "mdn_course.tools.lab", "sync-notebooks": "mdn_course.tools.notebook_sync"}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(__doc__.strip())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}\n\n{__doc__.strip()}", file=sys.stderr)
        return 2
    return importlib.import_module(COMMANDS[command]).main(rest)


if __name__ == "__main__":
    sys.exit(main())
