"""Instructor grader for the ``mdn_loss`` exercise.

    python -m mdn_course grade SUBMISSIONS... --out grades.csv [--timeout 120] [--jobs N]
                                [--feedback DIR] [--cell-timeout S] [--memory-gb 4] [--no-sandbox]

SUBMISSIONS are ``.ipynb`` files or folders (searched recursively, sorted).
For each submission the grader takes only the answer cell(s) and runs them in
a canonical notebook built from ``mdn_course.exercise.checks.CHECKS`` with
``pytest --nbval-lax`` inside a bubblewrap sandbox, in a fresh scratch dir, with
a per-cell and a per-submission time limit and an address-space cap. The
original files are only read. The submission's own check cells, outputs and
markers are inspected for tampering, never run. See ``mdn_course/grading/``
for the parts and ``mdn_course/grading/report.py`` for the statuses and the
tampering policy.

Writes ``grades.csv`` (one row per submission in input order: ``submission,
points, max_points, status, message`` and one column per check) and one
Markdown feedback file per submission (default: ``feedback/`` next to the csv).
Exit status 0 when grading completed, whatever the grades; 2 for usage errors.
"""
from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Optional, Sequence

from . import report, sandbox
from .runner import run_submission
from .submission import InvalidSubmission, load


class UsageError(Exception):
    pass


def find_submissions(items: Sequence[str]) -> List[Path]:
    found: List[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found += sorted(q for q in p.rglob("*.ipynb") if q.is_file() and ".ipynb_checkpoints" not in q.parts)
        elif p.is_file():
            found.append(p)
        else:
            raise UsageError(f"no such file or folder: {item}")
    if not found:
        raise UsageError("no submissions found (give .ipynb files or folders containing them)")
    return found


def _feedback_names(paths: List[Path]) -> List[str]:
    """One Markdown file name per submission: its stem; parent__stem where stems collide; then an index."""
    stems = [p.stem for p in paths]
    names, used = [], set()
    for i, p in enumerate(paths):
        name = p.stem if stems.count(p.stem) == 1 else f"{p.resolve().parent.name}__{p.stem}"
        if name in used:
            name = f"{name}_{i + 1}"
        used.add(name)
        names.append(name + ".md")
    return names


def grade_one(path: Path, display: str, args) -> report.Row:
    try:
        sub = load(path)
    except InvalidSubmission as exc:
        return report.invalid_row(display, str(exc))
    try:
        run = run_submission(sub, timeout=args.timeout, cell_timeout=args.cell_timeout,
                             memory_bytes=int(args.memory_gb * 1024 ** 3), use_sandbox=args.sandbox)
        return report.grade_row(display, sub, run, args.timeout)
    except Exception as exc:  # noqa: BLE001 - one bad submission never stops the batch
        row = report.Row(display, "error")
        row.message = f"the grader failed on this submission: {type(exc).__name__}: {exc}"
        return row


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mdn_course grade", description=__doc__.split("\n\n")[0])
    p.add_argument("submissions", nargs="+", help=".ipynb files or folders of them (recursive)")
    p.add_argument("--out", required=True, help="the grades CSV to write")
    p.add_argument("--timeout", type=float, default=120.0, help="wall-clock seconds per submission (default 120)")
    p.add_argument("--cell-timeout", type=float, default=None,
                   help="seconds per notebook cell (default: min(30, timeout/3))")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="submissions graded in parallel")
    p.add_argument("--feedback", default=None, help="folder for the Markdown feedback (default: feedback/ next to --out)")
    p.add_argument("--memory-gb", type=float, default=4.0, help="address-space cap per submission, GiB (default 4)")
    p.add_argument("--no-sandbox", dest="sandbox", action="store_false", help="do not use bubblewrap")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 2 if exc.code else 0
    try:
        if args.timeout <= 0 or args.jobs < 1 or args.memory_gb <= 0 or \
                (args.cell_timeout is not None and args.cell_timeout <= 0):
            raise UsageError("--timeout, --cell-timeout, --jobs and --memory-gb must be positive")
        if args.cell_timeout is None:
            args.cell_timeout = max(5.0, min(30.0, args.timeout / 3))
        paths = find_submissions(args.submissions)
        out = Path(args.out)
        feedback = Path(args.feedback) if args.feedback else out.resolve().parent / "feedback"
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(out, "a", encoding="utf-8"):
                pass
            feedback.mkdir(parents=True, exist_ok=True)
            probe_file = feedback / ".write-test"
            probe_file.write_text("")
            probe_file.unlink()
        except OSError as exc:
            raise UsageError(f"cannot write the output: {exc}") from None
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    if args.sandbox:
        ok, why = sandbox.probe()
        if not ok:
            print(f"warning: grading WITHOUT a sandbox: {why}", file=sys.stderr)
            args.sandbox = False
    else:
        print("warning: grading WITHOUT a sandbox (--no-sandbox)", file=sys.stderr)

    displays = [str(p) for p in paths]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(lambda pd: grade_one(pd[0], pd[1], args), zip(paths, displays)))
    report.write_csv(rows, out)
    for row, name in zip(rows, _feedback_names(paths)):
        (feedback / name).write_text(report.feedback_markdown(row), encoding="utf-8")
    counts = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    print(f"graded {len(rows)} submission(s) -> {out} ({', '.join(f'{k}: {v}' for k, v in sorted(counts.items()))}); "
          f"feedback in {feedback}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
