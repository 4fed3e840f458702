"""The oracle reports what a call of the student's function did, its protocol trusts nothing, and the
names an answer cell sees before it runs are the exercise notebook's own."""
import ast
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mdn_course.exercise import MDN_LOSS
from mdn_course.sandboxed import oracle
from mdn_course.sandboxed.oracle import (Answer, Hello, ProtocolError, Request, StartFailure, answer_namespace,
                                         decode_answer, decode_hello, decode_request, decode_start_reply,
                                         encode_answer, encode_hello, encode_request, encode_start_reply, evaluate,
                                         is_probe)

ARGS = MDN_LOSS.args
ROOT = Path(__file__).resolve().parent.parent
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
    back = decode_request(encode_request(req), ARGS)
    assert back.grad_of == ("pi",) and all(torch.equal(back.args[n], req.args[n]) for n in req.args)
    answer = evaluate(correct, request(("mu",)))
    again = decode_answer(encode_answer(answer), ARGS)
    assert again.value == answer.value and torch.equal(again.grads["mu"], answer.grads["mu"])
    for value in (math.inf, -math.inf):
        assert decode_answer(encode_answer(Answer("tensor", value=value)), ARGS).value == value
    assert math.isnan(decode_answer(encode_answer(Answer("tensor", value=math.nan)), ARGS).value)


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
        decode_answer(line, ARGS)


def test_requests_must_name_exactly_the_inputs_of_the_function():
    with pytest.raises(ProtocolError, match="exactly"):
        decode_request(json.dumps({"args": {}, "grad_of": []}), ARGS)
    line = json.loads(encode_request(request()))
    line["grad_of"] = ["__class__"]
    with pytest.raises(ProtocolError, match="grad_of"):
        decode_request(json.dumps(line), ARGS)
    assert list(decode_request(encode_request(request()), ARGS).args) == list(ARGS)   # in the function's order


def test_the_handshake_round_trips_and_refuses_what_is_not_one():
    hello = Hello("def mdn_loss(pi, mu, sigma, z_next):\n    return pi.sum()\n", "mdn_loss", ARGS)
    assert decode_hello(encode_hello(hello)) == hello and not is_probe(encode_hello(hello))
    assert is_probe(oracle.PROBE_LINE) and not is_probe(b"garbage")
    for bad in (b'{"source": 1, "function": "mdn_loss", "args": []}', b'{"source": "", "function": "os.system", "args": []}',
                b'{"source": "", "function": "f", "args": ["a b"]}', b"[]"):
        with pytest.raises(ProtocolError):
            decode_hello(bad)
    assert decode_start_reply(encode_start_reply(None)) is None
    failure = StartFailure("syntax", "SyntaxError: x" * 1000)
    back = decode_start_reply(encode_start_reply(failure))
    assert back.kind == "syntax" and back.error == oracle.shorten(failure.error)
    assert decode_start_reply(b'{"ready": false, "kind": 3}') == StartFailure("raised", "failed")
    for bad in (b'{"kind": "tensor"}', b'{"ready": "yes"}', b"not json"):
        with pytest.raises(ProtocolError):
            decode_start_reply(bad)


def test_one_size_cap_for_every_message():
    from mdn_course.grading import channel

    assert channel.MAX_LINE_BYTES is oracle.MAX_LINE_BYTES
    with pytest.raises(ProtocolError, match="over the limit"):
        decode_answer(b" " * (oracle.MAX_LINE_BYTES + 1), ARGS)


def _names_bound_before_the_answer(nb: dict):
    """Modules imported (but not the course's) and functions defined by the code cells above the answer cell
    (the Colab install cell aside: it does nothing outside Colab), and whether the setup cell binds
    ``device = get_device()``; ``def`` nodes by name."""
    modules, functions, device = set(), {}, False
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        if "answer" in cell["metadata"].get("tags", []):
            return modules, functions, device
        source = "".join(cell["source"])
        if 'if "google.colab" in sys.modules' in source:
            continue
        tree = ast.parse("\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))))
        for node in tree.body:
            if isinstance(node, ast.Import):
                modules |= {a.asname or a.name for a in node.names if not a.name.startswith("mdn_course")}
            elif isinstance(node, ast.FunctionDef):
                functions[node.name] = node
            elif isinstance(node, ast.Assign) and ast.unparse(node) == "device = get_device()":
                device = True
    raise AssertionError("the exercise notebook has no answer cell")


@pytest.mark.parametrize("notebook", ["03_exercise_mdn_loss.ipynb", "03_exercise_mdn_loss_student.ipynb"])
def test_the_answer_sees_exactly_what_the_notebook_defines_before_its_answer_cell(notebook):
    """The sandbox and lesson 4 run the answer in answer_namespace(); it must hold the notebook's own names:
    its setup cell's modules and device, and the functions it defines above the answer (their very code)."""
    nb = json.loads((ROOT / "notebooks" / notebook).read_text(encoding="utf-8"))
    modules, functions, device = _names_bound_before_the_answer(nb)
    namespace = answer_namespace(MDN_LOSS.function)
    assert device and isinstance(namespace["device"], torch.device)
    assert set(namespace) == modules | set(functions) | {"device"}
    assert all(namespace[m] is sys.modules[m] for m in modules)
    ours = {node.name: node for node in ast.parse(Path(oracle.__file__).read_text()).body
            if isinstance(node, ast.FunctionDef)}
    for name, node in functions.items():
        assert ast.dump(ours[name]) == ast.dump(node), f"{name} differs from the notebook's"
    x, mu, sigma = torch.tensor(0.3), torch.tensor(0.1), torch.tensor(0.7)
    assert float(namespace["gaussian_log_density"](x, mu, sigma)) == pytest.approx(
        float(torch.distributions.Normal(mu, sigma).log_prob(x)), abs=1e-6)


SANDBOXED = sorted(p.name for p in Path(oracle.__file__).parent.glob("*.py") if p.name != "__init__.py")


def test_the_sandboxed_folder_holds_what_the_sandboxes_are_given():
    """Every file a sandbox may be given is in the folder, and every file of the folder is given to some sandbox."""
    given = {name for function in oracle.SPECS for name in oracle.sandbox_files(function)}
    assert given == set(SANDBOXED)
    assert oracle.sandbox_files("mdn_loss") == ("oracle.py", "server.py")   # a loss answer never sees the model


@pytest.mark.parametrize("name", SANDBOXED)
def test_the_sandboxed_files_import_only_stdlib_and_torch(name):
    """They are copied into the grader's sandbox, so they import nothing of the package but each other
    (through oracle._sibling, which finds the file beside them there and the package's module here)."""
    path = Path(oracle.__file__).with_name(name)
    source = path.read_text()
    module = path.stem
    code = ("import importlib, sys\n"
            f"sys.path.insert(0, {str(path.parent)!r})\n"
            f"m = importlib.import_module({module!r})\n"
            "assert not any(k.startswith('mdn_course') for k in sys.modules), 'imported mdn_course'\n")
    if module == "oracle":
        code += "for f in m.SPECS:\n    m.answer_namespace(f); m.make_caller(f)\n"
        code += "assert not any(k.startswith('mdn_course') for k in sys.modules), 'imported mdn_course'\n"
    subprocess.run([sys.executable, "-I", "-c", code], check=True, cwd="/")
    assert "from ." not in source and "import mdn_course" not in source
    imported = {a.name.split(".")[0] for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Import)
                for a in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(ast.parse(source))
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= set(sys.stdlib_module_names) | {"torch", "oracle", "__future__"}, imported


def test_the_library_model_and_loss_are_the_sandboxed_definitions():
    """One definition serves both: the library's MDNRNN and losses are the objects defined in sandboxed/mdn_rnn.py,
    and that file, loaded alone as the sandbox loads it, builds the very same model and loss."""
    import importlib.util

    import mdn_course
    from mdn_course import loss, model
    from mdn_course.sandboxed import mdn_rnn

    for name in ("MDNRNN", "MDNHead", "WorldLSTM", "MixtureOutput"):
        assert getattr(mdn_course, name) is getattr(model, name) is getattr(mdn_rnn, name)
    for name in ("mdn_loss", "mdn_nll_from_logs"):
        assert getattr(mdn_course, name) is getattr(loss, name) is getattr(mdn_rnn, name)
    spec = importlib.util.spec_from_file_location("alone_mdn_rnn", Path(mdn_rnn.__file__))
    alone = importlib.util.module_from_spec(spec)
    sys.modules["alone_mdn_rnn"] = alone    # a dataclass looks its module up while it is defined
    try:
        spec.loader.exec_module(alone)
    finally:
        del sys.modules["alone_mdn_rnn"]
    torch.manual_seed(0)
    ours = mdn_course.MDNRNN(hidden_dim=8, n_components=2)
    theirs = alone.MDNRNN(hidden_dim=8, n_components=2)
    theirs.load_state_dict(ours.state_dict())
    z, a = torch.randn(3, 4, 2), torch.randn(3, 4, 2)
    mine, other = ours(z[:, :-1], a[:, :-1]), theirs(z[:, :-1], a[:, :-1])
    assert all(torch.equal(x, y) for x, y in zip((mine.pi, mine.mu, mine.sigma), (other.pi, other.mu, other.sigma)))
    assert torch.equal(mdn_course.mdn_loss(mine.pi, mine.mu, mine.sigma, z[:, 1:]),
                       alone.mdn_loss(other.pi, other.mu, other.sigma, z[:, 1:]))
