"""The lesson notebooks: structure, the generated student exercise, and nbval runs.

Fast tests (no kernel): the student notebook is in sync with its solution
source, the exercise's check cells equal what the check registry generates,
every notebook has its badge / install / setup / narration cells, and the
stub of the answer cell defines the function without running it.

Slow tests (``-m notebooks``; about three minutes on two cores): nbval in strict
mode on every solution notebook (stored outputs must reproduce), run twice
against the same stored outputs (``mdn_course.tools.cpu_matrix.CI_COMBOS``):
with the settings the outputs were stored with (this CPU's fastest kernels, one
thread), and again with every numerics setting changed at once (no vector
kernels, two threads, MKL's generic code path, oneDNN limited to SSE4.1), which
computes the same floats the way another CPU could. The whole matrix of those
settings is ``python -m mdn_course.tools.cpu_matrix``. Strict means every
output's text, kinds and integers exactly, and decimal numbers within the
cell's tolerance (``mdn_course.tools.nbval_numbers``). Then nbval in lax mode
on the student exercise, which must fail at exactly its check cells, and on
the student exercise with the reference answer put back, which must pass
everywhere. nbval runs in a subprocess (two xdist workers, one notebook per
worker at a time) and its per-cell results are read from JUnit XML.
"""
from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from mdn_course.exercise import CHECKS, run_all_checks
from mdn_course.exercise.registry import Check
from mdn_course.links import colab_url
from mdn_course.tools.cpu_matrix import CI_COMBOS
from mdn_course.tools.nbval_numbers import DEFAULT_TOLERANCE, Tolerance, cell_tolerance, compare_text
from mdn_course.tools.nbval_run import cell_results as _cell_results
from mdn_course.tools.nbval_run import failure_reports as _failure_reports
from mdn_course.tools.nbval_run import run_nbval
from mdn_course.tools.notebook_runner import is_narration_cell, series
from mdn_course.tools.notebook_sync import install_cell_source, is_install_cell
from mdn_course.tools.notebooks import NOTEBOOK_DIR, notebook_text, student_path
from mdn_course.tools.student_version import (BEGIN_SOLUTION, END_SOLUTION, STUB_WIDTH, MarkerError, check_cells,
                                              make_student_notebook, out_of_sync, solution_notebooks, strip_solution)

REPO = Path(__file__).resolve().parent.parent
EXERCISE = NOTEBOOK_DIR / "03_exercise_mdn_loss.ipynb"
STEP_EXERCISE = NOTEBOOK_DIR / "04b_exercise_training_step.ipynb"
SOLUTIONS = series()
SEGMENT = re.compile(r'^play\("(?P<id>[^"]+)"\)$')


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def _tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


# ---------------------------------------------------------------- the series and its structure

def test_series_is_complete():
    names = [p.name for p in SOLUTIONS]
    assert names == ["01_why_distributions.ipynb", "02_the_model.ipynb", "03_exercise_mdn_loss.ipynb",
                     "04_training.ipynb", "04b_exercise_training_step.ipynb", "05_dreaming.ipynb",
                     "06_memory_and_attention.ipynb", "07_long_dreams_and_next_steps.ipynb",
                     "08_dreams_you_can_see.ipynb", "09_learning_in_the_dream.ipynb"]
    assert solution_notebooks(NOTEBOOK_DIR) == [EXERCISE, STEP_EXERCISE]
    assert student_path(EXERCISE).exists()


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_notebook_opening_cells(path):
    nb = _read(path)
    title = nb.cells[0]
    assert title.cell_type == "markdown" and title.source.startswith("# ")
    assert f"({colab_url(path.name)})" in title.source, \
        "the Colab badge does not open this notebook; run: python -m mdn_course sync-notebooks"
    assert "minutes" in title.source
    install = _code_cells(nb)[0]
    assert is_install_cell(install) and install.source == install_cell_source(), \
        "the Colab install cell is not the one mdn_course/links.py makes; run: python -m mdn_course sync-notebooks"
    setup = _code_cells(nb)[1]
    for needle in ("from mdn_course import get_device, describe_device, set_seed", "device = get_device()",
                   "print(describe_device(device))", "set_seed(0)", "from mdn_course.narration import play"):
        assert needle in setup.source
    assert "nbval-ignore-output" in _tags(setup)
    assert nb.metadata["kernelspec"]["name"] == "python3"


COURSE_WELCOME = "00_welcome"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_narration_cells(path):
    nb = _read(path)
    number = path.name.split("_")[0]   # "04b" for the exercise between lessons 4 and 5
    ids = []
    for cell in _code_cells(nb):
        match = SEGMENT.match(cell.source.strip())
        if not match:
            continue
        ids.append(match["id"])
        assert "nbval-ignore-output" in _tags(cell)
        assert is_narration_cell(cell)
        assert cell.outputs == [], f"{path.name}: committed narration cell {match['id']} has outputs"
    if number == "01":  # the course opens with one welcome segment before lesson 1's own
        assert ids[0] == COURSE_WELCOME, f"lesson 1 should open with {COURSE_WELCOME}"
        ids = ids[1:]
    assert COURSE_WELCOME not in ids
    assert 3 <= len(ids) <= 6
    for i, segment in enumerate(ids, start=1):
        assert re.fullmatch(rf"{number}_{i:02d}_[a-z0-9_]+", segment), segment
        script = REPO / "narration" / "scripts" / f"{segment}.txt"
        assert script.exists(), f"missing narration script {script.name}"
        words = len(script.read_text(encoding="utf-8").split())
        assert 40 <= words <= 120, f"{script.name} has {words} words"


def test_every_narration_script_is_played_somewhere():
    played = {m["id"] for path in SOLUTIONS for cell in _code_cells(_read(path))
              if (m := SEGMENT.match(cell.source.strip()))}
    scripts = {p.stem for p in (REPO / "narration" / "scripts").glob("*.txt")}
    assert scripts - played == set(), "narration scripts no notebook plays"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_committed_outputs_are_clean(path):
    text = path.read_text(encoding="utf-8")
    nb = _read(path)
    assert "widgets" not in nb.metadata
    assert all(c.execution_count is not None for c in _code_cells(nb)), "execute with the runner before committing"
    assert not re.search(r"0x[0-9a-f]{8,}", text), "memory address in stored outputs"
    for cell in _code_cells(nb):
        for out in cell.outputs:
            assert out.output_type != "error", f"{path.name} stores an error output"
            for value in ([out.get("text", "")] + [v for k, v in out.get("data", {}).items() if k.startswith("text/")]):
                value = "".join(value) if isinstance(value, list) else str(value)
                assert "/work/" not in value and "/tmp/" not in value, "absolute path in stored outputs"


# ---------------------------------------------------------------- the generated student exercise

def test_student_notebooks_in_sync():
    assert out_of_sync(NOTEBOOK_DIR) == [], "run: python -m mdn_course student-version"
    for solution in solution_notebooks(NOTEBOOK_DIR):
        expected = notebook_text(make_student_notebook(_read(solution), name=solution.name))
        assert student_path(solution).read_text(encoding="utf-8") == expected


def test_student_notebook_is_clean_and_otherwise_identical():
    solution, student = _read(EXERCISE), _read(student_path(EXERCISE))
    assert len(solution.cells) == len(student.cells)
    for index, (a, b) in enumerate(zip(solution.cells, student.cells)):
        assert a.id == b.id and a.cell_type == b.cell_type and a.metadata == b.metadata
        if b.cell_type == "code":
            assert b.outputs == [] and b.execution_count is None
        if "answer" in _tags(a):
            assert BEGIN_SOLUTION in a.source and BEGIN_SOLUTION not in b.source
            assert "raise NotImplementedError(" in b.source
        elif index == 0:   # the title: only the badge differs, and it opens the student copy
            assert f"({colab_url(student_path(EXERCISE).name)})" in b.source
            assert b.source.replace("_student.ipynb)", ".ipynb)") == a.source
        else:
            assert a.source == b.source


def test_answer_cell_metadata_and_stub_behaviour():
    solution, student = _read(EXERCISE), _read(student_path(EXERCISE))
    answers = [c for c in solution.cells if "answer" in _tags(c)]
    assert len(answers) == 1
    answer = answers[0]
    assert answer.metadata["nbgrader"] == {"grade": False, "solution": True, "locked": False,
                                           "grade_id": "mdn_loss_answer", "schema_version": 3}
    assert "mdn_course.mdn_loss" not in answer.source and "import mdn_loss" not in answer.source
    stub = next(c for c in student.cells if "answer" in _tags(c))
    assert stub.source.startswith("def mdn_loss(pi, mu, sigma, z_next):\n    \"\"\"")
    generated = stub.source[stub.source.index("# YOUR CODE HERE"):]
    assert max(len(line) for line in generated.splitlines()) <= STUB_WIDTH, "the stub scrolls sideways"
    namespace = {}
    exec("import math, torch\n" + stub.source, namespace)   # defining the stub works ...
    with pytest.raises(NotImplementedError, match=r"hint\(mdn_loss\)"):
        namespace["mdn_loss"](None, None, None, None)         # ... only calling it fails
    reference = {}
    exec("import math, torch\n" + answer.source, reference)
    results = run_all_checks(reference["mdn_loss"], names=["mixture", "far_from_means"])
    assert {name: result.passed for name, result in results.items()} == {"mixture": True, "far_from_means": True}


def test_check_cells_equal_registry():
    nb = _read(EXERCISE)
    generated = check_cells()
    ids = {c.id for c in generated}
    stored = [c for c in nb.cells if c.id in ids or "check" in _tags(c)]
    assert [(c.id, c.cell_type, c.source, c.metadata) for c in stored] == \
        [(c.id, c.cell_type, c.source, c.metadata) for c in generated]
    code = [c for c in stored if c.cell_type == "code"]
    assert [c.metadata["check"] for c in code] == list(CHECKS)
    for cell, check in zip(code, CHECKS.values()):
        assert cell.source == f'run_check("{check.name}", mdn_loss)'
        assert cell.metadata["points"] == check.points == cell.metadata["nbgrader"]["points"]
        assert cell.metadata["nbgrader"]["grade_id"] == f"check_{check.name}"
    setup = _code_cells(nb)[1]
    assert "from mdn_course.exercise import run_check" in setup.source


def test_the_training_step_exercise_has_its_answer_stub_and_check_cells():
    solution, student = _read(STEP_EXERCISE), _read(student_path(STEP_EXERCISE))
    answer = next(c for c in solution.cells if "answer" in _tags(c))
    assert answer.metadata["nbgrader"]["grade_id"] == "training_step_answer"
    stub = next(c for c in student.cells if "answer" in _tags(c))
    namespace = {}
    exec("import math, torch\n" + stub.source, namespace)
    with pytest.raises(NotImplementedError, match=r"hint\(training_step\)"):
        namespace["training_step"](None, None, None, None)
    generated = check_cells(function="training_step")
    ids = {c.id for c in generated}
    stored = [c for c in solution.cells if c.id in ids or "check" in _tags(c)]
    assert [(c.id, c.source, c.metadata) for c in stored] == [(c.id, c.source, c.metadata) for c in generated]
    assert any("summary" in _tags(c) and c.source == "check_summary(training_step)" for c in solution.cells)


def test_check_cells_follow_registry_changes():
    fake = {"b": Check("b", 3, "does b", lambda f: "ok"), "a": Check("a", 1, "does a", lambda f: "ok")}
    cells = check_cells(fake)
    assert [c.cell_type for c in cells] == ["markdown", "code", "markdown", "code"]
    assert [c.metadata["check"] for c in cells if c.cell_type == "code"] == ["b", "a"]
    assert "does b" in cells[0].source and cells[1].metadata["points"] == 3


def test_unbalanced_markers_are_reported():
    body = "def f():\n    {}\n    return 1\n"
    with pytest.raises(MarkerError, match="never closed"):
        strip_solution(body.format(BEGIN_SOLUTION), where="x")
    with pytest.raises(MarkerError, match="without a matching"):
        strip_solution(body.format(END_SOLUTION), where="x")
    nested = f"{BEGIN_SOLUTION}\n{BEGIN_SOLUTION}\n{END_SOLUTION}\n"
    with pytest.raises(MarkerError, match="inside"):
        strip_solution(nested)
    nb = copy.deepcopy(_read(EXERCISE))
    answer = next(c for c in nb.cells if "answer" in _tags(c))
    answer.source = answer.source.replace(END_SOLUTION, "")
    with pytest.raises(MarkerError):
        make_student_notebook(nb)


def test_student_cli_check_passes():
    proc = subprocess.run([sys.executable, "-m", "mdn_course", "student-version", "--check"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---------------------------------------------------------------- nbval (slow)

#: The strict run is repeated under these ways of computing (``mdn_course.tools.cpu_matrix``): the
#: stored outputs' own settings, and one where every numerics setting differs from them.
STRICT_COMBOS = CI_COMBOS


def _nbval(paths, xml: Path, *, lax: bool, settings=None, rootdir: Path = REPO):
    return run_nbval(paths, xml, lax=lax, settings=settings, rootdir=rootdir)


@pytest.fixture(scope="session", params=STRICT_COMBOS, ids=lambda combo: combo.name)
def strict_run(request, tmp_path_factory):
    combo = request.param
    xml = tmp_path_factory.mktemp("nbval") / f"strict-{combo.name}.xml"
    proc = _nbval(SOLUTIONS, xml, lax=False, settings=combo.env)
    return proc, _cell_results(xml), combo


EXERCISES = (EXERCISE, STEP_EXERCISE)


@pytest.fixture(scope="session")
def lax_run(tmp_path_factory):
    """Each exercise's student copy as it is, and with the solution's answer cell, under lax nbval.

    One nbval run per exercise: notebooks outside the repository all get the JUnit classname '', so two
    answered notebooks in one run report their cells under the same names and one of them disappears."""
    folder = tmp_path_factory.mktemp("student")
    results, answered, stdout = {}, {}, []
    for exercise in EXERCISES:
        student = _read(student_path(exercise))
        reference = next(c for c in _read(exercise).cells if "answer" in _tags(c))
        for cell in student.cells:
            if "answer" in _tags(cell):
                cell.source = reference.source
        target = folder / f"{exercise.stem}_with_reference_answer.ipynb"
        target.write_text(notebook_text(student), encoding="utf-8")
        answered[exercise] = target.name
        xml = folder / f"lax-{exercise.stem}.xml"
        proc = _nbval([student_path(exercise), target], xml, lax=True)
        results.update(_cell_results(xml))
        stdout.append(proc.stdout)
    return SimpleNamespace(stdout="\n".join(stdout)), results, answered


@pytest.mark.notebooks
@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_solution_notebook_nbval_strict(strict_run, path):
    proc, results, combo = strict_run
    cells = results.get(path.name)
    assert cells, f"nbval collected nothing for {path.name}:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
    assert len(cells) == len(_code_cells(_read(path)))
    failed = [n for n, status in cells.items() if status != "passed"]
    assert not failed, (f"{path.name}: cells {failed} differ from the stored outputs under "
                        f"{combo.describe()} (each report below says whether only numbers moved or the text "
                        f"changed; python -m mdn_course.tools.cpu_matrix runs the other combinations):\n"
                        f"{_failure_reports(proc.stdout, path.name)}")


# ---------------------------------------------------------------- numbers within tolerance, text exact

def test_numbers_move_within_tolerance_text_and_integers_do_not():
    tol = DEFAULT_TOLERANCE
    assert compare_text("NLL -1.24 nats, shape (4, 3)", "NLL -1.25 nats, shape (4, 3)", tol).within
    assert compare_text("|  0.01 | 0.07", "| -0.01 | 0.07", tol).within            # column width may change
    assert not compare_text("shape (4, 3)", "shape (4, 2)", tol).same_text           # integers exact
    assert not compare_text("loss 0.50 nats", "loss 0.50 bits", tol).same_text      # words exact
    assert not compare_text("a 1.0\nb 2.0", "a 1.0\nb 2.0\nc 3.0", tol).same_text  # one more line
    drift = compare_text("gap 2.73", "gap 3.21", tol)
    assert drift.same_text and not drift.within and drift.worst == ("2.73", "3.21")
    assert compare_text("gap 2.73", "gap 3.21", Tolerance(rel=0.5, abs=0.05)).within
    assert compare_text("15 paths", "16 paths", Tolerance(rel=0.25, abs=0, integers=True)).within
    assert compare_text("left 26%, off 0%", "left 25%, off 1%", tol).within      # percentages are fractions
    assert not compare_text("left 26%", "left 36%", tol).within
    assert not compare_text("left 26%", "left 26 %", tol).same_text
    assert compare_text("nan", "nan", tol).within and not compare_text("inf 1.0", "inf 1.2", tol).within


def test_a_line_can_have_its_own_tolerance_and_the_rest_of_the_cell_keeps_the_cell_s():
    cell = {"metadata": {"nbval_tolerance": {"rel": 0.05, "abs": 0.02, "integers": True, "lines": [
        {"match": r"^tau = 0\.01:", "rel": 0.5, "why": "a near-tie amplified 100-fold"}]}}}
    tol = cell_tolerance(cell)
    stored = "tau = 0.01:  50 distinct patterns, 0.23 up\ntau = 1.00: 139 distinct patterns, 0.50 up\n"
    wide = compare_text(stored, stored.replace(" 50 ", " 32 ").replace("0.23", "0.14"), tol)
    assert wide.within and wide.worst == ("50", "32") and wide.worst_tolerance.rel == 0.5
    narrow = compare_text(stored, stored.replace("139", "120"), tol)    # the other line: 5 % + 0.02
    assert not narrow.within and narrow.worst == ("139", "120") and narrow.worst_tolerance.rel == 0.05
    assert tol.for_line("tau = 1.00: 139") is tol
    assert cell_tolerance({"metadata": {}}) == DEFAULT_TOLERANCE
    only_lines = cell_tolerance({"metadata": {"nbval_tolerance": {"lines": [{"match": "^x", "abs": 0.1}]}}})
    assert (only_lines.rel, only_lines.abs) == (DEFAULT_TOLERANCE.rel, DEFAULT_TOLERANCE.abs)   # not exact
    assert only_lines.for_line("x 0.5").abs == 0.1 and only_lines.for_line("x 0.5").rel == DEFAULT_TOLERANCE.rel


@pytest.mark.parametrize("entry, message", [
    ({"rel": "wide"}, "must look like"),
    ({"lines": [{"rel": 0.5}]}, "must look like"),                       # no "match"
    ({"lines": [{"match": "(", "rel": 0.5}]}, "not a regular expression"),
])
def test_bad_tolerance_metadata_is_named(entry, message):
    with pytest.raises(ValueError, match=message):
        cell_tolerance({"metadata": {"nbval_tolerance": entry}})


def _tiny_notebook(folder: Path, stored: str, metadata=None) -> Path:
    cell = nbformat.v4.new_code_cell('print(f"mean {0.5 + 1e-3:.3f} after 3 steps")', execution_count=1,
                                     metadata=metadata or {})
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stored)]
    nb = nbformat.v4.new_notebook(cells=[cell], metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})
    path = folder / f"tiny_{len(list(folder.glob('*.ipynb')))}.ipynb"
    path.write_text(notebook_text(nb), encoding="utf-8")
    return path


@pytest.mark.notebooks
def test_strict_nbval_tells_drift_from_a_change_of_behaviour(tmp_path):
    drift_ok = _tiny_notebook(tmp_path, "mean 0.510 after 3 steps\n")      # 0.501 within 0.02 + 5 %
    drift_far = _tiny_notebook(tmp_path, "mean 0.601 after 3 steps\n")     # beyond tolerance
    changed = _tiny_notebook(tmp_path, "mean 0.501 after 4 steps\n")       # an integer changed
    exact = _tiny_notebook(tmp_path, "mean 0.502 after 3 steps\n", {"nbval_tolerance": {"rel": 0, "abs": 0}})
    proc = _nbval([drift_ok, drift_far, changed, exact], tmp_path / "tiny.xml", lax=False, rootdir=tmp_path)
    results = _cell_results(tmp_path / "tiny.xml")
    assert results == {drift_ok.name: {0: "passed"}, drift_far.name: {0: "failed"}, changed.name: {0: "failed"},
                       exact.name: {0: "failed"}}, proc.stdout[-4000:]
    far, change = _failure_reports(proc.stdout, drift_far.name), _failure_reports(proc.stdout, changed.name)
    assert "ONLY NUMBERS DIFFER" in far and "0.601 (stored) became 0.501" in far
    assert "THE TEXT OF THE OUTPUT CHANGED" in change
    for report in (far, change):
        assert "python -m mdn_course run-notebooks --refresh --only tiny_" in report


@pytest.mark.notebooks
@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda p: p.stem)
def test_student_exercise_fails_exactly_at_checks(lax_run, exercise):
    """Run All on the stub: the summary and the stored failing example run, each check cell fails."""
    proc, results, _ = lax_run
    name = student_path(exercise).name
    code = _code_cells(_read(student_path(exercise)))
    cells = results.get(name)
    assert cells and len(cells) == len(code), f"nbval did not run {name}:\n{proc.stdout[-3000:]}"
    expected = {i: ("failed" if "check" in _tags(c) else "passed") for i, c in enumerate(code)}
    assert cells == expected, proc.stdout[-6000:]
    assert "not implemented yet" in proc.stdout


@pytest.mark.notebooks
@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda p: p.stem)
def test_student_exercise_with_reference_answer_passes(lax_run, exercise):
    proc, results, answered = lax_run
    cells = results.get(answered[exercise])
    assert cells, f"nbval did not run the answered notebook:\n{proc.stdout[-3000:]}"
    failed = [n for n, status in cells.items() if status != "passed"]
    assert not failed, f"cells {failed} failed:\n{proc.stdout[-6000:]}"


@pytest.mark.skipif(sys.platform == "win32", reason="no ipc transport on Windows; kernels keep TCP there")
def test_runner_kernels_use_local_sockets_without_the_tcp_warning(tmp_path):
    path = _tiny_notebook(tmp_path, "")
    code = ("import sys; from pathlib import Path; from mdn_course.tools.notebook_runner import execute_notebook; "
            "nb, _, error = execute_notebook(Path(sys.argv[1])); print(error, nb.cells[0].outputs[0].text, end='')")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300,
                            cwd=tmp_path)
    assert result.stdout == "None mean 0.501 after 3 steps\n", result.stdout + result.stderr
    assert "without encryption" not in result.stderr, "a kernel was started over TCP"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name], "socket files left in the notebook folder"
