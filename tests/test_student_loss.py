"""load_student_loss: the student's checked mdn_loss drives training, anything else falls back, saying why."""
import json

import pytest
import torch

from mdn_course.exercise.student_loss import load_student_loss
from mdn_course.loss import mdn_loss as reference

CORRECT = '''def mdn_loss(pi, mu, sigma, z_next):
    z = z_next.unsqueeze(-1)
    log_n = -0.5 * ((z - mu) / sigma) ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)
    return -torch.logsumexp(torch.log(pi) + log_n, dim=-1).sum(-1).mean()
'''
WRONG_SIGN = CORRECT.replace("return -torch", "return torch")
STUB = '''def mdn_loss(pi, mu, sigma, z_next):
    raise NotImplementedError("write mdn_loss")
'''


def _notebook(tmp_path, source, tags=("answer",)):
    cell = {"cell_type": "code", "metadata": {"tags": list(tags)}, "source": source, "outputs": [],
            "execution_count": None}
    nb = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "exercise.ipynb"
    path.write_text(json.dumps(nb))
    return path


def test_a_correct_answer_is_used(tmp_path):
    chosen = load_student_loss(_notebook(tmp_path, CORRECT))
    assert chosen.is_student and chosen.loss_fn is not reference
    assert chosen.describe().startswith("training with your mdn_loss")
    pi = torch.full((4, 2, 3), 1 / 3)
    mu, sigma, z = torch.randn(4, 2, 3), torch.rand(4, 2, 3) + 0.5, torch.randn(4, 2)
    assert torch.allclose(chosen.loss_fn(pi, mu, sigma, z), reference(pi, mu, sigma, z), atol=1e-5)


@pytest.mark.parametrize("source, reason", [
    (STUB, "not written yet"),
    (WRONG_SIGN, "does not pass the check"),
    ("def mdn_loss(pi, mu, sigma, z_next) return 0\n", "stops with SyntaxError"),
    ("x = 1\n", "defines no function mdn_loss"),
])
def test_anything_else_falls_back_to_the_reference_and_says_why(tmp_path, source, reason):
    chosen = load_student_loss(_notebook(tmp_path, source))
    assert not chosen.is_student and chosen.loss_fn is reference
    assert reason in chosen.reason and "reference" in chosen.describe()


def test_a_missing_notebook_falls_back(tmp_path):
    chosen = load_student_loss(tmp_path / "nowhere.ipynb")
    assert not chosen.is_student and "no exercise notebook" in chosen.reason


def test_wrong_sign_names_the_failed_checks(tmp_path):
    chosen = load_student_loss(_notebook(tmp_path, WRONG_SIGN))
    assert chosen.failed_checks and all(isinstance(name, str) for name in chosen.failed_checks)


def test_train_model_minimises_the_given_loss_and_reports_the_true_nll(tmp_path):
    from mdn_course import MDNRNN, generate_synthetic_data, set_seed, train_model

    z, a = generate_synthetic_data(120, seq_len=6, seed=0)
    histories = {}
    for name, loss_fn in (("package", None), ("student", load_student_loss(_notebook(tmp_path, CORRECT)).loss_fn),
                          ("negated", lambda *args: -reference(*args))):
        set_seed(0)
        histories[name] = train_model(MDNRNN(hidden_dim=8, n_components=2), z, a, epochs=3, batch_size=32,
                                      progress=False, loss_fn=loss_fn).train_nll
    assert histories["student"] == pytest.approx(histories["package"], abs=1e-3)
    assert histories["negated"][-1] > histories["package"][-1] + 1.0    # maximising the NLL shows in the report
