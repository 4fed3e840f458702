"""From per-cell records to a grade row, ``grades.csv`` and per-student Markdown feedback.

Statuses (one per row):

``ok``        graded normally; ``points`` is the sum of the checks passed (wrong answers included).
``error``     the answer did not run cleanly or broke the rules: it raised at definition (syntax
              error, exception), the kernel died (``os._exit``, a kill), it used the package's
              reference ``mdn_loss`` (points forced to 0), or the grader itself failed.
``timeout``   the per-submission wall clock (``--timeout``) or a per-cell limit was hit; checks that
              passed before keep their points.
``invalid``   not gradable: unreadable, not JSON, not a notebook, no answer cell; 0 points.
``tampered``  the submission edited/deleted check cells, added nbval markers or tags, faked outputs,
              or its answer rebinds the grader's names. Policy: *flag only* - the points are the
              honest score of the canonical run, since none of that reaches the run. Exception:
              if the kernel-side audit finds the checks themselves were altered at run time, the
              run cannot be trusted and the points are 0.

When several apply the status is the first of invalid, error(reference), tampered(run time),
timeout, error, tampered, ok; every finding is still listed in ``message``.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from ..exercise.checks import CHECKS
from .runner import RunOutcome
from .submission import Submission

MAX_POINTS = sum(c.points for c in CHECKS.values())
COLUMNS = ["submission", "points", "max_points", "status", "message", *CHECKS]


@dataclass
class Row:
    submission: str
    status: str
    points: int = 0
    check_points: Dict[str, int] = field(default_factory=lambda: {n: 0 for n in CHECKS})
    message: str = ""
    passed: List[str] = field(default_factory=list)
    failed: Dict[str, str] = field(default_factory=dict)   # check -> diagnostic
    findings: List[str] = field(default_factory=list)       # tampering / rule findings, for feedback

    def as_csv(self) -> Dict[str, object]:
        row = {"submission": self.submission, "points": self.points, "max_points": MAX_POINTS,
               "status": self.status, "message": self.message}
        row.update(self.check_points)
        return row


def invalid_row(name: str, why: str) -> Row:
    return Row(name, "invalid", message=f"invalid: {why}")


def _err_text(rec: Optional[dict]) -> str:
    if rec is None:
        return "not run"
    if rec.get("ename"):
        value = (rec.get("evalue") or "").strip()
        return f"{rec['ename']}: {value}" if value else rec["ename"]
    return (rec.get("error") or rec.get("outcome") or "failed").strip()


def _is_timeout(rec: Optional[dict]) -> bool:
    text = (rec or {}).get("error") or ""
    return "Timeout of" in text and "waiting for output" not in text and "Failed to interrupt" not in text


def _kernel_died(records: Dict[int, dict]) -> bool:
    signs = ("Kernel died", "Kernel dead", "Failed to interrupt kernel", "waiting for output")
    return any(any(s in (r.get("error") or "") for s in signs) for r in records.values())


def _short(text: str, n: int = 300) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= n else text[: n - 1] + "…"


def _score_zero(row: Row, findings: List[str]) -> None:
    """A rule was broken: every check scores zero and the findings go on record."""
    row.points = 0
    row.check_points = {n: 0 for n in CHECKS}
    row.findings += findings


def grade_row(name: str, sub: Submission, run: RunOutcome, timeout: float) -> Row:
    row = Row(name, "ok")
    recs, layout = run.records, run.layout
    messages: List[str] = []
    reference = [f"static: {r}" for r in sub.reference]
    tamper_runtime: List[str] = []
    ref_checks: List[str] = []

    setup = recs.get(layout.setup)
    if setup is not None and setup["outcome"] != "passed":
        messages.append(f"grader setup failed ({_short(_err_text(setup))})")

    answer_problem = None
    answer_timeout = False
    for idx in layout.answers:
        rec = recs.get(idx)
        if rec is not None and rec["outcome"] != "passed":
            answer_timeout = answer_timeout or _is_timeout(rec)
            answer_problem = _short(_err_text(rec))
            break

    for idx, check in layout.checks.items():
        rec = recs.get(idx)
        if rec is not None and rec["outcome"] == "passed":
            row.passed.append(check)
            row.check_points[check] = CHECKS[check].points
        else:
            diag = _err_text(rec)
            diag = re.sub(r"^CheckFailed: \[\w+\] ", "", diag)
            if _is_timeout(rec):
                diag = f"took longer than the per-cell limit ({diag})"
            row.failed[check] = diag
            if "reference implementation" in diag:
                ref_checks.append(check)

    if ref_checks:
        reference.append(f"the checks caught calls of the reference ({', '.join(ref_checks)})")
    audit = recs.get(layout.audit)
    if audit is not None and audit["outcome"] != "passed":
        text = _err_text(audit)
        if "GRADER-AUDIT" in text:
            for item in text.split("GRADER-AUDIT", 1)[1].split(" | "):
                item = item.strip()
                if item.startswith("reference:"):
                    reference.append("run time: " + item[len("reference:"):].strip())
                elif item.startswith("tamper:"):
                    tamper_runtime.append(item[len("tamper:"):].strip())
        elif "NameError" not in text and not run.timed_out and not _kernel_died(recs):
            tamper_runtime.append(f"the grader's audit cell failed ({_short(text, 160)})")

    row.points = sum(row.check_points.values())
    died = _kernel_died(recs)
    undefined = all("NameError" in d and "mdn_loss" in d for d in row.failed.values()) and \
        len(row.failed) == len(CHECKS)

    status = "ok"
    if sub.tampering:
        status = "tampered"
        row.findings += sub.tampering
        messages.append("tampering flagged (points from the canonical run): " + "; ".join(sub.tampering))
    grader_failed = not run.timed_out and (not recs or (setup is not None and setup["outcome"] != "passed"))
    if grader_failed:  # nothing of the answer ran: the grading environment, not the student, failed
        status = "error"
        messages.insert(0, f"the grader could not run the notebook (exit {run.returncode}); ask the instructor "
                           f"to check the grading machine: {_short(run.output_tail[-600:])}")
    if answer_problem:
        status = "timeout" if answer_timeout else "error"
        messages.insert(0, ("the answer cell ran past the per-cell limit (an infinite loop?)" if answer_timeout
                            else f"the answer cell failed: {answer_problem}"))
    elif undefined and not died and not run.timed_out:
        status = "error"
        messages.insert(0, "the answer cell(s) do not define mdn_loss")
    if died:
        status = "error"
        code = re.search(r"exit code (-?\d+)", " ".join((r.get("error") or "") for r in recs.values()))
        messages.insert(0, "the kernel died or stopped responding" + (f" (exit code {code.group(1)})" if code else "")
                        + ": os._exit, a signal, a crash, or a loop that ignores interrupts; "
                          "checks after that point could not run")
    if any(_is_timeout(recs.get(i)) for i in layout.checks) and not died:
        status = "timeout"
        messages.insert(0, "a check ran past the per-cell limit (an infinite loop or a very slow answer?)")
    if run.timed_out:
        status = "timeout"
        messages.insert(0, f"stopped after the {timeout:g} s limit per submission (an infinite loop?); "
                           "checks that finished before keep their points")
    if tamper_runtime:
        status = "tampered"
        _score_zero(row, tamper_runtime)
        messages.insert(0, "the answer altered the grader at run time, so the run cannot be trusted and scores "
                           "zero: " + "; ".join(tamper_runtime))
    if reference:
        status = "error"
        _score_zero(row, reference)
        messages.insert(0, "uses the reference implementation (mdn_course's mdn_loss), so it scores zero: "
                           + "; ".join(dict.fromkeys(reference)))
    row.status = status
    summary = f"{len(row.passed)}/{len(CHECKS)} checks passed"
    if row.failed:
        summary += "; failed: " + "; ".join(f"{c} ({_short(d, 160)})" for c, d in row.failed.items())
    messages.append(summary)
    messages += sub.notes
    row.message = " | ".join(messages)
    return row


def write_csv(rows: List[Row], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(row.as_csv())


def feedback_markdown(row: Row) -> str:
    lines = [f"# Feedback: `{row.submission}`", "",
             f"**Score: {row.points} / {MAX_POINTS}** (status: `{row.status}`)", ""]
    if row.status != "ok":
        lines += [f"> {row.message.split(' | ')[0]}", ""]
    lines += ["| check | points | result |", "|---|---|---|"]
    for name, check in CHECKS.items():
        if name in row.passed:
            result = "✓ passed"
        elif row.status == "invalid":
            result = "not run"
        else:
            result = "✗ failed"
        lines.append(f"| `{name}`: {check.description} | {row.check_points[name]} / {check.points} | {result} |")
    if row.failed:
        lines += ["", "## What went wrong", ""]
        for name, diag in row.failed.items():
            lines += [f"### ✗ `{name}` ({CHECKS[name].points} pt)", "", "```text", diag.strip(), "```", ""]
    if row.findings:
        lines += ["", "## Findings", ""] + [f"- {f}" for f in row.findings]
    return "\n".join(lines).rstrip() + "\n"
