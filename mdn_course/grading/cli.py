"""Instructor grader for the exercises: student code is an oracle, never a judge.

    python -m mdn_course grade SUBMISSIONS... --out grades.csv [--jobs N] [--timeout 120]
    python -m mdn_course grade --gradescope-bundle autograder.zip

SUBMISSIONS are ``.ipynb`` files or folders (searched recursively, sorted), of either exercise
(each is graded as the exercise its answer cell names). For each, the grader reads the
notebook (bounded), takes only the answer cell(s), and runs them in a
bubblewrap sandbox that sees python, torch and numpy and nothing of the course; every check's
judge runs here, in the grader, with inputs drawn from a secret per-run seed, and asks the
sandboxed answer only for values and gradients (:mod:`.judge`). The submission's own check
cells, outputs and markers are inspected for tampering, never run.

Writes ``grades.csv`` (one row per submission in input order: ``submission, exercise, points,
max_points, status, message`` and one column per check of each exercise), one Markdown feedback file per
submission (default: ``feedback/`` next to the csv; files of the previous run are replaced,
per the folder's manifest), and with ``--gradescope-results`` a Gradescope ``results.json``.

Exit status 0 when grading completed, whatever the grades; 2 for usage errors and when no
sandbox works here (install bubblewrap, or pass ``--no-sandbox`` to accept the risk).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from . import report
from .batch import find_submissions, grade_paths
from .gradescope.bundle import write_bundle
from .gradescope.results import write_results
from .options import UsageError, add_options, options_from, ready


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mdn_course grade", description=__doc__.split("\n\n")[0])
    p.add_argument("submissions", nargs="*", help=".ipynb files or folders of them (recursive)")
    p.add_argument("--out", help="the grades CSV to write")
    p.add_argument("--feedback", default=None, help="folder for the Markdown feedback (default: feedback/ next to --out)")
    add_options(p)
    p.add_argument("--gradescope-results", default=None, help="also write a Gradescope results.json here")
    p.add_argument("--gradescope-bundle", default=None,
                   help="write a Gradescope autograder zip (setup.sh, run_autograder, this package) and exit")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 2 if exc.code else 0
    if args.gradescope_bundle:
        try:
            path = write_bundle(Path(args.gradescope_bundle), [] if args.sandbox else ["--no-sandbox"])
        except OSError as exc:
            print(f"error: cannot write the bundle: {exc}", file=sys.stderr)
            return 2
        print(f"wrote the Gradescope autograder {path}; upload it under Configure Autograder "
              "(Ubuntu base image)", file=sys.stderr)
        return 0
    try:
        if not args.submissions:
            raise UsageError("give the submissions to grade (.ipynb files or folders)")
        if not args.out:
            raise UsageError("--out is required (the grades CSV to write)")
        opts = options_from(args)
        paths = find_submissions(args.submissions)
        out = Path(args.out)
        feedback = Path(args.feedback) if args.feedback else out.resolve().parent / "feedback"
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(out, "a", encoding="utf-8"):
                pass
            feedback.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot write the output: {exc}") from None
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not ready(opts):
        return 2
    rows = grade_paths(paths, opts, args.jobs)
    strays = report.write_outputs(rows, paths, out, feedback)
    if strays:
        print(f"note: {feedback} also holds {len(strays)} .md file(s) this grader did not write "
              f"(left alone): {', '.join(strays[:5])}{' ...' if len(strays) > 5 else ''}", file=sys.stderr)
    if args.gradescope_results:
        write_results(rows, Path(args.gradescope_results))
    print(f"graded {len(rows)} submission(s) -> {out} ({report.status_counts(rows)}); feedback in {feedback}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
