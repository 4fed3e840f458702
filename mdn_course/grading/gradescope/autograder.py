"""What ``run_autograder`` runs in Gradescope's container: grade ``ROOT/submission``, write ``ROOT/results``.

    python -m mdn_course.grading.gradescope [--root DIR] [grader options]

``ROOT`` is ``$MDN_AUTOGRADER_ROOT`` (default ``/autograder``). The upload's ``.ipynb`` files are
graded with :func:`mdn_course.grading.batch.grade_paths`, the same judge as ``python -m
mdn_course grade`` and with the same options (``MDN_GRADE_EXTRA_ARGS`` in ``run_autograder``);
``results/results.json`` is Gradescope's format (:mod:`.results`), next to ``grades.csv`` and
the feedback. With no working sandbox (or options no run can use) the grader refuses, and the
student's results say the upload was not run, with score 0, instead of grading unsandboxed.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from .. import report
from ..batch import grade_paths
from ..options import UsageError, add_options, options_from, ready
from .results import failure_json, write_results

__all__ = ["main", "uploaded_notebooks"]


def uploaded_notebooks(root: Path) -> List[Path]:
    """The ``.ipynb`` files of the upload in ``root/submission`` (checkpoints left out), sorted."""
    folder = root / "submission"
    if not folder.is_dir():
        return []
    return sorted(q for q in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts)


def _root_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--root", default=os.environ.get("MDN_AUTOGRADER_ROOT", "/autograder"))
    return p


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mdn_course.grading.gradescope", parents=[_root_parser()],
                                description="Grade a Gradescope upload into ROOT/results (run_autograder runs this).")
    add_options(p)
    p.set_defaults(jobs=1)   # one student's upload: usually one notebook
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Grade the upload; exit status 0 whenever results.json was written (Gradescope reads it, not the status)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if {"-h", "--help"} & set(argv):
        _parser().print_help()
        return 0
    results = Path(_root_parser().parse_known_args(argv)[0].root) / "results"
    results.mkdir(parents=True, exist_ok=True)
    try:
        args = _parser().parse_args(argv)
        opts = options_from(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        opts = None
    except SystemExit:   # argparse has said what is wrong with the options
        opts = None
    notebooks = uploaded_notebooks(results.parent)
    if opts is not None and not notebooks:
        write_results([], results / "results.json")
        return 0
    if opts is None or not ready(opts):
        (results / "results.json").write_text(json.dumps(failure_json()) + "\n", encoding="utf-8")
        return 0
    rows = grade_paths(notebooks, opts, args.jobs)
    report.write_outputs(rows, notebooks, results / "grades.csv", results / "feedback")
    write_results(rows, results / "results.json")
    print(f"graded {len(rows)} submission(s) ({report.status_counts(rows)})", file=sys.stderr)
    return 0
