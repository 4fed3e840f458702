"""What the grader's tests share: the corpus, one way to run the grader, and how to read and check its rows.

``mc`` is ``tests/grading_corpus/make_corpus.py`` (the corpus and the row each submission must
get). Whether a sandbox works here is the ``working_sandbox`` fixture of ``conftest.py``, probed
once per session; nothing here starts a sandbox.
"""
from __future__ import annotations

import csv
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from mdn_course.exercise import EXERCISES

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "grading_corpus"
GRADE_OPTS = ["--jobs", "2", "--timeout", "60", "--request-timeout", "5", "--memory-mb", "1024"]


def _load_corpus_module():
    spec = importlib.util.spec_from_file_location("make_corpus", CORPUS / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mc = _load_corpus_module()


def grade(*args, env=None, timeout=900):
    """Run ``python -m mdn_course grade ARGS`` from the repository root, as an instructor would."""
    env = dict(os.environ if env is None else env, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "mdn_course", "grade", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def rows_of(path):
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def assert_row(row, exp):
    """``row`` (from grades.csv) has the exercise, status, points, passing checks and words ``exp`` (make_corpus)
    says; the columns of the other exercise's checks are empty."""
    assert row["status"] == exp["status"], row["message"]
    assert row["exercise"] == exp["exercise"], row["message"]
    assert int(row["max_points"]) == (EXERCISES[exp["exercise"]].max_points if exp["exercise"] else 10)
    for exercise in EXERCISES.values():
        for check, spec in exercise.checks.items():
            if check not in row:
                continue
            if exercise.function != exp["exercise"]:
                assert row[check] == "", f"{check} filled for a {exp['exercise'] or 'unknown'} row"
            else:
                assert int(row[check]) == (spec.points if check in exp["passed"] else 0), f"{check}: {row['message']}"
    assert int(row["points"]) == exp["points"], row["message"]
    for word in exp["words"]:
        assert word in row["message"], f"{word!r} missing from: {row['message']}"
