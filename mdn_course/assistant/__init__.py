"""The course assistant: answers from the course's own text, exercise hints, and a chat panel.

* :func:`ask` answers a question offline from the lessons, their narration and a written FAQ,
  with links to the sections it used (optionally phrased by a language model the instructor
  configures with ``MDN_COURSE_LLM_URL``; see :mod:`.llm`).
* :func:`hint` runs the exercise's checks on the student's ``mdn_loss`` and climbs a hint
  ladder: nudge, named mistake, corrected formula; never code. ``MDN_COURSE_HINTS=off`` turns
  it off for assessed runs.
* :func:`chat` shows both as an ipywidgets panel (or a text prompt where widgets cannot render).
"""
from .answer import Answer, Source, ask
from .panel import chat
from .hints import Hint, hint, hints_enabled

__all__ = ["ask", "Answer", "Source", "hint", "Hint", "hints_enabled", "chat"]
