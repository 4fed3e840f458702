"""Read a submitted notebook without trusting it: the answer source, tampering, suspicious code.

Only the answer cell(s) of a submission are ever executed (inside the grader's
canonical notebook); everything else in it is *inspected* for tampering:

* check cells deleted, edited (source, check name, points in the cell or its
  nbgrader metadata) or added with an unknown name; the setup import removed;
* nbval comment markers (``# NBVAL_SKIP`` ...) or nbval/nbclient tags
  (``nbval-skip``, ``raises-exception``, ``skip-execution`` ...) on a check or
  answer cell (the distributed notebook tags its setup and narration cells
  ``nbval-ignore-output`` itself; cells other than the answer are never run);
* outputs that no kernel wrote: outputs on a cell without an execution count,
  or a check cell whose output reports a different check or other points.

The answer source is stripped of nbval markers, and scanned (AST, after
IPython's own magic transformation) for the reference implementation
(``mdn_course``'s ``mdn_loss``/``mdn_nll_from_logs``/``loss``, dynamic imports
of ``mdn_course``) and for code that rebinds the grader's names (``run_check``,
``CHECKS``, ``reference_guard`` ...). The kernel-side watcher
(``runtime``) catches reference calls that the scan cannot see.
"""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from ..exercise.checks import CHECKS

NBVAL_TAGS = {"nbval-ignore-output", "nbval-check-output", "nbval-raises-exception", "nbval-skip",
              "raises-exception", "skip-execution", "pytest-validate-ignore-output"}
_MARKER = re.compile(r"^\s*#+\s*(NBVAL_[A-Z_]*|PYTEST_VALIDATE_IGNORE_OUTPUT)\b.*$", re.MULTILINE)
_SETUP_LINE = "from mdn_course.exercise import run_check"
_CHECK_SRC = re.compile(r"""^run_check\(\s*(['"])(?P<name>\w+)\1\s*,\s*mdn_loss\s*\)\s*;?$""")
_DEFINES = re.compile(r"^\s*(async\s+)?def\s+mdn_loss\s*\(|^\s*mdn_loss\s*=", re.MULTILINE)
_CLAIM = re.compile(r"[✓✗]\s+(\w+)\s+\((\d+)\s+pt\)")

REFERENCE_NAMES = {"mdn_loss", "mdn_nll_from_logs"}
GRADER_NAMES = {"run_check", "run_all_checks", "CHECKS", "Check", "CheckFailed", "ReferenceUsed",
                "reference_guard", "_GUARD_STATE", "_tripwire", "_call", "_as_float", "_close", "_truth",
                "_diagnose", "_expect_value", "__mdn_grader_watch__"}


class InvalidSubmission(Exception):
    """The file cannot be graded at all (not JSON, not a notebook, no answer)."""


@dataclass
class Submission:
    path: Path
    answer_sources: List[str]
    answer_cells: List[int]            # indices in the submitted notebook
    fallback: bool                     # no cell tagged 'answer'; used the cell(s) defining mdn_loss
    tampering: List[str] = field(default_factory=list)
    reference: List[str] = field(default_factory=list)   # static signs of using the reference loss
    notes: List[str] = field(default_factory=list)


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _tags(cell) -> List[str]:
    tags = (cell.get("metadata") or {}).get("tags") or []
    return [str(t) for t in tags] if isinstance(tags, list) else []


def strip_markers(source: str) -> str:
    return _MARKER.sub("", source)


def load(path: Path) -> Submission:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidSubmission(f"cannot read the file: {exc.strerror or exc}") from None
    try:
        nb = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidSubmission(f"not a notebook: the file is not valid JSON ({exc})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise InvalidSubmission("not a notebook: the JSON has no 'cells' list")
    cells = [c for c in nb["cells"] if isinstance(c, dict)]
    code = [(i, c) for i, c in enumerate(cells) if c.get("cell_type") == "code"]
    tagged = [(i, c) for i, c in code if "answer" in _tags(c)]
    fallback = False
    if not tagged:
        tagged = [(i, c) for i, c in code
                  if _DEFINES.search(_source(c)) and not _CHECK_SRC.match(_source(c).strip())]
        fallback = True
    if not tagged:
        raise InvalidSubmission("no answer cell: no code cell is tagged 'answer' and none defines mdn_loss")
    sub = Submission(path, [strip_markers(_source(c)) for _, c in tagged], [i for i, _ in tagged], fallback)
    if fallback:
        sub.notes.append("no cell is tagged 'answer'; graded the cell(s) defining mdn_loss "
                         f"(cell {', '.join(str(i + 1) for i in sub.answer_cells)})")
    sub.tampering = find_tampering(cells, set(sub.answer_cells))
    for src in sub.answer_sources:
        ref, grader, notes = scan_answer(src)
        sub.reference += ref
        sub.tampering += [f"the answer {g}" for g in grader]
        sub.notes += notes
    return sub


def find_tampering(cells: List[dict], answer_cells: set) -> List[str]:
    found: List[str] = []
    seen: Dict[str, int] = {}
    has_setup = False
    for i, cell in enumerate(cells):
        src = _source(cell)
        meta = cell.get("metadata") or {}
        meta = meta if isinstance(meta, dict) else {}
        where = f"cell {i + 1}"
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs") and cell.get("execution_count") is None:
            found.append(f"{where} has outputs but no execution count (outputs written by hand)")
        if _SETUP_LINE in src:
            has_setup = True
        name = meta.get("check")
        is_check = i not in answer_cells and ("check" in _tags(cell) or name is not None or "run_check(" in src)
        if is_check or i in answer_cells:
            # nbval markers only matter on the cells that are graded; the distributed notebook itself
            # tags its setup and narration cells nbval-ignore-output, and those cells are never run here
            bad_tags = sorted(set(_tags(cell)) & NBVAL_TAGS)
            if bad_tags:
                found.append(f"{where} carries the nbval tag(s) {', '.join(bad_tags)}")
            markers = sorted(set(m.group(1) for m in _MARKER.finditer(src)))
            if markers:
                found.append(f"{where} carries the nbval comment(s) {', '.join('# ' + m for m in markers)}")
        if not is_check:
            continue
        m = _CHECK_SRC.match(strip_markers(src).strip())
        label = name or (m.group("name") if m else None)
        if label not in CHECKS:
            found.append(f"{where} is a check cell for an unknown check {label!r}")
            continue
        seen[label] = seen.get(label, 0) + 1
        if m is None or m.group("name") != label:
            found.append(f"check cell {label!r} ({where}) was edited")
        points = CHECKS[label].points
        nbg = meta.get("nbgrader") if isinstance(meta.get("nbgrader"), dict) else {}
        for what, value in (("points", meta.get("points")), ("nbgrader points", nbg.get("points"))):
            if value is not None and value != points:
                found.append(f"check cell {label!r} claims {value} {what}; the registry gives {points}")
        for out in cell.get("outputs") or []:
            text = out.get("text", "") if isinstance(out, dict) else ""
            text = "".join(text) if isinstance(text, list) else str(text)
            for claim, pts in _CLAIM.findall(text):
                if claim != label or int(pts) != points:
                    found.append(f"check cell {label!r} shows output for {claim} ({pts} pt) (faked output)")
    for name in CHECKS:
        if name not in seen:
            found.append(f"check cell {name!r} was deleted")
        elif seen[name] > 1:
            found.append(f"check cell {name!r} appears {seen[name]} times")
    if not has_setup and seen:
        found.append(f"the setup line '{_SETUP_LINE}' was removed")
    return found


def _python(source: str) -> Optional[ast.AST]:
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - IPython missing or confused: parse the raw text
        pass
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):
        return None  # the kernel reports the real error


def _dotted(node) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def scan_answer(source: str):
    """(reference, grader-tampering, notes) findings from a static look at an answer's source.

    ``reference`` (an import of, or attribute access to, the reference loss) zeroes
    the submission; ``grader`` (rebinding the checks' names, patching the package)
    makes it ``tampered``; ``notes`` (e.g. 'mdn_course' in a string) are only reported.
    """
    tree = _python(source)
    ref: List[str] = []
    grader: List[str] = []
    notes: List[str] = []
    if tree is None:
        return ref, grader, notes
    course_aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "mdn_course" or alias.name.startswith("mdn_course."):
                    course_aliases.add((alias.asname or alias.name).split(".")[0])
                    if alias.name.startswith(("mdn_course.loss", "mdn_course.exercise.checks", "mdn_course.grading")):
                        (ref if ".loss" in alias.name else grader).append(f"imports {alias.name}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "mdn_course":
            for alias in node.names:
                if alias.name in REFERENCE_NAMES or alias.name == "loss" or node.module == "mdn_course.loss":
                    ref.append(f"imports {alias.name} from {node.module}")
                elif alias.name == "*":
                    ref.append(f"imports * from {node.module}")
                elif node.module.startswith(("mdn_course.exercise.checks", "mdn_course.grading")) and \
                        alias.name != "run_check":
                    grader.append(f"imports {alias.name} from {node.module}")
        elif isinstance(node, ast.Attribute) and node.attr in REFERENCE_NAMES:
            ref.append(f"uses {_dotted(node) or node.attr}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "mdn_course" in node.value:
            notes.append(f"the answer names 'mdn_course' in a string ({node.value[:60]!r})")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in GRADER_NAMES:
            grader.append(f"redefines {node.name}")
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)) and node.id in GRADER_NAMES:
            grader.append(f"rebinds {node.id}")
        elif isinstance(node, ast.Global):
            grader += [f"declares global {n}" for n in node.names if n in GRADER_NAMES]
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
            target = _dotted(node)
            if node.attr in GRADER_NAMES or node.attr in ("__code__", "__globals__") or \
                    target.split(".")[0] in course_aliases:
                grader.append(f"assigns {target or node.attr}")
        elif isinstance(node, ast.Call) and _dotted(node.func) in ("setattr", "delattr"):
            if node.args and (_dotted(node.args[0]).split(".")[0] in course_aliases | {"sys"}):
                grader.append(f"calls {_dotted(node.func)} on {_dotted(node.args[0])}")
        elif isinstance(node, ast.Attribute) and _dotted(node) == "sys.modules":
            grader.append("uses sys.modules")
    return sorted(set(ref)), sorted(set(grader)), sorted(set(notes))
