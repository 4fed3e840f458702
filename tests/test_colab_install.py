"""The Colab installer (mdn_course/colab_install.py) adds what is missing and never replaces what is there.

Unit tests of its plan, constraints and report, then the real thing with pip in a throw-away venv and
local wheels (no network): a missing requirement is installed, one whose own dependency would need a
newer version of an installed package makes pip fail loudly and leaves that package as it was, an
installed package too old for the course is refused before pip runs, and a second run changes nothing.
The lessons' install cell runs this file; tests/test_colab_standin.py runs it in the Colab stand-in.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from mdn_course import colab_install
from mdn_course.colab_install import constraints_text, plan, report

from colab_standin import installed, python_over_this_one

REPO = Path(__file__).resolve().parent.parent
INSTALLER = REPO / "mdn_course" / "colab_install.py"


def test_plan_keeps_what_fits_installs_what_is_missing_and_refuses_what_does_not_fit():
    reqs = [Requirement(r) for r in ("numpy>=2.0.2", "ipython>=7.34.0", "bm25s>=0.3,<0.4", "cma>=3.4")]
    missing, problems = plan(reqs, {"numpy": "2.1.3", "ipython": "7.34.0", "cma": "3.2.2"})
    assert missing == ["bm25s<0.4,>=0.3"]
    assert problems == ["cma 3.2.2 is installed, the course needs cma>=3.4"]
    assert plan(reqs[:2], {"numpy": "1.26.4", "ipython": "7.34.0"})[1] == \
        ["numpy 1.26.4 is installed, the course needs numpy>=2.0.2"]


def test_constraints_pin_every_installed_package_but_the_course_and_unparseable_versions():
    text = constraints_text({"ipython": "7.34.0", "torch": "2.11.0+cpu", "mdn-course": "0.1.0",
                             "odd": "not a version"})
    assert text.splitlines() == ["ipython==7.34.0", "torch==2.11.0+cpu"]


def test_report_names_a_changed_or_removed_package_and_fails(capsys):
    assert report({"ipython": "7.34.0", "tqdm": "4.67.3"}, {"ipython": "9.1.0"}) == 1
    err = capsys.readouterr().err
    assert "ipython 7.34.0 -> 9.1.0" in err and "tqdm 4.67.3" in err
    assert report({"ipython": "7.34.0"}, {"ipython": "7.34.0", "bm25s": "0.3.16", "mdn-course": "0.1.0"}) == 0
    assert "added bm25s 0.3.16, mdn-course 0.1.0; the 1 packages already here are unchanged" in capsys.readouterr().out


def test_what_is_installed_is_seen_from_the_folder_asked_for(tmp_path, monkeypatch):
    """python -c counts an egg-info in its working directory: an editable checkout's mdn_course.egg-info made
    the stand-in see the course installed before its install cell ran, until it looked from elsewhere."""
    here = tmp_path / "checkout"
    (here / "fake_course.egg-info").mkdir(parents=True)
    (here / "fake_course.egg-info" / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: fake-course\nVersion: 1.0\n")
    assert colab_install.installed_versions(sys.executable, cwd=str(here)).get("fake-course") == "1.0"
    assert "fake-course" not in colab_install.installed_versions(sys.executable, cwd=str(tmp_path))
    monkeypatch.chdir(here)              # the stand-in looks from python's own folder, wherever the test runs
    assert "fake-course" not in installed(Path(sys.executable))


def test_the_course_requirements_are_read_from_pyproject():
    names = [r.name for r in colab_install.course_requirements(REPO)]
    assert names[:2] == ["torch", "numpy"] and "ipywidgets" in names


def test_requirements_txt_lists_exactly_the_pyproject_requirements():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["colab"]
    listed = [line.strip() for line in (REPO / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert listed == declared, "requirements.txt and pyproject.toml (dependencies + colab extra) differ"


# ---------------------------------------------------------------- with pip, offline

def _project(folder: Path, name: str, version: str, requires=()) -> Path:
    folder.mkdir(parents=True)
    (folder / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "{name}"
        version = "{version}"
        dependencies = {json.dumps(list(requires))}
        [tool.setuptools]
        py-modules = ["{name.replace('-', '_')}"]
        """))
    (folder / f"{name.replace('-', '_')}.py").write_text(f"VERSION = {version!r}\n")
    return folder


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    """A venv over this machine's packages with 'probe' 1.0 installed, and a folder of local wheels."""
    root = tmp_path_factory.mktemp("colab-install")
    wheels = root / "wheels"
    for name, version, requires in (("probe", "1.0", ()), ("probe", "2.0", ()), ("needs-old-probe", "1.0", ["probe>=1"]),
                                    ("needs-new-probe", "1.0", ["probe>=2"])):
        src = _project(root / "src" / f"{name}-{version}", name, version, requires)
        built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                                "-w", str(wheels), str(src)], capture_output=True, text=True)
        assert built.returncode == 0, built.stderr
    python = python_over_this_one(root / "venv")
    env = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels), "PIP_DISABLE_PIP_VERSION_CHECK": "1",
           "PATH": "/usr/bin:/bin", "HOME": str(root)}
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", "probe==1.0"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return root, python, env


def _install(offline, course_requires, name):
    root, python, env = offline
    course = _project(root / name, "mdn-course", "0.1.0", course_requires)
    return subprocess.run([str(python), str(INSTALLER), str(course)], env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_a_missing_requirement_is_added_and_nothing_else_changes(offline):
    before = installed(offline[1])
    done = _install(offline, ["needs-old-probe", "probe>=1"], "course-ok")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "added needs-old-probe 1.0;" in done.stdout   # mdn-course was there already (this machine's)
    after = installed(offline[1])
    assert {n: v for n, v in after.items() if before.get(n) != v} == {"needs-old-probe": "1.0"}
    found = subprocess.run([str(offline[1]), "-c", "import mdn_course; print(mdn_course.__file__)"],
                           capture_output=True, text=True, cwd=offline[0], env=offline[2])
    assert found.stdout.strip().endswith("course-ok/mdn_course.py"), found.stdout + found.stderr
    again = _install(offline, ["needs-old-probe", "probe>=1"], "course-ok-2")   # a second lesson, or a restart
    assert again.returncode == 0 and "added nothing" in again.stdout, again.stdout + again.stderr


@pytest.mark.slow
def test_pip_fails_loudly_rather_than_replace_an_installed_package(offline):
    done = _install(offline, ["needs-new-probe"], "course-conflict")
    assert done.returncode == 1
    assert "probe" in done.stdout + done.stderr and "never to replace an installed package" in done.stderr
    assert installed(offline[1])["probe"] == "1.0"


@pytest.mark.slow
def test_an_installed_package_too_old_for_the_course_is_refused_before_pip_runs(offline):
    done = _install(offline, ["probe>=2"], "course-too-new")
    assert done.returncode == 1
    assert "probe 1.0 is installed, the course needs probe>=2" in done.stderr and "Nothing was changed" in done.stderr
    assert installed(offline[1])["probe"] == "1.0"
