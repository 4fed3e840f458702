"""Play the course narration inside a notebook: locate, display, download.

This module is what the notebooks import (``from mdn_course.narration import
play``). It has one job: given a segment id such as ``"00_welcome"``, find the
segment's transcript (``scripts/<id>.txt``) and audio (``audio/<id>.mp3``) and
show them. It imports only the standard library at module level (IPython and
gdown are imported lazily), so it works without torch and without any
text-to-speech engine installed.

Where narration files are looked for, first match wins, per file:

1. ``$MDN_COURSE_NARRATION_DIR`` (explicit override);
2. the repository's ``narration/`` folder next to the package directory;
3. a ``narration/`` folder in the current directory or any of its parents
   (notebooks run from ``notebooks/``);
4. the user cache ``~/.cache/mdn_course/narration`` (``$XDG_CACHE_HOME`` is
   honoured), where :func:`download_pack` extracts the downloadable pack.

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
import os
import re
import shutil
import stat
import sys
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath
from typing import Optional, Sequence

from ..links import PACK_URL

__all__ = [
    "play",
    "find_audio",
    "find_transcript",
    "narration_dir",
    "candidate_dirs",
    "download_pack",
    "validate_pack",
    "linkable_audio",
    "NarrationPackError",
    "DEFAULT_PACK_URL",
    "DEFAULT_DRIVE_ID",
]

#: Environment variable that overrides where narration is looked for first.
ENV_DIR = "MDN_COURSE_NARRATION_DIR"
#: Environment variable with a release URL of the narration pack (a zip).
ENV_URL = "MDN_COURSE_NARRATION_URL"
#: Environment variable with the Google Drive file id of the narration pack.
ENV_DRIVE_ID = "MDN_COURSE_NARRATION_DRIVE_ID"

#: Release URL of the narration pack (:data:`mdn_course.links.PACK_URL`), built by
#: ``python -m mdn_course narration pack`` and attached to each GitHub release. In
#: Colab the install cell clones the repository, so the audio is normally found
#: locally and this is the fallback. ``MDN_COURSE_NARRATION_URL`` overrides it.
DEFAULT_PACK_URL = PACK_URL
#: Google Drive file id of the narration pack. Empty until uploaded;
#: the environment variable ``MDN_COURSE_NARRATION_DRIVE_ID`` overrides it.
DEFAULT_DRIVE_ID = ""

#: The repository's narration folder (sibling of the package directory).
REPO_NARRATION_DIR = Path(__file__).resolve().parents[2] / "narration"

#: Segment ids are file stems: letters, digits, ``_`` and ``-`` only, so an id
#: can never name a path outside the narration folder.
SEGMENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")

#: Audio larger than this is not embedded (keeps notebooks reasonable).
MAX_EMBED_BYTES = 8 * 1024 * 1024

#: Limits applied when validating a downloaded pack (zip-bomb guard).
MAX_PACK_MEMBERS = 2000
MAX_PACK_UNCOMPRESSED = 1024 * 1024 * 1024

_FETCH_HINT = "Run `python -m mdn_course narration fetch` or see README."

# Set after the first automatic download attempt in this process, so a
# failing download is not retried (and slowed down) for every cell.
_auto_download_attempted = False


class NarrationPackError(RuntimeError):
    """The narration pack could not be downloaded, or is malformed/unsafe."""


# --------------------------------------------------------------------------
# Locating files
# --------------------------------------------------------------------------


def _check_segment_id(segment_id: str) -> str:
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
    return _find(f"audio/{_check_segment_id(segment_id)}.mp3")


def find_transcript(segment_id: str) -> Optional[str]:
    """Return the text of ``scripts/<segment_id>.txt`` (stripped), or ``None``.

    Raises ``ValueError`` for a malformed segment id.
    """
    p = _find(f"scripts/{_check_segment_id(segment_id)}.txt")
    if p is None:
        return None
    try:
        return p.read_text(encoding="utf-8").replace("\r\n", "\n").strip()
    except (OSError, UnicodeDecodeError):
        return None


# --------------------------------------------------------------------------
# Playing
# --------------------------------------------------------------------------


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


def _in_notebook() -> bool:
    """True inside a Jupyter/Colab kernel (not a terminal IPython or plain Python)."""
    ipython_mod = sys.modules.get("IPython")
    if ipython_mod is None:
        return False
    try:
        ip = ipython_mod.get_ipython()
    except Exception:
        return False
    return ip is not None and getattr(ip, "kernel", None) is not None


def _in_colab() -> bool:
    return "google.colab" in sys.modules


def linkable_audio(segment_id: str) -> Optional[str]:
    """Relative URL of ``segment_id``'s mp3 when one lies in the current folder or below it, else None.

    The kernel's current folder is the notebook's folder, which the Jupyter
    server serves, so such a path plays from a saved notebook without embedding
    the audio. Never in Colab (its outputs cannot fetch the runtime's files).
    """
    if _in_colab():
        return None
    try:
        here = Path.cwd().resolve()
    except OSError:
        return None
    for folder in candidate_dirs():
        mp3 = folder / "audio" / f"{_check_segment_id(segment_id)}.mp3"
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
    if _auto_download_attempted or not _in_colab():
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
        _check_segment_id(segment_id)
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
    if _in_notebook():
        try:
            from IPython.display import display

            display(view)
            return
        except Exception:
            pass
    print(view.as_text())


# --------------------------------------------------------------------------
# Downloading the pack
# --------------------------------------------------------------------------

_ALLOWED_TOP = {"audio", "scripts"}
_ALLOWED_FILES = {"manifest.json", "VOICE_LICENSE.md", "README.md"}


def validate_pack(zip_path: Path) -> list[str]:
    """Check a narration pack zip and return its member names.

    Accepted layout: ``manifest.json``, ``audio/<id>.mp3``, ``scripts/<id>.txt``
    and optionally ``VOICE_LICENSE.md``/``README.md``. Rejects path traversal
    (``..``, absolute paths, backslashes, drive letters), symlinks, unknown
    files, too many members and oversized content. Raises
    :class:`NarrationPackError` explaining the first problem found.
    """
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise NarrationPackError(f"narration pack is not a valid zip: {exc}") from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_PACK_MEMBERS:
            raise NarrationPackError(f"narration pack has too many members ({len(infos)})")
        total = 0
        names: list[str] = []
        for info in infos:
            name = info.filename
            if "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
                raise NarrationPackError(f"unsafe path in narration pack: {name!r}")
            parts = PurePosixPath(name).parts
            if any(p in ("..", ".", "") for p in parts):
                raise NarrationPackError(f"unsafe path in narration pack: {name!r}")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise NarrationPackError(f"symlink in narration pack: {name!r}")
            if info.is_dir():
                if len(parts) != 1 or parts[0] not in _ALLOWED_TOP:
                    raise NarrationPackError(f"unexpected folder in narration pack: {name!r}")
                continue
            ok = (
                (len(parts) == 1 and parts[0] in _ALLOWED_FILES)
                or (
                    len(parts) == 2
                    and parts[0] == "audio"
                    and parts[1].endswith(".mp3")
                    and SEGMENT_ID_RE.match(parts[1][:-4]) is not None
                )
                or (
                    len(parts) == 2
                    and parts[0] == "scripts"
                    and parts[1].endswith(".txt")
                    and SEGMENT_ID_RE.match(parts[1][:-4]) is not None
                )
            )
            if not ok:
                raise NarrationPackError(f"unexpected file in narration pack: {name!r}")
            total += info.file_size
            if total > MAX_PACK_UNCOMPRESSED:
                raise NarrationPackError("narration pack is too large when extracted")
            names.append(name)
        if "manifest.json" not in names:
            raise NarrationPackError("narration pack has no manifest.json")
        if not any(n.startswith("audio/") for n in names):
            raise NarrationPackError("narration pack has no audio/*.mp3")
        bad = zf.testzip()
        if bad is not None:
            raise NarrationPackError(f"corrupt member in narration pack: {bad!r}")
    return names


def _download_url(url: str, out: Path, timeout: float = 60.0) -> None:
    scheme = urllib.parse.urlparse(url).scheme
    if scheme not in ("http", "https"):
        raise NarrationPackError(f"narration pack URL must be http(s), got {url!r}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(out, "wb") as f:
            shutil.copyfileobj(resp, f, length=1024 * 1024)
    except OSError as exc:  # URLError and HTTPError are OSErrors
        raise NarrationPackError(f"could not download narration pack from {url}: {exc}") from exc


def _download_drive(drive_id: str, out: Path, quiet: bool) -> None:
    try:
        import gdown
    except ImportError as exc:
        raise NarrationPackError(
            "gdown is needed to download the narration pack from Google Drive "
            "(pip install gdown)"
        ) from exc
    try:
        result = gdown.download(id=drive_id, output=str(out), quiet=quiet)
    except Exception as exc:
        raise NarrationPackError(
            f"could not download narration pack from Google Drive id {drive_id!r}: {exc}"
        ) from exc
    if result is None or not out.is_file() or out.stat().st_size == 0:
        raise NarrationPackError(
            f"could not download narration pack from Google Drive id {drive_id!r}"
        )


def download_pack(
    dest: Optional[Path | str] = None,
    *,
    url: Optional[str] = None,
    drive_id: Optional[str] = None,
    quiet: bool = False,
) -> Path:
    """Download the narration pack, validate it and extract it into ``dest``.

    Source, first that is set: ``url``, ``drive_id``, ``$MDN_COURSE_NARRATION_URL``,
    ``$MDN_COURSE_NARRATION_DRIVE_ID``, :data:`DEFAULT_PACK_URL`,
    :data:`DEFAULT_DRIVE_ID`. URLs are fetched with urllib, Drive ids with gdown.
    ``dest`` defaults to the user cache folder, which :func:`find_audio`
    searches. Extraction is atomic: the pack is unpacked into a temporary
    sibling folder and swapped in, so ``dest`` never holds a partial pack.
    Returns ``dest``; raises :class:`NarrationPackError` on any failure.
    """
    dest_path = Path(dest).expanduser() if dest is not None else cache_dir()
    if url is None and drive_id is None:
        url = os.environ.get(ENV_URL) or None
        drive_id = os.environ.get(ENV_DRIVE_ID) or None
        if url is None and drive_id is None:
            url = DEFAULT_PACK_URL or None
            drive_id = DEFAULT_DRIVE_ID or None
    if url is None and drive_id is None:
        raise NarrationPackError(
            "no narration pack source configured: set "
            f"{ENV_URL} (release zip URL) or {ENV_DRIVE_ID} (Google Drive file id)"
        )

    parent = dest_path.parent
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".narration-dl-", dir=parent))
    try:
        zip_path = work / "pack.zip"
        if url is not None:
            if not quiet:
                print(f"Downloading narration pack from {url} ...", file=sys.stderr)
            _download_url(url, zip_path)
        else:
            assert drive_id is not None
            _download_drive(drive_id, zip_path, quiet)
        validate_pack(zip_path)

        staged = work / "extracted"
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(staged)  # safe: every member name validated above

        old = work / "previous"
        if dest_path.exists():
            os.replace(dest_path, old)
        try:
            os.replace(staged, dest_path)
        except OSError:
            if old.exists():
                os.replace(old, dest_path)  # put the previous pack back
            raise
    except OSError as exc:
        raise NarrationPackError(f"could not install narration pack into {dest_path}: {exc}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not quiet:
        print(f"Narration pack installed in {dest_path}", file=sys.stderr)
    return dest_path
