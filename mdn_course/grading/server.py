"""The sandboxed side of grading: run the student's answer and answer the grader's requests.

This file is copied alone (with ``oracle.py``) into the sandbox and run as
``python -I -S -B server.py SITE_DIR...``; it imports nothing of ``mdn_course``. It decides
nothing: it calls the student's ``mdn_loss`` on the inputs it is sent and reports the facts
(:func:`oracle.evaluate`), one JSON line per request, on a private copy of the original stdout.

Before the answer runs, fd 0, 1 and 2 are pointed at ``/dev/null``: whatever the answer prints
cannot reach the channel by accident. (It can still write to the channel's descriptor on
purpose; that only changes the answers the grader sees, which the answer can do anyway by
returning them, and the grader judges answers, not claims.)

Protocol, one JSON object per line. First line from the grader: ``{"probe": true}`` (reply
``{"probe": "ok"}`` once torch imports) or ``{"source": TEXT}``: the answer's source, run in a
namespace holding what the exercise notebook defines before its answer cell; the reply is
``{"ready": true}`` or ``{"ready": false, "kind": "syntax" | "raised" | "undefined" |
"not_callable", "error": TEXT}``. Then every line is an oracle request and gets an answer.
"""
import json
import os
import sys


def _setup_namespace():
    """What the exercise notebook defines before its answer cell (keep in step with the notebook)."""
    import math

    import torch

    def gaussian_log_density(x, mu, sigma):
        return -0.5 * ((x - mu) / sigma) ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)

    return {"__name__": "__main__", "__builtins__": __builtins__, "math": math, "torch": torch,
            "device": torch.device("cpu"), "gaussian_log_density": gaussian_log_density}


def _send(fd: int, obj) -> None:
    data = (json.dumps(obj) + "\n").encode("utf-8") if not isinstance(obj, bytes) else obj
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

    import oracle

    torch.set_num_threads(1)
    first = reader.readline(oracle.MAX_LINE_BYTES)
    try:
        hello = json.loads(first.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return 3
    if hello.get("probe"):
        _send(chan_out, {"probe": "ok"})
        return 0
    source = hello.get("source")
    if not isinstance(source, str):
        return 3
    namespace = _setup_namespace()
    try:
        code = compile(source, "<answer cell>", "exec")
    except (SyntaxError, ValueError) as exc:
        _send(chan_out, {"ready": False, "kind": "syntax", "error": oracle._short(f"{type(exc).__name__}: {exc}")})
        return 0
    try:
        exec(code, namespace)
    except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt are the answer's too
        _send(chan_out, {"ready": False, "kind": "raised", "error": oracle._short(f"{type(exc).__name__}: {exc}")})
        return 0
    loss_fn = namespace.get("mdn_loss")
    if loss_fn is None:
        _send(chan_out, {"ready": False, "kind": "undefined", "error": "the answer cell does not define mdn_loss"})
        return 0
    if not callable(loss_fn):
        _send(chan_out, {"ready": False, "kind": "not_callable",
                         "error": f"mdn_loss is a {type(loss_fn).__name__}, not a function"})
        return 0
    _send(chan_out, {"ready": True})
    while True:
        line = reader.readline(oracle.MAX_LINE_BYTES)
        if not line:
            return 0
        request = oracle.decode_request(line)
        try:
            answer = oracle.evaluate(loss_fn, request)
        except BaseException as exc:  # noqa: BLE001 - SystemExit raised by the answer is a fact too
            answer = oracle.Answer("raised", error=oracle._short(f"{type(exc).__name__}: {exc}"))
        _send(chan_out, oracle.encode_answer(answer))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
