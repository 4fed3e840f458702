"""``ask(question)``: an answer from the course's own text, with the sections it came from.

Offline by default. The question is ranked against the course's passages
(:mod:`.retrieval`); the answer quotes the best passage of the best section (a written FAQ
answer when one matches) and lists the sections to read, best first. A question that shares
too few words with the course, or an empty one, gets an honest "I can only help with this
course" instead of a random passage. Three questions are understood as requests about the
lesson the student is in (the chat panel's suggested questions): explain its main idea,
summarise what was learned, help with the exercise.

When a language model is configured (:mod:`.llm`), the same retrieved passages, and only
those, are sent with the question; any failure falls back to the offline answer with a
one-line note.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, List, Optional

from . import llm
from .corpus import Passage, heading_anchor, lesson_title, resolve_lesson

if TYPE_CHECKING:  # the retrieval library is imported on the first question, not when a lesson shows the panel
    from .retrieval import Hit, Index

__all__ = ["Source", "Answer", "ask", "MIN_KNOWN_SHARE", "markdown_to_html"]

MIN_KNOWN_SHARE = 0.6   # share of a question's content words that must occur in the course
MAX_SOURCES = 3
_EXERCISE = "03_exercise_mdn_loss_student.ipynb"
_EXAMPLES = ('"why does a squared-error model predict the average?"',
             '"what does the temperature do to a dream?"', '"why logsumexp?"')
_INTENTS = {
    "main_idea": re.compile(r"\b(main|key|big) idea\b|\bexplain (this|the) lesson\b|\bwhat is this lesson about\b"),
    "summary": re.compile(r"\bsumm?ari[sz]e\b|\bwhat (have|did) i learn"),
    "exercise": re.compile(r"\bhelp (me )?with the exercise\b|\bhelp with my (loss|answer)\b|\bhint\b"),
}


@dataclass(frozen=True)
class Source:
    """A section of a lesson that the answer comes from."""
    notebook: str
    section: str
    score: float = 0.0

    @property
    def anchor(self) -> str:
        return heading_anchor(self.section)

    @property
    def link(self) -> str:
        """``notebook.ipynb#Section-anchor``: opens the lesson at that heading in Jupyter."""
        return f"{self.notebook}#{self.anchor}"

    def __str__(self) -> str:
        return f"{self.notebook} › {self.section}"


@dataclass
class Answer:
    """An answer: its text (markdown), its sources (best first), and a note on how it was made."""
    question: str
    text: str
    sources: List[Source] = field(default_factory=list)
    note: str = ""
    on_topic: bool = True
    via: str = "offline"       # "offline", "llm" or "hint"

    def __str__(self) -> str:
        lines = [self.text]
        if self.sources:
            lines += ["", "Read more:"] + [f"  {i}. {s}" for i, s in enumerate(self.sources, 1)]
        if self.note:
            lines += ["", f"({self.note})"]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        parts = [f'<div class="mdn-answer">{markdown_to_html(self.text)}']
        if self.sources:
            items = "".join(f'<li><a href="{html.escape(s.link, quote=True)}" target="_blank">'
                            f"{html.escape(s.notebook)} › {html.escape(s.section)}</a></li>" for s in self.sources)
            parts.append(f"<p><b>Read more:</b></p><ol>{items}</ol>")
        if self.note:
            parts.append(f"<p><i>{html.escape(self.note)}</i></p>")
        return "".join(parts) + "</div>"


def markdown_to_html(text: str) -> str:
    """Just enough markdown for course passages: paragraphs, bullet lists, ``code``, **bold**, *italics*."""
    blocks = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.splitlines()
        if lines and all(re.match(r"\s*([-*]|\d+\.)\s", ln) or ln.startswith("  ") for ln in lines):
            items, current = [], ""
            for ln in lines:
                if re.match(r"\s*([-*]|\d+\.)\s", ln):
                    if current:
                        items.append(current)
                    current = re.sub(r"^\s*([-*]|\d+\.)\s", "", ln)
                else:
                    current += " " + ln.strip()
            items.append(current)
            blocks.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
        else:
            heading = re.match(r"^(#{1,6})\s+(.*)$", block)
            blocks.append(f"<p><b>{_inline(heading.group(2))}</b></p>" if heading else f"<p>{_inline(block)}</p>")
    return "".join(blocks)


def _inline(text: str) -> str:
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)
    out = re.sub(r"(?<![*\w])\*([^*\n]+)\*(?!\*)", r"<i>\1</i>", out)
    return out.replace("\n", " ")


def _off_topic(question: str) -> Answer:
    text = ("I can only help with this course: Mixture Density Network RNNs, their loss, training and "
            f"dreaming. Try asking something like {', '.join(_EXAMPLES)}, or, in the exercise, "
            "run hint(mdn_loss).")
    if not question.strip():
        text = "Type a question about the course first. " + text
    return Answer(question, text, on_topic=False)


def _quote(hit: Hit, max_words: int = 140) -> str:
    """The best passage of a section, plus the next one when the first is short."""
    chosen: List[Passage] = []
    words = 0
    for p in hit.passages:
        if chosen and (words > 60 or p.kind == "faq"):
            break
        chosen.append(p)
        words += len(p.text.split())
        if p.kind == "faq":
            break
    text = "\n\n".join(_strip_heading(p.text) for p in chosen)
    return _trim(text, max_words)


def _strip_heading(text: str) -> str:
    """Drop the section's own heading (the sources name it); deeper headings become bold lines."""
    lines = text.splitlines()
    while lines and re.match(r"^#{1,2}\s", lines[0]):
        lines = lines[1:]
    lines = [re.sub(r"^#{3,6}\s+(.*)$", r"**\1**", ln) for ln in lines]
    return "\n".join(lines).strip() or text


def _trim(text: str, max_words: int) -> str:
    words = text.split(" ")
    return text if len(words) <= max_words else " ".join(words[:max_words]).rstrip() + " …"


def _section_text(index: Index, notebook: str, section: str) -> str:
    return "\n\n".join(_strip_heading(p.text) for p in index.passages
                       if p.notebook == notebook and p.section == section and p.kind == "lesson")


def _summary_section(index: Index, notebook: str) -> Optional[str]:
    sections = [p.section for p in index.passages if p.notebook == notebook and p.kind == "lesson"]
    return next((s for s in sections if s.lower().startswith("summary")), None)


def _lesson_answer(question: str, intent: str, notebook: str, index: Index) -> Answer:
    title = lesson_title(notebook)
    summary = _summary_section(index, notebook)
    if intent == "main_idea":
        intro = _section_text(index, notebook, title).split("If you are in Colab")[0]
        intro = re.sub(r"^\s*\[!\[.*$|^\*\*Time:\*\*.*$", "", intro, flags=re.MULTILINE).strip()
        text = f"**{title}**\n\n{intro}"
        if summary:
            text += "\n\n**In short:**\n\n" + _section_text(index, notebook, summary)
        sources = [Source(notebook, title)] + ([Source(notebook, summary)] if summary else [])
    else:
        if summary is None:
            return Answer(question, f"{title} has no summary section; its sections are listed in the notebook.",
                          [Source(notebook, title)])
        text = f"What {title} taught:\n\n{_section_text(index, notebook, summary)}"
        sources = [Source(notebook, summary)]
    return Answer(question, text, sources)


def _exercise_answer(question: str, loss_fn: Optional[Callable]) -> Answer:
    if loss_fn is not None:
        from .hints import hint

        h = hint(loss_fn)
        return Answer(question, h.text, [Source(_EXERCISE, "4. Check your answer")], via="hint")
    text = ("In the exercise notebook, after running your answer cell, call hint(mdn_loss) "
            "(from mdn_course.assistant import hint). Each call runs the checks on your function and "
            "goes one step further: a nudge, then the mistake and the maths it breaks, then the corrected "
            "formula. It never shows code.")
    return Answer(question, text, [Source(_EXERCISE, "3. Your turn: implement `mdn_loss`"),
                                   Source(_EXERCISE, "4. Check your answer")], via="hint")


def ask(question: str, lesson=None, *, loss_fn: Optional[Callable] = None,
        answer_cell: Optional[str] = None, index: Optional[Index] = None) -> Answer:
    """Answer a question about the course, with the lesson sections it comes from.

    Args:
        question: the student's question, in their own words.
        lesson: the lesson they are in (4, "04_training" or its file name); its sections are
            preferred, and "explain the main idea of this lesson" / "summarise what I learned" use it.
        loss_fn: the student's ``mdn_loss``; with it, "help with the exercise" runs the hint ladder.
        answer_cell: the student's answer cell, sent to a configured language model only when given
            (the chat panel passes it only when the student ticks the box).
        index: a prebuilt index (default: the course as it is on disk, built once per session).
    """
    if not isinstance(question, str):
        raise TypeError(f"ask() takes the question as a string, got {type(question).__name__}")
    from .retrieval import default_index, tokenize

    index = index or default_index()
    notebook = resolve_lesson(lesson) if lesson is not None else None
    lowered = question.lower()
    for intent, pattern in _INTENTS.items():
        if pattern.search(lowered):
            if intent == "exercise":
                return _exercise_answer(question, loss_fn)
            if notebook is not None:
                return _lesson_answer(question, intent, notebook, index)
    tokens = index.known_words(question)
    content = tokenize(question)
    if not content or len(tokens) / len(content) < MIN_KNOWN_SHARE:
        return _off_topic(question)
    hits = index.search(question, k=MAX_SOURCES, notebook=notebook)
    if not hits:
        return _off_topic(question)
    sources = [Source(h.notebook, h.section, round(h.score, 3)) for h in hits]
    offline = Answer(question, _quote(hits[0]), sources)
    cfg = llm.config()
    if cfg is None:
        return offline
    passages = [p for h in hits for p in h.passages[:2]]
    try:
        text = llm.complete(question, passages, answer_cell=answer_cell, cfg=cfg)
    except llm.LLMUnavailable as exc:
        offline.note = f"{exc}; this is the course's own answer instead"
        return offline
    return Answer(question, text, sources, note=f"Written by {cfg.model} at {cfg.host} from the sections below.",
                  via="llm")

