"""Grade a list of submissions into rows: :func:`grade_paths`, the one way every caller grades.

``python -m mdn_course grade``, the Gradescope autograder and ``benchmarks/bench_grading.py``
all call it. Each submission is read, judged as the exercise its answer cell names (so one
folder may hold both exercises; ``--exercise`` forces one) and turned into its row in a worker
process (one CPU thread each; ``jobs`` of them), and one submission never stops the batch: a
file no reader expected, a grader error or even a worker that dies costs only that submission's row.
"""
from __future__ import annotations

import multiprocessing
import os
import secrets
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

from ..exercise.answer_cell import InvalidNotebook
from ..exercise.exercises import EXERCISES
from . import report
from .judge import judge_submission
from .options import Options, UsageError
from .submission import load

__all__ = ["grade_paths", "grade_one", "find_submissions", "forced_exercise"]


def find_submissions(items: Sequence[str]) -> List[Path]:
    """The ``.ipynb`` files named by ``items`` (files, or folders searched recursively, sorted); UsageError if none."""
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
    """Each worker judges on one thread: the parallelism is the workers, each with its own interpreter."""
    torch.set_num_threads(1)


def forced_exercise(opts: Options) -> Optional[str]:
    """The exercise every submission is graded as, or None when each notebook's answer cell says (``auto``)."""
    return None if opts.exercise == "auto" else opts.exercise


def grade_one(path: Path, display: str, key: str, secret: bytes, opts: Options) -> report.Row:
    """The row of one submission (``key`` seeds its checks together with the run's ``secret``), graded as the
    exercise its answer cell names (or the one ``opts`` forces)."""
    forced = forced_exercise(opts)
    try:
        sub = load(path, EXERCISES[forced] if forced else None)
    except InvalidNotebook as exc:
        return report.invalid_row(display, str(exc), forced or getattr(exc, "exercise", None))
    except Exception as exc:  # noqa: BLE001 - a file no reader expected is that submission's problem alone
        return report.invalid_row(display, f"the notebook could not be read ({type(exc).__name__}: {exc})", forced)
    exercise = EXERCISES[sub.exercise]
    try:
        judged = judge_submission(sub.source, secret, key, opts, exercise)
        return report.grade_row(display, sub, judged, exercise)
    except Exception as exc:  # noqa: BLE001 - one bad submission never stops the batch
        return report.error_row(display, f"the grader failed on this submission ({type(exc).__name__}: {exc}); "
                                         "ask the instructor to check the grading machine", exercise.function)


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
                                                       f"{exc}); ask the instructor to check the grading machine",
                                           forced_exercise(opts))
    return lost


def grade_paths(paths: Sequence[Path], opts: Options, jobs: int, *, secret: Optional[bytes] = None,
                grade=grade_one) -> List[report.Row]:
    """Grade every submission in ``paths`` with ``jobs`` worker processes; one row per path, in order.

    The checks' inputs come from ``secret`` (default: drawn here, for this run only, and never
    written anywhere). A dead worker breaks its whole pool, so the submissions that pool had not
    finished are graded again, each alone in a fresh pool: the one that kills its worker again
    gets an error row, the others their grades. ``grade`` is :func:`grade_one` (tests pass one
    that kills its worker).
    """
    secret = secrets.token_bytes(32) if secret is None else secret
    work = [(Path(p), str(p), f"{i}:{p}") for i, p in enumerate(paths)]
    rows: Dict[int, report.Row] = {}
    # processes, not threads: the judges compute in Python and torch, so threads would share one GIL
    for i in _run_pool(work, list(range(len(work))), secret, opts, jobs, rows, grade):
        if _run_pool(work, [i], secret, opts, 1, rows, grade):
            rows[i] = report.error_row(work[i][1], "the grader's worker process died on this submission; "
                                                   "ask the instructor to check the grading machine",
                                       forced_exercise(opts))
    return [rows[i] for i in range(len(work))]
