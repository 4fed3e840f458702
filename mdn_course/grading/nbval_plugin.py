"""pytest plugin used by the grader next to nbval: one JSON line per notebook cell, written to an inherited fd.

Loaded with ``-p mdn_course.grading.nbval_plugin --grade-results-fd N``. For
every nbval cell item it writes ``{"cell": n, "phase", "outcome", "wasxfail",
"error": str(exception), "ename", "evalue", "stdout"}`` as soon as the cell
finishes, so the results of the cells that ran survive a wall-clock kill. The
descriptor is inherited from the grader; Jupyter starts the kernel with
``close_fds=True``, so the submitted code never holds it.

It also makes nbval's wait for a cell's reply notice a dead kernel (``os._exit``,
SIGKILL, a segfault) within half a second, raising "Kernel died while executing
the cell (exit code N)", instead of waiting out the whole cell timeout.
"""
from __future__ import annotations

import json
import os
import re

import pytest

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CELL = re.compile(r"::Cell (\d+)$")


def pytest_addoption(parser):
    parser.addoption("--grade-results-fd", type=int, default=None,
                     help="file descriptor to write one JSON line per notebook cell to")


def _write(config, record) -> None:
    fd = config.getoption("--grade-results-fd")
    if fd is None:
        return
    data = (json.dumps(record) + "\n").encode("utf-8")
    while data:
        written = os.write(fd, data)
        data = data[written:]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    extra = {"ename": None, "evalue": None, "stdout": "", "error": None}
    for out in getattr(item, "test_outputs", None) or []:
        kind = out.get("output_type")
        if kind == "error":
            extra["ename"], extra["evalue"] = out.get("ename"), _ANSI.sub("", str(out.get("evalue", "")))
        elif kind == "stream" and out.get("name") == "stdout":
            extra["stdout"] += out.get("text", "")
    if call.excinfo is not None:
        exc = call.excinfo.value
        extra["error"] = _ANSI.sub("", str(exc.args[0] if getattr(exc, "args", None) else exc))[:2000]
    report._grade_extra = extra


def pytest_runtest_logreport(report):
    match = _CELL.search(report.nodeid)
    if match is None:
        return
    if report.when != "call" and report.outcome == "passed":
        return
    extra = getattr(report, "_grade_extra", {})
    record = {
        "cell": int(match.group(1)),
        "phase": report.when,
        "outcome": report.outcome,
        "wasxfail": hasattr(report, "wasxfail"),
        "stdout": extra.get("stdout", "")[-4000:],
        "ename": extra.get("ename"),
        "evalue": (extra.get("evalue") or "")[-4000:],
        "error": extra.get("error"),
    }
    _write(_CONFIG[0], record)


_CONFIG = []


class KernelDied(RuntimeError):
    pass


def _exit_code(kernel):
    process = getattr(getattr(getattr(kernel, "km", None), "provisioner", None), "process", None)
    try:
        return process.poll() if process is not None else None
    except Exception:  # noqa: BLE001
        return None


def _patch_nbval() -> None:
    """Make nbval notice a dead kernel within half a second instead of waiting out the cell timeout."""
    import time
    from queue import Empty

    from nbval.kernel import RunningKernel

    if getattr(RunningKernel.await_reply, "_mdn_grader", False):
        return

    def await_reply(self, msg_id, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
            if left <= 0:
                raise Empty()
            try:
                msg = self.get_message(stream="shell", timeout=left)
            except Empty:
                if not self.is_alive():
                    raise KernelDied(f"Kernel died while executing the cell (exit code {_exit_code(self)})")
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                if msg["content"]["status"] == "aborted":
                    raise RuntimeError("Kernel aborted execution request")
                return

    await_reply._mdn_grader = True
    RunningKernel.await_reply = await_reply


def pytest_configure(config):
    _CONFIG.append(config)
    _patch_nbval()
