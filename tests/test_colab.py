"""Colab, verified without Colab: the links follow one setting, the install cell installs, the pack URL serves.

* Every lesson's Colab badge and install cell are what ``mdn_course/links.py``
  generates (``python -m mdn_course sync-notebooks`` fixes them), and moving the
  repository is one edit plus that command.
* The install cell, exactly as stored in the lessons, is run the way Colab runs
  it: a fresh process in an empty ``/content``-like folder with ``google.colab``
  in ``sys.modules``, against a local stand-in for GitHub (a bare clone of this
  repository, named through ``$MDN_COURSE_REPO_URL``). It must clone, pip-install
  and leave the package importable, with its narration found in the clone.
* ``python -m mdn_course narration pack`` writes the zip a release serves at
  ``links.PACK_URL``; a local HTTP server serves it under that URL's path and
  ``python -m mdn_course narration fetch`` installs exactly the repository's
  audio and transcripts.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

import nbformat
import pytest

from mdn_course import links
from mdn_course.tools import notebook_sync
from mdn_course.tools.notebooks import NOTEBOOK_DIR

from colab_standin import github_standin, installed, python_over_this_one

REPO = Path(__file__).resolve().parent.parent


def _python(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600, **kwargs)


# ---------------------------------------------------------------- one setting

def test_every_badge_and_install_cell_follows_links_py():
    stale = notebook_sync.out_of_sync(NOTEBOOK_DIR)
    assert stale == [], (f"{[p.name for p in stale]}: Colab badge or install cell differ from mdn_course/links.py; "
                         f"run: {notebook_sync.SYNC_COMMAND}")


def test_moving_the_repository_is_one_edit_and_one_command(tmp_path, monkeypatch):
    folder = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOK_DIR, folder)
    monkeypatch.setattr(links, "GITHUB_REPO", "someone-else/mdn-fork")
    monkeypatch.setattr(links, "REPO_URL", "https://github.com/someone-else/mdn-fork")
    lessons = sorted(folder.glob("*.ipynb"))
    assert sorted(notebook_sync.out_of_sync(folder)) == lessons   # every lesson, student copy included

    notebook_sync.sync(folder)
    assert notebook_sync.out_of_sync(folder) == []
    for path in lessons:
        nb = nbformat.read(path, as_version=4)
        badge = f"(https://colab.research.google.com/github/someone-else/mdn-fork/blob/main/notebooks/{path.name})"
        assert badge in nb.cells[0].source, path.name             # the student copy's badge opens itself
        install = next(c for c in nb.cells if notebook_sync.is_install_cell(c))
        assert '"https://github.com/someone-else/mdn-fork"' in install.source
        assert [c.outputs for c in nb.cells if c.cell_type == "code"] == \
            [c.outputs for c in nbformat.read(NOTEBOOK_DIR / path.name, as_version=4).cells
             if c.cell_type == "code"], "sync must not touch outputs"


def test_sync_check_names_the_fix(tmp_path, monkeypatch):
    folder = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOK_DIR, folder)
    nb = nbformat.read(folder / "02_the_model.ipynb", as_version=4)
    nb.cells[0].source = nb.cells[0].source.replace("mdn-course/mdn-course", "old-owner/old-name")
    nbformat.write(nb, folder / "02_the_model.ipynb")
    monkeypatch.chdir(REPO)
    result = _python("-m", "mdn_course", "sync-notebooks", "--check", "--dir", str(folder))
    assert result.returncode == 1
    assert "out of sync: 02_the_model.ipynb (run: python -m mdn_course sync-notebooks)" in result.stdout


# ---------------------------------------------------------------- the install cell, end to end

@pytest.mark.slow
def test_install_cell_clones_installs_and_finds_the_narration(tmp_path):
    """The cell in a Python with newer packages than Colab's (this machine's): it installs, and replaces nothing."""
    if not (REPO / ".git").exists():
        pytest.skip("the stand-in for GitHub is a bare clone of this checkout, which is not a git repository")
    url = github_standin(tmp_path / "github")
    python = python_over_this_one(tmp_path / "colab-python")  # like Colab's: torch, pip and friends, no course yet
    content, home = tmp_path / "content", tmp_path / "home"
    content.mkdir()
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MDN_COURSE_NARRATION_DIR")}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_NO_INPUT="1", **{links.ENV_REPO_URL: url})
    cell = notebook_sync.install_cell_source()
    runtime = ("import sys, types\n"
               "sys.modules['google.colab'] = types.ModuleType('google.colab')\n"
               f"exec(compile({cell!r}, 'install-cell', 'exec'))\n"
               "import mdn_course, mdn_course.narration.locate as locate\n"
               "print('package', mdn_course.__file__)\n"
               "print('audio', locate.find_audio('00_welcome'))\n")
    before = installed(python)
    for attempt in ("first run", "second run (clone already there)"):
        result = subprocess.run([str(python), "-c", runtime], cwd=content, env=env, capture_output=True,
                                text=True, timeout=600)
        assert result.returncode == 0, f"{attempt}:\n{result.stdout}\n{result.stderr}"
        lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
        assert lines["package"].startswith(str(content / "mdn-course")), (attempt, result.stdout)
        assert lines["audio"].startswith(str(content / "mdn-course" / "narration" / "audio")), result.stdout
        assert "packages already here are unchanged" in result.stdout, result.stdout
    after = installed(python)
    changed = {n: (before.get(n), v) for n, v in after.items() if before.get(n) != v and n != "mdn-course"}
    assert changed == {}, "the install cell changed or added packages beside the course in a Python that had all it needs"
    assert "mdn-course" in after
    # pip's editable install, not only the cell's sys.path line, makes the clone importable in a new process
    fresh = subprocess.run([str(python), "-c", "import mdn_course; print(mdn_course.__file__)"], cwd=home, env=env,
                           capture_output=True, text=True, timeout=120)
    assert fresh.stdout.startswith(str(content / "mdn-course")), fresh.stdout + fresh.stderr


def test_install_cell_does_nothing_outside_colab(tmp_path):
    result = _python("-c", notebook_sync.install_cell_source() + "\nprint('ok')", cwd=tmp_path,
                     env={**os.environ, links.ENV_REPO_URL: str(tmp_path / "nowhere")})
    assert result.returncode == 0 and result.stdout == "ok\n", result.stderr
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- the narration pack, served where PACK_URL points

def test_pack_command_makes_what_the_pack_url_serves(tmp_path, file_server):
    served, base = file_server
    path = urllib.parse.urlparse(links.PACK_URL).path          # /owner/name/releases/latest/download/<asset>
    assert path.endswith("/" + links.PACK_ASSET)
    asset = served / path.lstrip("/")
    asset.parent.mkdir(parents=True)
    # --allow-stale: staleness is test_narration's concern; here the question is what the zip carries
    packed = _python("-m", "mdn_course", "narration", "pack", str(asset), "--allow-stale", cwd=REPO)
    assert packed.returncode == 0, packed.stderr

    dest = tmp_path / "installed"
    fetched = _python("-m", "mdn_course", "narration", "fetch", "--url", base + path, "--dest", str(dest), cwd=tmp_path)
    assert fetched.returncode == 0, fetched.stderr
    for sub, pattern in (("audio", "*.mp3"), ("scripts", "*.txt")):
        ours = {p.name: p.read_bytes() for p in (REPO / "narration" / sub).glob(pattern)}
        theirs = {p.name: p.read_bytes() for p in (dest / sub).glob(pattern)}
        assert ours and theirs == ours, f"{sub}: the pack does not carry exactly the repository's files"


def test_readme_documents_the_release_step():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"python -m mdn_course narration pack {links.PACK_ASSET}" in readme
    assert "gh release upload" in readme


def test_readme_badges_open_existing_notebooks_of_the_repository():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    urls = re.findall(r"\((https://colab\.research\.google\.com/github/[^)\s]+)\)", readme)
    assert urls, "the README has no Colab badges"
    for url in urls:
        name = url.rsplit("/", 1)[-1]
        assert (NOTEBOOK_DIR / name).is_file(), f"README badge opens {name}, which is not in notebooks/"
        assert url == links.colab_url(name), f"README badge {url} is not {links.colab_url(name)} (mdn_course/links.py)"
