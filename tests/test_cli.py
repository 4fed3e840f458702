"""The command line and the benchmark helpers run and report what they claim."""
import json
import subprocess
import sys
from pathlib import Path

import torch

from mdn_course import MDNRNN
from mdn_course.model import load_checkpoint
from mdn_course.tools.bench import find_modes


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mdn_course", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_train_command_saves_a_loadable_checkpoint(tmp_path):
    out = tmp_path / "m.pt"
    result = run("train", "--epochs", "1", "--quiet", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "Bayes floor" in result.stdout and out.exists()
    saved = torch.load(out, weights_only=True)
    model = MDNRNN(**saved["config"])
    model.load_state_dict(saved["state_dict"])
    again, checkpoint = load_checkpoint(out)
    assert checkpoint["history"]["train_nll"] and all(torch.equal(a, b) for a, b in
                                                      zip(again.state_dict().values(), model.state_dict().values()))


def test_unknown_command_is_a_usage_error():
    result = run("fly")
    assert result.returncode == 2 and "run-notebooks" in result.stderr and "unknown command" in result.stderr


def model_with_dim1_means(means, raw_log_sigma):
    """An MDNRNN whose head ignores its input: equal weights, the given means for dimension 1."""
    model = MDNRNN(n_components=2)
    with torch.no_grad():
        model.head.proj.weight.zero_()
        bias = torch.zeros(3, 2, 2)
        bias[1, 1] = torch.tensor(means)
        bias[2] = raw_log_sigma  # squashed to log_sigma_min + span * sigmoid(raw)
        model.head.proj.bias.copy_(bias.flatten())
    return model


def test_find_modes_sees_two_bumps_only_when_there_are_two():
    sharp = model_with_dim1_means([-0.4, 0.4], -3.0)  # sigma ~ 0.0014
    modes = find_modes(sharp, torch.tensor([0.0, 0.0]))
    assert len(modes) == 2 and abs(modes[0] + 0.4) < 0.02 and abs(modes[1] - 0.4) < 0.02
    blurred = model_with_dim1_means([-0.05, 0.05], 0.0)  # sigma ~ 0.1: the bumps merge into one
    assert len(find_modes(blurred, torch.tensor([0.0, 0.0]))) == 1


def test_help_lists_every_command_in_plain_text():
    result = run("--help")
    assert result.returncode == 0
    for command in ("train", "bench", "run-notebooks", "grade", "narration", "student-version", "lab",
                    "sync-notebooks"):
        assert f"\n  {command} " in result.stdout, command
    assert "``" not in result.stdout and ":mod:" not in result.stdout


def test_each_command_names_itself_in_its_usage():
    for command in ("run-notebooks", "grade", "narration", "student-version", "bench", "lab", "sync-notebooks"):
        result = run(command, "--help")
        assert result.returncode == 0, (command, result.stderr)
        assert f"python -m mdn_course {command}" in result.stdout, (command, result.stdout[:200])


REPO = Path(__file__).resolve().parent.parent


def test_lab_prepares_a_workspace_and_never_overwrites_an_edited_notebook(tmp_path):
    workspace = tmp_path / "ws"
    result = run("lab", "--dir", str(workspace), "--no-open")
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in workspace.glob("*.ipynb"))
    lessons = sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))
    exercise = [n for n in lessons if n.endswith("_student.ipynb")]
    assert exercise and set(exercise) <= set(names)                              # the student copy ...
    assert not {n.replace("_student", "") for n in exercise} & set(names)       # ... never the solution
    assert len(names) == len(lessons) - len(exercise)
    for name in names:
        assert (workspace / name).read_bytes() == (REPO / "notebooks" / name).read_bytes()
    audio = sorted(p.name for p in (REPO / "narration" / "audio").glob("*.mp3"))
    assert sorted(p.name for p in (workspace / "narration" / "audio").glob("*.mp3")) == audio
    assert "copied" in result.stdout

    edited, untouched = workspace / names[0], workspace / names[1]
    edited.write_text(edited.read_text(encoding="utf-8").replace("Lesson", "My lesson", 1), encoding="utf-8")
    mine = edited.read_bytes()
    # a course update of a notebook the student never opened: the workspace follows it
    state = json.loads((workspace / ".mdn-course-lab.json").read_text())
    untouched.write_bytes(untouched.read_bytes() + b"\n")  # "older copy" that lab made earlier
    state[untouched.name] = __import__("hashlib").sha256(untouched.read_bytes()).hexdigest()
    (workspace / ".mdn-course-lab.json").write_text(json.dumps(state))
    again = run("lab", "--dir", str(workspace), "--no-open")
    assert again.returncode == 0, again.stderr
    assert edited.read_bytes() == mine, "lab overwrote a notebook the student had edited"
    assert f"{edited.name}: KEPT your edited copy" in again.stdout
    assert untouched.read_bytes() == (REPO / "notebooks" / untouched.name).read_bytes()
    assert f"{untouched.name}: updated" in again.stdout


def test_lab_workspace_is_ignored_by_git():
    result = subprocess.run(["git", "check-ignore", "-q", "workspace/01.ipynb"], cwd=REPO)
    assert result.returncode == 0, "add /workspace/ to .gitignore"


def test_lab_without_jupyterlab_says_how_to_install_it(tmp_path):
    code = ("import importlib.util, sys; real = importlib.util.find_spec; "
            "importlib.util.find_spec = lambda n, *a: None if n == 'jupyterlab' else real(n, *a); "
            "from mdn_course.tools.lab import main; sys.exit(main(sys.argv[1:]))")
    result = subprocess.run([sys.executable, "-c", code, "--dir", str(tmp_path / "ws")], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    assert "pip install jupyterlab" in result.stderr and (tmp_path / "ws").is_dir()
