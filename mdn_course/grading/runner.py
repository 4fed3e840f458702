"""Grade one submission: scratch dir, canonical notebook, sandboxed ``pytest --nbval-lax``, per-cell records.

Nothing of the original file is copied: the scratch directory (a fresh temp
dir, deleted afterwards) holds only the canonical notebook built from the
answer source(s), an empty ``pytest.ini`` (so no repository config or
conftest applies), and the home/runtime dirs the kernel needs. pytest runs
with plugin autoloading off and only nbval plus ``nbval_plugin`` loaded; the
per-cell records come back through an unlinked temp file outside the scratch
dir whose descriptor pytest inherits (and the kernel does not).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional

import nbformat

from . import canonical, sandbox
from .submission import Submission

NOTEBOOK_NAME = "graded.ipynb"


@dataclass
class RunOutcome:
    layout: canonical.Layout
    records: Dict[int, dict] = field(default_factory=dict)   # code-cell index -> result record
    returncode: Optional[int] = None
    timed_out: bool = False
    wall_s: float = 0.0
    output_tail: str = ""


def _package_parent() -> str:
    import mdn_course

    return str(Path(mdn_course.__path__[0]).resolve().parent)


def run_submission(sub: Submission, *, timeout: float, cell_timeout: float, memory_bytes: int,
                   use_sandbox: bool) -> RunOutcome:
    nb, layout = canonical.build(sub.answer_sources)
    scratch = Path(tempfile.mkdtemp(prefix="mdn-grade-"))
    results_file = tempfile.TemporaryFile(prefix="mdn-grade-results-")
    try:
        os.chmod(scratch, 0o700)
        nbformat.write(nb, str(scratch / NOTEBOOK_NAME))
        (scratch / "pytest.ini").write_text("[pytest]\n")
        env = sandbox.scratch_env(scratch, _package_parent())
        fd = results_file.fileno()
        argv = [sys.executable, "-m", "pytest", "-p", "nbval", "-p", "mdn_course.grading.nbval_plugin",
                "-p", "no:cacheprovider", "-c", str(scratch / "pytest.ini"), "--rootdir", str(scratch),
                "--nbval-lax", "--nbval-current-env", f"--nbval-cell-timeout={cell_timeout:g}",
                "--nbval-kernel-startup-timeout=60", f"--grade-results-fd={fd}", "-q", "--color=no",
                "-W", "ignore", NOTEBOOK_NAME]
        result = sandbox.run(argv, scratch=scratch, env=env, timeout=timeout, memory_bytes=memory_bytes,
                             sandbox=use_sandbox, pass_fds=[fd])
        outcome = RunOutcome(layout, returncode=result.returncode, timed_out=result.timed_out,
                             wall_s=result.wall_s, output_tail=result.output[-4000:])
        results_file.seek(0)
        for line in results_file.read().decode("utf-8", "replace").splitlines():
            try:
                rec = json.loads(line)
                cell = int(rec["cell"])
            except (ValueError, KeyError, TypeError):
                continue
            # the call phase decides; a setup/teardown failure only counts when there is no call record
            if rec.get("phase") == "call" or cell not in outcome.records:
                outcome.records[cell] = rec
        return outcome
    finally:
        results_file.close()
        shutil.rmtree(scratch, ignore_errors=True)
