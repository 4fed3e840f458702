"""Install the course into a Colab runtime, adding only what is missing and never replacing what Colab brings.

Colab's runtime comes with its own IPython, ipywidgets, ipykernel, numpy, matplotlib and torch, and its
``google-colab`` package pins some of them (``ipython==7.34.0``). Replacing one of those under a running
kernel is a known way to get a runtime that crashes on every restart, so the Colab install cell of every
lesson clones the course and runs this file (standard library and pip only, run as a script before the
package is importable)::

    python mdn-course/mdn_course/colab_install.py mdn-course

What it does, in order:

1. reads the course's requirements (and its ``colab`` extra: gdown) from ``pyproject.toml``;
2. keeps every requirement an installed distribution already satisfies, exactly as it is; an installed
   distribution too old (or too new) for the course is an error that names it and changes nothing;
3. installs the missing requirements with pip under a constraints file that pins every installed
   distribution to its installed version, so that pip fails loudly instead of replacing one to make room
   (``--no-deps`` is not enough there: a missing package's own dependencies must come along);
4. installs the course itself editable with ``--no-deps`` (step 2 and 3 met its requirements), without
   build isolation when the build requirements are installed (Colab has setuptools);
5. compares every installed distribution's version before and after: anything changed or removed is an
   error; what was added is reported.

Run again (a restarted runtime, a second lesson in the same runtime) it finds everything in place and
changes nothing. Exit status: 0 when the course is installed and nothing else changed, 1 otherwise.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

try:  # packaging is everywhere pip is: Colab has it, and pip carries its own copy
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version
except ImportError:  # pragma: no cover - an environment with pip but without packaging
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[no-redef]
    from pip._vendor.packaging.utils import canonicalize_name  # type: ignore[no-redef]
    from pip._vendor.packaging.version import InvalidVersion, Version  # type: ignore[no-redef]

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = None  # type: ignore[assignment]

__all__ = ["PROJECT", "installed_versions", "course_requirements", "plan", "constraints_text", "install", "main"]

#: This project's distribution name (never pinned: it is what gets installed).
PROJECT = "mdn-course"

# Run in a fresh interpreter so that nothing this process imported or cached colours the answer.
_SNAPSHOT = ("import importlib.metadata as m, json, re\n"
             "seen = {}\n"
             "for d in m.distributions():\n"
             "    name = d.metadata['Name']\n"
             "    if name:\n"
             "        seen.setdefault(re.sub(r'[-_.]+', '-', name).lower(), d.version)\n"
             "print(json.dumps(seen))\n")


def installed_versions(python: str = sys.executable, env: Optional[Dict[str, str]] = None,
                       cwd: Optional[str] = None) -> Dict[str, str]:
    """Every distribution ``python`` sees, by canonical name, the first on its ``sys.path`` winning.

    ``python -c`` puts its working directory first on ``sys.path``, so a ``*.egg-info`` there counts too:
    ``cwd`` says where to look from (default: this process's working directory).
    """
    out = subprocess.run([str(python), "-c", _SNAPSHOT], capture_output=True, text=True, check=True, env=env,
                         cwd=cwd)
    return json.loads(out.stdout)


def _pyproject(course: Path) -> dict:
    if tomllib is None:
        raise SystemExit("error: the course's installer needs Python 3.11 or later (tomllib)")
    with open(course / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def course_requirements(course: Path) -> List[Requirement]:
    """The course's run-time requirements and its ``colab`` extra that apply to this interpreter."""
    project = _pyproject(course)["project"]
    lines = project["dependencies"] + project.get("optional-dependencies", {}).get("colab", [])
    reqs = [Requirement(line) for line in lines]
    return [r for r in reqs if r.marker is None or r.marker.evaluate()]


def _satisfies(req: Requirement, version: str) -> bool:
    try:
        return req.specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


def plan(requirements: Sequence[Requirement], installed: Dict[str, str]) -> Tuple[List[str], List[str]]:
    """(requirements to install because nothing provides them, problems with installed distributions).

    A problem is an installed distribution whose version the course cannot use: the installer never
    replaces it, so it is reported instead.
    """
    missing, problems = [], []
    for req in requirements:
        have = installed.get(canonicalize_name(req.name))
        if have is None:
            missing.append(str(req))
        elif not _satisfies(req, have):
            problems.append(f"{req.name} {have} is installed, the course needs {req.name}{req.specifier}")
    return missing, problems


def constraints_text(installed: Dict[str, str]) -> str:
    """A pip constraints file pinning every installed distribution (but this project) to its version."""
    lines = []
    for name, version in sorted(installed.items()):
        if name == PROJECT:
            continue
        try:
            Version(version)
        except InvalidVersion:  # pip cannot parse it either; such a distribution is left to pip's judgement
            continue
        lines.append(f"{name}=={version}")
    return "\n".join(lines) + "\n"


def _editable_from(course: Path) -> bool:
    """True when this project is already installed editable from ``course``."""
    import importlib.metadata as metadata

    try:
        text = metadata.distribution(PROJECT).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return False
    try:
        info = json.loads(text or "{}")
    except json.JSONDecodeError:
        return False
    return bool(info.get("dir_info", {}).get("editable")) and info.get("url") == course.resolve().as_uri()


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", *args], check=True)


def install(course: Path, out=None) -> int:
    """Install ``course`` (a checkout) as described in the module docstring; return the exit status."""
    out = out or sys.stdout
    course = Path(course).resolve()
    before = installed_versions()
    missing, problems = plan(course_requirements(course), before)
    if problems:
        print("error: this runtime's own packages do not fit the course, and the installer never replaces "
              "them:\n  " + "\n  ".join(problems) + "\nNothing was changed. In Colab, choose Runtime > Change "
              "runtime type and a newer runtime version; elsewhere, install the course with pip yourself.",
              file=sys.stderr)
        return 1
    try:
        if missing:
            print("adding what this runtime lacks: " + ", ".join(missing), file=out, flush=True)
            with tempfile.NamedTemporaryFile("w", suffix="-installed.txt", prefix="mdn-course-", delete=False) as f:
                f.write(constraints_text(before))
            try:
                _pip("-c", f.name, *missing)
            finally:
                os.unlink(f.name)
        if not _editable_from(course):
            build = [Requirement(r) for r in _pyproject(course).get("build-system", {}).get("requires", [])]
            lacking, unfit = plan(build, installed_versions())
            # the build tools are here (Colab has setuptools): use them rather than download them again
            isolation = [] if lacking or unfit else ["--no-build-isolation"]
            _pip("--no-deps", *isolation, "-e", str(course))
    except subprocess.CalledProcessError as exc:
        print(f"error: pip stopped ({exc}); it was told never to replace an installed package, so the message "
              "above names the one it would have had to change. Nothing of this runtime's own was replaced.",
              file=sys.stderr)
        return 1
    return report(before, installed_versions(), out)


def report(before: Dict[str, str], after: Dict[str, str], out=None) -> int:
    """Say what was added; return 1 (naming them) if any distribution present before changed or went."""
    out = out or sys.stdout
    changed = [f"{n} {before[n]} -> {after[n]}" for n in sorted(before) if n in after and after[n] != before[n]
               and n != PROJECT]
    removed = [f"{n} {before[n]}" for n in sorted(before) if n not in after]
    if changed or removed:
        print("error: the install changed this runtime's own packages: " + "; ".join(changed + removed),
              file=sys.stderr)
        return 1
    added = [f"{n} {after[n]}" for n in sorted(after) if n not in before]
    print(f"course installed; added {', '.join(added) if added else 'nothing'}; "
          f"the {len(before) - (PROJECT in before)} packages already here are unchanged", file=out)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python mdn_course/colab_install.py COURSE_CHECKOUT", file=sys.stderr)
        return 2
    return install(Path(args[0]))


if __name__ == "__main__":
    sys.exit(main())
