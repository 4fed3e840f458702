"""The sandboxed side of grading: run the student's answer and answer the grader's requests.

This file is copied (with ``oracle.py``, and the further files of this folder the exercise's
:class:`oracle.OracleSpec` names) into the sandbox and run as
``python -I -S -B server.py SITE_DIR...``; it imports nothing of ``mdn_course``. It decides
nothing: it calls the student's function on the inputs it is sent and reports the facts
(:func:`oracle.evaluate`), one line per request, on a private copy of the original stdout.
The messages are :mod:`oracle`'s (the handshake, then requests and answers).

Before the answer runs, fd 0, 1 and 2 are pointed at ``/dev/null``: whatever the answer prints
cannot reach the channel by accident. (It can still write to the channel's descriptor on
purpose; that only changes the answers the grader sees, which the answer can do anyway by
returning them, and the grader judges answers, not claims.)
"""
import os
import sys


def _send(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def main(argv) -> int:
    sys.path[:0] = [os.path.dirname(os.path.abspath(__file__))]
    sys.path += argv[1:]
    chan_in, chan_out = os.dup(0), os.dup(1)   # private copies, not inherited by children
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    reader = os.fdopen(chan_in, "rb", buffering=1 << 16)

    import torch  # noqa: F401 - imported before the answer, as in the notebook

    import oracle  # this folder's other file, found on sys.path[0] (the sandbox has no mdn_course)

    torch.set_num_threads(1)
    first = reader.readline(oracle.MAX_LINE_BYTES)
    if oracle.is_probe(first):
        _send(chan_out, oracle.PROBE_OK_LINE)
        return 0
    try:
        hello = oracle.decode_hello(first)
    except oracle.ProtocolError:
        return 3
    try:
        namespace = {"__name__": "__main__", "__builtins__": __builtins__, **oracle.answer_namespace(hello.function)}
        call = oracle.make_caller(hello.function)   # the exercise's way of answering a request
        inputs = oracle.spec(hello.function).inputs
    except (KeyError, ImportError):
        return 3

    try:
        code = compile(hello.source, "<answer cell>", "exec")
    except (SyntaxError, ValueError) as exc:
        _send(chan_out, oracle.encode_start_reply(oracle.StartFailure("syntax", f"{type(exc).__name__}: {exc}")))
        return 0
    try:
        exec(code, namespace)
    except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt are the answer's too
        _send(chan_out, oracle.encode_start_reply(oracle.StartFailure("raised", f"{type(exc).__name__}: {exc}")))
        return 0
    answer_fn = namespace.get(hello.function)
    if answer_fn is None:
        _send(chan_out, oracle.encode_start_reply(oracle.StartFailure(
            "undefined", f"the answer cell does not define {hello.function}")))
        return 0
    if not callable(answer_fn):
        _send(chan_out, oracle.encode_start_reply(oracle.StartFailure(
            "not_callable", f"{hello.function} is a {type(answer_fn).__name__}, not a function")))
        return 0
    _send(chan_out, oracle.encode_start_reply(None))
    while True:
        line = reader.readline(oracle.MAX_LINE_BYTES)
        if not line:
            return 0
        request = oracle.decode_request(line, inputs)
        try:
            answer = call(answer_fn, request)
        except oracle.ProtocolError:
            return 3          # a request the caller cannot serve: the grader sees the process end
        except BaseException as exc:  # noqa: BLE001 - SystemExit raised by the answer is a fact too
            answer = oracle.Answer("raised", error=oracle.shorten(f"{type(exc).__name__}: {exc}"))
        _send(chan_out, oracle.encode_answer(answer))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
