"""A wheel built from this checkout carries the package's data files, not only its modules."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ["mdn_course/assistant/faq.json", "mdn_course/grading/gradescope/setup.sh",
        "mdn_course/grading/gradescope/run_autograder"]


@pytest.mark.slow
def test_a_built_wheel_carries_the_package_data(tmp_path):
    source = tmp_path / "src"   # a copy, so the build leaves nothing in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "mdn_course", source / "mdn_course", ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheel, = (tmp_path / "dist").glob("mdn_course-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(DATA) <= names, sorted(set(DATA) - names)
    assert "mdn_course/sandboxed/oracle.py" in names and "mdn_course/grading/gradescope/bundle.py" in names
