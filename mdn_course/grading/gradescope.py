"""Gradescope: an autograder bundle that grades with the same trusted judge, and its results.json.

``python -m mdn_course grade --gradescope-bundle autograder.zip`` writes a zip holding

* ``setup.sh``: installs python3, bubblewrap, torch (CPU) and this package (its source tree is
  in the zip, under ``mdn_course_src/``) into ``/opt/mdn-grader``;
* ``run_autograder``: grades ``$ROOT/submission/*.ipynb`` (``ROOT`` = ``$MDN_AUTOGRADER_ROOT``,
  default ``/autograder``) with ``python -m mdn_course grade`` and writes
  ``$ROOT/results/results.json`` in Gradescope's format: ``score``, ``output`` and one test per
  check with ``name``, ``score``, ``max_score``, ``status`` and ``output`` (the course's
  diagnostic). ``MDN_AUTOGRADER_PYTHON`` picks the interpreter; ``MDN_GRADE_EXTRA_ARGS`` adds
  grader options (default: those given with ``--gradescope-bundle``, e.g. ``--no-sandbox``).

With no working sandbox the grader refuses (exit 2); ``run_autograder`` then writes a
results.json with score 0 whose output says so, instead of grading unsandboxed.
"""
from __future__ import annotations

import argparse
import json
import os
import stat
import sys
import zipfile
from pathlib import Path
from typing import List, Optional, Sequence

from ..exercise.checks import CHECKS
from .report import MAX_POINTS, Row

PACKAGE_ROOT = Path(__file__).resolve().parent.parent.parent

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3 python3-pip python3-venv bubblewrap ca-certificates
python3 -m venv /opt/mdn-grader
/opt/mdn-grader/bin/pip install --upgrade pip
/opt/mdn-grader/bin/pip install --index-url https://download.pytorch.org/whl/cpu "torch=={torch}"
/opt/mdn-grader/bin/pip install /autograder/source/mdn_course_src
# the grader runs as root; student code runs as uid 65534, which must not read the course's code
chmod -R go-rwx /autograder/source /opt/mdn-grader/lib/python3*/site-packages/mdn_course
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission. Paths and interpreter can be overridden for testing.
ROOT="${MDN_AUTOGRADER_ROOT:-/autograder}"
PY="${MDN_AUTOGRADER_PYTHON:-/opt/mdn-grader/bin/python}"
mkdir -p "$ROOT/results"
# shellcheck disable=SC2086  # MDN_GRADE_EXTRA_ARGS is a list of options on purpose
exec "$PY" -m mdn_course.grading.gradescope run --root "$ROOT" ${MDN_GRADE_EXTRA_ARGS-{default_args}}
"""


def results_json(rows: List[Row]) -> dict:
    """Gradescope's results.json for one student's upload (the best-scoring notebook if several)."""
    if not rows:
        return {"score": 0.0, "output": "No .ipynb file was found in the submission: upload your exercise notebook."}
    row = max(rows, key=lambda r: (r.status != "invalid", r.points))
    tests = []
    for name, check in CHECKS.items():
        passed = name in row.passed
        text = row.passed.get(name) if passed else row.failed.get(name, "not run")
        tests.append({"name": f"{name}: {check.description}", "score": float(row.check_points[name]),
                      "max_score": float(check.points), "status": "passed" if passed else "failed",
                      "output": text or ""})
    output = f"Score {row.points} / {MAX_POINTS} (status: {row.status}) for {os.path.basename(row.submission)}.\n"
    output += row.message.replace(" | ", "\n")
    others = [r for r in rows if r is not row]
    if others:
        output += "\n\nOther notebooks in this upload (not counted): " + ", ".join(
            f"{os.path.basename(r.submission)} ({r.points})" for r in others)
    return {"score": float(row.points), "output": output, "tests": tests, "stdout_visibility": "hidden"}


def write_results(rows: List[Row], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results_json(rows), indent=1) + "\n", encoding="utf-8")


def _source_files() -> List[Path]:
    files = [PACKAGE_ROOT / "pyproject.toml", PACKAGE_ROOT / "README.md"]
    files += sorted(p for p in (PACKAGE_ROOT / "mdn_course").rglob("*.py") if "__pycache__" not in p.parts)
    return [f for f in files if f.is_file()]


def write_bundle(path: Path, default_args: Sequence[str] = ()) -> Path:
    """Write the autograder zip (setup.sh, run_autograder, the package's source) to ``path``.

    ``default_args`` are grader options baked into run_autograder (``--no-sandbox`` where
    Gradescope's container cannot run bubblewrap: each submission then runs as uid 65534 in its
    own throw-away container, which cannot read the course's code).
    """
    import torch

    torch_version = torch.__version__.split("+")[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, text in (("setup.sh", SETUP_SH.replace("{torch}", torch_version)),
                           ("run_autograder", RUN_AUTOGRADER.replace("{default_args}", " ".join(default_args)))):
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | 0o755) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, text)
        for f in _source_files():
            z.write(f, "mdn_course_src/" + f.relative_to(PACKAGE_ROOT).as_posix())
    return path


def run(argv: Optional[Sequence[str]] = None) -> int:
    """What run_autograder calls: grade ROOT/submission, write ROOT/results/results.json."""
    from .cli import main as grade

    p = argparse.ArgumentParser(prog="python -m mdn_course.grading.gradescope run")
    p.add_argument("--root", default=os.environ.get("MDN_AUTOGRADER_ROOT", "/autograder"))
    args, extra = p.parse_known_args(argv)
    root = Path(args.root)
    results = root / "results"
    results.mkdir(parents=True, exist_ok=True)
    notebooks = sorted(q for q in (root / "submission").rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts) \
        if (root / "submission").is_dir() else []
    if not notebooks:
        write_results([], results / "results.json")
        return 0
    code = grade([*map(str, notebooks), "--out", str(results / "grades.csv"), "--feedback",
                  str(results / "feedback"), "--gradescope-results", str(results / "results.json"),
                  "--jobs", "1", *extra])
    if code != 0:
        (results / "results.json").write_text(json.dumps({
            "score": 0.0, "output": "The autograder could not grade this submission (no working sandbox on the "
                                    "grading machine, or a configuration error); your instructor has been told "
                                    "by the autograder log. Your notebook was not run."}) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        sys.exit(run(sys.argv[2:]))
    print("usage: python -m mdn_course.grading.gradescope run [--root DIR] [grader options]", file=sys.stderr)
    sys.exit(2)
