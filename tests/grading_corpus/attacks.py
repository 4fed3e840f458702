"""Answer cells that attack the grader, for make_corpus.py.

Each probe defines ``_ESCAPED`` (truthy when its attack worked) and returns a correct loss when
it did not, so a sandboxed run scores what the honest part deserves and an escape shows up as a
lost or gained point. ``tests/test_grade_attacks.py`` also runs the probes *unconfined* (a
plain interpreter as the grader's own user) to show that each attack works where nothing stops it.
"""
from __future__ import annotations

CORRECT = '''def mdn_loss(pi, mu, sigma, z_next):
    """Mean negative log-likelihood of z_next under per-dimension Gaussian mixtures."""
    z = z_next.unsqueeze(-1)
    log_n = -0.5 * ((z - mu) / sigma) ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)
    return -torch.logsumexp(torch.log(pi) + log_n, dim=-1).sum(dim=-1).mean()
'''
WRONG_SIGN_BODY = '''    z = z_next.unsqueeze(-1)
    log_n = -0.5 * ((z - mu) / sigma) ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)
    return torch.logsumexp(torch.log(pi) + log_n, dim=-1).sum(dim=-1).mean()
'''


def _correct_unless_escaped(prelude: str) -> str:
    """``prelude`` sets _ESCAPED; the loss is correct unless it is truthy (then it returns a constant)."""
    return prelude + "\n\n" + CORRECT.replace(
        "    z = z_next", "    if _ESCAPED:\n        return torch.zeros((), requires_grad=True)\n    z = z_next", 1)


# ---------------------------------------------------------------- forging the result

# Fake "perfect" answers written to every descriptor (fd 1 and the inherited channel among them).
FORGE_CHANNEL = '''import json, os, sys
_FAKE = (json.dumps({"kind": "tensor", "type_name": "Tensor", "shape": [], "dtype": "float32",
                     "requires_grad": True, "value": 1.0, "grads": {}, "mutated": [], "error": None,
                     "seconds": 0.0}) + "\\n").encode()

def _spray():
    for fd in range(64):
        try:
            os.write(fd, _FAKE * 3)
        except OSError:
            pass
    print(_FAKE.decode() * 3)
    sys.__stdout__.write(_FAKE.decode())

def mdn_loss(pi, mu, sigma, z_next):
    _spray()
''' + WRONG_SIGN_BODY

# An import hook, and the sandbox's own oracle module patched to report a made-up answer (too late: the server
# took its caller before the answer cell ran, so the answer is judged on what it computes, a wrong sign).
IMPORT_HOOK = '''import sys, importlib.abc

class _Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.startswith(("mdn_course", "oracle")):
            raise ImportError("hooked")   # would hand the check cells a fake run_check in a kernel
        return None

sys.meta_path.insert(0, _Hook())
_oracle = sys.modules.get("oracle")
if _oracle is not None:      # the sandbox's own copy: make it report a made-up "perfect" answer
    def _fake(fn, request):
        return _oracle.Answer("tensor", type_name="Tensor", shape=[], dtype="float32", requires_grad=True,
                              value=1.0, grads={n: None for n in request.grad_of})
    _oracle.evaluate = _fake

def mdn_loss(pi, mu, sigma, z_next):
''' + WRONG_SIGN_BODY

# What made an in-process judge pass a wrong answer: its float64 truth was computed with these.
PATCH_BUILTINS = '''import builtins, math as _m, torch as _t
builtins.abs = lambda x: 0.0
_m.isfinite = lambda x: True
_m.isclose = lambda *a, **k: True
_t.allclose = lambda *a, **k: True
_t.isclose = lambda a, b, *r, **k: _t.ones_like(a, dtype=_t.bool)
_t.Tensor.__float__ = lambda self: 0.0
_t.distributions.Normal.log_prob = lambda self, value: _t.zeros_like(value)

def mdn_loss(pi, mu, sigma, z_next):
''' + WRONG_SIGN_BODY

# ---------------------------------------------------------------- reaching the truth

# The truth in a caller's frame or anywhere on the heap (the judge's own code, in a kernel).
FRAME_AND_GC = '''import gc, sys

def _steal():
    frame = sys._getframe(1)
    while frame is not None:
        for name in ("nll64", "_nll64"):
            if name in frame.f_globals:
                return frame.f_globals[name]
        frame = frame.f_back
    for obj in gc.get_objects():
        if callable(obj) and getattr(obj, "__name__", "") in ("nll64", "_nll64"):
            return obj
    return None

_ESCAPED = False

def mdn_loss(pi, mu, sigma, z_next):
    global _ESCAPED
    truth = _steal()
    if truth is not None:
        _ESCAPED = True
        value = truth(pi, mu, sigma, z_next)
        return value.to(pi.dtype) + 0.0 * (pi.sum() + mu.sum() + sigma.sum())
''' + WRONG_SIGN_BODY

# The reference loss (the library's, or the training step's sandbox copy of it), the solution notebook, or a
# classmate's submission read from disk.
# PATHS is filled in by the test (the repository and the corpus folder).
STEAL_FILES = '''import json, os
_ESCAPED = None
_CANDIDATES = {paths!r}

def _answers_in(path):
    if path.endswith(".py"):
        return [open(path).read()]
    cells = json.load(open(path)).get("cells", [])
    return ["".join(c["source"]) for c in cells if "answer" in c.get("metadata", {{}}).get("tags", [])]

def _find():
    seen = 0
    roots = list(_CANDIDATES) + ["/grader", "/work", "/home", "/root", "/tmp", "/srv", "/opt", "/var"]
    for root in roots:
        for folder, dirs, files in os.walk(root):
            for f in sorted(files):
                seen += 1
                if seen > 20000:
                    return None
                if f in ("loss.py", "mdn_rnn.py", "03_exercise_mdn_loss.ipynb") or \
                        (f.endswith(".ipynb") and "correct" in f):
                    p = os.path.join(folder, f)
                    try:
                        for src in _answers_in(p):
                            ns = {{"math": math, "torch": torch}}
                            exec(src, ns)
                            if callable(ns.get("mdn_loss")):
                                return p, ns["mdn_loss"]
                    except Exception:
                        continue
    return None

_found = _find()
if _found:
    _ESCAPED, _stolen = _found

def mdn_loss(pi, mu, sigma, z_next):
    if _ESCAPED:
        return _stolen(pi, mu, sigma, z_next)
''' + WRONG_SIGN_BODY.replace("{", "{{").replace("}", "}}")

# ---------------------------------------------------------------- the sandbox and its limits

# Things a grader that reads scratch files by path would trip over; this one reads nothing by path.
SCRATCH_TRAPS = _correct_unless_escaped('''import os
_ESCAPED = False
for _name in ("grader-run.log", "results.json", "grades.csv", "feedback.md", "answer.json"):
    for _where in (os.getcwd(), os.path.expanduser("~"), "/tmp"):
        _p = os.path.join(_where, _name)
        try:
            os.symlink("/etc/shadow", _p)
        except OSError:
            try:
                os.mkfifo(_p + ".fifo")
            except OSError:
                pass
try:
    os.symlink("loop-b", "/tmp/loop-a")
    os.symlink("loop-a", "/tmp/loop-b")
    with open("/tmp/huge", "wb") as _f:
        _f.truncate(1 << 40)          # a sparse 1 TiB file
except OSError:
    pass''')

# Four children each touch 384 MiB at once: more than the whole submission may hold.
MEMORY_AGGREGATE = _correct_unless_escaped('''import os, select
_ESCAPED = False
def _hold(n_children=4, mib=384):
    ready_r, ready_w = os.pipe()
    release_r, release_w = os.pipe()
    kids = []
    for _ in range(n_children):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            os.close(release_w)
            os.close(ready_r)
            try:
                with open("/proc/self/oom_score_adj", "w") as f:
                    f.write("1000")       # if something must die, let it be a child
            except OSError:
                pass
            try:
                buf = bytearray(mib << 20)
                buf[::4096] = b"\\1" * len(range(0, len(buf), 4096))
                os.write(ready_w, b"1")
                os.read(release_r, 1)
            finally:
                os._exit(0)
        kids.append(pid)
    os.close(ready_w)
    held = 0
    while held < len(kids):
        readable, _, _ = select.select([ready_r], [], [], 5)
        if not readable:
            break
        chunk = os.read(ready_r, 16)
        if not chunk:
            break
        held += len(chunk)
    os.close(release_w)
    for pid in kids:
        os.waitpid(pid, 0)
    return held
_HELD = _hold()
_ESCAPED = _HELD >= 4''')

# 100 processes at once: more than a submission may run.
PROCESS_COUNT = _correct_unless_escaped('''import os
_ESCAPED = False
def _spawn(n=100):
    release_r, release_w = os.pipe()
    kids = []
    for _ in range(n):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            os.close(release_w)
            os.read(release_r, 1)
            os._exit(0)
        kids.append(pid)
    os.close(release_w)
    for pid in kids:
        os.waitpid(pid, 0)
    return len(kids)
_SPAWNED = _spawn()
_ESCAPED = _SPAWNED >= 90''')

# 100 MiB into every writable place: far more than the one 64 MiB scratch tmpfs.
DISK_FILL = _correct_unless_escaped('''import os, tempfile
_ESCAPED = False
def _fill(per_place=100):
    total = 0
    places = {os.getcwd(), os.path.expanduser("~"), tempfile.gettempdir(), "/dev/shm", "/var/tmp"}
    written = []
    for place in sorted(places):
        path = os.path.join(place, "fill.bin")
        try:
            with open(path, "wb") as f:
                written.append(path)
                for _ in range(per_place):
                    f.write(b"x" * (1 << 20))
                    total += 1
        except OSError:
            pass
    for path in written:
        try:
            os.remove(path)
        except OSError:
            pass
    return total
_MIB = _fill()
_ESCAPED = _MIB > 128''')

# ---------------------------------------------------------------- crashes and noise

# SIGKILLs its own process on the second call it serves: a kernel killed in the middle of a check.
KILLED_MID_CHECK = '''import os, signal
_calls = [0]

def mdn_loss(pi, mu, sigma, z_next):
    _calls[0] += 1
    if _calls[0] == 2:
        os.kill(os.getpid(), signal.SIGKILL)
''' + CORRECT.split("\n", 2)[2]

# Megabytes of output on stdout and stderr, at definition and on every call: none of it is the channel.
STDOUT_NOISE = '''import os, sys
def _noise():
    sys.stdout.write("{not json" * 1000 + "\\n")
    print("\\n".join(["garbage"] * 1000), file=sys.stderr)
    os.write(1, b"\\x00\\xff" * 50000 + b"\\n")
    os.write(2, b"error line\\n" * 1000)
_noise()

def mdn_loss(pi, mu, sigma, z_next):
    _noise()
''' + CORRECT.split("\n", 2)[2]

DEFINITION_LOOP = "while True:  # 'train until it converges', at the top of the answer cell\n    pass\n\n" + CORRECT

HUGE_ANSWER = CORRECT + "\n# " + "padding " * 400_000 + "\n"

STUB = '''def mdn_loss(pi, mu, sigma, z_next):
    """Mean negative log-likelihood of z_next under per-dimension Gaussian mixtures."""
    raise NotImplementedError("write your mdn_loss here")
'''

# ---------------------------------------------------------------- probes made per test run

DELETE_PROBE = _correct_unless_escaped('''import os
_ESCAPED = False
for _path in {sentinels!r}:
    try:
        os.remove(_path)
        _ESCAPED = True
    except OSError:
        pass''')

SOCKET_PROBE = _correct_unless_escaped('''import socket
_ESCAPED = []
for _addr in (("127.0.0.1", {port}), ("1.1.1.1", 53), ("8.8.8.8", 443)):
    try:
        _s = socket.create_connection(_addr, timeout=2)
        _s.close()
        _ESCAPED.append(_addr)
    except OSError:
        pass''')

# A root-only (0600) file and a root-owned unix socket in the test's folder.
ROOT_PROBE = _correct_unless_escaped('''import socket
_ESCAPED = []
try:
    _ESCAPED.append(open({secret!r}).read())
except OSError:
    pass
try:
    _s = socket.socket(socket.AF_UNIX)
    _s.settimeout(2)
    _s.connect({unix_socket!r})
    _s.close()
    _ESCAPED.append("connected")
except OSError:
    pass''')
