"""save_answer in the exercise, load_student_loss in lesson 4: the student's loss crosses Colab runtimes.

In-process, with the Colab stand-in's fake ``google.colab`` (tests/colab_fake: Drive is a folder) and
IPython's real input history: a passing answer saved in one "runtime" is found by lesson 4's loader in
another (a fresh folder, Drive mounted anew), through Drive, through a downloaded-and-uploaded file when
Drive is refused, or through the student's saved Colab copy of the exercise; a failing answer is never
saved; every fallback says where it looked. tests/test_colab_standin.py does the same with real kernels.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from mdn_course.exercise import saved_answer
from mdn_course.exercise.answer_cell import InvalidNotebook, read_answer
from mdn_course.exercise.student_loss import load_student_loss, save_answer

FAKE_COLAB = Path(__file__).resolve().parent / "colab_fake"

CORRECT = '''def mdn_loss(pi, mu, sigma, z_next):
    z = z_next.unsqueeze(-1)
    log_n = -0.5 * ((z - mu) / sigma) ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)
    return -torch.logsumexp(torch.log(pi) + log_n, dim=-1).sum(-1).mean()
'''
WRONG_SIGN = CORRECT.replace("return -torch", "return torch")


@pytest.fixture
def colab(tmp_path, monkeypatch):
    """Colab as the stand-in fakes it: google.colab importable, Drive a folder, downloads a folder."""
    drive = tmp_path / "google-drive"
    (drive / "MyDrive").mkdir(parents=True)
    monkeypatch.syspath_prepend(str(FAKE_COLAB))
    monkeypatch.setenv("COLAB_STANDIN_DRIVE", str(drive))
    monkeypatch.setenv("COLAB_STANDIN_DOWNLOADS", str(tmp_path / "downloads"))
    monkeypatch.setattr(saved_answer, "DRIVE_MOUNT", tmp_path / "content" / "drive")
    before = set(sys.modules)
    import google.colab  # noqa: F401  (makes "google.colab" in sys.modules true, as in a Colab kernel)

    yield drive
    for name in set(sys.modules) - before:
        if name.startswith("google.colab"):
            del sys.modules[name]


def _runtime(tmp_path, name, monkeypatch) -> Path:
    """A fresh Colab runtime: its own folder, Drive not mounted yet."""
    folder = tmp_path / name
    folder.mkdir()
    monkeypatch.chdir(folder)
    mount = saved_answer.DRIVE_MOUNT
    if mount.is_symlink():
        mount.unlink()
    mount.parent.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def shell():
    """A real IPython shell, so that the answer's source comes from the input history as in a notebook."""
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_cell("import math, torch")
    yield ip
    InteractiveShell.clear_instance()


def _exercise_notebook(path: Path, answer: str) -> Path:
    cell = {"cell_type": "code", "metadata": {"tags": ["answer"]}, "source": answer, "outputs": [],
            "execution_count": None}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_a_passing_answer_saved_in_lesson_3s_runtime_is_used_in_lesson_4s(tmp_path, monkeypatch, colab, shell, capsys):
    _runtime(tmp_path, "lesson03", monkeypatch)
    shell.run_cell(CORRECT)
    shell.run_cell("def unrelated(): return 1")                  # a later cell: not the one that defined mdn_loss
    saved = save_answer(shell.user_ns["mdn_loss"])
    told = capsys.readouterr().out
    assert saved == saved_answer.DRIVE_MOUNT / "MyDrive" / "mdn-course" / "mdn_loss_answer.py"
    assert "Saved to your Google Drive as MyDrive/mdn-course/mdn_loss_answer.py" in told
    text = (colab / "MyDrive" / "mdn-course" / "mdn_loss_answer.py").read_text()
    assert CORRECT.strip() in text and "unrelated" not in text

    lesson4 = _runtime(tmp_path, "lesson04", monkeypatch)
    assert list(lesson4.iterdir()) == [] and not saved_answer.DRIVE_MOUNT.exists()
    chosen = load_student_loss()
    assert chosen.is_student, chosen.describe()
    assert chosen.found_in == "Google Drive: MyDrive/mdn-course/mdn_loss_answer.py"
    assert "(from Google Drive: MyDrive/mdn-course/mdn_loss_answer.py)" in chosen.describe()


def test_a_failing_answer_is_not_saved_and_says_why(tmp_path, monkeypatch, colab, shell, capsys):
    _runtime(tmp_path, "lesson03", monkeypatch)
    shell.run_cell(WRONG_SIGN)
    assert save_answer(shell.user_ns["mdn_loss"]) is None
    assert "Nothing saved: mdn_loss in your answer cell does not pass the check(s)" in capsys.readouterr().out
    assert not (colab / "MyDrive" / "mdn-course").exists()
    shell.run_cell("del mdn_loss")
    assert save_answer() is None
    assert "there is no function mdn_loss yet" in capsys.readouterr().out


def test_drive_refused_saves_a_file_to_download_and_upload_into_lesson_4(tmp_path, monkeypatch, colab, shell, capsys):
    monkeypatch.setenv("COLAB_STANDIN_DRIVE_DECLINE", "1")
    lesson3 = _runtime(tmp_path, "lesson03", monkeypatch)
    shell.run_cell(CORRECT)
    assert save_answer(shell.user_ns["mdn_loss"]) == lesson3 / "mdn_loss_answer.py"
    told = capsys.readouterr().out
    assert "Google Drive is not mounted (MessageError" in told and "your browser downloads it" in told
    assert "upload that file" in told
    downloaded = tmp_path / "downloads" / "mdn_loss_answer.py"
    assert downloaded.is_file()

    lesson4 = _runtime(tmp_path, "lesson04", monkeypatch)
    nothing = load_student_loss()
    assert not nothing.is_student
    assert "looked in this folder: mdn_loss_answer.py; this folder: 03_exercise_mdn_loss_student.ipynb; " \
           "Google Drive: not mounted (MessageError" in nothing.describe()
    (lesson4 / "mdn_loss_answer.py").write_bytes(downloaded.read_bytes())       # the student uploads it
    chosen = load_student_loss()
    assert chosen.is_student and chosen.found_in == "this folder: mdn_loss_answer.py"


def test_the_students_saved_colab_copy_of_the_exercise_is_read_from_drive(tmp_path, monkeypatch, colab):
    _runtime(tmp_path, "lesson04", monkeypatch)
    copies = colab / "MyDrive" / "Colab Notebooks"
    _exercise_notebook(copies / "Copy of 03_exercise_mdn_loss_student.ipynb", CORRECT)
    chosen = load_student_loss()
    assert chosen.is_student and chosen.found_in == \
        "Google Drive: MyDrive/Colab Notebooks/Copy of 03_exercise_mdn_loss_student.ipynb"
    # a wrong saved answer does not hide the right one in the notebook copy; a wrong one alone is reported
    (colab / "MyDrive" / "mdn-course").mkdir()
    (colab / "MyDrive" / "mdn-course" / "mdn_loss_answer.py").write_text(WRONG_SIGN)
    assert load_student_loss().found_in.endswith("Copy of 03_exercise_mdn_loss_student.ipynb")
    _exercise_notebook(copies / "Copy of 03_exercise_mdn_loss_student.ipynb", WRONG_SIGN)
    wrong = load_student_loss()
    assert not wrong.is_student and wrong.failed_checks
    assert "your saved answer mdn_loss_answer.py does not pass" in wrong.reason


def test_drive_is_not_asked_outside_colab_or_when_told_not_to(tmp_path, monkeypatch, colab):
    _runtime(tmp_path, "lesson04", monkeypatch)
    assert [p.label for p in saved_answer.answer_locations(drive=False)] == \
        ["this folder: mdn_loss_answer.py", "this folder: 03_exercise_mdn_loss_student.ipynb"]
    assert not saved_answer.DRIVE_MOUNT.exists()
    del sys.modules["google.colab"]                               # a runtime that is not Colab
    assert len(saved_answer.answer_locations()) == 2 and not saved_answer.DRIVE_MOUNT.exists()


def test_outside_colab_nothing_is_written(tmp_path, monkeypatch, shell, capsys):
    monkeypatch.chdir(tmp_path)
    shell.run_cell(CORRECT)
    assert save_answer(shell.user_ns["mdn_loss"]) is None
    assert "Nothing to save outside Colab: lesson 4 reads your answer from 03_exercise_mdn_loss_student.ipynb" \
        in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_a_saved_answer_file_is_read_without_trusting_it(tmp_path):
    real = tmp_path / "real.py"
    real.write_text(CORRECT)
    assert read_answer(real).source.strip() == CORRECT.strip()
    link = tmp_path / "mdn_loss_answer.py"
    os.symlink(real, link)
    with pytest.raises(InvalidNotebook, match="symbolic link"):
        read_answer(link)
    other = tmp_path / "other.py"
    other.write_text("x = 1\n")
    with pytest.raises(InvalidNotebook, match="defines no function mdn_loss"):
        read_answer(other)
    assert not load_student_loss(link).is_student
