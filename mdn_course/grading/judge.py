"""Judge one submission: every check's judge runs here, in the grader; the answer only answers.

For each check of the submission's exercise (:data:`mdn_course.exercise.exercises.EXERCISES`),
:func:`judge_submission` derives the check's random generator from the run's secret seed
(``secrets``; never written anywhere) and plays its judge (:func:`mdn_course.exercise.registry.drive`)
against a :class:`~.channel.RemoteOracle`: the judge makes the inputs, the sandboxed server calls
the student's function on them and returns facts, the judge computes the truth in float64 here
and decides. When the student's process times out, dies or garbles the channel during a check,
that check fails, the failure is recorded, and the next check gets a fresh process (while the
submission's wall clock lasts, and until MAX_TIMEOUTS calls have run out of time).
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch

from ..exercise.registry import CheckResult, Exercise, drive
from ..sandboxed.oracle import StartFailure
from .channel import Failure, OracleGone, RemoteOracle
from .options import Options

MAX_TIMEOUTS = 2         # after this many calls ran out of time, the remaining checks are not judged


@dataclass
class Judged:
    """What happened to one submission's answer (facts for the report; points come from ``results``)."""
    start_failure: Optional[StartFailure] = None       # why the answer cell could not be started
    results: Dict[str, CheckResult] = field(default_factory=dict)
    failures: List[Failure] = field(default_factory=list)
    not_run: List[str] = field(default_factory=list)   # checks never reached (time ran out)
    kinds: Dict[str, int] = field(default_factory=dict)
    calls: int = 0


def check_seed(run_secret: bytes, submission_key: str, check: str) -> int:
    """The seed of one check for one submission, derived from the run's secret."""
    digest = hashlib.sha256(run_secret + b"\0" + submission_key.encode() + b"\0" + check.encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 2


def judge_submission(source: str, run_secret: bytes, submission_key: str, opts: Options,
                     exercise: Exercise) -> Judged:
    """Play every check of ``exercise`` against the answer ``source`` running in its own sandboxed process."""
    out = Judged()
    deadline = time.monotonic() + opts.timeout
    remote = RemoteOracle(source, function=exercise.function, args=exercise.args, use_sandbox=opts.use_sandbox,
                          limit=opts.limit, request_timeout=opts.request_timeout, deadline=deadline)
    try:
        names = list(exercise.checks)
        for i, name in enumerate(names):
            if time.monotonic() >= deadline or sum(f.kind == "timeout" for f in out.failures) >= MAX_TIMEOUTS:
                out.not_run = names[i:]
                break
            if remote.started is None:
                try:
                    start_failure = remote.start(min(opts.startup_timeout, max(1.0, deadline - time.monotonic())))
                except OracleGone:
                    failure = remote.failure
                    failure.check = None
                    out.failures.append(failure)
                    if failure.kind == "timeout" and i == 0:
                        out.start_failure = StartFailure("timeout", failure.text)
                    out.not_run = names[i:]
                    break
                if start_failure is not None:
                    out.start_failure = start_failure
                    out.not_run = names[i:]
                    break
            check = exercise.checks[name]
            rng = torch.Generator().manual_seed(check_seed(run_secret, submission_key, name))
            try:
                out.results[name] = drive(check, remote, rng)
            except OracleGone:
                failure = remote.failure
                failure.check = name
                out.failures.append(failure)
                out.results[name] = CheckResult(name, check.points, False, check.description,
                                                f"{failure.text}, so this check could not finish", None)
    finally:
        remote.close()
    out.kinds, out.calls = remote.kinds, remote.calls
    return out
