"""The narration pack: a zip of the audio and transcripts, validated before anything is extracted, and its download.

``python -m mdn_course narration pack`` builds it (:mod:`.build`) and each GitHub release
carries it; in Colab the player falls back to it when the clone has no audio. Validation
rejects path traversal, symlinks, unknown files, too many members and oversized content;
extraction is atomic.
"""

from __future__ import annotations

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
from typing import Optional

from ..links import PACK_URL
from .locate import SEGMENT_ID_RE, cache_dir

__all__ = ["NarrationPackError", "ENV_URL", "ENV_DRIVE_ID", "DEFAULT_PACK_URL", "DEFAULT_DRIVE_ID", "validate_pack",
           "download_pack"]

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

#: Limits applied when validating a downloaded pack (zip-bomb guard).
MAX_PACK_MEMBERS = 2000
MAX_PACK_UNCOMPRESSED = 1024 * 1024 * 1024


class NarrationPackError(RuntimeError):
    """The narration pack could not be downloaded, or is malformed/unsafe."""


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
