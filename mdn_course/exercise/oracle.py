"""The student's ``mdn_loss`` as an *oracle*: call it on given inputs and report plain facts, never a verdict.

Why a separate, standalone module: the same few lines serve two places.

* In the notebook, :mod:`mdn_course.exercise.checks` calls :func:`evaluate` in-process.
* In the instructor's grader, this file alone (it imports only the standard library
  and torch, never the rest of ``mdn_course``) is copied into the sandbox, where it
  evaluates the student's function on inputs the trusted grader sends and returns the
  facts over a pipe. The grader judges them outside the sandbox, so nothing that
  decides a grade runs, or is reachable, where student code runs.

An :class:`Answer` says what the call did: what it returned (type, shape, dtype,
whether it carries a gradient, its value as a float64), the gradients with respect
to the inputs the request asked for, which inputs the call changed in place, and
the exception if it raised one. The inputs are cloned before the call and compared
afterwards, so an in-place change (``mu -= z``) is reported instead of corrupting
whatever the judge computes from them.

The wire format (:func:`encode_request` ... :func:`decode_answer`) is one JSON object
per line; tensors travel as ``{"dtype", "shape", "data": base64 of little-endian
bytes}``. Decoding is defensive: sizes are capped, dtypes are whitelisted, nothing is
unpickled.
"""
from __future__ import annotations

import base64
import json
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import torch

ARG_NAMES: Tuple[str, ...] = ("pi", "mu", "sigma", "z_next")
MAX_LINE_BYTES = 64 * 1024 * 1024        # one encoded request or answer
MAX_TENSOR_ELEMENTS = 4 * 1024 * 1024
MAX_TEXT = 2000                          # characters of an error message or type name kept
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class ProtocolError(ValueError):
    """A message on the wire is malformed, too large or of an unknown kind."""


@dataclass
class Request:
    """Call ``mdn_loss(pi, mu, sigma, z_next)`` on ``args``; return gradients for the inputs named in ``grad_of``."""
    args: Dict[str, torch.Tensor]
    grad_of: Tuple[str, ...] = ()


@dataclass
class Answer:
    """What one call of the student's function did (facts only; the judge decides what they mean).

    ``kind`` is ``"tensor"`` (returned a torch.Tensor), ``"other"`` (returned something else,
    named in ``type_name``), ``"raised"`` (``error`` holds ``"Name: message"``) or
    ``"not_implemented"`` (raised NotImplementedError: the untouched stub).
    """
    kind: str
    type_name: str = ""
    shape: Optional[List[int]] = None
    dtype: Optional[str] = None
    requires_grad: bool = False
    value: Optional[float] = None        # float64 of the result when it is a 1-element float tensor
    grads: Dict[str, Optional[torch.Tensor]] = field(default_factory=dict)
    grad_error: Optional[str] = None     # backward() raised
    mutated: List[str] = field(default_factory=list)
    error: Optional[str] = None
    seconds: float = 0.0


def _short(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def _same(before: torch.Tensor, after: torch.Tensor) -> bool:
    if before.shape != after.shape or before.dtype != after.dtype:
        return False
    return bool(torch.equal(torch.nan_to_num(before), torch.nan_to_num(after))) and \
        bool(torch.equal(torch.isnan(before), torch.isnan(after)))


def evaluate(loss_fn: Callable, request: Request) -> Answer:
    """Call ``loss_fn`` on fresh copies of the request's inputs and describe what happened.

    The caller's tensors are never handed to ``loss_fn``: it gets leaf copies (with
    ``requires_grad`` on those in ``grad_of``), and a pristine second copy tells which
    of them it changed in place.
    """
    given = {n: request.args[n].detach().clone().requires_grad_(n in request.grad_of) for n in ARG_NAMES}
    pristine = {n: request.args[n].detach().clone() for n in ARG_NAMES}
    start = time.perf_counter()
    try:
        result = loss_fn(*(given[n] for n in ARG_NAMES))
    except NotImplementedError as exc:
        return Answer("not_implemented", error=_short(f"NotImplementedError: {exc}"),
                      seconds=time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - whatever the answer raises is a fact to report
        return Answer("raised", error=_short(f"{type(exc).__name__}: {exc}"), seconds=time.perf_counter() - start,
                      mutated=[n for n in ARG_NAMES if not _same(pristine[n], given[n].detach())])
    seconds = time.perf_counter() - start
    mutated = [n for n in ARG_NAMES if not _same(pristine[n], given[n].detach())]
    if type(result) is not torch.Tensor:  # a subclass could lie about its value or equality
        return Answer("other", type_name=_short(type(result).__name__), mutated=mutated, seconds=seconds)
    answer = Answer("tensor", type_name="Tensor", shape=list(result.shape), dtype=str(result.dtype).replace("torch.", ""),
                    requires_grad=bool(result.requires_grad), mutated=mutated, seconds=seconds)
    if result.numel() == 1 and result.is_floating_point():
        answer.value = float(result.detach().double().cpu().reshape(()).item())
    if request.grad_of and answer.requires_grad and result.numel() == 1:
        try:
            grads = torch.autograd.grad(result.reshape(()), [given[n] for n in request.grad_of], allow_unused=True)
            answer.grads = {n: (None if g is None else g.detach().cpu()) for n, g in zip(request.grad_of, grads)}
        except Exception as exc:  # noqa: BLE001
            answer.grad_error = _short(f"{type(exc).__name__}: {exc}")
    return answer


# ---------------------------------------------------------------- wire format (JSON lines, no pickle)

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


def encode_request(request: Request) -> bytes:
    obj = {"args": {n: _encode_tensor(request.args[n]) for n in ARG_NAMES}, "grad_of": list(request.grad_of)}
    return (json.dumps(obj) + "\n").encode("utf-8")


def decode_request(line: bytes | str) -> Request:
    obj = _loads(line)
    args = obj.get("args")
    grad_of = obj.get("grad_of", [])
    if not isinstance(args, dict) or set(args) != set(ARG_NAMES):
        raise ProtocolError(f"a request's args must be exactly {ARG_NAMES}")
    if not isinstance(grad_of, list) or not set(grad_of) <= set(ARG_NAMES):
        raise ProtocolError(f"grad_of must list names among {ARG_NAMES}")
    return Request({n: _decode_tensor(args[n]) for n in ARG_NAMES}, tuple(grad_of))


def encode_answer(answer: Answer) -> bytes:
    obj = {"kind": answer.kind, "type_name": answer.type_name, "shape": answer.shape, "dtype": answer.dtype,
           "requires_grad": answer.requires_grad, "value": answer.value,
           "grads": {n: (None if g is None else _encode_tensor(g)) for n, g in answer.grads.items()},
           "grad_error": answer.grad_error, "mutated": answer.mutated, "error": answer.error,
           "seconds": answer.seconds}
    if obj["value"] is not None and not math.isfinite(obj["value"]):
        obj["value"] = repr(obj["value"])  # JSON has no inf/nan: 'inf', '-inf', 'nan'
    return (json.dumps(obj) + "\n").encode("utf-8")


def _opt_str(obj, key) -> Optional[str]:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProtocolError(f"{key} must be a string or null")
    return _short(value)


def decode_answer(line: bytes | str) -> Answer:
    """Parse an answer from the sandbox, trusting nothing: every field is type-checked and bounded."""
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
    elif value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ProtocolError("value must be a number or null")
    grads_obj = obj.get("grads") or {}
    if not isinstance(grads_obj, dict) or not set(grads_obj) <= set(ARG_NAMES):
        raise ProtocolError("grads must map input names to tensors")
    mutated = obj.get("mutated") or []
    if not isinstance(mutated, list) or not set(mutated) <= set(ARG_NAMES):
        raise ProtocolError("mutated must list input names")
    seconds = obj.get("seconds", 0.0)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise ProtocolError("seconds must be a finite number")
    return Answer(kind=kind, type_name=_opt_str(obj, "type_name") or "", shape=shape,
                  dtype=_opt_str(obj, "dtype"), requires_grad=obj.get("requires_grad") is True,
                  value=None if value is None else float(value),
                  grads={n: (None if g is None else _decode_tensor(g)) for n, g in grads_obj.items()},
                  grad_error=_opt_str(obj, "grad_error"), mutated=list(mutated), error=_opt_str(obj, "error"),
                  seconds=float(seconds))
