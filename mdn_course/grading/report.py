"""From the judge's verdicts to a grade row, ``grades.csv`` and per-student Markdown feedback.

Points are always the sum of the checks the trusted judge passed; nothing the submission
wrote or printed enters a row except as quoted, length-capped text. Each row names its exercise
(the one its answer cell names); ``grades.csv`` has one column per check of every exercise in
the batch, left empty on the rows of the other exercise. Statuses (one per row, the first that
applies in this order; every finding is still listed in ``message``):

``invalid``        not gradable: unreadable, too large, not JSON, not a notebook, no answer cell; 0 points.
``tampered``       the notebook's check cells were edited or deleted, nbval markers or tags were added,
                   or outputs were faked. A flag for the instructor: none of that reaches the judge,
                   so the points are the judge's.
``timeout``        the answer cell, or a call of its function, ran out of time, or the submission's wall
                   clock ended before every check ran; checks judged before keep their points.
``error``          the answer cell failed (syntax error, an exception, no function), or the answer's
                   process died or garbled the channel during a check.
``not_attempted``  the answer is the untouched stub (every call raised NotImplementedError).
``ok``             judged normally, wrong answers included.
"""
from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..exercise.exercises import EXERCISES
from ..exercise.registry import Exercise
from .judge import Judged
from .submission import Submission

MANIFEST = ".mdn-grade-feedback.json"


def exercises_of(rows: Sequence["Row"]) -> List[Exercise]:
    """The exercises the rows were graded as, in the course's order (the loss exercise when none is known)."""
    present = {r.exercise for r in rows if r.exercise}
    return [e for name, e in EXERCISES.items() if name in present] or [EXERCISES["mdn_loss"]]


def columns(exercises: Sequence[Exercise]) -> List[str]:
    """The header of ``grades.csv``: the row's summary, then one column per check of each of ``exercises``."""
    return ["submission", "exercise", "points", "max_points", "status", "message",
            *[name for exercise in exercises for name in exercise.checks]]


@dataclass
class Row:
    """One submission's grade: its exercise, status, points per check, and what the student is told.

    ``exercise`` is a key of EXERCISES, or None for a file that is no notebook of either exercise
    (its maximum is then the largest exercise's)."""
    submission: str
    status: str
    points: int = 0
    check_points: Dict[str, int] = field(default_factory=dict)   # every check of the exercise, 0 if failed
    message: str = ""
    passed: Dict[str, str] = field(default_factory=dict)      # check -> pass detail
    failed: Dict[str, str] = field(default_factory=dict)      # check -> diagnostic
    mistakes: Dict[str, str] = field(default_factory=dict)    # check -> mistake id
    findings: List[str] = field(default_factory=list)         # tampering flags, for feedback
    exercise: Optional[str] = "mdn_loss"

    def __post_init__(self) -> None:
        checks = EXERCISES[self.exercise].checks if self.exercise else {}
        self.check_points = {n: self.check_points.get(n, 0) for n in checks}

    @property
    def max_points(self) -> int:
        if self.exercise:
            return EXERCISES[self.exercise].max_points
        return max(e.max_points for e in EXERCISES.values())

    def as_csv(self) -> Dict[str, object]:
        row = {"submission": self.submission, "exercise": self.exercise or "", "points": self.points,
               "max_points": self.max_points, "status": self.status, "message": self.message}
        row.update(self.check_points)
        return row


def invalid_row(name: str, why: str, exercise: Optional[str] = None) -> Row:
    return Row(name, "invalid", message=f"invalid: {why}", exercise=exercise)


def error_row(name: str, why: str, exercise: Optional[str] = None) -> Row:
    return Row(name, "error", message=why, exercise=exercise)


def _short(text: str, n: int = 300) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= n else text[: n - 1] + "…"


def grade_row(name: str, sub: Submission, judged: Judged, exercise: Exercise) -> Row:
    """The row of one judged submission (see the module docstring for the statuses)."""
    row = Row(name, "ok", exercise=exercise.function)
    reasons: List[str] = []
    for check, result in judged.results.items():
        if result.passed:
            row.passed[check] = result.detail
            row.check_points[check] = exercise.checks[check].points
        else:
            row.failed[check] = result.message or result.detail
            if result.mistake:
                row.mistakes[check] = result.mistake
    for check in judged.not_run:
        row.failed[check] = "not judged: the answer's process could not be run (see above)"
    row.points = sum(row.check_points.values())

    statuses = []
    d = judged.start_failure
    if d is not None:
        if d.kind == "timeout":
            statuses.append("timeout")
            reasons.append(f"the answer cell ran out of time ({_short(d.error, 200)}): an infinite loop "
                           "or heavy work at the top level of the cell?")
        elif d.kind == "undefined":
            statuses.append("error")
            reasons.append(f"the answer cell(s) do not define {exercise.function}")
        else:
            statuses.append("error")
            reasons.append(f"the answer cell failed: {_short(d.error, 300)}")
    for f in judged.failures:
        where = f" in check {f.check}" if f.check else ""
        statuses.append("timeout" if f.kind == "timeout" else "error")
        reasons.append(_short(f.text, 200) + where)
    if judged.not_run and d is None:
        statuses.append("timeout")
        reasons.append(f"not judged in time: {', '.join(judged.not_run)}")
    untouched = (d is None and judged.results and not row.passed
                 and all(m == "not_implemented" for m in row.mistakes.values())
                 and len(row.mistakes) == len(judged.results))
    if untouched:
        statuses.append("not_attempted")
        reasons.append(f"not attempted: {exercise.function} still raises NotImplementedError (the untouched stub)")
    if sub.tampering:
        row.findings = list(sub.tampering)
        statuses.append("tampered")
        reasons.append("tampering flagged (it cannot change the grade: the points come from the grader's own "
                       "checks): " + "; ".join(sub.tampering))
    for status in ("tampered", "timeout", "error", "not_attempted"):
        if status in statuses:
            row.status = status
            break
    summary = f"{len(row.passed)}/{len(exercise.checks)} checks passed"
    if row.failed:
        summary += "; failed: " + "; ".join(f"{c} ({_short(m, 160)})" for c, m in row.failed.items())
    row.message = " | ".join(list(dict.fromkeys(reasons)) + [summary] + sub.notes)
    return row


def write_csv(rows: List[Row], path: Path) -> None:
    """``grades.csv``: one row per submission, one column per check of every exercise among the rows."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns(exercises_of(rows)), restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow(row.as_csv())


def feedback_markdown(row: Row) -> str:
    """The student's feedback: score, one line per check, and for each failure the course's hint."""
    lines = [f"# Feedback: `{os.path.basename(row.submission)}`", "",
             f"**Score: {row.points} / {row.max_points}** (status: `{row.status}`)", ""]
    if row.status != "ok":
        lines += [f"> {row.message.split(' | ')[0]}", ""]
    if not row.exercise:
        return "\n".join(lines).rstrip() + "\n"
    exercise = EXERCISES[row.exercise]
    lines += [f"Exercise: `{exercise.function}`", "", "| check | points | result |", "|---|---|---|"]
    for name, check in exercise.checks.items():
        result = "✓ passed" if name in row.passed else ("not run" if row.status == "invalid" else "✗ failed")
        lines.append(f"| `{name}`: {check.description} | {row.check_points[name]} / {check.points} | {result} |")
    if row.failed:
        lines += ["", "## What went wrong", ""]
        for name, diag in row.failed.items():
            lines += [f"### ✗ `{name}` ({exercise.checks[name].points} pt)", "", "```text", diag.strip(), "```", ""]
            mistake = exercise.mistakes.get(row.mistakes.get(name, ""))
            if mistake is not None:
                lines += [f"**Likely mistake: {mistake.name}.** {mistake.nudge}", "",
                          f"- the maths: {mistake.maths}", f"- corrected: {mistake.fix}", ""]
    if row.findings:
        lines += ["", "## Findings", ""] + [f"- {f}" for f in row.findings]
    return "\n".join(lines).rstrip() + "\n"


def feedback_names(paths: List[Path]) -> List[str]:
    """One Markdown file name per submission: its stem; parent__stem where stems collide; then an index."""
    stems = [p.stem for p in paths]
    names, used = [], set()
    for i, p in enumerate(paths):
        name = p.stem if stems.count(p.stem) == 1 else f"{p.resolve().parent.name}__{p.stem}"
        name = re.sub(r"[^\w.-]", "_", name)[:120] or "submission"
        if name in used:
            name = f"{name}_{i + 1}"
        used.add(name)
        names.append(name + ".md")
    return names


def _previous_files(folder: Path) -> List[str]:
    """The files an earlier run of the grader wrote in ``folder``, from its manifest (plain names only)."""
    try:
        with open(folder / MANIFEST, "rb") as f:
            listed = json.loads(f.read(4 * 1024 * 1024).decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return []
    if not isinstance(listed, list):
        return []
    return [n for n in listed if isinstance(n, str) and re.fullmatch(r"[\w.-]+\.md", n)]


def write_feedback(rows: List[Row], names: List[str], folder: Path) -> List[str]:
    """Replace the files of the previous run (per the manifest) with this run's; return stray .md files.

    Only files the grader itself listed are removed; anything else in the folder is left alone
    and returned, so the caller can say the folder holds files it did not write.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for old in _previous_files(folder):
        p = folder / old
        if p.is_symlink() or p.is_file():
            p.unlink()
    for row, name in zip(rows, names):
        p = folder / name
        if p.is_symlink():
            p.unlink()
        p.write_text(feedback_markdown(row), encoding="utf-8")
    (folder / MANIFEST).write_text(json.dumps(names, indent=0) + "\n", encoding="utf-8")
    return sorted(p.name for p in folder.glob("*.md") if p.name not in set(names))


def write_outputs(rows: List[Row], paths: List[Path], out: Path, feedback: Path) -> List[str]:
    """``grades.csv`` at ``out`` and one feedback file per submission in ``feedback``; return stray .md files."""
    write_csv(rows, out)
    return write_feedback(rows, feedback_names(paths), feedback)


def status_counts(rows: List[Row]) -> str:
    """``error: 8, ok: 18, ...``: how many rows have each status, for the closing line of a run."""
    counts: Dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
