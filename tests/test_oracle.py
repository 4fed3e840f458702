"""The oracle reports what a call of the student's function did, and its wire format trusts nothing."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mdn_course.exercise import oracle
from mdn_course.exercise.oracle import (Answer, ProtocolError, Request, decode_answer, decode_request,
                                        encode_answer, encode_request, evaluate)

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def correct(pi, mu, sigma, z):
    log_n = -0.5 * ((z.unsqueeze(-1) - mu) / sigma) ** 2 - torch.log(sigma) - HALF_LOG_2PI
    return -torch.logsumexp(torch.log(pi) + log_n, dim=-1).sum(-1).mean()


def request(grad_of=()):
    g = torch.Generator().manual_seed(0)
    pi = torch.softmax(torch.randn(8, 2, 3, generator=g), -1)
    mu, sigma = torch.randn(8, 2, 3, generator=g), 0.5 + torch.rand(8, 2, 3, generator=g)
    return Request({"pi": pi, "mu": mu, "sigma": sigma, "z_next": torch.randn(8, 2, generator=g)}, tuple(grad_of))


def test_a_correct_call_reports_value_shape_and_gradients():
    req = request(("mu", "sigma"))
    answer = evaluate(correct, req)
    assert answer.kind == "tensor" and answer.shape == [] and answer.dtype == "float32" and answer.requires_grad
    assert answer.value == pytest.approx(float(correct(*req.args.values())), abs=1e-6)
    assert set(answer.grads) == {"mu", "sigma"} and answer.grads["mu"].shape == (8, 2, 3)
    assert answer.mutated == [] and answer.error is None and answer.seconds >= 0


def test_inputs_are_cloned_and_changes_reported():
    req = request()
    before = {n: t.clone() for n, t in req.args.items()}

    def in_place(pi, mu, sigma, z):
        z.unsqueeze_(-1)
        mu -= 1.0
        return (mu - z).sum()
    answer = evaluate(in_place, req)
    assert answer.mutated == ["mu", "z_next"]
    assert all(torch.equal(before[n], req.args[n]) for n in before)   # the caller's tensors are untouched


def test_raised_not_implemented_and_other_results_are_facts():
    def boom(*args):
        raise ValueError("bad shape")

    def stub(*args):
        raise NotImplementedError("write the loss")
    assert evaluate(boom, request()).kind == "raised" and evaluate(boom, request()).error == "ValueError: bad shape"
    assert evaluate(stub, request()).kind == "not_implemented"
    other = evaluate(lambda *a: 3.0, request())
    assert other.kind == "other" and other.type_name == "float"

    class Sneaky(torch.Tensor):
        pass
    assert evaluate(lambda *a: torch.zeros(()).as_subclass(Sneaky), request()).kind == "other"


def test_a_failing_backward_is_reported_not_raised():
    answer = evaluate(lambda pi, mu, sigma, z: (mu * 2).sum().detach().requires_grad_(), request(("mu",)))
    assert answer.kind == "tensor" and answer.grads.get("mu") is None


def test_request_and_answer_round_trip():
    req = request(("pi",))
    back = decode_request(encode_request(req))
    assert back.grad_of == ("pi",) and all(torch.equal(back.args[n], req.args[n]) for n in req.args)
    answer = evaluate(correct, request(("mu",)))
    again = decode_answer(encode_answer(answer))
    assert again.value == answer.value and torch.equal(again.grads["mu"], answer.grads["mu"])
    for value in (math.inf, -math.inf):
        assert decode_answer(encode_answer(Answer("tensor", value=value))).value == value
    assert math.isnan(decode_answer(encode_answer(Answer("tensor", value=math.nan))).value)


@pytest.mark.parametrize("line, words", [
    (b"not json", "not a JSON message"),
    (b"[1, 2]", "must be a JSON object"),
    (json.dumps({"kind": "pickle"}).encode(), "unknown answer kind"),
    (json.dumps({"kind": "tensor", "value": "1e3"}).encode(), "value must be a number"),
    (json.dumps({"kind": "tensor", "mutated": ["os"]}).encode(), "mutated must list input names"),
    (json.dumps({"kind": "tensor", "grads": {"mu": {"dtype": "int64", "shape": [1], "data": ""}}}).encode(),
     "float32|float64"),
    (json.dumps({"kind": "tensor", "grads": {"mu": {"dtype": "float32", "shape": [3], "data": "AAAA"}}}).encode(),
     "does not match its shape"),
    (json.dumps({"kind": "tensor", "grads": {"mu": {"dtype": "float32", "shape": [10 ** 9], "data": ""}}}).encode(),
     "over the limit"),
    (json.dumps({"kind": "tensor", "seconds": True}).encode(), "seconds must be a finite number"),
])
def test_malformed_answers_are_refused(line, words):
    with pytest.raises(ProtocolError, match=words.replace("|", r"\|")):
        decode_answer(line)


def test_requests_must_name_exactly_the_four_inputs():
    with pytest.raises(ProtocolError, match="exactly"):
        decode_request(json.dumps({"args": {}, "grad_of": []}))
    line = json.loads(encode_request(request()))
    line["grad_of"] = ["__class__"]
    with pytest.raises(ProtocolError, match="grad_of"):
        decode_request(json.dumps(line))


def test_oracle_module_imports_only_stdlib_and_torch():
    """It is copied alone into the grader's sandbox, so it must import nothing else from the package."""
    source = Path(oracle.__file__).read_text()
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('oracle_alone', {oracle.__file__!r})\n"
            "m = importlib.util.module_from_spec(spec); sys.modules['oracle_alone'] = m; spec.loader.exec_module(m)\n"
            "assert not any(k.startswith('mdn_course') for k in sys.modules), 'imported mdn_course'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert "from ." not in source and "import mdn_course" not in source
