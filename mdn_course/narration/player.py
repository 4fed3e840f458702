"""Play the course narration inside a notebook: ``play("00_welcome")`` shows a segment's audio and transcript.

This module is what the notebooks call (``from mdn_course.narration import play``). It
shows what :mod:`.locate` finds and, in Colab, fetches the pack once (:mod:`.pack`) when the
audio is missing. It imports only the standard library at module level (IPython is imported
when a notebook displays, gdown only to download from Drive), so it works without torch and
without any text-to-speech engine installed.

Why a transcript is always shown: the lesson must work muted and for deaf
students, so :func:`play` always renders the transcript in a collapsible
``<details>`` block next to the audio player. Why the output is a single HTML
object with a short ``text/plain`` fallback: notebooks are regression-tested
with nbval, which compares outputs between runs, so everything displayed is
deterministic (no absolute paths, no times).

Linked or embedded audio: when an mp3 lies in the notebook's folder or below it
(``python -m mdn_course lab`` puts a copy of the narration in the student's
workspace), the player is an ``<audio src="narration/audio/<id>.mp3">`` with a
relative path that Jupyter serves, so a saved notebook stays small. Anywhere
else, and always in Colab (whose outputs cannot reach the runtime's files), the
mp3's bytes are embedded as a data URI. Both are deterministic for a given
layout; the committed notebooks store no narration output at all.

Building audio (text-to-speech, manifest, pack) lives in
:mod:`mdn_course.narration.build`. Command line (``mdn_course/narration/cli.py``)::

    python -m mdn_course narration build [--engine piper|espeak] [--force] [--only ID ...]
    python -m mdn_course narration check
    python -m mdn_course narration pack OUT.zip
    python -m mdn_course narration fetch [--url URL | --drive-id ID] [--dest DIR]
"""

from __future__ import annotations

import base64
import html
import re
import urllib.parse
from pathlib import Path
from typing import Optional

from ..kernel import in_colab, in_notebook
from .locate import candidate_dirs, check_segment_id, find_audio, find_transcript
from .pack import download_pack

__all__ = ["play", "build_view", "NarrationView", "linkable_audio"]

#: Audio larger than this is not embedded (keeps notebooks reasonable).
MAX_EMBED_BYTES = 8 * 1024 * 1024

_FETCH_HINT = "Run `python -m mdn_course narration fetch` or see README."

# Set after the first automatic download attempt in this process, so a
# failing download is not retried (and slowed down) for every cell.
_auto_download_attempted = False


class NarrationView:
    """What :func:`play` displays: HTML for notebooks, a short stable plain text.

    Both representations depend only on the segment id, the transcript and the
    mp3 bytes, so they are identical across runs and machines (nbval-safe).
    """

    def __init__(
        self,
        segment_id: str,
        transcript: Optional[str],
        audio: Optional[bytes],
        note: Optional[str],
        audio_src: Optional[str] = None,
    ) -> None:
        self.segment_id = segment_id
        self.transcript = transcript
        self.audio = audio
        self.note = note
        #: Relative URL of the mp3 (linked instead of embedded), or None.
        self.audio_src = audio_src

    @property
    def has_audio(self) -> bool:
        return self.audio is not None or self.audio_src is not None

    def _repr_html_(self) -> str:
        parts = [f'<div class="mdn-narration" data-segment="{html.escape(self.segment_id)}">']
        if self.has_audio:
            if self.audio_src is not None:
                src = html.escape(self.audio_src)
            else:
                src = "data:audio/mpeg;base64," + base64.b64encode(self.audio).decode("ascii")
            parts.append(
                f'<audio controls preload="none" src="{src}">'
                "Your browser cannot play this audio; read the transcript below."
                "</audio>"
            )
        if self.note:
            parts.append(f"<p><em>{html.escape(self.note, quote=False)}</em></p>")
        if self.transcript is not None:
            # Without audio the transcript is the lesson: show it open.
            opened = "" if self.has_audio else " open"
            paras = [p.strip() for p in re.split(r"\n\s*\n", self.transcript) if p.strip()]
            body = "".join(
                "<p>" + html.escape(p, quote=False).replace("\n", "<br>") + "</p>" for p in paras
            )
            parts.append(f"<details{opened}><summary>Transcript</summary>{body}</details>")
        parts.append("</div>")
        return "".join(parts)

    def __repr__(self) -> str:
        text = f"[narration: {self.segment_id}]"
        if self.note:
            text += f"\n{self.note}"
        return text

    def as_text(self) -> str:
        """Plain-text rendering for terminals: header, note, transcript."""
        lines = [f"[narration: {self.segment_id}]"]
        if self.note and self.transcript is None:
            lines.append(self.note)
        if self.transcript is not None:
            lines.append(self.transcript)
        return "\n".join(lines)


def linkable_audio(segment_id: str) -> Optional[str]:
    """Relative URL of ``segment_id``'s mp3 when one lies in the current folder or below it, else None.

    The kernel's current folder is the notebook's folder, which the Jupyter
    server serves, so such a path plays from a saved notebook without embedding
    the audio. Never in Colab (its outputs cannot fetch the runtime's files).
    """
    if in_colab():
        return None
    try:
        here = Path.cwd().resolve()
    except OSError:
        return None
    for folder in candidate_dirs():
        mp3 = folder / "audio" / f"{check_segment_id(segment_id)}.mp3"
        if not mp3.is_file():
            continue
        try:
            relative = mp3.resolve().relative_to(here)
        except ValueError:
            continue
        return urllib.parse.quote(relative.as_posix())
    return None


def _maybe_auto_download() -> bool:
    """In Colab, try once per process to fetch the pack. Returns True on success."""
    global _auto_download_attempted
    if _auto_download_attempted or not in_colab():
        return False
    _auto_download_attempted = True
    try:
        download_pack(quiet=True)
    except Exception:
        return False
    return True


def build_view(segment_id: str) -> NarrationView:
    """Collect what :func:`play` shows for ``segment_id``; never raises.

    Outside Colab nothing is downloaded. In Colab, missing audio triggers
    a single :func:`download_pack` attempt per process.
    """
    try:
        check_segment_id(segment_id)
    except ValueError as exc:
        return NarrationView(str(segment_id), None, None, str(exc))

    transcript = find_transcript(segment_id)
    audio_path = find_audio(segment_id)
    downloaded = False
    if audio_path is None and _maybe_auto_download():
        downloaded = True
        audio_path = find_audio(segment_id)
        if transcript is None:
            transcript = find_transcript(segment_id)

    audio: Optional[bytes] = None
    note: Optional[str] = None
    audio_src = linkable_audio(segment_id) if audio_path is not None else None
    if audio_path is not None and audio_src is None:  # not linkable: embed the bytes
        try:
            if audio_path.stat().st_size <= MAX_EMBED_BYTES:
                audio = audio_path.read_bytes()
            else:
                note = "Narration audio is too large to embed; showing the transcript."
        except OSError:
            audio = None
    if audio is None and audio_src is None and note is None:
        if downloaded:
            note = "Narration audio is not in the downloaded pack; showing the transcript."
        else:
            note = f"Narration audio not found; showing the transcript. {_FETCH_HINT}"
    if transcript is None:
        note = (
            f"Narration transcript '{segment_id}' not found." if audio is not None or audio_src is not None
            else f"Narration '{segment_id}' not found (no transcript, no audio). {_FETCH_HINT}"
        )
    return NarrationView(segment_id, transcript, audio, note, audio_src)


def play(segment_id: str) -> None:
    """Show narration segment ``segment_id``: audio player plus transcript.

    In a notebook this displays one HTML output: an ``<audio controls>``
    element (the mp3 linked by a relative path when it lies under the
    notebook's folder, else embedded as a data URI), and the transcript in a
    collapsible ``<details>`` block (open when the audio is missing). Outside
    a notebook it prints the transcript. Missing audio or transcript produce
    a one-line note instead of an exception, so a lesson never breaks on
    narration.
    """
    try:
        view = build_view(segment_id)
    except Exception as exc:  # defensive: narration must never break a lesson
        view = NarrationView(str(segment_id), None, None, f"Narration unavailable: {exc}")
    if in_notebook():
        try:
            from IPython.display import display

            display(view)
            return
        except Exception:
            pass
    print(view.as_text())
