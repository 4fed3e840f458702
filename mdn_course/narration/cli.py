"""Command line of the narration tools: ``python -m mdn_course narration {build,check,pack,fetch}``.

One parser for the four commands, parsed once: ``fetch`` (students, Colab) downloads the pack
(:mod:`.pack`); ``build``, ``check`` and ``pack`` (course authors) call :mod:`.build`, whose
text-to-speech engines are imported only when something is synthesised.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from . import build
from .locate import REPO_NARRATION_DIR, cache_dir
from .pack import ENV_DRIVE_ID, ENV_URL, NarrationPackError, download_pack

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", type=Path, default=REPO_NARRATION_DIR,
                        help="narration folder (default: the repository's narration/)")
    parser = argparse.ArgumentParser(prog="python -m mdn_course narration",
                                     description="Build, check, pack or fetch the course narration.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", parents=[common], help="synthesise audio for new/changed scripts")
    b.add_argument("--engine", choices=["piper", "espeak"], default=None,
                   help="TTS engine (default: piper, falling back to espeak-ng)")
    b.add_argument("--force", action="store_true", help="rebuild up-to-date segments too")
    b.add_argument("--only", nargs="+", metavar="ID", help="build only these segment ids")
    sub.add_parser("check", parents=[common], help="exit 1 listing missing/stale audio")
    p = sub.add_parser("pack", parents=[common], help="build the downloadable narration pack zip")
    p.add_argument("out", type=Path, help="output zip path")
    p.add_argument("--allow-stale", action="store_true", help="pack even if audio is stale")
    fetch = sub.add_parser("fetch", help="download and install the narration pack")
    src = fetch.add_mutually_exclusive_group()
    src.add_argument("--url", help=f"release zip URL (default: ${ENV_URL} or built-in)")
    src.add_argument("--drive-id", help=f"Google Drive file id (default: ${ENV_DRIVE_ID} or built-in)")
    fetch.add_argument("--dest", type=Path, default=None, help=f"target folder (default: {cache_dir()})")
    return parser


def _check(root: Path) -> int:
    problems = build.check(root)
    if problems:
        print("narration audio is missing or stale:", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        print("run: python -m mdn_course narration build", file=sys.stderr)
        return 1
    print(f"narration OK: {len(build.list_scripts(root))} segment(s) up to date")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m mdn_course narration``; returns the exit status."""
    ns = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if ns.command == "fetch":
            download_pack(ns.dest, url=ns.url, drive_id=ns.drive_id)
        elif ns.command == "build":
            report = build.build(ns.root, engine=ns.engine, force=ns.force, only=ns.only)
            print(f"{len(report.built)} built, {len(report.unchanged)} up to date"
                  + (f", {len(report.pruned)} pruned from manifest" if report.pruned else ""))
        elif ns.command == "check":
            return _check(ns.root)
        else:
            out = build.pack(ns.out, ns.root, allow_stale=ns.allow_stale)
            print(f"wrote {out} ({out.stat().st_size} bytes)")
    except NarrationPackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except build.NarrationBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
