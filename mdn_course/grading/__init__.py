"""The instructor's grader; ``python -m mdn_course grade`` (``mdn_course/grading/cli.py``) drives it.

The rule: **student code is an oracle, never a judge.** Every input, expected value, verdict,
point and record is made in the grader process; the student's code only runs in a sandbox,
next to the two files of :mod:`mdn_course.sandboxed` (the trust boundary), and answers "what
does your function return (and its gradients) on these tensors?".

One job per module:

``cli``         the command line: what to grade, where to write; :func:`batch.grade_paths` does the rest.
``options``     a run's settings (``Options``) and the options shared with the Gradescope entry point.
``batch``       ``grade_paths``: submissions -> rows, in worker processes; the one way every caller grades.
``submission``  a submitted notebook: its answer (``exercise.answer_cell``) and the tampering scan.
``judge``       play every check's judge (``exercise.registry.drive``) against the remote oracle.
``channel``     the grader's end of the pipe to the sandbox: deadlines, size caps, defensive decoding.
``sandbox``     start the sandboxed server: what it sees (bubblewrap binds), as whom (uid 65534).
``limits``      per-submission limits: cgroup memory/pids where writable, rlimits always.
``report``      rows, statuses, ``grades.csv``, per-student feedback (manifest-tracked).
``gradescope/`` the autograder bundle (its scripts as package data), its entry point, ``results.json``.
"""
