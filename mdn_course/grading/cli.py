"""Instructor grader for the ``mdn_loss`` exercise: student code is an oracle, never a judge.

    python -m mdn_course grade SUBMISSIONS... --out grades.csv [--jobs N] [--timeout 120]
    python -m mdn_course grade --gradescope-bundle autograder.zip

SUBMISSIONS are ``.ipynb`` files or folders (searched recursively, sorted). For each, the
grader reads the notebook (bounded), takes only the answer cell(s), and runs them in a
bubblewrap sandbox that sees python, torch and numpy and nothing of the course; every check's
judge runs here, in the grader, with inputs drawn from a secret per-run seed, and asks the
sandboxed answer only for values and gradients (:mod:`.judge`). The submission's own check
cells, outputs and markers are inspected for tampering, never run.

Writes ``grades.csv`` (one row per submission in input order: ``submission, points,
max_points, status, message`` and one column per check), one Markdown feedback file per
submission (default: ``feedback/`` next to the csv; files of the previous run are replaced,
per the folder's manifest), and with ``--gradescope-results`` a Gradescope ``results.json``.

Exit status 0 when grading completed, whatever the grades; 2 for usage errors and when no
sandbox works here (install bubblewrap, or pass ``--no-sandbox`` to accept the risk).
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from . import limits, report, sandbox
from .judge import Options, judge_submission
from .submission import InvalidSubmission, load


class UsageError(Exception):
    pass


def find_submissions(items: Sequence[str]) -> List[Path]:
    found: List[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            # symbolic links and other non-files are kept, so that each gets an 'invalid' row saying why
            # (a link inside a student's folder could point at the solution or a classmate's notebook)
            found += sorted(q for q in p.rglob("*.ipynb")
                            if (q.is_symlink() or not q.is_dir()) and ".ipynb_checkpoints" not in q.parts)
        elif os.path.lexists(p):
            found.append(p)
        else:
            raise UsageError(f"no such file or folder: {item}")
    if not found:
        raise UsageError("no submissions found (give .ipynb files or folders containing them)")
    return found


def _worker_init() -> None:
    """Each worker judges on one thread: the parallelism is --jobs workers, each with its own interpreter."""
    import torch

    torch.set_num_threads(1)


def grade_one(path: Path, display: str, key: str, secret: bytes, opts: Options) -> report.Row:
    try:
        sub = load(path)
    except InvalidSubmission as exc:
        return report.invalid_row(display, str(exc))
    except Exception as exc:  # noqa: BLE001 - a file no reader expected is that submission's problem alone
        return report.invalid_row(display, f"the notebook could not be read ({type(exc).__name__}: {exc})")
    try:
        judged = judge_submission(sub.source, secret, key, opts)
        return report.grade_row(display, sub, judged)
    except Exception as exc:  # noqa: BLE001 - one bad submission never stops the batch
        return report.error_row(display, f"the grader failed on this submission ({type(exc).__name__}: {exc}); "
                                         "ask the instructor to check the grading machine")


def _run_pool(jobs, indices: List[int], secret: bytes, opts: Options, workers: int,
              rows: Dict[int, report.Row], grade=grade_one) -> List[int]:
    """Grade ``indices`` in one pool, filling ``rows``; return those lost to a worker that died."""
    lost: List[int] = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_worker_init) as pool:
        futures = {i: pool.submit(grade, *jobs[i], secret, opts) for i in indices}
        for i, future in futures.items():
            try:
                rows[i] = future.result()
            except BrokenProcessPool:
                lost.append(i)
            except Exception as exc:  # noqa: BLE001 - one submission's failure is its own row
                rows[i] = report.error_row(jobs[i][1], f"the grader failed on this submission ({type(exc).__name__}: "
                                                       f"{exc}); ask the instructor to check the grading machine")
    return lost


def _grade_all(jobs, secret: bytes, opts: Options, workers: int, grade=grade_one) -> List[report.Row]:
    """Grade every job in worker processes; one submission, even one that kills a worker, never stops the batch.

    A dead worker breaks its whole pool, so the submissions that pool had not finished are graded
    again, each alone in a fresh pool: the one that kills its worker again gets an error row, the
    others their grades. ``grade`` is :func:`grade_one` (tests pass one that kills its worker).
    """
    rows: Dict[int, report.Row] = {}
    for i in _run_pool(jobs, list(range(len(jobs))), secret, opts, workers, rows, grade):
        if _run_pool(jobs, [i], secret, opts, 1, rows, grade):
            rows[i] = report.error_row(jobs[i][1], "the grader's worker process died on this submission; "
                                                   "ask the instructor to check the grading machine")
    return [rows[i] for i in range(len(jobs))]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mdn_course grade", description=__doc__.split("\n\n")[0])
    p.add_argument("submissions", nargs="*", help=".ipynb files or folders of them (recursive)")
    p.add_argument("--out", help="the grades CSV to write")
    p.add_argument("--timeout", type=float, default=120.0, help="wall-clock seconds per submission (default 120)")
    p.add_argument("--request-timeout", type=float, default=10.0,
                   help="seconds for one call of the student's mdn_loss (default 10); the answer cell, "
                        "torch's import included, gets 4 times that (at least 40: importing torch on a busy machine is slow)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="submissions graded in parallel")
    p.add_argument("--feedback", default=None, help="folder for the Markdown feedback (default: feedback/ next to --out)")
    p.add_argument("--memory-mb", type=int, default=2048,
                   help="memory for all of a submission's processes together, MiB (cgroup; default 2048)")
    p.add_argument("--pids", type=int, default=32, help="processes a submission may run at once (default 32)")
    p.add_argument("--scratch-mb", type=int, default=64, help="size of the sandbox's only writable tmpfs (default 64)")
    p.add_argument("--no-sandbox", dest="sandbox", action="store_false",
                   help="run student code without bubblewrap (limits and the uid drop still apply): "
                        "only for submissions you trust")
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
        from .gradescope import write_bundle

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
        if min(args.timeout, args.request_timeout) <= 0 or min(args.jobs, args.memory_mb, args.pids,
                                                               args.scratch_mb) < 1:
            raise UsageError("--timeout, --request-timeout, --jobs, --memory-mb, --pids and --scratch-mb "
                             "must be positive")
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

    mib = 1024 ** 2
    limit = limits.Limits(memory_bytes=args.memory_mb * mib, pids=args.pids, jobs=args.jobs,
                          scratch_bytes=args.scratch_mb * mib, cpu_seconds=int(max(30, 2 * args.timeout)),
                          user_tasks=0 if os.geteuid() == 0 else limits.tasks_of_user(os.getuid()))
    if args.sandbox:
        ok, why = sandbox.probe()
        if not ok:
            print(f"error: refusing to grade: no working sandbox here. {why}", file=sys.stderr)
            return 2
    else:
        who = "this user" if os.geteuid() != 0 or not sandbox.unsandboxed_uid_drop_works() else "uid 65534"
        print(f"warning: grading WITHOUT a sandbox (--no-sandbox): student code runs as {who} and can read "
              "whatever that user can read", file=sys.stderr)
    print(f"limits: {limits.describe(limit)}", file=sys.stderr)
    opts = Options(use_sandbox=args.sandbox, timeout=args.timeout, request_timeout=args.request_timeout,
                   startup_timeout=max(40.0, 4 * args.request_timeout), limit=limit)
    secret = secrets.token_bytes(32)
    displays = [str(p) for p in paths]
    jobs = [(p, d, f"{i}:{d}") for i, (p, d) in enumerate(zip(paths, displays))]
    # processes, not threads: the judges compute in Python and torch, so threads would share one GIL
    rows = _grade_all(jobs, secret, opts, args.jobs)
    report.write_csv(rows, out)
    strays = report.write_feedback(rows, report.feedback_names(paths), feedback)
    if strays:
        print(f"note: {feedback} also holds {len(strays)} .md file(s) this grader did not write "
              f"(left alone): {', '.join(strays[:5])}{' ...' if len(strays) > 5 else ''}", file=sys.stderr)
    if args.gradescope_results:
        from .gradescope import write_results

        write_results(rows, Path(args.gradescope_results))
    counts = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    print(f"graded {len(rows)} submission(s) -> {out} ({', '.join(f'{k}: {v}' for k, v in sorted(counts.items()))}); "
          f"feedback in {feedback}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
