"""The instructor grader; ``python -m mdn_course grade`` (``mdn_course/grading/cli.py``) drives it.

The rule: **student code is an oracle, never a judge.** Every input, expected value, verdict,
point and record is made in the grader process; the student's code only runs in a sandbox
and answers "what does your ``mdn_loss`` return (and its gradients) on these tensors?".

One job per module:

``submission``  read a submitted notebook, bounded: the answer source, tampering flags.
``sandbox``     start the sandboxed server: what it sees (bubblewrap binds), as whom (uid 65534).
``limits``      per-submission limits: cgroup memory/pids where writable, rlimits always.
``server``      the sandboxed side (copied alone with ``exercise/oracle.py``): run the answer,
                answer requests over a private pipe.
``channel``     the grader's end of that pipe: deadlines, size caps, defensive decoding.
``judge``       drive every check's judge (``exercise.checks.drive``) against the remote oracle.
``report``      rows, statuses, ``grades.csv``, per-student feedback (manifest-tracked).
``gradescope``  the autograder bundle and ``results.json``.
"""
