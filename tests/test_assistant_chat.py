"""chat(): the panel's behaviour, its widgets (driven without a browser), the text fallback, and a real kernel."""
import io
import math

import nbformat
import pytest
import torch

from mdn_course.assistant import llm
from mdn_course.assistant.panel import SUGGESTIONS, ChatPanel, chat, widgets_available
from mdn_course.assistant.hints import reset_hints

# The cell the lessons end with (see the report to the lead); the tests run exactly this.
LESSON_CELL = "from mdn_course.assistant import chat\nchat({lesson!r})"


def wrong_sign(pi, mu, sigma, z):
    log_n = -0.5 * ((z.unsqueeze(-1) - mu) / sigma) ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)
    return torch.logsumexp(torch.log(pi) + log_n, dim=-1).sum(-1).mean()


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.delenv(llm.URL_ENV, raising=False)
    monkeypatch.delenv("MDN_COURSE_HINTS", raising=False)
    reset_hints()


def test_panel_answers_and_keeps_history_newest_first():
    panel = ChatPanel(4)
    first = panel.send("what is the Bayes floor?")
    second = panel.send("what is the capital of France?")
    assert panel.history == [second, first]
    assert first.sources and not second.on_topic
    page = panel.history_html()
    assert page.index("capital of France") < page.index("Bayes floor")
    assert 'href="04_training.ipynb#' in page
    assert "Lesson 4" in panel.header() and "nothing you type leaves this computer" in panel.header()


def test_widgets_drive_the_panel_without_a_browser():
    panel = ChatPanel(5)
    box = panel.build()
    header, ask_row, chips_row, out = box.children
    text, send = ask_row.children
    text.value = "how does temperature change a dream?"        # Enter: the box sends and clears itself
    assert panel.history[0].question == "how does temperature change a dream?" and text.value == ""
    send.click()                                                # an empty box sends nothing
    assert len(panel.history) == 1
    assert [c.description for c in chips_row.children] == list(SUGGESTIONS)
    chips_row.children[2].click()                               # "summarise what I learned"
    assert panel.history[0].sources[0].section == "Summary"
    assert "05_dreaming.ipynb#Summary" in out.value and "Offline" in header.value


def test_help_with_the_exercise_runs_the_hint_ladder_on_the_given_function():
    panel = ChatPanel(3, loss_fn=wrong_sign)
    panel.build()
    help_chip = panel.widget.children[2].children[1]
    help_chip.click()
    help_chip.click()
    assert [a.via for a in panel.history] == ["hint", "hint"]
    assert "Hint 2 of 3" in panel.history[0].text and "wrong sign" in panel.history[0].text


def test_answer_cell_box_only_with_a_language_model_in_the_exercise(monkeypatch):
    assert len(ChatPanel(3, loss_fn=wrong_sign).build().children) == 4
    monkeypatch.setenv(llm.URL_ENV, "http://127.0.0.1:9/v1")
    monkeypatch.setenv(llm.MODEL_ENV, "m")
    assert len(ChatPanel(4).build().children) == 4             # not outside the exercise
    panel = ChatPanel(3, loss_fn=wrong_sign)
    children = panel.build().children
    tick = children[3]
    assert "127.0.0.1" in children[0].value
    assert panel._answer_cell() is None                         # not ticked: nothing of the cell
    tick.value = True
    assert "def wrong_sign" in panel._answer_cell()


def test_text_fallback_outside_a_kernel(monkeypatch, capsys):
    assert not widgets_available()
    monkeypatch.setattr("sys.stdin", io.StringIO(""))           # not a terminal: print and return
    chat(1)
    printed = capsys.readouterr().out
    assert "Lesson 1" in printed and "ask('your question')" in printed


def test_text_fallback_reads_questions_at_a_terminal(monkeypatch, capsys):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stdin", Terminal())
    questions = iter(["why logsumexp?", ""])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(questions))
    chat(3)
    printed = capsys.readouterr().out
    assert "03_exercise_mdn_loss_student.ipynb › 2. The log of a sum of exponentials" in printed


def test_unknown_lesson_is_named():
    with pytest.raises(ValueError, match="unknown lesson"):
        ChatPanel("06_nothing")


@pytest.mark.notebooks
def test_lesson_cell_shows_the_widget_panel_in_a_real_kernel(tmp_path):
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(LESSON_CELL.format(lesson="04_training"))]
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = nb.cells[0].outputs
    assert [o.output_type for o in outputs] == ["display_data"], outputs
    assert "application/vnd.jupyter.widget-view+json" in outputs[0].data
    assert "ask('your question')" in outputs[0].data["text/plain"]     # what a page without widgets shows


def test_setup_problems_show_in_the_panel_instead_of_vanishing(monkeypatch):
    monkeypatch.setenv(llm.URL_ENV, "localhost:11434")          # not a URL: ask() raises ValueError
    monkeypatch.setenv(llm.MODEL_ENV, "m")
    panel = ChatPanel(2)
    answer = panel.send("what is the LSTM state for?")
    assert answer.text.startswith("The assistant cannot answer:") and "not an http" in answer.text


def test_exercise_help_uses_the_notebooks_current_mdn_loss(monkeypatch):
    class Shell:
        user_ns = {"mdn_loss": wrong_sign}

    monkeypatch.setattr("IPython.get_ipython", lambda: Shell)    # what hint() and the panel both ask
    panel = ChatPanel(3)
    assert panel.loss_fn() is wrong_sign
    assert "Hint 1 of 3" in panel.send("help with the exercise").text
    Shell.user_ns = {"mdn_loss": 3}                             # not a function: fall back to the how-to
    assert "call hint(mdn_loss)" in panel.send("help with the exercise").text
