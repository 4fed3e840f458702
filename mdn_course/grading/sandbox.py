"""Run one grading command in a throw-away sandbox with a memory cap and a wall-clock limit.

Sandbox (bubblewrap, when it works here): the whole file system read-only
(``--ro-bind / /``), a private empty ``/tmp`` (``--tmpfs /tmp``), the scratch
directory bound read-write on top (the only writable place), fresh ``/dev`` and
``/proc``, no network (``--unshare-net``: loopback only, nothing listening),
private pid namespace (``--unshare-pid``: killing bwrap kills everything inside),
``--die-with-parent``, ``--new-session``, and a user namespace mapping the
process to ``nobody`` with every capability dropped (``--unshare-user --uid
65534 --gid 65534 --cap-drop ALL``). The last one matters when the grader runs
as root: a root process keeps CAP_SYS_ADMIN inside a plain bwrap sandbox and can
simply ``mount -o remount,rw /``.

Limits: ``RLIMIT_AS`` (address space, default 4 GiB, inherited by pytest and
the kernel; torch + a kernel need about 1.5 GiB of address space) and
``RLIMIT_FSIZE`` (no file over 256 MiB), set by a tiny Python trampoline
inside the sandbox so no ``preexec_fn`` runs in the grader's threads. The wall
clock limit kills the sandbox's process group (and, unsandboxed, every
descendant found in ``/proc``, since Jupyter starts kernels in a new session).

``probe()`` runs a trivial command once with the full flag set (a non-root
grader may also use bwrap without the user namespace); if bwrap is missing or
cannot create the namespaces, the caller says so once on stderr and
``run()`` goes unsandboxed (limits and timeout still apply).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

DEFAULT_MEMORY_BYTES = 4 * 1024 ** 3
FILE_SIZE_LIMIT = 256 * 1024 ** 2

_TRAMPOLINE = (
    "import os, resource, sys\n"
    "mem, fsize = int(sys.argv[1]), int(sys.argv[2])\n"
    "if mem > 0: resource.setrlimit(resource.RLIMIT_AS, (mem, mem))\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)


@dataclass
class RunResult:
    returncode: Optional[int]
    timed_out: bool
    output: str  # stdout and stderr together, last 20,000 characters
    wall_s: float


_MODE = {"userns": True}


def _bwrap_flags(scratch: str, userns: Optional[bool] = None) -> List[str]:
    userns = _MODE["userns"] if userns is None else userns
    flags = [
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--tmpfs", "/tmp",
        *_rebind_under_tmp(),
        "--bind", scratch, scratch,
        "--chdir", scratch,
        "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
        "--die-with-parent", "--new-session",
    ]
    if userns:
        flags += ["--unshare-user", "--uid", "65534", "--gid", "65534", "--cap-drop", "ALL"]
    return flags


def _rebind_under_tmp() -> List[str]:
    """Read-only binds for the interpreter and the package when they live under /tmp.

    The private ``--tmpfs /tmp`` would otherwise hide them: a virtual environment or a
    CI checkout under /tmp made every kernel fail to start inside the sandbox.
    """
    import mdn_course

    needed = {sys.prefix, sys.exec_prefix, sys.base_prefix, str(Path(mdn_course.__file__).resolve().parent.parent)}
    needed.update(p for p in sys.path if p and os.path.isdir(p))
    kept: List[str] = []
    for path in sorted({os.path.realpath(p) for p in needed}):  # sorted: a parent comes before its children
        if path.startswith("/tmp/") and not any(path.startswith(parent + "/") for parent in kept):
            kept.append(path)
    return [flag for path in kept for flag in ("--ro-bind", path, path)]


@lru_cache(maxsize=1)
def probe() -> Tuple[bool, str]:
    """(True, "") when bwrap runs a trivial command with every flag we use; else (False, why)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False, "bubblewrap (bwrap) is not installed (apt-get install -y bubblewrap)"
    import tempfile

    why = "?"
    # Without a user namespace (a setuid bwrap where unprivileged ones are off) only a non-root
    # grader is safe: root would keep CAP_SYS_ADMIN inside and could remount / read-write.
    for userns in ((True, False) if os.geteuid() != 0 else (True,)):
        with tempfile.TemporaryDirectory(prefix="mdn-grade-probe-") as d:
            try:
                proc = subprocess.run([bwrap, *_bwrap_flags(d, userns), "--", "/bin/sh", "-c", "touch ok"],
                                      capture_output=True, text=True, timeout=30)
            except (OSError, subprocess.TimeoutExpired) as exc:
                return False, f"bwrap could not start: {exc}"
            if proc.returncode == 0 and os.path.exists(os.path.join(d, "ok")):
                _MODE["userns"] = userns
                return True, ""
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            why = lines[-1] if lines else f"exit {proc.returncode}"
    return False, f"bwrap cannot create its namespaces here ({why})"


def scratch_env(scratch: Path, pythonpath: str) -> Dict[str, str]:
    """A minimal environment (nothing inherited from the grader) with every writable dir in scratch."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "PYTHONPATH": pythonpath,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "MDN_COURSE_GRADING": "1",
    }
    dirs = {
        "HOME": "home", "TMPDIR": "tmp", "JUPYTER_RUNTIME_DIR": "jupyter/runtime",
        "JUPYTER_DATA_DIR": "jupyter/data", "JUPYTER_CONFIG_DIR": "jupyter/config",
        "IPYTHONDIR": "ipython", "MPLCONFIGDIR": "mpl", "XDG_CACHE_HOME": "xdg/cache",
        "XDG_CONFIG_HOME": "xdg/config", "XDG_DATA_HOME": "xdg/data", "XDG_RUNTIME_DIR": "xdg/runtime",
    }
    for var, rel in dirs.items():
        path = scratch / rel
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o700)
        env[var] = str(path)
    return env


def _descendants(pid: int) -> List[int]:
    children: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _kill_tree(proc: subprocess.Popen) -> None:
    victims = _descendants(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def run(argv: Sequence[str], *, scratch: Path, env: Dict[str, str], timeout: float,
        memory_bytes: int = DEFAULT_MEMORY_BYTES, sandbox: bool = True,
        pass_fds: Sequence[int] = ()) -> RunResult:
    """Run ``argv`` (a Python command line) in ``scratch`` under the limits; never raises on its outcome."""
    inner = [sys.executable, "-c", _TRAMPOLINE, str(int(memory_bytes)), str(FILE_SIZE_LIMIT), *argv]
    if sandbox:
        cmd = [shutil.which("bwrap") or "bwrap", *_bwrap_flags(str(scratch)), "--", *inner]
    else:
        cmd = inner
    log = scratch / "grader-run.log"
    start = time.monotonic()
    timed_out = False
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=scratch, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, pass_fds=tuple(pass_fds))
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            # Kill whatever is left either way: a kernel in its own session, a daemon the answer forked.
            _kill_tree(proc)
            proc.wait()
    wall = time.monotonic() - start
    try:
        text = log.read_bytes()[-20000:].decode("utf-8", "replace")
    except OSError:
        text = ""
    return RunResult(None if timed_out else proc.returncode, timed_out, text, wall)
