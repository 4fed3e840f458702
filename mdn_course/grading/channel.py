"""The grader's end of the pipe to the sandboxed server: a remote oracle with deadlines and size caps.

:class:`RemoteOracle` is what a check's judge is driven with: called with a
:class:`~mdn_course.sandboxed.oracle.Request`, it returns the decoded
:class:`~mdn_course.sandboxed.oracle.Answer`, or raises :class:`OracleGone` when the
student's process ran out of time, died, or wrote something that is not an answer. It
speaks :mod:`mdn_course.sandboxed.oracle`'s protocol, reads with ``select`` and non-blocking
``os.read`` against a deadline, keeps at most the protocol's ``MAX_LINE_BYTES`` of a line,
and never unpickles anything. After it raised, it stays down (``failure`` says why) until
:meth:`RemoteOracle.start` is called again.
"""
from __future__ import annotations

import os
import select
import time
from dataclasses import dataclass
from typing import Optional, Sequence

from ..sandboxed import oracle
from . import limits as limits_mod
from . import sandbox

MAX_LINE_BYTES = oracle.MAX_LINE_BYTES


class OracleGone(Exception):
    """The student's side can no longer answer (``kind``: timeout, died, protocol)."""

    def __init__(self, kind: str, text: str):
        super().__init__(text)
        self.kind = kind


@dataclass
class Failure:
    kind: str          # "timeout" | "died" | "protocol"
    text: str
    check: Optional[str] = None


class RemoteOracle:
    """One submission's sandboxed answer, called like a local function of a Request.

    ``source`` must define ``function(*args)`` (the exercise's function and argument names).
    """

    def __init__(self, source: str, *, function: str, args: Sequence[str], use_sandbox: bool,
                 limit: limits_mod.Limits, request_timeout: float, deadline: float):
        self.hello = oracle.Hello(source, function, tuple(args))
        self.use_sandbox = use_sandbox
        self.limit = limit
        self.request_timeout = request_timeout
        self.deadline = deadline            # time.monotonic() after which nothing more is asked
        self.started: Optional[sandbox.Started] = None
        self.failure: Optional[Failure] = None
        self.kinds: dict = {}               # answer kind -> count, e.g. {"not_implemented": 7}
        self.calls = 0
        self._buf = b""

    # ------------------------------------------------------------ lifecycle

    def start(self, startup_timeout: float) -> Optional[oracle.StartFailure]:
        """Start the server and send the answer; None once it is ready, else why not; or raise OracleGone."""
        self.failure = None
        self._buf = b""
        self.started = sandbox.start(sandbox=self.use_sandbox, limit=self.limit,
                                     files=oracle.sandbox_files(self.hello.function))
        self._write(oracle.encode_hello(self.hello), startup_timeout)
        line = self._read_line(startup_timeout, what="running the answer cell")
        try:
            failure = oracle.decode_start_reply(line)
        except oracle.ProtocolError:
            self._fail("protocol", "the answer's process wrote something that is not the server's reply")
        if failure is not None:
            self.close()
        return failure

    def close(self) -> None:
        """End the server: a healthy one is asked to exit (EOF on its input) first, then everything is killed."""
        if self.started is not None:
            if self.failure is None:
                try:
                    self.started.proc.stdin.close()
                    self.started.proc.wait(timeout=1)
                except Exception:  # noqa: BLE001 - it will be killed below either way
                    pass
            self.started.kill()
            self.started = None

    def oom_hint(self) -> str:
        return self.started.cgroup.memory_events() if self.started and self.started.cgroup else ""

    # ------------------------------------------------------------ the oracle call

    def __call__(self, request: oracle.Request) -> oracle.Answer:
        if self.failure is not None or self.started is None:
            raise OracleGone(self.failure.kind if self.failure else "died",
                             self.failure.text if self.failure else "the answer's process is not running")
        self.calls += 1
        timeout = self.request_timeout
        self._write(oracle.encode_request(request), timeout)
        line = self._read_line(timeout, what=f"a call of {self.hello.function}")
        try:
            answer = oracle.decode_answer(line, tuple(request.args))
        except (oracle.ProtocolError, ValueError, TypeError) as exc:
            self._fail("protocol", f"the answer's process wrote something that is not an answer ({exc})")
        self.kinds[answer.kind] = self.kinds.get(answer.kind, 0) + 1
        return answer

    # ------------------------------------------------------------ plumbing

    def _remaining(self, timeout: float) -> float:
        return min(timeout, self.deadline - time.monotonic())

    def _fail(self, kind: str, text: str):
        hint = self.oom_hint()
        if kind == "died" and hint:
            text += " (it hit the memory limit)"
        self.failure = Failure(kind, text)
        self.close()
        raise OracleGone(kind, text)

    def _timeout_text(self, what: str, timeout: float) -> str:
        if self.deadline - time.monotonic() <= 0:
            return f"the submission's time ran out during {what}"
        return f"{what} took longer than {timeout:g} s"

    def _exit_text(self) -> str:
        proc = self.started.proc if self.started else None
        code = None
        if proc is not None:
            try:
                code = proc.wait(timeout=2)
            except Exception:  # noqa: BLE001
                code = None
        return f"the answer's process ended (exit status {code})" if code is not None else "the answer's process ended"

    def _write(self, data: bytes, timeout: float) -> None:
        fd = self.started.proc.stdin.fileno()
        os.set_blocking(fd, False)
        end = time.monotonic() + max(0.0, self._remaining(timeout))
        while data:
            left = end - time.monotonic()
            if left <= 0:
                self._fail("timeout", self._timeout_text("sending inputs", timeout))
            _, writable, _ = select.select([], [fd], [], left)
            if not writable:
                continue
            try:
                data = data[os.write(fd, data):]
            except BlockingIOError:
                continue
            except (BrokenPipeError, OSError):
                self._fail("died", self._exit_text())

    def _read_line(self, timeout: float, what: str) -> bytes:
        fd = self.started.proc.stdout.fileno()
        os.set_blocking(fd, False)
        end = time.monotonic() + max(0.0, self._remaining(timeout))
        while b"\n" not in self._buf:
            if len(self._buf) > MAX_LINE_BYTES:
                self._fail("protocol", f"the answer's process sent more than {MAX_LINE_BYTES} bytes without a newline")
            left = end - time.monotonic()
            if left <= 0:
                self._fail("timeout", self._timeout_text(what, timeout))
            readable, _, _ = select.select([fd], [], [], left)
            if not readable:
                continue
            try:
                chunk = os.read(fd, 1 << 20)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self._fail("died", self._exit_text() + f" during {what}")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line
