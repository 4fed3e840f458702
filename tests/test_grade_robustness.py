"""A broken or hostile *file* never stops the batch: each gets its own row, and the others are graded.

The grader reads submissions as root in the trusted process, so what a submission folder can hold
(a symbolic link to the solution, a FIFO, JSON nested 200,000 deep) is read without following,
blocking or recursing. A grader worker that dies costs only the submission it was grading.
"""
import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mdn_course.exercise import MDN_LOSS
from mdn_course.exercise.answer_cell import InvalidNotebook
from mdn_course.grading import batch, submission
from mdn_course.grading.options import Options

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "notebooks" / "03_exercise_mdn_loss.ipynb"
CORRECT = ROOT / "tests" / "grading_corpus" / "01_correct.ipynb"


def load(path):
    return submission.load(path, MDN_LOSS)


def test_a_symbolic_link_is_never_followed_even_to_the_solution(tmp_path):
    link = tmp_path / "me.ipynb"
    link.symlink_to(SOLUTION)
    with pytest.raises(InvalidNotebook, match="symbolic link"):
        load(link)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "me.ipynb"
    os.mkfifo(fifo)
    with pytest.raises(InvalidNotebook, match="not a regular file"):
        load(fifo)  # a blocking open() would hang here until pytest-timeout


def test_deeply_nested_json_is_invalid_not_a_crash(tmp_path):
    deep = tmp_path / "me.ipynb"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(InvalidNotebook, match="nested too deeply"):
        load(deep)


def test_one_batch_grades_the_honest_one_and_gives_every_broken_file_its_row(tmp_path, working_sandbox):
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "a_correct.ipynb").write_bytes(CORRECT.read_bytes())
    (subs / "b_link.ipynb").symlink_to(SOLUTION)
    os.mkfifo(subs / "c_fifo.ipynb")
    (subs / "d_deep.ipynb").write_text("[" * 200_000 + "]" * 200_000)
    out = tmp_path / "grades.csv"
    proc = subprocess.run([sys.executable, "-m", "mdn_course", "grade", str(subs), "--out", str(out), "--jobs", "2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = {Path(r["submission"]).name: r for r in csv.DictReader(out.open())}
    assert (rows["a_correct.ipynb"]["status"], rows["a_correct.ipynb"]["points"]) == ("ok", "10")
    for name, why in (("b_link.ipynb", "symbolic link"), ("c_fifo.ipynb", "not a regular file"),
                      ("d_deep.ipynb", "nested too deeply")):
        assert rows[name]["status"] == "invalid" and why in rows[name]["message"], rows[name]
        assert rows[name]["points"] == "0"


def test_a_worker_that_dies_costs_only_its_own_submission(tmp_path, monkeypatch):
    # grade functions must be importable by the spawned workers: put one in a module on sys.path
    (tmp_path / "fake_grading.py").write_text(textwrap.dedent('''
        import os
        from mdn_course.grading import report

        def grade(path, display, key, secret, opts):
            if display == "dies":
                os._exit(3)          # the worker process vanishes mid-submission
            return report.Row(display, "ok")
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    import fake_grading

    opts = Options(use_sandbox=False)
    rows = batch.grade_paths(["first", "dies", "third", "fourth"], opts, 2, secret=b"secret", grade=fake_grading.grade)
    assert [r.submission for r in rows] == ["first", "dies", "third", "fourth"]
    assert [r.status for r in rows] == ["ok", "error", "ok", "ok"]
    assert "worker process died" in rows[1].message
