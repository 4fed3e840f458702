"""The instructor grader's parts; ``python -m mdn_course grade`` (``mdn_course/grading/cli.py``) drives them.

One job per module:

``submission``
    Read a submitted ``.ipynb`` without trusting it: take the answer cell(s)
    (tag ``answer``; else the code cell(s) defining ``mdn_loss``), strip nbval
    markers from them, and list tampering (edited/deleted check cells, nbval
    comments or tags, hand-written outputs) and code that reaches for the
    reference loss or the grader's machinery (a static AST scan).
``canonical``
    Build the notebook that is actually run: a grader setup cell, the answer
    source(s), one locked check cell per ``mdn_course.exercise.checks.CHECKS`` entry
    (points from the registry, nbgrader grade-cell metadata) and an audit cell.
``runtime``
    Imported *inside the kernel* by the setup and audit cells: watches the
    reference ``mdn_loss`` for calls from outside the package for the whole run
    (not just during checks) and snapshots the checks module so that the audit
    cell can tell whether submitted code altered it.
``nbval_plugin``
    A pytest plugin loaded next to nbval: writes one JSON line per notebook
    cell (outcome, error name/value, printed text) to a file descriptor the
    grader passes in, so results survive a wall-clock kill and the kernel (which
    does not inherit the descriptor) cannot write into them.
``sandbox``
    Run a command in a bubblewrap sandbox (read-only root, private /tmp, no
    network, private pid and user namespaces, no capabilities; only the scratch
    directory writable) with an address-space cap and a wall-clock timeout that
    kills the whole sandbox; probes once whether bwrap works and falls back to an
    unsandboxed run with a warning.
``report``
    Turn per-cell results into a row (status, points, per-check points,
    message), write ``grades.csv`` and the per-student Markdown feedback.
"""
