"""Tests of the instructor grader, ``python -m mdn_course grade`` (mdn_course/grading/).

One CLI call grades the committed corpus (tests/grading_corpus/, made by its make_corpus.py:
honest mistakes, tampered notebooks, and attacks on the grader from attacks.py) with
``--jobs 2``; every row is compared with make_corpus.EXPECTED. The escape probes that need this
run's paths, and the proofs that every probe really probes, are in test_grade_attacks.py.
Without a working bubblewrap the grader refuses (exit 2), and so do these tests: they skip
with the reason (the ``working_sandbox`` fixture), except the fail-closed test itself.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grading_helpers import CORPUS, GRADE_OPTS, ROOT, assert_row, grade, mc, rows_of
from mdn_course.exercise import CHECKS, EXERCISES, MDN_LOSS, TRAINING_STEP, run_all_checks
from mdn_course.exercise.answer_cell import AnswerCells, InvalidNotebook, exercise_of_cells, read_answer, strip_markers
from mdn_course.grading import limits, report, submission
from mdn_course.grading.gradescope.results import results_json
from mdn_course.sandboxed.oracle import answer_namespace


@pytest.fixture(scope="module")
def graded(tmp_path_factory, working_sandbox):
    tmp = tmp_path_factory.mktemp("grading")
    out = tmp / "out" / "grades.csv"
    feedback = tmp / "out" / "feedback"
    feedback.mkdir(parents=True)
    # a previous run's file (listed in the manifest) must go; a file the grader never wrote must stay
    (feedback / "stale_student.md").write_text("old\n")
    (feedback / report.MANIFEST).write_text(json.dumps(["stale_student.md"]))
    (feedback / "instructor_notes.md").write_text("mine\n")
    corpus = sorted(CORPUS.glob("*.ipynb"))
    before = {p: p.read_bytes() for p in corpus}
    # 59 submissions of two exercises (each training step trains a model for 200 steps through the sandbox)
    proc = grade(CORPUS, "--out", out, *GRADE_OPTS, timeout=1800)
    rows = rows_of(out) if out.exists() else []
    return {"proc": proc, "rows": rows, "out": out, "feedback": feedback, "corpus": corpus, "before": before}


def test_corpus_is_current(tmp_path):
    """The committed corpus is what make_corpus.py generates."""
    fresh = mc.build(tmp_path)
    assert [p.name for p in fresh] == [p.name for p in sorted(CORPUS.glob("*.ipynb"))]
    for p in fresh:
        assert p.read_bytes() == (CORPUS / p.name).read_bytes(), f"run python {CORPUS / 'make_corpus.py'}"
    assert (tmp_path / "expected.csv").read_bytes() == (CORPUS / "expected.csv").read_bytes()


def test_cli_completes(graded):
    proc = graded["proc"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"graded {len(graded['corpus'])} submission(s)" in proc.stderr
    assert "limits:" in proc.stderr


def test_csv_columns_and_input_order(graded):
    """One command grades a folder of both exercises: a column per check of each, in the course's order."""
    with open(graded["out"], encoding="utf-8") as f:
        header = next(csv.reader(f))
    assert header == ["submission", "exercise", "points", "max_points", "status", "message", *CHECKS,
                      *TRAINING_STEP.checks]
    assert {r["exercise"] for r in graded["rows"]} == {"mdn_loss", "training_step", ""}
    assert [r["submission"] for r in graded["rows"]] == [str(p) for p in graded["corpus"]]


@pytest.mark.parametrize("name", list(mc.EXPECTED))
def test_row(graded, name):
    row = next(r for r in graded["rows"] if Path(r["submission"]).stem == name)
    expected = mc.EXPECTED[name]
    if not limits.cgroups_available():
        expected = mc.WITHOUT_CGROUP.get(name, expected)
        assert "rlimits only" in graded["proc"].stderr
    assert_row(row, expected)


def test_originals_unchanged(graded):
    assert all(p.read_bytes() == b for p, b in graded["before"].items())


def test_feedback_holds_exactly_this_runs_files(graded):
    folder = graded["feedback"]
    names = sorted(p.name for p in folder.glob("*.md"))
    assert names == sorted([f"{p.stem}.md" for p in graded["corpus"]] + ["instructor_notes.md"])
    assert json.loads((folder / report.MANIFEST).read_text()) == [f"{p.stem}.md" for p in graded["corpus"]]
    assert "instructor_notes.md" in graded["proc"].stderr     # said, and left alone
    text = (folder / "02_wrong_sign.md").read_text(encoding="utf-8")
    assert "Score: 1 / 10" in text and "✓ passed" in text and "Likely mistake: wrong sign" in text
    assert "Exercise: `mdn_loss`" in text
    step = (folder / "54_step_no_zero_grad.md").read_text(encoding="utf-8")
    assert "Score: 9 / 10" in step and "### ✗ `fresh_gradients`" in step and "gradients accumulated" in step
    for check in ("single_gaussian", "mixture", "far_from_means", "leading_dims", "gradients", "learns"):
        assert f"### ✗ `{check}`" in text
    assert "What went wrong" not in (folder / "01_correct.md").read_text(encoding="utf-8")
    assert "not valid JSON" in (folder / "22_malformed.md").read_text(encoding="utf-8")


def test_gradescope_results_from_a_row(graded):
    row = next(r for r in graded["rows"] if Path(r["submission"]).stem == "05_naive_logsumexp")
    rebuilt = report.Row(row["submission"], row["status"], int(row["points"]),
                         {c: int(row[c]) for c in CHECKS}, row["message"],
                         passed={c: "ok" for c in CHECKS if int(row[c])},
                         failed={c: "diagnostic" for c in CHECKS if not int(row[c])}, exercise=row["exercise"])
    res = results_json([rebuilt])
    assert res["score"] == 8.0 and len(res["tests"]) == len(CHECKS)
    far = next(t for t in res["tests"] if t["name"].startswith("far_from_means"))
    assert far == {"name": far["name"], "score": 0.0, "max_score": 2.0, "status": "failed", "output": "diagnostic"}
    assert sum(t["max_score"] for t in res["tests"]) == 10


# ---------------------------------------------------------------- the judge agrees with the notebook

HONEST = ["01_correct", "02_wrong_sign", "03_mean_over_dims", "04_missing_log_weights", "05_naive_logsumexp",
          "06_variance_as_std", "07_returns_item", "50_step_correct", "51_step_unshifted_targets",
          "53_step_carried_state", "54_step_no_zero_grad", "57_step_clip_by_value", "61_step_manual_update"]


@pytest.mark.parametrize("name", HONEST)
def test_trusted_judge_agrees_with_the_notebook_checks(graded, name):
    """For honest answers, the sandboxed judge's verdicts equal run_all_checks in-process (the nbval path)."""
    function = mc.EXPECTED[name]["exercise"]
    namespace = answer_namespace(function)
    exec(read_answer(CORPUS / f"{name}.ipynb", function).source, namespace)
    local = run_all_checks(namespace[function], exercise=function)
    row = next(r for r in graded["rows"] if Path(r["submission"]).stem == name)
    assert {c: int(row[c]) > 0 for c in EXERCISES[function].checks} == {c: r.passed for c, r in local.items()}


# ---------------------------------------------------------------- exercise notebooks, fail closed, usage

EXERCISE_NOTEBOOKS = {"mdn_loss": "03_exercise_mdn_loss", "training_step": "04b_exercise_training_step"}


def test_distributed_exercise_notebooks(tmp_path, working_sandbox):
    """Each solution notebook scores full marks untampered; each student notebook, as handed out, is not attempted;
    one run grades both exercises, each by its answer cell."""
    subs = []
    for stem in EXERCISE_NOTEBOOKS.values():
        for name in (f"{stem}.ipynb", f"{stem}_student.ipynb"):
            subs.append(tmp_path / name)
            subs[-1].write_bytes((ROOT / "notebooks" / name).read_bytes())
    proc = grade(*subs, "--out", tmp_path / "g.csv", *GRADE_OPTS)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {Path(r["submission"]).name: r for r in rows_of(tmp_path / "g.csv")}
    for function, stem in EXERCISE_NOTEBOOKS.items():
        solution = rows[f"{stem}.ipynb"]
        assert (solution["exercise"], solution["status"], int(solution["points"])) == (function, "ok", 10), \
            solution["message"]
        student = rows[f"{stem}_student.ipynb"]
        assert (student["status"], int(student["points"])) == ("not_attempted", 0), student["message"]


@pytest.mark.parametrize("function", list(EXERCISE_NOTEBOOKS))
def test_exercise_notebook_carries_nbgrader_metadata(function):
    """nbgrader's generate_assignment/autograde read these: a solution cell and one locked grade cell per check."""
    exercise = EXERCISES[function]
    nb = json.loads((ROOT / "notebooks" / f"{EXERCISE_NOTEBOOKS[function]}.ipynb").read_text(encoding="utf-8"))
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    answer = [c for c in cells if "answer" in c["metadata"].get("tags", [])]
    assert len(answer) == 1 and answer[0]["metadata"]["nbgrader"]["solution"] is True
    assert answer[0]["metadata"]["nbgrader"]["grade_id"] == f"{function}_answer"   # how the grader tells them apart
    assert exercise_of_cells(nb["cells"], list(EXERCISES)) == function
    grade_cells = {c["metadata"]["nbgrader"]["grade_id"]: c["metadata"]["nbgrader"] for c in cells
                   if c["metadata"].get("nbgrader", {}).get("grade")}
    assert {gid: meta["points"] for gid, meta in grade_cells.items()} == \
        {f"check_{n}": c.points for n, c in exercise.checks.items()}
    assert all(meta["locked"] and meta["schema_version"] == 3 for meta in grade_cells.values())
    ids = [c["metadata"]["nbgrader"]["grade_id"] for c in cells if "nbgrader" in c["metadata"]]
    assert len(ids) == len(set(ids))


def test_no_sandbox_means_exit_2_with_the_fix(tmp_path):
    """Fail closed: with no bubblewrap on PATH the grader refuses and says how to install it."""
    env = dict(os.environ, PATH=str(tmp_path))
    proc = grade(CORPUS / "01_correct.ipynb", "--out", tmp_path / "g.csv", env=env)
    assert proc.returncode == 2
    assert "apt-get install bubblewrap" in proc.stderr and "--no-sandbox" in proc.stderr
    assert not (tmp_path / "g.csv").read_text()   # created empty by the writability check, never filled


def test_usage_errors_exit_2(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = grade(empty, "--out", tmp_path / "g.csv")
    assert proc.returncode == 2 and "no submissions found" in proc.stderr
    proc = grade(tmp_path / "missing.ipynb", "--out", tmp_path / "g.csv")
    assert proc.returncode == 2 and "no such file" in proc.stderr
    proc = grade(CORPUS / "01_correct.ipynb")
    assert proc.returncode == 2 and "--out" in proc.stderr
    proc = grade(CORPUS / "01_correct.ipynb", "--out", tmp_path / "g.csv", "--jobs", "0")
    assert proc.returncode == 2 and "positive" in proc.stderr
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = grade(CORPUS / "01_correct.ipynb", "--out", blocker / "g.csv")
    assert proc.returncode == 2 and "cannot write" in proc.stderr


# ---------------------------------------------------------------- units

def test_the_exercise_is_read_from_the_answer_cell_or_what_the_code_defines():
    def code(source, **meta):
        return {"cell_type": "code", "source": source, "metadata": meta}
    step = code("def training_step(model, optimizer, z, a, clip_norm=1.0):\n    pass",
                tags=["answer"], nbgrader={"grade_id": "training_step_answer"})
    assert exercise_of_cells([step], list(EXERCISES)) == "training_step"
    assert exercise_of_cells([code(step["source"])], list(EXERCISES)) == "training_step"   # metadata lost
    assert exercise_of_cells([code("def mdn_loss(pi, mu, sigma, z_next):\n    pass"),
                              code('run_check("aligned", training_step)')], list(EXERCISES)) == "mdn_loss"
    assert exercise_of_cells([code('run_check("mixture", mdn_loss)')], list(EXERCISES)) is None
    with pytest.raises(InvalidNotebook, match="none defines mdn_loss or training_step"):
        submission.detect_exercise([code("x = 1")])


def test_an_exercise_can_be_forced(tmp_path, working_sandbox):
    """--exercise names the exercise for every submission: a loss notebook graded as a training step has no step."""
    proc = grade(CORPUS / "01_correct.ipynb", "--out", tmp_path / "g.csv", "--exercise", "training_step", *GRADE_OPTS)
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = rows_of(tmp_path / "g.csv")[0]
    assert (row["exercise"], row["status"]) == ("training_step", "invalid") and "training_step" in row["message"]


def test_reading_is_bounded(tmp_path):
    """A notebook over the size cap is refused unread; an answer over its cap is refused before any scan."""
    big = tmp_path / "big.ipynb"
    big.write_bytes(b"{" + b" " * (8 * 2 ** 20 + 10))
    with pytest.raises(InvalidNotebook, match="over 8 MiB"):
        submission.load(big, MDN_LOSS)
    with pytest.raises(InvalidNotebook, match="over the limit"):
        submission.load(CORPUS / "40_huge_answer.ipynb", MDN_LOSS)


def test_magics_are_commented_out_and_markers_stripped():
    sub = AnswerCells(Path("s.ipynb"), ["%matplotlib inline\n!pip install x\ndef mdn_loss(a, b, c, d):\n"
                                        "    return a\n"], [0], False)
    assert "# (magic removed by the grader) %matplotlib inline" in sub.source
    assert "# (magic removed by the grader) !pip install x" in sub.source
    src = "# NBVAL_SKIP\n#NBVAL_RAISES_EXCEPTION\ndef mdn_loss(pi, mu, sigma, z_next):\n    return pi\n"
    assert "NBVAL" not in strip_markers(src) and "def mdn_loss" in strip_markers(src)


def test_feedback_manifest_never_deletes_what_it_did_not_list(tmp_path):
    (tmp_path / report.MANIFEST).write_text(json.dumps(["../outside.md", "a/b.md", "ok.md", 3]))
    outside = tmp_path.parent / "outside.md"
    outside.write_text("keep")
    (tmp_path / "ok.md").write_text("old")
    (tmp_path / "notes.md").write_text("keep")
    strays = report.write_feedback([report.Row("x.ipynb", "ok")], ["x.md"], tmp_path)
    assert outside.exists() and (tmp_path / "notes.md").exists() and not (tmp_path / "ok.md").exists()
    assert strays == ["notes.md"]
    outside.unlink()


def test_the_old_command_names_the_new_one_and_still_grades(tmp_path):
    """Instructors' scripts that call `python -m mdn_course.grade` keep working, and are told the new command."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "mdn_course.grade", str(CORPUS / "19_no_answer.ipynb"),
                           "--out", str(tmp_path / "g.csv"), "--no-sandbox", "--jobs", "1"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "is now `python -m mdn_course grade`" in proc.stderr
    assert rows_of(tmp_path / "g.csv")[0]["status"] == "invalid"
