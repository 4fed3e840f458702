"""Start the student's side of grading in a bubblewrap sandbox that sees only python, torch and numpy.

What the sandbox sees (everything read-only except one sized tmpfs):

* ``/usr`` and the ``/lib*``, ``/bin`` links as on the host (system libraries, ``ld.so``),
  ``/etc/ld.so.cache``; the interpreter's own prefix (its stdlib) with every
  ``site-packages``/``dist-packages`` folder under it *masked by an empty tmpfs*, and then only
  the package folders of torch, numpy and what they require (from ``importlib.metadata``) put
  back. No ``.pth`` file, no editable install, no ``mdn_course``, no ``/work``, ``/home``, ``/root``
  or ``/var``; nothing of the grader but files of ``mdn_course/sandboxed/``, copied in at
  ``/grader``: ``oracle.py`` and ``server.py``, and the further files the exercise's oracle needs
  (:func:`mdn_course.sandboxed.oracle.sandbox_files`: the training step's model, never for the loss);
* a fresh ``/dev`` and ``/proc``; ``/tmp`` a private tmpfs of ``scratch_bytes`` (the only
  writable place, and the cwd and ``HOME``);
* no network, IPC, UTS, pid or cgroup sharing (``--unshare-all``; a new network namespace also
  hides abstract unix sockets), no capabilities, ``--die-with-parent``, ``--new-session``.

Who runs it: when the grader is root, bubblewrap is started as an unprivileged uid (65534,
``nobody``) with no supplementary groups, so the sandbox's user maps back to 65534, not to root.
bwrap opens bind sources as that user, and an interpreter under ``/root`` is not reachable by
it, so a root grader first binds the sources into a private staging tmpfs, in a mount
namespace of the child only (:func:`_preexec`); the host's mounts are never touched. When the
grader is not root, bwrap runs as the grader's user.

Limits come from :mod:`.limits` (cgroup where writable, rlimits always). ``python -I -S -B``
ignores environment variables, user site and ``.pth`` files inside.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import importlib.metadata as metadata
import os
import re
import shutil
import signal
import site
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from .. import sandboxed
from ..sandboxed.oracle import BASE_FILES, PROBE_LINE, PROBE_OK_LINE
from . import limits as limits_mod

SANDBOX_UID = 65534
#: Where the only files of the course a sandbox sees come from (the trust boundary).
SANDBOXED_DIR = Path(sandboxed.__file__).resolve().parent
INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: sudo apt-get install bubblewrap; Fedora: dnf install "
                "bubblewrap), or pass --no-sandbox to run student code without one, knowingly")


class SandboxUnavailable(RuntimeError):
    """No working sandbox on this machine; the message says why and how to fix it."""


@dataclass
class Plan:
    """What one sandboxed server process needs: the bind list and the command inside."""
    binds: List[Tuple[str, str]]                 # (host source, destination), read-only
    masks: List[str]                             # folders hidden by an empty read-only tmpfs
    python: str
    site_dirs: List[str]
    symlinks: List[Tuple[str, str]] = field(default_factory=list)


def _site_dirs() -> List[str]:
    dirs = set(site.getsitepackages())
    try:
        dirs.add(site.getusersitepackages())
    except Exception:  # noqa: BLE001 - no user site
        pass
    dirs.update(p for p in sys.path if p and re.search(r"(site|dist)-packages", p))
    return sorted(os.path.realpath(d) for d in dirs if os.path.isdir(d))


def _requirement_names(dist: metadata.Distribution) -> List[str]:
    names = []
    for req in dist.requires or []:
        if "extra ==" in req:
            continue
        names.append(re.split(r"[ ;<>=!~\[(]", req, maxsplit=1)[0])
    return names


def package_paths(roots: Sequence[str] = ("torch", "numpy")) -> List[str]:
    """Top-level files and folders (and dist-info) of ``roots`` and everything they require, recursively."""
    seen: Dict[str, metadata.Distribution] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        key = (dist.metadata["Name"] or name).lower().replace("_", "-")
        if key in seen:
            continue
        seen[key] = dist
        todo += _requirement_names(dist)
    paths = set()
    for dist in seen.values():
        base = Path(str(dist.locate_file("")))
        for f in dist.files or []:
            top = f.parts[0]
            if top in ("..", "/", "__pycache__") or top.endswith(".pth") or top.startswith("__editable__"):
                continue
            p = base / top
            if p.exists():
                paths.add(os.path.realpath(p))
    return sorted(paths)


def _mdn_course_root() -> str:
    return os.path.realpath(Path(__file__).resolve().parent.parent.parent)


@lru_cache(maxsize=1)
def plan() -> Plan:
    """The bind list for this interpreter (computed once per grader run)."""
    python = os.path.realpath(sys.executable)
    prefix = os.path.realpath(sys.base_prefix)
    binds: List[Tuple[str, str]] = []
    symlinks: List[Tuple[str, str]] = []
    roots = ["/usr"] + ([prefix] if not prefix.startswith("/usr/") and prefix != "/usr" else [])
    for r in roots:
        binds.append((r, r))
    for top in ("lib", "lib64", "lib32", "libx32", "bin", "sbin"):
        p = f"/{top}"
        if os.path.islink(p):
            symlinks.append((os.readlink(p), p))
        elif os.path.isdir(p):
            binds.append((p, p))
    if os.path.exists("/etc/ld.so.cache"):
        binds.append(("/etc/ld.so.cache", "/etc/ld.so.cache"))
    under_roots = lambda p: any(p == r or p.startswith(r + "/") for r in roots)  # noqa: E731
    sites = _site_dirs()
    masks = [d for d in sites if under_roots(d)]
    course = _mdn_course_root()
    if under_roots(course) and not any(course.startswith(m + "/") for m in masks):
        masks.append(course)
    packages = package_paths()
    for p in packages:
        binds.append((p, p))
    site_dirs = sorted({os.path.dirname(p) for p in packages})
    if not python.startswith(tuple(r + "/" for r in roots)):
        binds.append((python, python))
    return Plan(binds, masks, python, site_dirs, symlinks)


# ---------------------------------------------------------------- privilege drop and staging (root grader)

_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_CLONE_NEWNS = 0x00020000
_MS_BIND, _MS_REC, _MS_PRIVATE, _MS_RDONLY, _MS_REMOUNT = 4096, 16384, 1 << 18, 1, 32


def _mount(src: Optional[str], dst: str, fstype: Optional[str], flags: int, data: Optional[str]) -> None:
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    if _LIBC.mount(enc(src), enc(dst), enc(fstype), ctypes.c_ulong(flags), enc(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {src} on {dst}: {os.strerror(err)}")


def _preexec(stage: Optional[str], binds: List[Tuple[str, str]], limit: limits_mod.Limits,
             cgroup: Optional[limits_mod.Cgroup], uid: Optional[int]):
    """Return the function the child runs between fork and exec of bwrap.

    As root: join the submission's cgroup, set the rlimits, make a private mount namespace
    whose staging tmpfs holds bind mounts of the sources (so the unprivileged bwrap can
    reach an interpreter under /root), then drop to ``uid`` for good.
    """
    def run() -> None:
        if cgroup is not None:
            cgroup.join_self()
        limit.apply_rlimits(root=uid is not None)
        if stage is not None:
            if _LIBC.unshare(_CLONE_NEWNS) != 0:
                raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
            _mount(None, "/", None, _MS_REC | _MS_PRIVATE, None)
            _mount("mdn-stage", stage, "tmpfs", 0, "mode=0755,size=1m")
            for i, (src, _) in enumerate(binds):
                target = os.path.join(stage, str(i))
                if os.path.isdir(src):
                    os.mkdir(target, 0o755)
                else:
                    os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
                _mount(src, target, None, _MS_BIND | _MS_REC, None)
        if uid is not None:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
    return run


def bwrap_argv(p: Plan, stage: Optional[str], scratch_bytes: int, data_fds: Dict[str, int]) -> List[str]:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable(f"bubblewrap (bwrap) is not installed: {INSTALL_HINT}")
    argv = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            # the scratch tmpfs first: a bind below /tmp (a venv, a checkout) must land on top of it
            "--dev", "/dev", "--proc", "/proc", "--size", str(int(scratch_bytes)), "--tmpfs", "/tmp",
            "--dir", "/tmp/home", "--chdir", "/tmp",
            "--remount-ro", "/dev"]   # devices still work; /dev/shm would be a second, unsized tmpfs
    for i, (src, dst) in enumerate(p.binds):
        argv += ["--ro-bind", os.path.join(stage, str(i)) if stage else src, dst]
        for m in p.masks:
            if m.startswith(dst + "/") or m == dst:
                argv += ["--tmpfs", m]
    for target, link in p.symlinks:
        argv += ["--symlink", target, link]
    for m in p.masks:
        argv += ["--remount-ro", m]
    for dest, fd in data_fds.items():
        argv += ["--ro-bind-data", str(fd), dest]
    return argv


def _data_fd(text: bytes) -> int:
    """A read-only fd holding ``text`` (bwrap copies it into the sandbox with --ro-bind-data)."""
    f = tempfile.TemporaryFile()
    f.write(text)
    f.flush()
    f.seek(0)
    fd = os.dup(f.fileno())
    f.close()
    return fd


def start(*, sandbox: bool, limit: limits_mod.Limits, extra_binds: Sequence[Tuple[str, str]] = (),
          files: Sequence[str] = BASE_FILES) -> "Started":
    """Start the oracle server for one submission; the caller talks to it over ``proc.stdin/stdout``.

    ``files`` are the names of the files of ``mdn_course/sandboxed/`` put in ``/grader`` (what the
    exercise's oracle needs: :func:`mdn_course.sandboxed.oracle.sandbox_files`). ``extra_binds``
    (read-only) exist for the tests that show what the sandbox's user can do with a file it *can*
    see; the grader itself never passes any.
    """
    sources = [SANDBOXED_DIR / name for name in files]
    if not set(BASE_FILES) <= set(files) or any(src.parent != SANDBOXED_DIR or not src.is_file() for src in sources):
        raise ValueError(f"the sandbox's files must be files of {SANDBOXED_DIR} including {', '.join(BASE_FILES)}")
    p = plan()
    if extra_binds:
        p = Plan(p.binds + [(os.path.realpath(s), d) for s, d in extra_binds], p.masks, p.python, p.site_dirs,
                 p.symlinks)
    root = os.geteuid() == 0
    # unsandboxed, the interpreter and its packages must be reachable by uid 65534 itself
    uid = SANDBOX_UID if root and (sandbox or unsandboxed_uid_drop_works()) else None
    cgroup = limits_mod.Cgroup.create(limit) if limits_mod.cgroups_available() else None
    fds: List[int] = []
    stage_dir = None
    try:
        if sandbox:
            if root:
                stage_dir = tempfile.mkdtemp(prefix="mdn-grade-stage-")
                os.chmod(stage_dir, 0o711)
            fds = [_data_fd(src.read_bytes()) for src in sources]
            argv = bwrap_argv(p, stage_dir, limit.scratch_bytes,
                              {f"/grader/{src.name}": fd for src, fd in zip(sources, fds)})
            argv += ["--", p.python, "-I", "-S", "-B", "/grader/server.py", *p.site_dirs]
            env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp/home", "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1"}
            cwd = "/"
        else:
            scratch = tempfile.mkdtemp(prefix="mdn-grade-nosandbox-")
            stage_dir = scratch
            grader = os.path.join(scratch, "grader")
            os.mkdir(grader)
            for src in sources:
                shutil.copy(src, os.path.join(grader, src.name))
            os.chmod(scratch, 0o755)
            if uid is not None:
                os.chown(scratch, uid, uid)
            argv = [p.python, "-I", "-S", "-B", os.path.join(grader, "server.py"), *p.site_dirs]
            env = {"PATH": "/usr/bin:/bin", "HOME": scratch, "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1",
                   "TMPDIR": scratch}
            cwd = scratch
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                cwd=cwd, env=env, pass_fds=fds, start_new_session=True,
                                preexec_fn=_preexec(stage_dir if (sandbox and root) else None, p.binds,
                                                    limit, cgroup, uid))
    except BaseException:
        if cgroup is not None:
            cgroup.destroy()
        raise
    finally:
        for fd in fds:
            os.close(fd)
    return Started(proc, cgroup, stage_dir, sandbox)


def _world_reachable(path: str) -> bool:
    """Whether every folder above ``path`` is searchable by others (so another uid can open it)."""
    parts = Path(path).resolve().parents
    return all(os.stat(d).st_mode & 0o001 for d in parts)


@lru_cache(maxsize=1)
def unsandboxed_uid_drop_works() -> bool:
    """Whether --no-sandbox can still run the answer as uid 65534 (its python must be reachable by it)."""
    p = plan()
    return all(_world_reachable(x) for x in [p.python, *p.site_dirs])


@dataclass
class Started:
    proc: subprocess.Popen
    cgroup: Optional[limits_mod.Cgroup]
    temp_dir: Optional[str]
    sandboxed: bool

    def kill(self) -> None:
        """Kill every process of this submission (process group, cgroup) and remove its temp dir."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        if self.cgroup is not None:
            self.cgroup.destroy()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except Exception:  # noqa: BLE001 - a broken pipe on close changes nothing
                pass
        if self.temp_dir:
            # never follow what the submission made: rmtree does not follow symlinks; the staging
            # dir is an empty mount point on the host (the tmpfs lived in the child's namespace)
            shutil.rmtree(self.temp_dir, ignore_errors=True)


@lru_cache(maxsize=1)
def probe() -> Tuple[bool, str]:
    """(True, "") when a sandboxed interpreter can import torch here; else (False, why + how to fix)."""
    if shutil.which("bwrap") is None:
        return False, f"bubblewrap (bwrap) is not installed: {INSTALL_HINT}"
    limit = limits_mod.Limits()
    try:
        s = start(sandbox=True, limit=limit)
    except (OSError, SandboxUnavailable, subprocess.SubprocessError) as exc:
        return False, f"bubblewrap cannot start here ({exc}): {INSTALL_HINT}"
    try:
        out, err = s.proc.communicate(PROBE_LINE, timeout=120)
    except subprocess.TimeoutExpired:
        s.kill()
        return False, f"the sandbox did not answer in 120 s: {INSTALL_HINT}"
    finally:
        s.kill()
    if PROBE_OK_LINE not in out:
        why = err.decode("utf-8", "replace").strip()[-400:] or f"exit status {s.proc.returncode}"
        return False, f"bubblewrap fails here ({why}): {INSTALL_HINT}"
    return True, ""
