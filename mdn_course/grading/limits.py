"""Resource limits for one submission: aggregate where the kernel allows it, per process always.

* **cgroup** (when ``/sys/fs/cgroup`` is writable here: v2 with the memory and pids controllers,
  or v1 ``memory`` and ``pids`` hierarchies): one group per submission holds *all* its
  processes; ``memory`` caps their memory together (tmpfs pages they write included),
  ``pids`` caps how many exist at once. :meth:`Cgroup.destroy` kills whatever is left and
  removes the group.
* **rlimits**, set in the child before it drops privileges: ``RLIMIT_AS`` per process,
  ``RLIMIT_NPROC`` (tasks of one uid; a root grader's sandboxes share uid 65534, so it is
  ``pids * jobs`` for the batch; a non-root grader's own tasks count too, so it is what that
  user runs when grading starts, plus 16 for the grader's workers, plus ``pids * jobs``), ``RLIMIT_CPU`` (seconds of CPU per process),
  ``RLIMIT_FSIZE``, ``RLIMIT_NOFILE``, ``RLIMIT_CORE`` = 0. Without a cgroup the aggregate
  memory bound is ``RLIMIT_AS x RLIMIT_NPROC``.
* disk: the sandbox has no writable disk at all, only one tmpfs of ``scratch_bytes``.
"""
from __future__ import annotations

import os
import resource
import signal
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import List, Optional

CGROUP_ROOT = "/sys/fs/cgroup"


@dataclass
class Limits:
    memory_bytes: int = 2 * 1024 ** 3       # all processes of a submission together (cgroup)
    address_space_bytes: int = 6 * 1024 ** 3  # per process (torch reserves far more than it touches)
    pids: int = 32
    jobs: int = 1
    cpu_seconds: int = 300
    scratch_bytes: int = 64 * 1024 ** 2
    open_files: int = 256
    user_tasks: int = 0                       # tasks the (non-root) grader's uid ran when grading started

    def apply_rlimits(self, root: bool) -> None:
        """Set this process's rlimits (called in the child between fork and exec)."""
        pairs = [(resource.RLIMIT_AS, self.address_space_bytes), (resource.RLIMIT_CPU, self.cpu_seconds),
                 (resource.RLIMIT_FSIZE, self.scratch_bytes), (resource.RLIMIT_NOFILE, self.open_files),
                 (resource.RLIMIT_CORE, 0)]
        pairs.append((resource.RLIMIT_NPROC, self.pids * max(1, self.jobs) + (0 if root else self.user_tasks + 16)))
        for which, value in pairs:
            resource.setrlimit(which, (value, value))


def tasks_of_user(uid: int) -> int:
    """How many tasks (threads included, as RLIMIT_NPROC counts them) ``uid`` runs now."""
    count = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                count += int(fields["Threads"])
        except (OSError, KeyError, ValueError):
            continue
    return count


def _writable_dir(path: str) -> bool:
    return os.path.isdir(path) and os.access(path, os.W_OK)


@lru_cache(maxsize=1)
def cgroup_layout() -> Optional[str]:
    """'v2', 'v1' or None: which cgroup interface this grader can create groups in."""
    controllers = os.path.join(CGROUP_ROOT, "cgroup.controllers")
    if os.path.exists(controllers):
        try:
            have = open(controllers).read().split()
            enabled = open(os.path.join(CGROUP_ROOT, "cgroup.subtree_control")).read().split()
        except OSError:
            return None
        if {"memory", "pids"} <= set(have) and {"memory", "pids"} <= set(enabled) and _writable_dir(CGROUP_ROOT):
            return "v2"
        return None
    if all(_writable_dir(os.path.join(CGROUP_ROOT, c)) for c in ("memory", "pids")):
        return "v1"
    return None


def cgroups_available() -> bool:
    return cgroup_layout() is not None


def describe(limit: Limits) -> str:
    """One line for the instructor: which mechanism bounds a submission here."""
    layout = cgroup_layout()
    mib = 1024 ** 2
    if layout:
        return (f"cgroup {layout}: {limit.memory_bytes // mib} MiB memory and {limit.pids} processes per submission "
                f"(all its processes together); {limit.scratch_bytes // mib} MiB tmpfs; "
                f"{limit.cpu_seconds} s CPU per process")
    return (f"rlimits only (no writable cgroup here): {limit.address_space_bytes // mib} MiB address space per "
            f"process x {limit.pids * limit.jobs} more processes of the sandbox uid; {limit.scratch_bytes // mib} MiB tmpfs; "
            f"{limit.cpu_seconds} s CPU per process")


@dataclass
class Cgroup:
    """One submission's cgroup (one folder per controller on v1)."""
    dirs: List[str]
    layout: str

    @classmethod
    def create(cls, limit: Limits) -> "Cgroup":
        name = f"mdn-grade-{uuid.uuid4().hex[:12]}"
        layout = cgroup_layout()
        if layout == "v2":
            d = os.path.join(CGROUP_ROOT, name)
            os.mkdir(d)
            group = cls([d], layout)
            group._write(d, "memory.max", limit.memory_bytes)
            group._write(d, "memory.swap.max", 0, optional=True)
            group._write(d, "pids.max", limit.pids)
            return group
        mem, pids = (os.path.join(CGROUP_ROOT, c, name) for c in ("memory", "pids"))
        os.mkdir(mem)
        group = cls([mem], "v1")
        os.mkdir(pids)
        group.dirs.append(pids)
        group._write(mem, "memory.limit_in_bytes", limit.memory_bytes)
        group._write(mem, "memory.memsw.limit_in_bytes", limit.memory_bytes, optional=True)
        group._write(pids, "pids.max", limit.pids)
        return group

    @staticmethod
    def _write(d: str, name: str, value, optional: bool = False) -> None:
        try:
            with open(os.path.join(d, name), "w") as f:
                f.write(str(value))
        except OSError:
            if not optional:
                raise

    def join_self(self) -> None:
        """Move the calling process into the group (in the child, before exec)."""
        pid = str(os.getpid()).encode()
        for d in self.dirs:
            fd = os.open(os.path.join(d, "cgroup.procs"), os.O_WRONLY)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)

    def pids(self) -> List[int]:
        out: List[int] = []
        for d in self.dirs:
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    out += [int(x) for x in f.read().split()]
            except OSError:
                pass
        return sorted(set(out))

    def memory_events(self) -> str:
        """'oom' when the kernel had to kill or refuse for memory in this group, else ''."""
        d = self.dirs[0]
        try:
            if self.layout == "v2":
                text = open(os.path.join(d, "memory.events")).read()
                return "oom" if any(l.split()[0] in ("oom", "oom_kill") and l.split()[1] != "0"
                                    for l in text.splitlines() if l.strip()) else ""
            return "oom" if open(os.path.join(d, "memory.failcnt")).read().strip() not in ("", "0") else ""
        except (OSError, IndexError):
            return ""

    def destroy(self) -> None:
        """Kill every process still in the group, then remove it."""
        if self.layout == "v2":
            self._write(self.dirs[0], "cgroup.kill", 1, optional=True)
        for _ in range(100):
            left = self.pids()
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.02)
        for d in self.dirs:
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
