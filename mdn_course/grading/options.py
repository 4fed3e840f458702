"""The settings of a grading run, and the command-line options that set them.

``python -m mdn_course grade`` and the Gradescope autograder take the same options
(:func:`add_options`), turn them into one :class:`Options` (:func:`options_from`), and say how
student code will run, refusing when no sandbox works here (:func:`ready`).
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field

from ..exercise.exercises import EXERCISES
from . import limits, sandbox

__all__ = ["Options", "UsageError", "add_options", "options_from", "ready"]


class UsageError(Exception):
    """A command line that cannot be graded with; the message says what to change."""


@dataclass
class Options:
    """How each submission is graded (the same for every submission of a run)."""
    use_sandbox: bool = True
    timeout: float = 120.0          # wall clock per submission
    request_timeout: float = 10.0   # one call of the answer's function
    startup_timeout: float = 40.0   # start python + torch in the sandbox and run the answer cell
    limit: limits.Limits = field(default_factory=limits.Limits)
    exercise: str = "auto"          # "auto" (each submission's answer cell says) or a key of EXERCISES


def add_options(parser: argparse.ArgumentParser) -> None:
    """The options of a grading run (everything but what to grade and where to write)."""
    parser.add_argument("--exercise", choices=["auto", *EXERCISES], default="auto",
                        help="the exercise the submissions answer (default: auto, read from each notebook's "
                             "answer cell, so one folder may hold both exercises)")
    parser.add_argument("--timeout", type=float, default=120.0, help="wall-clock seconds per submission (default 120)")
    parser.add_argument("--request-timeout", type=float, default=10.0,
                        help="seconds for one call of the student's function (default 10); the answer cell, "
                             "torch's import included, gets 4 times that (at least 40: importing torch on a busy "
                             "machine is slow)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="submissions graded in parallel")
    parser.add_argument("--memory-mb", type=int, default=2048,
                        help="memory for all of a submission's processes together, MiB (cgroup; default 2048)")
    parser.add_argument("--pids", type=int, default=32, help="processes a submission may run at once (default 32)")
    parser.add_argument("--scratch-mb", type=int, default=64, help="size of the sandbox's only writable tmpfs (default 64)")
    parser.add_argument("--no-sandbox", dest="sandbox", action="store_false",
                        help="run student code without bubblewrap (limits and the uid drop still apply): "
                             "only for submissions you trust")


def options_from(args: argparse.Namespace) -> Options:
    """The run's :class:`Options` from parsed :func:`add_options`; UsageError for values no run can use."""
    if min(args.timeout, args.request_timeout) <= 0 or min(args.jobs, args.memory_mb, args.pids,
                                                           args.scratch_mb) < 1:
        raise UsageError("--timeout, --request-timeout, --jobs, --memory-mb, --pids and --scratch-mb "
                         "must be positive")
    mib = 1024 ** 2
    limit = limits.Limits(memory_bytes=args.memory_mb * mib, pids=args.pids, jobs=args.jobs,
                          scratch_bytes=args.scratch_mb * mib, cpu_seconds=int(max(30, 2 * args.timeout)),
                          user_tasks=0 if os.geteuid() == 0 else limits.tasks_of_user(os.getuid()))
    return Options(use_sandbox=args.sandbox, timeout=args.timeout, request_timeout=args.request_timeout,
                   startup_timeout=max(40.0, 4 * args.request_timeout), limit=limit, exercise=args.exercise)


def ready(opts: Options) -> bool:
    """Say on stderr how student code will run and under which limits; False (saying why) when
    ``opts`` asks for a sandbox and none works here."""
    if opts.use_sandbox:
        ok, why = sandbox.probe()
        if not ok:
            print(f"error: refusing to grade: no working sandbox here. {why}", file=sys.stderr)
            return False
    else:
        who = "this user" if os.geteuid() != 0 or not sandbox.unsandboxed_uid_drop_works() else "uid 65534"
        print(f"warning: grading WITHOUT a sandbox (--no-sandbox): student code runs as {who} and can read "
              "whatever that user can read", file=sys.stderr)
    print(f"limits: {limits.describe(opts.limit)}", file=sys.stderr)
    return True
