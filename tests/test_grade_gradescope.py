"""The Gradescope autograder bundle: its files, and run_autograder against a folder laid out like /autograder.

run_autograder runs the package source the bundle carries (PYTHONPATH points at it, where setup.sh
would pip-install it), not whatever ``mdn_course`` this interpreter has installed."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grading_helpers import CORPUS, ROOT
from mdn_course.exercise import CHECKS, TRAINING_STEP
from mdn_course.grading.gradescope.bundle import write_bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bundle")
    zpath = tmp / "autograder.zip"
    proc = subprocess.run([sys.executable, "-m", "mdn_course", "grade", "--gradescope-bundle", str(zpath)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    source = tmp / "autograder" / "source"
    with zipfile.ZipFile(zpath) as z:
        z.extractall(source)
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in z.infolist()}
    for name in ("setup.sh", "run_autograder"):
        os.chmod(source / name, modes[name])
    return {"zip": zpath, "source": source, "modes": modes}


def test_bundle_holds_setup_run_and_the_package(bundle):
    modes = bundle["modes"]
    assert modes["setup.sh"] == 0o755 and modes["run_autograder"] == 0o755
    assert "mdn_course_src/pyproject.toml" in modes
    assert "mdn_course_src/mdn_course/grading/judge.py" in modes
    assert "mdn_course_src/mdn_course/sandboxed/oracle.py" in modes
    for data in ("mdn_course/grading/gradescope/setup.sh", "mdn_course/grading/gradescope/run_autograder",
                 "mdn_course/assistant/faq.json"):   # package data: what pip installs from the bundle
        assert f"mdn_course_src/{data}" in modes
    setup = (bundle["source"] / "setup.sh").read_text()
    assert "bubblewrap" in setup and "python3" in setup and "download.pytorch.org/whl/cpu" in setup
    assert "pip install /autograder/source/mdn_course_src" in setup
    subprocess.run(["bash", "-n", str(bundle["source"] / "setup.sh")], check=True)
    subprocess.run(["bash", "-n", str(bundle["source"] / "run_autograder")], check=True)


def _run_autograder(bundle, root: Path, notebook: Path):
    (root / "submission").mkdir(parents=True)
    shutil.copy(notebook, root / "submission" / "exercise.ipynb")
    env = dict(os.environ, MDN_AUTOGRADER_ROOT=str(root), MDN_AUTOGRADER_PYTHON=sys.executable,
               PYTHONPATH=str(bundle["source"] / "mdn_course_src"),   # the code the bundle carries, as installed
               MDN_GRADE_EXTRA_ARGS="--request-timeout 5 --memory-mb 1024", OMP_NUM_THREADS="1")
    proc = subprocess.run([str(bundle["source"] / "run_autograder")], cwd=root, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((root / "results" / "results.json").read_text())


@pytest.mark.parametrize("name, score, checks, failing, words", [
    ("01_correct", 10.0, CHECKS, None, None),
    ("05_naive_logsumexp", 8.0, CHECKS, "far_from_means", "underflows"),
    ("55_step_clip_after_step", 8.0, TRAINING_STEP.checks, "clips", "clipped after the step")])
def test_run_autograder_writes_gradescope_results(bundle, tmp_path, name, score, checks, failing, words,
                                                   working_sandbox):
    """One test per check of the notebook's own exercise (read from its answer cell), with its points."""
    results = _run_autograder(bundle, tmp_path / "autograder", CORPUS / f"{name}.ipynb")
    assert results["score"] == score
    tests = results["tests"]
    assert [t["name"].split(":")[0] for t in tests] == list(checks)
    assert all(set(t) >= {"name", "score", "max_score", "output", "status"} for t in tests)
    assert sum(t["max_score"] for t in tests) == 10 and sum(t["score"] for t in tests) == score
    if failing:
        test = next(t for t in tests if t["name"].startswith(failing))
        assert test["status"] == "failed" and words in test["output"]


def test_run_autograder_without_a_sandbox_scores_nothing_and_says_why(bundle, tmp_path):
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    shutil.copy(CORPUS / "01_correct.ipynb", root / "submission")
    tools = tmp_path / "tools"          # bash and mkdir, but no bwrap, on PATH
    tools.mkdir()
    for tool in ("bash", "mkdir"):
        os.symlink(shutil.which(tool), tools / tool)
    env = dict(os.environ, MDN_AUTOGRADER_ROOT=str(root), MDN_AUTOGRADER_PYTHON=sys.executable,
               PATH=str(tools), PYTHONPATH=str(bundle["source"] / "mdn_course_src"))
    env.pop("MDN_GRADE_EXTRA_ARGS", None)
    proc = subprocess.run([str(bundle["source"] / "run_autograder")], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == 0.0 and "no working sandbox" in results["output"]
    assert "apt-get install bubblewrap" in proc.stderr


def test_a_bundle_for_containers_without_user_namespaces_defaults_to_no_sandbox(tmp_path):
    """Where Gradescope's container cannot run bubblewrap, the bundle can default to --no-sandbox (uid 65534)."""
    with zipfile.ZipFile(write_bundle(tmp_path / "a.zip", ["--no-sandbox"])) as z:
        run = z.read("run_autograder").decode()
        setup = z.read("setup.sh").decode()
    assert '"$ROOT" ${MDN_GRADE_EXTRA_ARGS---no-sandbox}' in run
    assert "chmod -R go-rwx /autograder/source" in setup
