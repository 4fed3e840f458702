"""Answer cells of the training-step exercise, for make_corpus.py: a right step, one per usual mistake, a stub,
a crash, a loop, and attacks that only a grader whose judge ran next to the answer would fall for.

The answer runs where ``torch``, ``math``, ``device``, ``MDNRNN`` and ``mdn_loss`` are defined (what the
exercise notebook's setup cell imports); in the grader's sandbox the last two are the standalone
definitions of ``mdn_course/sandboxed/mdn_rnn.py``.
"""
from __future__ import annotations

CORRECT = '''def training_step(model, optimizer, z, a, clip_norm=1.0):
    """One teacher-forced step on whole sequences z (B, T+1, D) and actions a (B, T, A); returns the loss."""
    optimizer.zero_grad()
    out = model(z[:, :-1], a)
    loss = mdn_loss(out.pi, out.mu, out.sigma, z[:, 1:])
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    optimizer.step()
    return loss.item()
'''


def _variant(body: str) -> str:
    return "def training_step(model, optimizer, z, a, clip_norm=1.0):\n" + body


_FORWARD = '''    out = model(z[:, :-1], a)
    loss = mdn_loss(out.pi, out.mu, out.sigma, z[:, 1:])
'''
_CLIP = "    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)\n"

UNSHIFTED = _variant('''    optimizer.zero_grad()
    out = model(z[:, :-1], a)
    loss = mdn_loss(out.pi, out.mu, out.sigma, z[:, :-1])
    loss.backward()
''' + _CLIP + "    optimizer.step()\n    return loss.item()\n")
PREVIOUS_ACTION = _variant('''    optimizer.zero_grad()
    a_before = torch.cat([torch.zeros_like(a[:, :1]), a[:, :-1]], dim=1)   # the action that led to z[t]
    out = model(z[:, :-1], a_before)
    loss = mdn_loss(out.pi, out.mu, out.sigma, z[:, 1:])
    loss.backward()
''' + _CLIP + "    optimizer.step()\n    return loss.item()\n")
CARRIED_STATE = '''_hidden = None

def training_step(model, optimizer, z, a, clip_norm=1.0):
    global _hidden
    optimizer.zero_grad()
    out = model(z[:, :-1], a, _hidden)
    _hidden = tuple(h.detach() for h in out.hidden)
    loss = mdn_loss(out.pi, out.mu, out.sigma, z[:, 1:])
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    optimizer.step()
    return loss.item()
'''
NO_ZERO_GRAD = _variant(_FORWARD + "    loss.backward()\n" + _CLIP + "    optimizer.step()\n    return loss.item()\n")
CLIP_AFTER_STEP = _variant("    optimizer.zero_grad()\n" + _FORWARD + "    loss.backward()\n    optimizer.step()\n"
                           + _CLIP + "    return loss.item()\n")
NOT_CLIPPED = _variant("    optimizer.zero_grad()\n" + _FORWARD + "    loss.backward()\n    optimizer.step()\n"
                       "    return loss.item()\n")
CLIP_BY_VALUE = _variant("    optimizer.zero_grad()\n" + _FORWARD + "    loss.backward()\n"
                         "    torch.nn.utils.clip_grad_value_(model.parameters(), clip_norm)\n"
                         "    optimizer.step()\n    return loss.item()\n")
CLIP_TO_ONE = _variant("    optimizer.zero_grad()\n" + _FORWARD + "    loss.backward()\n"
                       "    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)\n"
                       "    optimizer.step()\n    return loss.item()\n")
NO_STEP = _variant("    optimizer.zero_grad()\n" + _FORWARD + "    loss.backward()\n" + _CLIP + "    return loss.item()\n")
ZERO_GRAD_BEFORE_STEP = _variant(_FORWARD + "    loss.backward()\n    optimizer.zero_grad()\n" + _CLIP
                                 + "    optimizer.step()\n    return loss.item()\n")
MANUAL_UPDATE = _variant("    model.zero_grad()\n" + _FORWARD + "    loss.backward()\n" + _CLIP + '''    with torch.no_grad():
        for p in model.parameters():
            p -= 0.01 * p.grad
    return loss.item()
''')
NEW_ADAM = _variant('''    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    optimizer.zero_grad()
''' + _FORWARD + "    loss.backward()\n" + _CLIP + "    optimizer.step()\n    return loss.item()\n")
WHOLE_SEQUENCE = _variant('''    optimizer.zero_grad()
    out = model(z, a)
    loss = mdn_loss(out.pi, out.mu, out.sigma, z[:, 1:])
    loss.backward()
''' + _CLIP + "    optimizer.step()\n    return loss.item()\n")
RETURNS_NOTHING = _variant("    optimizer.zero_grad()\n" + _FORWARD + "    loss.backward()\n" + _CLIP
                           + "    optimizer.step()\n")
STUB = '''def training_step(model, optimizer, z, a, clip_norm=1.0):
    """One teacher-forced step on whole sequences z (B, T+1, D) and actions a (B, T, A); returns the loss."""
    raise NotImplementedError("write your training step here")
'''
CRASH = '''import os

def training_step(model, optimizer, z, a, clip_norm=1.0):
    os._exit(1)
'''
INFINITE_LOOP = _variant('''    while True:  # "train until the loss stops falling"
        optimizer.zero_grad()
''')
# The package is not there: a step cannot borrow the course's training loop (or its judge).
BORROWS_THE_LIBRARY = '''from mdn_course.training import train_model

def training_step(model, optimizer, z, a, clip_norm=1.0):
    return train_model(model, z, a, epochs=1, progress=False).train_nll[-1]
'''
# The sandbox's own caller, patched to report a step that never happened: the judge judges the report it
# gets, computing the truth itself, so a made-up report is just a wrong step.
FORGED_REPORT = '''import sys
_caller = sys.modules.get("step_oracle")
if _caller is not None:
    def _fake(self, answer_fn, request):
        oracle = sys.modules["oracle"]
        params = request.args["params"]
        return oracle.Answer("other", type_name="float", value=-3.0,
                             tensors={"params_after": params.clone(), "grads_after": params * 0,
                                      "grads_present": params.new_ones(10)})
    _caller.TrainingStepCaller.__call__ = _fake

def training_step(model, optimizer, z, a, clip_norm=1.0):
    raise RuntimeError("never called: the report is made up above")
'''
# Trains the model it is handed for five steps on every call: more training than asked, which the
# update checks see (the parameters move five times as far), whatever the loss it reports.
FIVE_STEPS = _variant('''    for _ in range(5):
        optimizer.zero_grad()
        out = model(z[:, :-1], a)
        loss = mdn_loss(out.pi, out.mu, out.sigma, z[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        optimizer.step()
        first = loss.item() if _ == 0 else first
    return first
''')
