"""Command line of the narration tools: ``python -m mdn_course narration {build,check,pack,fetch}``.

``fetch`` (students, Colab) needs only the player; ``build``, ``check`` and ``pack``
(course authors) are handed to :mod:`mdn_course.narration.build`. Keeping the
dispatch here means the player never imports the builder and the builder imports
only the player's constants: no import circle.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from .player import ENV_DRIVE_ID, ENV_URL, NarrationPackError, cache_dir, download_pack


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m mdn_course narration``.

    ``fetch`` is handled here; ``build``, ``check`` and ``pack`` are handed to
    :mod:`mdn_course.narration.build` (imported only then).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("build", "check", "pack"):
        from . import build  # imported only here: it needs the author-side extras

        return build.main(args)

    parser = argparse.ArgumentParser(
        prog="python -m mdn_course narration",
        description="Narration tools. Commands: build, check, pack, fetch "
        "(see `python -m mdn_course narration COMMAND --help`).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("build", "synthesise audio for new/changed scripts"),
        ("check", "exit non-zero if any audio is missing or stale"),
        ("pack", "build the downloadable narration pack zip"),
    ):
        sub.add_parser(name, help=text, add_help=False)
    fetch = sub.add_parser("fetch", help="download and install the narration pack")
    src = fetch.add_mutually_exclusive_group()
    src.add_argument("--url", help=f"release zip URL (default: ${ENV_URL} or built-in)")
    src.add_argument("--drive-id", help=f"Google Drive file id (default: ${ENV_DRIVE_ID} or built-in)")
    fetch.add_argument("--dest", type=Path, default=None, help=f"target folder (default: {cache_dir()})")
    ns = parser.parse_args(args)
    try:
        download_pack(ns.dest, url=ns.url, drive_id=ns.drive_id)
    except NarrationPackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0

