"""The student's answer as an *oracle*, and the one protocol between it and the judges.

This file and ``server.py`` beside it are the only code of the course that runs next to student
code, and they import only the standard library and torch (``tests/test_oracle.py`` proves it):

* in the notebook, :mod:`mdn_course.exercise.notebook` calls :func:`evaluate` in-process, on
  copies of the judge's inputs;
* in the instructor's grader, these two files alone are copied into the sandbox, where
  ``server.py`` runs the answer cell and evaluates the student's function on the inputs the
  trusted grader sends. The grader judges the facts outside the sandbox, so nothing that
  decides a grade runs, or is reachable, where student code runs.

An :class:`Answer` says what one call did: what it returned (type, shape, dtype, whether it
carries a gradient, its value as a float64), the gradients with respect to the inputs the
:class:`Request` named, which inputs the call changed in place, and the exception if it raised
one. The inputs are cloned before the call and compared afterwards, so an in-place change
(``mu -= z``) is reported instead of corrupting whatever the judge computes from them.

Everything the grader and the server say to each other is defined here, once, as one JSON
object per line (tensors as ``{"dtype", "shape", "data": base64 of little-endian bytes}``;
decoding is defensive: every message is capped at :data:`MAX_LINE_BYTES`, dtypes are
whitelisted, nothing is unpickled):

1. the grader's first line is :data:`PROBE_LINE` (the server replies :data:`PROBE_OK_LINE`
   once torch imports, and exits) or a :class:`Hello`: the answer's source, the function it
   must define and that function's argument names;
2. the server runs the source in :func:`answer_namespace` (what the exercise notebook defines
   before its answer cell) and replies ready, or with a :class:`StartFailure`;
3. then every line from the grader is a :class:`Request` and gets one :class:`Answer`.

What is specific to one exercise is its :class:`OracleSpec` in :data:`SPECS`, by the function
its students write: the tensors a request holds, the names its notebook defines before the
answer cell (a test pins them to the notebook's setup cell), how one request is answered (a
*caller*: :func:`evaluate` calls a loss on the inputs; ``step_oracle.py`` hands a training step a
real model and optimiser) and which other files of this folder the sandbox needs.
"""
from __future__ import annotations

import base64
import importlib
import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch

MAX_LINE_BYTES = 32 * 1024 * 1024        # one message, either way: the one size cap of the protocol
MAX_TENSOR_ELEMENTS = 4 * 1024 * 1024
MAX_ARGS = 16                            # inputs of one request
MAX_TEXT = 2000                          # characters of an error message or type name kept
_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

PROBE_LINE = b'{"probe": true}\n'        # the grader: can a sandboxed interpreter import torch here?
PROBE_OK_LINE = b'{"probe": "ok"}\n'     # the server's reply, once torch imported


class ProtocolError(ValueError):
    """A message on the wire is malformed, too large or of an unknown kind."""


# ---------------------------------------------------------------- one call and its facts

Option = Union[bool, int, float, str]


@dataclass
class Request:
    """Call the answer on ``args`` (in their order); return gradients for the inputs named in ``grad_of``.

    ``options`` are plain numbers, flags and short words the exercise's caller reads (the training
    step's model size, optimiser and learning rate); the loss exercise sends none.
    """
    args: Dict[str, torch.Tensor]
    grad_of: Tuple[str, ...] = ()
    options: Dict[str, Option] = field(default_factory=dict)


@dataclass
class Answer:
    """What one call of the student's function did (facts only; the judge decides what they mean).

    ``kind`` is ``"tensor"`` (returned a torch.Tensor), ``"other"`` (returned something else,
    named in ``type_name``), ``"raised"`` (``error`` holds ``"Name: message"``) or
    ``"not_implemented"`` (raised NotImplementedError: the untouched stub). ``value`` is also set
    when the answer returned a Python number. ``tensors`` holds facts of a caller beyond one call's
    result (the training step's parameters after the step, and their gradients).
    """
    kind: str
    type_name: str = ""
    shape: Optional[List[int]] = None
    dtype: Optional[str] = None
    requires_grad: bool = False
    value: Optional[float] = None        # float64 of the result: a 1-element float tensor, or a number
    grads: Dict[str, Optional[torch.Tensor]] = field(default_factory=dict)
    grad_error: Optional[str] = None     # backward() raised
    mutated: List[str] = field(default_factory=list)
    error: Optional[str] = None
    seconds: float = 0.0
    tensors: Dict[str, Optional[torch.Tensor]] = field(default_factory=dict)   # further facts, by name


def shorten(text: str) -> str:
    """``text`` cut to MAX_TEXT characters: what any error or type name of the answer is kept as."""
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def _same(before: torch.Tensor, after: torch.Tensor) -> bool:
    if before.shape != after.shape or before.dtype != after.dtype:
        return False
    return bool(torch.equal(torch.nan_to_num(before), torch.nan_to_num(after))) and \
        bool(torch.equal(torch.isnan(before), torch.isnan(after)))


def evaluate(answer_fn: Callable, request: Request) -> Answer:
    """Call ``answer_fn`` on fresh copies of the request's inputs and describe what happened.

    The caller's tensors are never handed to ``answer_fn``: it gets leaf copies (with
    ``requires_grad`` on those in ``grad_of``), and a pristine second copy tells which
    of them it changed in place.
    """
    names = list(request.args)
    given = {n: request.args[n].detach().clone().requires_grad_(n in request.grad_of) for n in names}
    pristine = {n: request.args[n].detach().clone() for n in names}
    start = time.perf_counter()
    try:
        result = answer_fn(*(given[n] for n in names))
    except NotImplementedError as exc:
        return Answer("not_implemented", error=shorten(f"NotImplementedError: {exc}"),
                      seconds=time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - whatever the answer raises is a fact to report
        return Answer("raised", error=shorten(f"{type(exc).__name__}: {exc}"), seconds=time.perf_counter() - start,
                      mutated=[n for n in names if not _same(pristine[n], given[n].detach())])
    seconds = time.perf_counter() - start
    mutated = [n for n in names if not _same(pristine[n], given[n].detach())]
    if type(result) is not torch.Tensor:  # a subclass could lie about its value or equality
        return Answer("other", type_name=shorten(type(result).__name__), mutated=mutated, seconds=seconds)
    answer = Answer("tensor", type_name="Tensor", shape=list(result.shape), dtype=str(result.dtype).replace("torch.", ""),
                    requires_grad=bool(result.requires_grad), mutated=mutated, seconds=seconds)
    if result.numel() == 1 and result.is_floating_point():
        answer.value = float(result.detach().double().cpu().reshape(()).item())
    if request.grad_of and answer.requires_grad and result.numel() == 1:
        try:
            grads = torch.autograd.grad(result.reshape(()), [given[n] for n in request.grad_of], allow_unused=True)
            answer.grads = {n: (None if g is None else g.detach().cpu()) for n, g in zip(request.grad_of, grads)}
        except Exception as exc:  # noqa: BLE001
            answer.grad_error = shorten(f"{type(exc).__name__}: {exc}")
    return answer


# ---------------------------------------------------------------- what differs between exercises

Caller = Callable[[Callable, Request], Answer]


def _sibling(name: str):
    """The module ``name`` of this folder: ``mdn_course.sandboxed.<name>`` in the library, plain ``<name>``
    in the sandbox, where these files lie alone in one folder (so nothing here imports the package)."""
    return importlib.import_module(f"{__package__}.{name}" if __package__ else name)


def gaussian_log_density(x, mu, sigma):
    return -0.5 * ((x - mu) / sigma) ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)


def _before_mdn_loss_answer(device: torch.device) -> Dict[str, object]:
    """What ``03_exercise_mdn_loss.ipynb`` defines before its answer cell: its setup cell's ``math``,
    ``torch`` and ``device``, and section 1's ``gaussian_log_density`` (the notebook's own lines)."""
    return {"math": math, "torch": torch, "device": device, "gaussian_log_density": gaussian_log_density}


def _before_training_step_answer(device: torch.device) -> Dict[str, object]:
    """What ``04b_exercise_training_step.ipynb`` defines before its answer cell: its setup cell's ``math``,
    ``torch``, ``device`` and, from the library, ``MDNRNN`` and ``mdn_loss`` (here the one definition
    they share with the library, ``mdn_rnn.py``)."""
    mdn_rnn = _sibling("mdn_rnn")
    return {"math": math, "torch": torch, "device": device, "MDNRNN": mdn_rnn.MDNRNN, "mdn_loss": mdn_rnn.mdn_loss}


def _plain_call(device: torch.device) -> Caller:
    return evaluate


def _training_step_caller(device: torch.device) -> Caller:
    return _sibling("step_oracle").TrainingStepCaller(device)


@dataclass(frozen=True)
class OracleSpec:
    """How the oracle of one exercise works: the tensors each request holds (``inputs``, in order), the
    names the answer sees (``namespace``), a fresh caller for one oracle (``caller``: it may keep
    state between requests, as the training step's model does), and the further files of this folder
    the sandbox needs (``files``; ``oracle.py`` and ``server.py`` always)."""
    inputs: Tuple[str, ...]
    namespace: Callable[[torch.device], Dict[str, object]]
    caller: Callable[[torch.device], Caller]
    files: Tuple[str, ...] = ()


#: By the function an exercise's students write.
SPECS: Dict[str, OracleSpec] = {
    "mdn_loss": OracleSpec(("pi", "mu", "sigma", "z_next"), _before_mdn_loss_answer, _plain_call),
    "training_step": OracleSpec(("params", "z", "a"), _before_training_step_answer, _training_step_caller,
                                files=("mdn_rnn.py", "step_oracle.py")),
}
BASE_FILES = ("oracle.py", "server.py")


def spec(function: str) -> OracleSpec:
    """The :class:`OracleSpec` of the exercise whose students write ``function``; KeyError naming the known ones."""
    if function not in SPECS:
        raise KeyError(f"no exercise asks for a function {function!r}; known: {', '.join(SPECS)}")
    return SPECS[function]


def answer_namespace(function: str, device: Optional[torch.device] = None) -> Dict[str, object]:
    """A fresh namespace holding what the exercise notebook defines before the answer cell of ``function``.

    The grader's sandbox runs the answer in it (``device`` is the CPU there); lesson 4 does too,
    with the lesson's device. ``tests/test_oracle.py`` pins it to the notebook's cells.
    """
    return dict(spec(function).namespace(device if device is not None else torch.device("cpu")))


def make_caller(function: str, device: Optional[torch.device] = None) -> Caller:
    """A fresh caller answering requests for ``function`` on ``device`` (default: the CPU)."""
    return spec(function).caller(device if device is not None else torch.device("cpu"))


def sandbox_files(function: str) -> Tuple[str, ...]:
    """The files of this folder the sandbox of ``function``'s exercise needs: no more (a loss answer never
    sees the model and loss of ``mdn_rnn.py``)."""
    return BASE_FILES + spec(function).files


# ---------------------------------------------------------------- the handshake

@dataclass(frozen=True)
class Hello:
    """The grader's first line: run ``source``, which must define ``function(*args)``."""
    source: str
    function: str
    args: Tuple[str, ...]


@dataclass(frozen=True)
class StartFailure:
    """Why the answer cell could not be started: ``kind`` is ``"syntax"``, ``"raised"``, ``"undefined"`` or
    ``"not_callable"`` (the server's reply) or ``"timeout"`` (the grader's, when no reply came in time)."""
    kind: str
    error: str


def _line(obj: dict) -> bytes:
    return (json.dumps(obj) + "\n").encode("utf-8")


def _loads(line: bytes | str) -> dict:
    if isinstance(line, str):
        line = line.encode("utf-8")
    if len(line) > MAX_LINE_BYTES:
        raise ProtocolError(f"a message of {len(line)} bytes is over the limit of {MAX_LINE_BYTES}")
    try:
        obj = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"not a JSON message: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("a message must be a JSON object")
    return obj


def _names(value, what: str) -> Tuple[str, ...]:
    if (not isinstance(value, list) or len(value) > MAX_ARGS
            or not all(isinstance(n, str) and _NAME.match(n) for n in value)):
        raise ProtocolError(f"{what} must be a list of at most {MAX_ARGS} Python names")
    return tuple(value)


def encode_hello(hello: Hello) -> bytes:
    return _line({"source": hello.source, "function": hello.function, "args": list(hello.args)})


def is_probe(line: bytes) -> bool:
    """Whether the grader's first line is the probe (any JSON object with a true ``probe``)."""
    try:
        return bool(_loads(line).get("probe"))
    except ProtocolError:
        return False


def decode_hello(line: bytes | str) -> Hello:
    obj = _loads(line)
    source, function = obj.get("source"), obj.get("function")
    if not isinstance(source, str) or not isinstance(function, str) or not _NAME.match(function):
        raise ProtocolError("a hello must hold the answer's source and the name of its function")
    return Hello(source, function, _names(obj.get("args"), "args"))


def encode_start_reply(failure: Optional[StartFailure]) -> bytes:
    """The server's reply to the hello: ready (``failure`` None), or why not."""
    if failure is None:
        return _line({"ready": True})
    return _line({"ready": False, "kind": failure.kind, "error": shorten(failure.error)})


def decode_start_reply(line: bytes | str) -> Optional[StartFailure]:
    """None when the answer is ready; else its :class:`StartFailure`. Raises ProtocolError for anything else."""
    obj = _loads(line)
    if not isinstance(obj.get("ready"), bool):
        raise ProtocolError("not the server's reply to the hello")
    if obj["ready"]:
        return None
    kind = obj.get("kind") if isinstance(obj.get("kind"), str) else "raised"
    error = obj.get("error") if isinstance(obj.get("error"), str) else "failed"
    return StartFailure(kind[:40], shorten(error))


# ---------------------------------------------------------------- requests and answers

def _encode_tensor(t: torch.Tensor) -> dict:
    t = t.detach().cpu().contiguous()
    name = str(t.dtype).replace("torch.", "")
    if name not in _DTYPES:
        t, name = t.double(), "float64"
    return {"dtype": name, "shape": list(t.shape), "data": base64.b64encode(t.numpy().tobytes()).decode("ascii")}


def _decode_tensor(obj) -> torch.Tensor:
    if not isinstance(obj, dict) or obj.get("dtype") not in _DTYPES:
        raise ProtocolError("a tensor must be {dtype: float32|float64, shape, data}")
    shape = obj.get("shape")
    if not isinstance(shape, list) or len(shape) > 8 or not all(isinstance(s, int) and 0 <= s for s in shape):
        raise ProtocolError("a tensor's shape must be a list of at most 8 non-negative ints")
    count = math.prod(shape)
    if count > MAX_TENSOR_ELEMENTS:
        raise ProtocolError(f"a tensor of {count} elements is over the limit of {MAX_TENSOR_ELEMENTS}")
    data = obj.get("data")
    if not isinstance(data, str):
        raise ProtocolError("a tensor's data must be a base64 string")
    dtype = _DTYPES[obj["dtype"]]
    raw = base64.b64decode(data.encode("ascii"), validate=True)
    if len(raw) != count * torch.empty((), dtype=dtype).element_size():
        raise ProtocolError("a tensor's data does not match its shape and dtype")
    return torch.frombuffer(bytearray(raw), dtype=dtype).reshape(shape).clone() if count else torch.empty(shape, dtype=dtype)


def encode_request(request: Request) -> bytes:
    return _line({"args": {n: _encode_tensor(t) for n, t in request.args.items()}, "grad_of": list(request.grad_of),
                  "options": dict(request.options)})


MAX_OPTION_TEXT = 40   # characters of a word among a request's options


def _options(obj) -> Dict[str, Option]:
    """A request's options: at most MAX_ARGS names, each a bool, an int, a finite float or a short word."""
    if not isinstance(obj, dict) or len(obj) > MAX_ARGS or not all(isinstance(k, str) and _NAME.match(k) for k in obj):
        raise ProtocolError(f"options must map at most {MAX_ARGS} Python names to values")
    for key, value in obj.items():
        if isinstance(value, bool) or (isinstance(value, int) and abs(value) < 2 ** 53):
            continue
        if isinstance(value, float) and math.isfinite(value):
            continue
        if isinstance(value, str) and len(value) <= MAX_OPTION_TEXT:
            continue
        raise ProtocolError(f"option {key!r} must be a flag, a number or a word of at most {MAX_OPTION_TEXT} characters")
    return dict(obj)


def decode_request(line: bytes | str, names: Sequence[str]) -> Request:
    """Parse a request whose tensors are exactly ``names`` (kept in that order)."""
    obj = _loads(line)
    args = obj.get("args")
    grad_of = obj.get("grad_of", [])
    names = tuple(names)
    if not isinstance(args, dict) or set(args) != set(names):
        raise ProtocolError(f"a request's args must be exactly {names}")
    if not isinstance(grad_of, list) or not set(grad_of) <= set(names):
        raise ProtocolError(f"grad_of must list names among {names}")
    return Request({n: _decode_tensor(args[n]) for n in names}, tuple(grad_of), _options(obj.get("options", {})))


def encode_answer(answer: Answer) -> bytes:
    obj = {"kind": answer.kind, "type_name": answer.type_name, "shape": answer.shape, "dtype": answer.dtype,
           "requires_grad": answer.requires_grad, "value": answer.value,
           "grads": {n: (None if g is None else _encode_tensor(g)) for n, g in answer.grads.items()},
           "grad_error": answer.grad_error, "mutated": answer.mutated, "error": answer.error,
           "seconds": answer.seconds,
           "tensors": {n: (None if t is None else _encode_tensor(t)) for n, t in answer.tensors.items()}}
    if obj["value"] is not None and not math.isfinite(obj["value"]):
        obj["value"] = repr(obj["value"])  # JSON has no inf/nan: 'inf', '-inf', 'nan'
    return _line(obj)


def _opt_str(obj, key) -> Optional[str]:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProtocolError(f"{key} must be a string or null")
    return shorten(value)


def decode_answer(line: bytes | str, names: Sequence[str]) -> Answer:
    """Parse an answer from the sandbox to a request on the inputs ``names``, trusting nothing:
    every field is type-checked and bounded."""
    obj = _loads(line)
    kind = obj.get("kind")
    if kind not in ("tensor", "other", "raised", "not_implemented"):
        raise ProtocolError(f"unknown answer kind {kind!r}")
    shape = obj.get("shape")
    if shape is not None and (not isinstance(shape, list) or len(shape) > 16
                              or not all(isinstance(s, int) and s >= 0 for s in shape)):
        raise ProtocolError("shape must be a list of non-negative ints or null")
    value = obj.get("value")
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        value = float(value)
    elif value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                or (isinstance(value, int) and abs(value) >= 2 ** 1000)):
        raise ProtocolError("value must be a number or null")
    grads_obj = obj.get("grads") or {}
    if not isinstance(grads_obj, dict) or not set(grads_obj) <= set(names):
        raise ProtocolError("grads must map input names to tensors")
    mutated = obj.get("mutated") or []
    if not isinstance(mutated, list) or not set(mutated) <= set(names):
        raise ProtocolError("mutated must list input names")
    seconds = obj.get("seconds", 0.0)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not abs(seconds) < 1e12:
        raise ProtocolError("seconds must be a finite number")
    tensors = obj.get("tensors") or {}
    if not isinstance(tensors, dict) or len(tensors) > MAX_ARGS or not all(isinstance(k, str) and _NAME.match(k)
                                                                          for k in tensors):
        raise ProtocolError(f"tensors must map at most {MAX_ARGS} Python names to tensors")
    return Answer(kind=kind, type_name=_opt_str(obj, "type_name") or "", shape=shape,
                  dtype=_opt_str(obj, "dtype"), requires_grad=obj.get("requires_grad") is True,
                  value=None if value is None else float(value),
                  grads={n: (None if g is None else _decode_tensor(g)) for n, g in grads_obj.items()},
                  grad_error=_opt_str(obj, "grad_error"), mutated=list(mutated), error=_opt_str(obj, "error"),
                  seconds=float(seconds),
                  tensors={n: (None if t is None else _decode_tensor(t)) for n, t in tensors.items()})
