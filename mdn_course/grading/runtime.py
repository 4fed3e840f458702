"""In-kernel half of the grader: imported by the canonical notebook's setup and audit cells only.

``arm()`` runs before the submitted answer:

* It replaces the *code* of the reference functions (``mdn_course.loss.mdn_loss``
  and ``mdn_nll_from_logs``) by a watcher for the whole run. A call whose
  immediate Python caller lives outside the ``mdn_course`` package (i.e. the
  submission, however it got hold of the function: an import, ``importlib``,
  ``getattr(__import__(...))``, ``sys.modules``, or a ``types.FunctionType``
  copy of its code made at definition time) is recorded and raises
  ``mdn_course.exercise.checks.ReferenceUsed``. Calls from the package itself
  (``evaluate_nll`` in the ``learns`` check) go through to the real code.
  ``checks.reference_guard`` still swaps in its own tripwire during each check.
* It snapshots the checks module (its functions' code, the ``CHECKS``
  registry) so that ``audit()`` can tell whether submitted code altered them.

``audit()`` runs after the checks; it raises ``GraderAudit`` listing
``reference:`` and ``tamper:`` findings, which the grader reads from the cell's
error. Code running in the same process can, with enough effort, defeat any
in-process check; this catches the routes a student would try, and the
grader's static scan (``submission.scan_answer``) flags the rest for a human.
"""
from __future__ import annotations

import types
from typing import Dict, List

_STATE: Dict[str, object] = {"armed": False, "reference_calls": [], "snapshot": {}, "watchers": {}}


class GraderAudit(AssertionError):
    """The audit cell found reference calls or an altered grader."""


def _package_dir() -> str:
    import mdn_course

    return mdn_course.__path__[0].rstrip("/") + "/"


def _make_watch(originals, package_dir):
    from mdn_course.exercise import checks

    calls: List[str] = _STATE["reference_calls"]  # type: ignore[assignment]

    def watch(name, frame, args, kwargs):
        filename = frame.f_code.co_filename if frame is not None else "?"
        if not filename.startswith(package_dir) or "/grading/" in filename[len(package_dir) - 1:]:
            where = f"{filename}:{frame.f_lineno}" if frame is not None else "?"
            calls.append(f"{name} called from {where}")
            checks._GUARD_STATE["calls"] += 1
            raise checks.ReferenceUsed("the package's reference mdn_loss was called; "
                                       "the exercise is to write the computation yourself")
        return originals[name](*args, **kwargs)

    return watch


def _snapshot() -> Dict[str, object]:
    from mdn_course.exercise import checks

    funcs = {k: (v, v.__code__) for k, v in vars(checks).items() if isinstance(v, types.FunctionType)}
    guard = {k: (v, v.__code__) for k, v in vars(checks.reference_guard).items() if isinstance(v, types.FunctionType)}
    registry = {k: (c, c.run, c.run.__code__, c.points) for k, c in checks.CHECKS.items()}
    return {"funcs": funcs, "guard": guard, "registry": registry, "registry_obj": checks.CHECKS,
            "keys": list(checks.CHECKS)}


def arm() -> None:
    if _STATE["armed"]:
        return
    from mdn_course import loss

    package_dir = _package_dir()
    originals = {}
    for name in ("mdn_loss", "mdn_nll_from_logs"):
        f = getattr(loss, name)
        copy = types.FunctionType(f.__code__, f.__globals__, f.__name__, f.__defaults__, f.__closure__)
        copy.__kwdefaults__ = f.__kwdefaults__
        originals[name] = copy
    watch = _make_watch(originals, package_dir)
    loss.__dict__["__mdn_grader_watch__"] = watch
    for name in ("mdn_loss", "mdn_nll_from_logs"):
        namespace: Dict[str, object] = {}
        exec(compile(f"def {name}(*args, **kwargs):\n"
                     f"    import sys\n"
                     f"    return __mdn_grader_watch__({name!r}, sys._getframe(1), args, kwargs)\n",
                     f"<grader watch {name}>", "exec"), {}, namespace)
        getattr(loss, name).__code__ = namespace[name].__code__
        _STATE["watchers"][name] = namespace[name].__code__
    _STATE["snapshot"] = _snapshot()
    _STATE["armed"] = True


def findings() -> List[str]:
    from mdn_course import loss

    out = [f"reference: {c}" for c in _STATE["reference_calls"]]  # type: ignore[union-attr]
    if not _STATE["armed"]:
        return out + ["tamper: the grader's setup did not run"]
    for name, code in _STATE["watchers"].items():  # type: ignore[union-attr]
        if getattr(loss, name).__code__ is not code:
            out.append(f"tamper: mdn_course.loss.{name} was replaced")
    snap = _STATE["snapshot"]
    now = _snapshot()
    for part in ("funcs", "guard"):
        for key, (func, code) in snap[part].items():  # type: ignore[index]
            cur = now[part].get(key)  # type: ignore[index]
            if cur is None or cur[0] is not func or cur[1] is not code:
                out.append(f"tamper: mdn_course.exercise.checks.{key} was altered")
    if now["registry_obj"] is not snap["registry_obj"] or now["keys"] != snap["keys"]:  # type: ignore[index]
        out.append("tamper: the CHECKS registry was altered")
    for key, entry in snap["registry"].items():  # type: ignore[index]
        cur = now["registry"].get(key)  # type: ignore[index]
        if cur is None or any(a is not b for a, b in zip(cur[:3], entry[:3])) or cur[3] != entry[3]:
            out.append(f"tamper: the check {key!r} was altered")
    return out


def audit() -> None:
    problems = findings()
    if problems:
        raise GraderAudit("GRADER-AUDIT " + " | ".join(problems))
    print("grader audit: clean")
