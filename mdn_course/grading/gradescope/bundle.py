"""The Gradescope autograder bundle: ``python -m mdn_course grade --gradescope-bundle autograder.zip``.

The zip holds

* ``setup.sh`` (this folder's file, package data): installs python3, bubblewrap, torch (CPU)
  and this package (its source tree is in the zip, under ``mdn_course_src/``) into
  ``/opt/mdn-grader``;
* ``run_autograder`` (also package data): runs :mod:`.autograder` on the upload.

The two scripts are real files next to this module, so they can be read, linted and tested as
shell; ``{torch}`` and ``{default_args}`` in them are filled in here.
"""
from __future__ import annotations

import stat
import zipfile
from importlib import resources
from pathlib import Path
from typing import List, Sequence

import torch

__all__ = ["write_bundle", "SCRIPTS", "PACKAGE_ROOT"]

PACKAGE_ROOT = Path(__file__).resolve().parents[3]   # the checkout: pyproject.toml and mdn_course/
SCRIPTS = ("setup.sh", "run_autograder")


def _script(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _source_files() -> List[Path]:
    """pyproject.toml, README.md and every file of the package (its data included), from the checkout."""
    if not (PACKAGE_ROOT / "pyproject.toml").is_file():
        raise OSError(f"no pyproject.toml in {PACKAGE_ROOT}: make the bundle from a checkout of the course")
    files = [PACKAGE_ROOT / "pyproject.toml", PACKAGE_ROOT / "README.md"]
    files += sorted(p for p in (PACKAGE_ROOT / "mdn_course").rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith("."))
    return [f for f in files if f.is_file()]


def write_bundle(path: Path, default_args: Sequence[str] = ()) -> Path:
    """Write the autograder zip (setup.sh, run_autograder, the package's source) to ``path``.

    ``default_args`` are grader options baked into run_autograder (``--no-sandbox`` where
    Gradescope's container cannot run bubblewrap: each submission then runs as uid 65534 in its
    own throw-away container, which cannot read the course's code).
    """
    fill = {"setup.sh": ("{torch}", torch.__version__.split("+")[0]),
            "run_autograder": ("{default_args}", " ".join(default_args))}
    sources = _source_files()
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name in SCRIPTS:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | 0o755) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, _script(name).replace(*fill[name]))
        for f in sources:
            z.write(f, "mdn_course_src/" + f.relative_to(PACKAGE_ROOT).as_posix())
    return path
