"""The grader's sandbox under attack, and proof that each attack works where nothing stops it.

* Probes that need this run's paths (make_corpus.sandbox_probes): delete sentinel files outside
  the sandbox, connect to a listener on 127.0.0.1 and to the internet, read a root-only (0600)
  file and connect to a root-owned unix socket, and find the reference loss or a classmate's
  correct notebook on disk. Graded in one CLI call; each escape would cost or win points.
* The same probes and the resource attacks run *unconfined* (a plain interpreter, as this
  user, no limits) to show they escape there; the truth-by-frame attack scores full marks
  through the notebook's in-process checks.
* What the sandbox looks like from inside, and that its user cannot read a root-only file or
  connect to a root-owned socket even when they are bound into it (uid 65534 outside).
"""
from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import torch

from grading_helpers import CORPUS, GRADE_OPTS, ROOT, assert_row, grade, mc, rows_of
from mdn_course.exercise import CHECKS, MDN_LOSS, run_all_checks
from mdn_course.grading import limits, sandbox
from mdn_course.sandboxed import oracle

A = mc.A
IS_ROOT = os.geteuid() == 0
pytestmark = pytest.mark.usefixtures("working_sandbox")


class _Listener:
    """A TCP server on 127.0.0.1 that counts the connections it accepts."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.accepted += 1
                conn.close()
            except OSError:
                continue

    def close(self):
        self._stop.set()
        self._thread.join()
        self.sock.close()


def _root_only(folder: Path):
    """A 0600 file and a 0600 listening unix socket, owned by this (root) user, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o755)
    secret = folder / "secret.txt"
    secret.write_text("the instructor's secret\n")
    os.chmod(secret, 0o600)
    path = folder / "root.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    os.chmod(path, 0o600)
    server.listen(4)
    return secret, path, server


@pytest.fixture(scope="module")
def probes(tmp_path_factory, working_sandbox):
    tmp = tmp_path_factory.mktemp("probes")
    sentinels = [tmp / "sentinel.txt"]
    fd, other = tempfile.mkstemp(prefix="mdn-grade-sentinel-", dir="/var/tmp")
    os.close(fd)
    sentinels.append(Path(other))
    for s in sentinels:
        s.write_text("the grader's sandbox must keep me\n")
    listener = _Listener()
    secret, unix_path, unix_server = _root_only(tmp / "root-only")
    paths = mc.sandbox_probes(tmp / "subs", sentinels=sentinels, port=listener.port, secret=secret,
                              unix_socket=unix_path, steal_from=[str(ROOT), str(CORPUS)])
    out = tmp / "out" / "grades.csv"
    try:
        proc = grade(*paths, "--out", out, *GRADE_OPTS)
    finally:
        listener.close()
    unix_server.settimeout(0.1)
    try:
        unix_server.accept()
        unix_accepted = True
    except OSError:
        unix_accepted = False
    unix_server.close()
    kept = [s.exists() for s in sentinels]
    sentinels[1].unlink(missing_ok=True)
    rows = {Path(r["submission"]).stem: r for r in rows_of(out)} if out.exists() else {}
    return {"proc": proc, "rows": rows, "kept": kept, "accepted": listener.accepted,
            "unix_accepted": unix_accepted, "paths": paths, "tmp": tmp}


@pytest.mark.parametrize("name", list(mc.PROBES_EXPECTED))
def test_probe_row(probes, name):
    assert probes["proc"].returncode == 0, probes["proc"].stderr[-2000:]
    assert_row(probes["rows"][name], mc.PROBES_EXPECTED[name])


def test_nothing_escaped(probes):
    assert all(probes["kept"]), "a submission deleted a file outside the sandbox"
    assert probes["accepted"] == 0, "a submission connected to 127.0.0.1 outside the sandbox"
    assert not probes["unix_accepted"], "a submission connected to the root-owned unix socket"
    assert "the instructor's secret" not in json.dumps(probes["rows"])


# ---------------------------------------------------------------- the probes probe

def _unconfined(source: str, cwd: Path, timeout: float = 120) -> str:
    """Run an answer's source in a plain interpreter as this user (no sandbox, no limits); print _ESCAPED."""
    code = ("import math, sys, torch\nns = {'math': math, 'torch': torch}\n"
            "exec(sys.stdin.read(), ns)\nprint('ESCAPED=' + repr(ns.get('_ESCAPED')))\n")
    home = cwd / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, HOME=str(home), TMPDIR=str(cwd), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", code], input=source, cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.rsplit("ESCAPED=", 1)[1].strip()


def test_the_path_probes_escape_when_unconfined(tmp_path):
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("x")
    listener = _Listener()
    secret, unix_path, unix_server = _root_only(tmp_path / "root-only")
    try:
        assert _unconfined(A.DELETE_PROBE.format(sentinels=[str(sentinel)]), tmp_path) == "True"
        assert not sentinel.exists()
        assert str(listener.port) in _unconfined(A.SOCKET_PROBE.format(port=listener.port), tmp_path)
        stolen = _unconfined(A.ROOT_PROBE.format(secret=str(secret), unix_socket=str(unix_path)), tmp_path)
        assert "the instructor's secret" in stolen and "connected" in stolen
        found = _unconfined(A.STEAL_FILES.format(paths=[str(ROOT), str(CORPUS)]), tmp_path)
        assert found.endswith((".py'", ".ipynb'")), found
    finally:
        listener.close()
        unix_server.close()


@pytest.mark.parametrize("attack, minimum", [("MEMORY_AGGREGATE", "_HELD"), ("PROCESS_COUNT", "_SPAWNED"),
                                             ("DISK_FILL", "_MIB")])
def test_the_resource_attacks_escape_when_unconfined(tmp_path, attack, minimum):
    assert _unconfined(getattr(A, attack), tmp_path) == "True"


def test_truth_by_frame_passes_in_process_but_not_in_the_sandbox():
    """In the old design (checks in the answer's interpreter) the frame walk finds the judge's truth."""
    namespace = {"math": math, "torch": torch}
    exec(A.FRAME_AND_GC, namespace)
    results = run_all_checks(namespace["mdn_loss"])
    assert all(r.passed for r in results.values()) and namespace["_ESCAPED"] is True
    row = mc.EXPECTED["33_truth_by_frame"]
    assert row["points"] < sum(c.points for c in CHECKS.values())


# ---------------------------------------------------------------- what the sandbox is

_LOOK_AROUND = '''import json, os, socket
def _can_write(path):
    try:
        with open(path, "wb") as f:
            f.write(b"x")
        return True
    except OSError:
        return False
def _listdir(path):
    try:
        return sorted(os.listdir(path))
    except OSError as exc:
        return type(exc).__name__
try:
    import mdn_course
    course = True
except ImportError:
    course = False
def _net():
    try:
        socket.create_connection(("1.1.1.1", 53), timeout=2).close()
        return True
    except OSError:
        return False
site = [p for p in __import__("sys").path if p.endswith("site-packages")]
report = {"uid": os.getuid(), "course": course, "root": _listdir("/"), "work": os.path.exists("/work"),
          "home": _listdir("/home"), "root_home": _listdir("/root"), "grader": _listdir("/grader"),
          "site": _listdir(site[0]) if site else [], "tmp": _can_write("/tmp/x"), "usr": _can_write("/usr/x"),
          "dev_shm": _can_write("/dev/shm/x"), "net": _net(), "secret": None, "unix": None}
try:
    report["secret"] = open(SECRET).read()
except OSError as exc:
    report["secret"] = type(exc).__name__
try:
    s = socket.socket(socket.AF_UNIX)
    s.connect(UNIX)
    report["unix"] = "connected"
except OSError as exc:
    report["unix"] = type(exc).__name__
raise RuntimeError("REPORT" + json.dumps(report))
'''


def _look_around(extra_binds, secret, unix_path):
    """Run _LOOK_AROUND as an answer cell in the sandbox; return its report and the outside uid of its server."""
    started = sandbox.start(sandbox=True, limit=limits.Limits(), extra_binds=extra_binds)
    try:
        source = f"SECRET = {str(secret)!r}\nUNIX = {str(unix_path)!r}\n" + _LOOK_AROUND
        started.proc.stdin.write(oracle.encode_hello(oracle.Hello(source, MDN_LOSS.function, MDN_LOSS.args)))
        started.proc.stdin.flush()
        outside_uids = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not outside_uids:
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    if b"/grader/server.py" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        status = Path(f"/proc/{pid}/status").read_text()
                        outside_uids.add(int(status.split("Uid:")[1].split()[0]))
                except (OSError, IndexError):
                    continue
            time.sleep(0.05)
        line = started.proc.stdout.readline()
    finally:
        started.kill()
    reply = oracle.decode_start_reply(line)
    return json.loads(reply.error.split("REPORT", 1)[1]), outside_uids


def test_the_sandbox_sees_python_torch_numpy_and_nothing_of_ours(tmp_path):
    secret, unix_path, server = _root_only(tmp_path / "root-only")
    try:
        seen, _ = _look_around([], secret, unix_path)
    finally:
        server.close()
    assert seen["course"] is False and seen["work"] is False
    assert seen["grader"] == ["oracle.py", "server.py"]
    assert "torch" in seen["site"] and "numpy" in seen["site"]
    assert not [f for f in seen["site"] if f.endswith(".pth") or "mdn" in f.lower()]
    assert seen["home"] == "FileNotFoundError"
    assert seen["root_home"] in ("FileNotFoundError", [".pyenv"])  # only the path down to an interpreter under /root
    assert seen["tmp"] is True and seen["usr"] is False and seen["dev_shm"] is False and seen["net"] is False
    assert seen["secret"] == "FileNotFoundError" and seen["unix"] in ("FileNotFoundError", "ConnectionRefusedError")


@pytest.mark.skipif(not IS_ROOT, reason="the uid drop applies when the grader runs as root")
def test_root_only_files_and_sockets_stay_closed_even_when_bound_in(tmp_path):
    secret, unix_path, server = _root_only(tmp_path / "root-only")
    try:
        seen, outside = _look_around([(str(secret.parent), str(secret.parent))], secret, unix_path)
    finally:
        server.close()
    assert outside == {sandbox.SANDBOX_UID}, "the sandboxed server must run as uid 65534 outside, not root"
    assert seen["secret"] == "PermissionError"
    assert seen["unix"] == "PermissionError"
