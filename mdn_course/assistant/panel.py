"""``chat()``: the assistant as a small panel at the end of a lesson.

(The module is ``panel``, not ``chat``, so that ``mdn_course.assistant.chat`` is always the function.)

Built from core ipywidgets only (``Text``, ``Button``, ``Checkbox``, ``HTML``, ``VBox``/``HBox``),
which JupyterLab and classic Jupyter render, and Colab renders natively with its ipywidgets 7; with
ipywidgets 8, Colab asks for ``google.colab.output.enable_custom_widget_manager()``, which
``chat()`` calls when it runs in Colab with ipywidgets 8 (and only then). Where a page cannot render widgets at all (a static
preview), the panel's plain-text form says how to ask with :func:`ask` instead.
Answers are written into an ``HTML`` widget's value rather than printed from the button's
callback: JupyterLab drops ``print`` output from widget callbacks, and Colab's support for the
``Output`` widget has varied.

Where widgets cannot render (plain Python, a terminal IPython, no ipywidgets), ``chat()``
prints how to use :func:`ask` and, at an interactive terminal, reads questions with
``input()`` until an empty line.

The panel states whether anything leaves the machine (see :func:`.llm.privacy_line`). In the
exercise it uses the notebook's current ``mdn_loss`` for "help with the exercise", and, only
when a language model is configured and the student ticks the box, sends their answer cell.
"""
from __future__ import annotations

import html
import inspect
import sys
from typing import Callable, List, Optional

from ..kernel import in_colab, in_notebook
from . import llm
from .answer import Answer, ask
from .corpus import lesson_title, resolve_lesson
from .hints import student_function

__all__ = ["chat", "ChatPanel", "SUGGESTIONS", "widgets_available"]

SUGGESTIONS = ("explain the main idea of this lesson", "help with the exercise", "summarise what I learned")


def widgets_available() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Notebook, Colab) with ipywidgets installed."""
    if not in_notebook():
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


class ChatPanel:
    """The panel's state and behaviour, separate from its widgets so it can be driven and tested anywhere."""

    def __init__(self, lesson=None, loss_fn: Optional[Callable] = None):
        self.notebook = resolve_lesson(lesson) if lesson is not None else None
        self._loss_fn = loss_fn
        self.history: List[Answer] = []
        self.share_answer_cell = False
        self.widget = None

    def loss_fn(self) -> Optional[Callable]:
        """The student's function: the one given, else the notebook's current ``training_step`` or ``mdn_loss``
        (looked up on each use, as ``hint()`` does)."""
        if self._loss_fn is not None:
            return self._loss_fn
        return student_function()

    def _answer_cell(self) -> Optional[str]:
        if not (self.share_answer_cell and llm.config() is not None):
            return None
        fn = self.loss_fn()
        try:
            return inspect.getsource(fn) if fn is not None else None
        except (OSError, TypeError):
            return None

    def send(self, question: str) -> Answer:
        """Answer ``question`` and add it to the panel's history (newest first)."""
        try:
            answer = ask(question, self.notebook, loss_fn=self.loss_fn(), answer_cell=self._answer_cell())
        except (FileNotFoundError, ValueError) as exc:   # setup problems: a widget callback would hide them
            answer = Answer(question, f"The assistant cannot answer: {exc}", on_topic=False)
        self.history.insert(0, answer)
        if self.widget is not None:
            self._render()
        return answer

    def header(self) -> str:
        where = f" for {lesson_title(self.notebook)}" if self.notebook else ""
        return f"Course assistant{where}. {llm.privacy_line()}"

    def history_html(self) -> str:
        blocks = []
        for a in self.history:
            blocks.append(f"<div style='margin:6px 0;padding:6px;border-left:3px solid #999'>"
                          f"<p><b>You:</b> {html.escape(a.question)}</p>{a._repr_html_()}</div>")
        return "".join(blocks)

    # ------------------------------------------------------------ widgets

    def build(self):
        """The ipywidgets panel (built once)."""
        import ipywidgets as w

        self._box = w.Text(placeholder="Ask about this lesson…", layout=w.Layout(width="70%"))
        send = w.Button(description="Ask", button_style="primary")
        chips = [w.Button(description=s, layout=w.Layout(width="auto")) for s in SUGGESTIONS]
        self._out = w.HTML()
        rows = [w.HTML(f"<b>{html.escape(self.header())}</b>"), w.HBox([self._box, send]), w.HBox(chips)]
        if llm.config() is not None and self.notebook and self.notebook.startswith("03_"):
            tick = w.Checkbox(value=False, description="also send my answer cell to the language model",
                              indent=False)
            tick.observe(lambda change: setattr(self, "share_answer_cell", bool(change["new"])), names="value")
            rows.append(tick)
        rows.append(self._out)

        def on_send(_=None):
            question = self._box.value.strip()
            if question:            # the box is cleared after each question; ignore that change
                self._box.value = ""
                self.send(question)

        send.on_click(on_send)
        self._box.continuous_update = False     # Enter (or leaving the box) sends, not every keystroke
        self._box.observe(on_send, names="value")
        for chip, text in zip(chips, SUGGESTIONS):
            chip.on_click(lambda _, t=text: self.send(t))
        self.widget = _panel_box_class()(rows)
        return self.widget

    def _render(self) -> None:
        self._out.value = self.history_html()


def _panel_box_class():
    import ipywidgets as w

    class PanelBox(w.VBox):
        """A plain VBox on the page; where widgets cannot render, its text says what to do instead."""

        def __repr__(self) -> str:
            # ipywidgets cuts this text at 110 characters
            return "Course assistant: no widgets here, so ask in a cell: mdn_course.assistant.ask('your question')"

    return PanelBox


def _enable_colab_widgets() -> None:
    """In Colab with ipywidgets 8, turn on the widget manager Colab asks for.

    Colab's own ipywidgets (7.7.1) renders natively, so there nothing is switched: the panel then uses
    exactly the widget manager Colab's sliders and lessons use.
    """
    if not in_colab():
        return
    try:
        import ipywidgets

        if int(ipywidgets.__version__.split(".")[0]) < 8:
            return
        from google.colab import output

        output.enable_custom_widget_manager()
    except Exception:  # an older Colab without it renders core widgets natively
        pass


def _terminal(panel: ChatPanel) -> None:
    print(panel.header())
    print("Ask with ask('your question'); suggestions: " + "; ".join(SUGGESTIONS) + ".")
    if not sys.stdin or not sys.stdin.isatty():
        return
    while True:
        try:
            question = input("question (empty line to stop)> ").strip()
        except EOFError:
            return
        if not question:
            return
        print(panel.send(question), end="\n\n")


def chat(lesson=None, loss_fn: Optional[Callable] = None) -> None:
    """Open the assistant: a widget panel in Jupyter or Colab, a text prompt elsewhere.

    Args:
        lesson: the lesson this panel belongs to (its number or file name), so "this lesson" means it.
        loss_fn: the student's ``mdn_loss`` for exercise help (default: the notebook's current ``mdn_loss``).
    """
    panel = ChatPanel(lesson, loss_fn)
    if widgets_available():
        from IPython.display import display

        _enable_colab_widgets()
        display(panel.build())
    else:
        _terminal(panel)
