"""Where the narration files are: a segment's transcript (``scripts/<id>.txt``) and audio (``audio/<id>.mp3``).

Folders are searched in this order, first match wins, per file:

1. ``$MDN_COURSE_NARRATION_DIR`` (explicit override);
2. the repository's ``narration/`` folder next to the package directory;
3. a ``narration/`` folder in the current directory or any of its parents
   (notebooks run from ``notebooks/``);
4. the user cache ``~/.cache/mdn_course/narration`` (``$XDG_CACHE_HOME`` is
   honoured), where :func:`mdn_course.narration.pack.download_pack` extracts the pack.

Standard library only, like the rest of what lessons import from the narration.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional

__all__ = ["ENV_DIR", "REPO_NARRATION_DIR", "SEGMENT_ID_RE", "check_segment_id", "cache_dir", "candidate_dirs",
           "narration_dir", "find_audio", "find_transcript"]

#: Environment variable that overrides where narration is looked for first.
ENV_DIR = "MDN_COURSE_NARRATION_DIR"

#: The repository's narration folder (sibling of the package directory).
REPO_NARRATION_DIR = Path(__file__).resolve().parents[2] / "narration"

#: Segment ids are file stems: letters, digits, ``_`` and ``-`` only, so an id
#: can never name a path outside the narration folder.
SEGMENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")


def check_segment_id(segment_id: str) -> str:
    if not isinstance(segment_id, str) or not SEGMENT_ID_RE.match(segment_id):
        raise ValueError(
            f"invalid narration segment id {segment_id!r}: expected letters, "
            "digits, '_' or '-' (e.g. '01_fork_in_the_road')"
        )
    return segment_id


def cache_dir() -> Path:
    """Return the user cache folder where a downloaded pack is extracted."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mdn_course" / "narration"


def candidate_dirs() -> list[Path]:
    """Return the narration folders to search, in priority order.

    Folders that do not exist are left out; duplicates are removed.
    """
    dirs: list[Path] = []
    env = os.environ.get(ENV_DIR)
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(REPO_NARRATION_DIR)
    try:
        cwd = Path.cwd().resolve()
        for parent in (cwd, *cwd.parents):
            dirs.append(parent / "narration")
    except OSError:  # cwd deleted
        pass
    dirs.append(cache_dir())

    seen: set[Path] = set()
    result: list[Path] = []
    for d in dirs:
        try:
            key = d.resolve()
        except OSError:
            continue
        if key in seen or not d.is_dir():
            continue
        seen.add(key)
        result.append(d)
    return result


def narration_dir() -> Optional[Path]:
    """Return the highest-priority existing narration folder, or ``None``."""
    dirs = candidate_dirs()
    return dirs[0] if dirs else None


def _find(relative: str) -> Optional[Path]:
    for d in candidate_dirs():
        p = d / relative
        if p.is_file():
            return p
    return None


def find_audio(segment_id: str) -> Optional[Path]:
    """Return the path of ``audio/<segment_id>.mp3`` in the first folder that has it.

    Raises ``ValueError`` for a malformed segment id.
    """
    return _find(f"audio/{check_segment_id(segment_id)}.mp3")


def find_transcript(segment_id: str) -> Optional[str]:
    """Return the text of ``scripts/<segment_id>.txt`` (stripped), or ``None``.

    Raises ``ValueError`` for a malformed segment id.
    """
    p = _find(f"scripts/{check_segment_id(segment_id)}.txt")
    if p is None:
        return None
    try:
        return p.read_text(encoding="utf-8").replace("\r\n", "\n").strip()
    except (OSError, UnicodeDecodeError):
        return None
