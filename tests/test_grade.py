"""Tests of the instructor grader, ``python -m mdn_course.grade`` (mdn_course/grade.py, mdn_course/grading/).

One CLI call grades the whole corpus (tests/grading_corpus/, made by its
make_corpus.py) plus two sandbox probes generated here: one tries to delete a
sentinel file in this test's tmp dir, the other to connect to a server this
test listens with on 127.0.0.1 and to outside addresses; each returns a wrong
loss if its escape worked, and the test also watches the sentinel and the
server. Every row is compared with make_corpus.EXPECTED. The probes'
assertions skip, with the reason, when bubblewrap cannot run here.
"""
from __future__ import annotations

import csv
import hashlib
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import nbformat
import pytest

from mdn_course.exercise.checks import CHECKS
from mdn_course.grading import canonical, sandbox
from mdn_course.grading.submission import scan_answer, strip_markers

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "grading_corpus"
SANDBOX_OK, SANDBOX_WHY = sandbox.probe()


def _load_corpus_module():
    spec = importlib.util.spec_from_file_location("make_corpus", CORPUS / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mc = _load_corpus_module()


def _grade(*args, timeout=900):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "mdn_course", "grade", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _hashes(paths):
    return {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


class _Listener:
    """A TCP server on 127.0.0.1 that counts the connections it accepts."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.accepted += 1
                conn.close()
            except OSError:
                continue

    def close(self):
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grading")
    sentinels = [tmp / "sentinel.txt"]   # under /tmp: the sandbox's /tmp is a private tmpfs
    try:                                 # outside /tmp: the sandbox's root is read-only
        fd, other = tempfile.mkstemp(prefix="mdn-grade-sentinel-", dir="/var/tmp")
        os.close(fd)
        sentinels.append(Path(other))
    except OSError:
        pass
    for s in sentinels:
        s.write_text("the grader's sandbox must keep me\n")
    listener = _Listener()
    probes = mc.sandbox_probes(tmp / "probes", sentinels=sentinels, port=listener.port)
    corpus = sorted(CORPUS.glob("*.ipynb"))
    before = _hashes(corpus + probes)
    out = tmp / "out" / "grades.csv"
    try:
        proc = _grade(CORPUS, *probes, "--out", out, "--jobs", 2, "--timeout", 45, "--cell-timeout", 20)
    finally:
        listener.close()
    rows = list(csv.DictReader(open(out, encoding="utf-8"))) if out.exists() else []
    kept = [s.exists() for s in sentinels]
    for s in sentinels[1:]:
        s.unlink(missing_ok=True)
    return {"proc": proc, "rows": rows, "out": out, "corpus": corpus, "probes": probes, "before": before,
            "after": _hashes(corpus + probes), "sentinels": sentinels, "kept": kept, "accepted": listener.accepted}


def test_corpus_is_current(tmp_path):
    """The committed corpus is what make_corpus.py generates."""
    fresh = mc.build(tmp_path)
    assert [p.name for p in fresh] == [p.name for p in sorted(CORPUS.glob("*.ipynb"))]
    for p in fresh:
        assert p.read_bytes() == (CORPUS / p.name).read_bytes(), f"run python {CORPUS / 'make_corpus.py'}"
    assert (tmp_path / "expected.csv").read_bytes() == (CORPUS / "expected.csv").read_bytes()


def test_cli_completes_with_exit_0(graded):
    proc = graded["proc"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "graded 25 submission(s)" in proc.stderr
    if not SANDBOX_OK:
        assert "WITHOUT a sandbox" in proc.stderr


def test_csv_columns_and_input_order(graded):
    with open(graded["out"], encoding="utf-8") as f:
        header = next(csv.reader(f))
    assert header == ["submission", "points", "max_points", "status", "message", *CHECKS]
    expected_order = [str(p) for p in graded["corpus"]] + [str(p) for p in graded["probes"]]
    assert [r["submission"] for r in graded["rows"]] == expected_order


@pytest.mark.parametrize("name", [n for n in mc.EXPECTED if not n.startswith("9")])
def test_row(graded, name):
    row = next(r for r in graded["rows"] if Path(r["submission"]).stem == name)
    exp = mc.EXPECTED[name]
    assert row["status"] == exp["status"], row["message"]
    assert int(row["max_points"]) == sum(c.points for c in CHECKS.values())
    for check, spec in CHECKS.items():
        assert int(row[check]) == (spec.points if check in exp["passed"] else 0), f"{check}: {row['message']}"
    assert int(row["points"]) == exp["points"], row["message"]
    for word in exp["words"]:
        assert word in row["message"], f"{word!r} missing from: {row['message']}"


def test_originals_unchanged(graded):
    assert graded["before"] == graded["after"]


def test_feedback_names_failed_checks_with_diagnostics(graded):
    folder = graded["out"].parent / "feedback"
    files = sorted(folder.glob("*.md"))
    assert len(files) == len(graded["rows"])
    text = (folder / "02_wrong_sign.md").read_text(encoding="utf-8")
    assert "Score: 1 / 10" in text and "✓ passed" in text
    for check in ("single_gaussian", "mixture", "far_from_means", "leading_dims", "gradients", "learns"):
        assert f"### ✗ `{check}`" in text
    assert "Likely mistake: wrong sign" in text
    naive = (folder / "05_naive_logsumexp.md").read_text(encoding="utf-8")
    assert "### ✗ `far_from_means`" in naive and "logsumexp" in naive and "### ✗ `learns`" not in naive
    assert "What went wrong" not in (folder / "01_correct.md").read_text(encoding="utf-8")
    assert "not valid JSON" in (folder / "22_malformed.md").read_text(encoding="utf-8")


@pytest.mark.skipif(not SANDBOX_OK, reason=f"bubblewrap cannot run here: {SANDBOX_WHY}")
def test_sandbox_keeps_files_outside_scratch(graded):
    for path, kept in zip(graded["sentinels"], graded["kept"]):
        assert kept, f"a submission deleted {path}, outside its scratch directory"
    row = next(r for r in graded["rows"] if Path(r["submission"]).stem == "90_delete_probe")
    assert (row["status"], int(row["points"])) == ("ok", 10), row["message"]


@pytest.mark.skipif(not SANDBOX_OK, reason=f"bubblewrap cannot run here: {SANDBOX_WHY}")
def test_sandbox_has_no_network(graded):
    assert graded["accepted"] == 0, "a submission connected to 127.0.0.1 outside the sandbox"
    row = next(r for r in graded["rows"] if Path(r["submission"]).stem == "91_socket_probe")
    assert (row["status"], int(row["points"])) == ("ok", 10), row["message"]


@pytest.mark.skipif(not (ROOT / "notebooks" / "03_exercise_mdn_loss.ipynb").exists(),
                    reason="the exercise notebook is not in this checkout")
def test_distributed_exercise_notebooks(tmp_path):
    """The solution notebook scores full marks untampered; the student notebook, as handed out, scores 0."""
    subs = []
    for name in ("03_exercise_mdn_loss.ipynb", "03_exercise_mdn_loss_student.ipynb"):
        if (ROOT / "notebooks" / name).exists():
            subs.append(tmp_path / name)
            subs[-1].write_bytes((ROOT / "notebooks" / name).read_bytes())
    proc = _grade(*subs, "--out", tmp_path / "g.csv", "--jobs", 2, "--timeout", 60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {Path(r["submission"]).name: r for r in csv.DictReader(open(tmp_path / "g.csv", encoding="utf-8"))}
    solution = rows["03_exercise_mdn_loss.ipynb"]
    assert (solution["status"], int(solution["points"])) == ("ok", 10), solution["message"]
    if "03_exercise_mdn_loss_student.ipynb" in rows:
        student = rows["03_exercise_mdn_loss_student.ipynb"]
        assert (student["status"], int(student["points"])) == ("ok", 0), student["message"]
        assert "not implemented yet" in student["message"]


# ---------------------------------------------------------------- usage errors (exit 2)

def test_usage_errors_exit_2(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = _grade(empty, "--out", tmp_path / "g.csv")
    assert proc.returncode == 2 and "no submissions found" in proc.stderr
    proc = _grade(tmp_path / "missing.ipynb", "--out", tmp_path / "g.csv")
    assert proc.returncode == 2 and "no such file" in proc.stderr
    proc = _grade(CORPUS / "01_correct.ipynb")  # --out missing
    assert proc.returncode == 2 and "--out" in proc.stderr
    proc = _grade(CORPUS / "01_correct.ipynb", "--out", tmp_path / "g.csv", "--jobs", "0")
    assert proc.returncode == 2 and "positive" in proc.stderr
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = _grade(CORPUS / "01_correct.ipynb", "--out", blocker / "g.csv")
    assert proc.returncode == 2 and "cannot write" in proc.stderr


# ---------------------------------------------------------------- units (no kernel)

def test_canonical_notebook_carries_nbgrader_metadata():
    nb, layout = canonical.build(["def mdn_loss(pi, mu, sigma, z_next):\n    pass\n"])
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    answer = code[layout.answers[0]]
    assert answer.metadata.nbgrader["solution"] is True and answer.metadata.nbgrader["grade"] is False
    assert answer.metadata.nbgrader["grade_id"] == "mdn_loss_answer" and "answer" in answer.metadata.tags
    assert list(layout.checks.values()) == list(CHECKS)
    for idx, name in layout.checks.items():
        cell = code[idx]
        assert cell.metadata.nbgrader == {"grade": True, "solution": False, "locked": True,
                                          "points": CHECKS[name].points, "grade_id": f"check_{name}",
                                          "schema_version": 3}
        assert cell.metadata.check == name and cell.metadata.points == CHECKS[name].points
        assert cell.source.endswith(f'run_check("{name}", mdn_loss)')
    assert code[layout.audit].metadata.nbgrader["locked"] is True


def test_markers_are_stripped_from_the_answer():
    src = "# NBVAL_SKIP\n#NBVAL_RAISES_EXCEPTION\ndef mdn_loss(pi, mu, sigma, z_next):\n    return pi\n"
    assert "NBVAL" not in strip_markers(src) and "def mdn_loss" in strip_markers(src)


@pytest.mark.parametrize("src, kind", [
    ("from mdn_course import mdn_loss as r", "reference"),
    ("import mdn_course\nf = mdn_course.mdn_loss", "reference"),
    ("from mdn_course.loss import mdn_nll_from_logs", "reference"),
    ("import mdn_course.exercise.checks as c\nc.CHECKS = {}", "grader"),
    ("run_check = print", "grader"),
    ("import sys\nsys.modules['x'] = 1", "grader"),
    ("%matplotlib inline\nimport torch\ndef mdn_loss(pi, mu, sigma, z_next):\n    return torch.zeros(())", None),
    ("from mdn_course.exercise import run_check", None),
])
def test_static_scan(src, kind):
    ref, grader, _ = scan_answer(src)
    assert bool(ref) == (kind == "reference"), ref
    assert bool(grader) == (kind == "grader"), grader


def test_a_run_where_nothing_executed_is_the_graders_error_not_a_zero():
    """If the kernel never starts (a broken grading machine), the row must not read as a student's 0 / ok."""
    from mdn_course.grading import report, runner
    from mdn_course.grading.submission import Submission

    nb, layout = canonical.build(["def mdn_loss(pi, mu, sigma, z_next):\n    return pi.sum()\n"])
    outcome = runner.RunOutcome(layout, records={}, returncode=1, output_tail="ModuleNotFoundError: mdn_course")
    sub = Submission(Path("s.ipynb"), [""], [0], False)
    row = report.grade_row("s.ipynb", sub, outcome, timeout=60)
    assert row.status == "error" and row.points == 0
    assert "grader could not run the notebook" in row.message and "ModuleNotFoundError" in row.message
