"""The command line and the benchmark helpers run and report what they claim."""
import subprocess
import sys

import torch

from mdn_course import MDNRNN
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
    for command in ("train", "bench", "run-notebooks", "grade", "narration", "student-version"):
        assert f"\n  {command} " in result.stdout, command
    assert "``" not in result.stdout and ":mod:" not in result.stdout


def test_each_command_names_itself_in_its_usage():
    for command in ("run-notebooks", "grade", "narration", "student-version", "bench"):
        result = run(command, "--help")
        assert result.returncode == 0, (command, result.stderr)
        assert f"python -m mdn_course {command}" in result.stdout, (command, result.stdout[:200])
