"""nbval plugin: text outputs must match exactly, except decimal numbers, which match within a tolerance.

Why: the lessons are deterministic on one machine, but floating-point results
differ between CPUs (vector instruction sets, thread counts) in the 3rd-4th
significant digit, and training and dreaming amplify that into the printed
2nd decimal. Strict nbval compares strings, so it failed on every machine but
the one that recorded the outputs. With this plugin a stored output still has
to reproduce word for word: the text around numbers, the number of outputs and
their kinds, integers (shapes, counts, epochs) and every non-numeric character.
Only numbers written with a decimal point or an exponent, and percentages
(compared as the fractions they stand for), may move, by at most
``abs + rel * |stored|`` (numpy's ``isclose`` rule); other integers move only in
a cell that allows it. Runs of spaces may change
width, because a formatted table shifts when a number gains a digit or a sign.

Tolerance per cell: ``DEFAULT_TOLERANCE``, or the cell metadata entry
``"nbval_tolerance": {"rel": R, "abs": A, "integers": false}`` (a field left out
keeps the default's value; ``{"rel": 0, "abs": 0}`` makes a cell exact; a chaotic
quantity such as a 100-step dream, or a count of sampled outcomes with
``"integers": true``, gets a wider one).
Within a cell, the lines of the stored output that match a regular expression
can get their own tolerance, so that one sensitive number does not widen the
whole table: ``"lines": [{"match": "^tau = 0.01", "rel": 0.5, "why": "..."}]``
(fields left out are the cell's; ``why`` is for the reader). The first entry
whose ``match`` is found in the line wins.

A failing cell's report says whether the text itself changed (a behaviour
change) or only numbers moved beyond the tolerance (drift or a behaviour
change; the report gives the largest difference), and how to refresh the
stored outputs when the new ones are right.

Use: ``python -m pytest --nbval -p mdn_course.tools.nbval_numbers notebooks/04_training.ipynb``
(``tests/test_notebooks.py`` does this). Set ``MDN_NBVAL_DRIFT_LOG=FILE`` to append
one JSON line per compared cell with its largest numeric difference (to choose
tolerances from measurements).
"""
from __future__ import annotations

import copy
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Pattern, Tuple

__all__ = ["Tolerance", "DEFAULT_TOLERANCE", "NUMBER", "compare_text", "cell_tolerance", "REFRESH_HINT"]

#: A number as printed: optional sign (not glued to a word), digits, optional fraction and exponent.
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w.])")
_SPACES = re.compile(r"[ \t]+")
#: Output mime types that are not text (never compared by nbval anyway).
_BINARY = ("image/",)
METADATA_KEY = "nbval_tolerance"
DRIFT_LOG_ENV = "MDN_NBVAL_DRIFT_LOG"
REFRESH_HINT = ("If the new outputs are right (for example after an intended change), store them with:\n"
                "    python -m mdn_course run-notebooks --refresh --only {name}")


@dataclass(frozen=True)
class Tolerance:
    """How far a decimal number may move: ``|new - stored| <= abs + rel * |stored|``.

    Integers (no decimal point, no exponent) must match exactly unless ``integers`` is set.
    """

    rel: float
    abs: float
    integers: bool = False
    #: (pattern, tolerance) pairs: numbers on a stored line where the pattern is found use that tolerance.
    lines: Tuple[Tuple[Pattern, "Tolerance"], ...] = ()

    def for_line(self, line: str) -> "Tolerance":
        """The tolerance for numbers on this line of the stored output."""
        return next((tolerance for pattern, tolerance in self.lines if pattern.search(line)), self)

    def allows(self, stored: float, new: float) -> bool:
        if math.isnan(stored) or math.isnan(new) or math.isinf(stored) or math.isinf(new):
            return stored == new or (math.isnan(stored) and math.isnan(new))
        return abs(new - stored) <= self.abs + self.rel * abs(stored)


#: Measured across CPUs (native vs ATEN_CPU_CAPABILITY=default, and a recording on another CPU):
#: trained-model figures printed with 2-3 decimals moved by up to 0.04 absolute / 5 % relative.
DEFAULT_TOLERANCE = Tolerance(rel=0.05, abs=0.02)


def _is_decimal(token: str) -> bool:
    return any(c in token for c in ".eE%")


def _value(token: str) -> float:
    """A printed number's value; a percentage counts as the fraction it stands for (26% -> 0.26)."""
    return float(token[:-1]) / 100 if token.endswith("%") else float(token)


@dataclass
class Comparison:
    """Outcome of comparing a stored text with a new one."""

    same_text: bool                   # identical once decimal numbers are masked (and spaces collapsed)
    within: bool                      # same_text and every decimal within tolerance
    worst: Optional[Tuple[str, str]]  # (stored, new) decimal pair with the largest excess, if any differ
    worst_excess: float               # |new - stored| / (abs + rel*|stored|) of that pair (<= 1 is allowed)
    worst_tolerance: Optional["Tolerance"] = None   # the tolerance that pair was held to


def _skeleton(text: str) -> Tuple[str, List[str]]:
    """(text with every number replaced by NUL and runs of spaces collapsed, the numbers in order).

    A number directly followed by ``%`` keeps the sign in its token ("26%"): it is a rounded ratio,
    compared like a decimal, while the ``%`` itself stays in the text that must match.
    """
    tokens = [m.group(0) + ("%" if text.startswith("%", m.end()) else "") for m in NUMBER.finditer(text)]
    skeleton = _SPACES.sub(" ", NUMBER.sub("\x00", text))
    return skeleton, tokens


def compare_text(stored: str, new: str, tolerance: Tolerance) -> Comparison:
    """Compare two outputs: text and integers exactly, decimal numbers within ``tolerance``.

    A number is held to ``tolerance.for_line`` of the stored line it stands on.
    """
    skel_a, nums_a = _skeleton(stored)
    skel_b, nums_b = _skeleton(new)
    if skel_a != skel_b or len(nums_a) != len(nums_b):
        return Comparison(False, False, None, math.inf)
    lines = stored.split("\n")
    line_of = [lines[stored.count("\n", 0, m.start())] for m in NUMBER.finditer(stored)]
    worst, worst_excess, worst_tolerance, within = None, 0.0, None, True
    for a, b, line in zip(nums_a, nums_b, line_of):
        if a == b:
            continue
        held_to = tolerance.for_line(line)
        if not (_is_decimal(a) or _is_decimal(b) or held_to.integers):
            return Comparison(False, False, (a, b), math.inf, held_to)   # integers are exact
        x, y = _value(a), _value(b)
        bound = held_to.abs + held_to.rel * abs(x)
        excess = abs(y - x) / bound if bound > 0 else (0.0 if x == y else math.inf)
        if not held_to.allows(x, y):
            within = False
        if excess >= worst_excess:
            worst, worst_excess, worst_tolerance = (a, b), excess, held_to
    return Comparison(True, within, worst, worst_excess, worst_tolerance)


def _parse_tolerance(entry, inherit: Optional[Tolerance] = None) -> Tolerance:
    """A tolerance from metadata; what the entry leaves out comes from ``inherit`` (default: the default)."""
    base = inherit or DEFAULT_TOLERANCE
    return Tolerance(rel=float(entry.get("rel", base.rel)), abs=float(entry.get("abs", base.abs)),
                     integers=bool(entry.get("integers", base.integers)))


def cell_tolerance(cell) -> Tolerance:
    """The cell's ``nbval_tolerance`` metadata, else :data:`DEFAULT_TOLERANCE`."""
    entry = cell.get("metadata", {}).get(METADATA_KEY)
    if entry is None:
        return DEFAULT_TOLERANCE
    example = '{"rel": 0.05, "abs": 0.02, "lines": [{"match": "^tau = 0.01", "rel": 0.5}]}'
    try:
        tolerance = _parse_tolerance(entry)
        line_entries = list(entry.get("lines", []))
        lines = [(line["match"], _parse_tolerance(line, inherit=tolerance)) for line in line_entries]
    except (AttributeError, TypeError, KeyError, ValueError) as exc:
        raise ValueError(f"cell metadata {METADATA_KEY!r} must look like {example}, got {entry!r}") from exc
    compiled = []
    for pattern, line_tolerance in lines:
        try:
            compiled.append((re.compile(pattern), line_tolerance))
        except (re.error, TypeError) as exc:
            raise ValueError(f"cell metadata {METADATA_KEY!r}: the line pattern {pattern!r} is not a regular "
                             f"expression ({exc})") from exc
    return Tolerance(tolerance.rel, tolerance.abs, tolerance.integers, tuple(compiled))


def _text_fields(output):
    """(container, key) of every text field nbval compares in one output."""
    if output.get("output_type") == "stream":
        return [(output, "text")]
    data = output.get("data", {})
    return [(data, key) for key, value in data.items()
            if isinstance(value, str) and not key.startswith(_BINARY) and not key.endswith("+json")]


def _align(item, test: list, ref: list, tolerance: Tolerance):
    """A copy of ``test`` where each text within tolerance of its stored text is replaced by it.

    Returns (aligned outputs, list of Comparisons of the fields that differed).
    """
    aligned = copy.deepcopy(test)
    compared: List[Comparison] = []
    if len(aligned) != len(ref):
        return aligned, compared
    for new_out, old_out in zip(aligned, ref):
        if new_out.get("output_type") != old_out.get("output_type") or new_out.get("name") != old_out.get("name"):
            continue
        old_fields = dict((key, box[key]) for box, key in _text_fields(old_out))
        for box, key in _text_fields(new_out):
            if key not in old_fields:
                continue
            stored, new = item.sanitize(old_fields[key]), item.sanitize(box[key])
            if stored == new:
                continue
            result = compare_text(stored, new, tolerance)
            compared.append(result)
            if result.within:
                box[key] = stored
    return aligned, compared


def _log_drift(item, compared: List[Comparison]) -> None:
    path = os.environ.get(DRIFT_LOG_ENV)
    if not path:
        return
    worst = max(compared, key=lambda c: c.worst_excess, default=None)
    record = {"notebook": Path(str(item.fspath)).name, "cell": item.cell_num,
              "differs": bool(compared), "worst": worst.worst if worst else None,
              "same_text": all(c.same_text for c in compared),
              "excess": None if worst is None or math.isinf(worst.worst_excess) else round(worst.worst_excess, 3)}
    with open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")


def _explain(item, compared: List[Comparison], tolerance: Tolerance) -> str:
    name = Path(str(item.fspath)).stem
    numeric = [c for c in compared if c.same_text and not c.within]
    if compared and len(numeric) == len(compared):
        worst = max(numeric, key=lambda c: c.worst_excess)
        held_to = worst.worst_tolerance or tolerance
        head = (f"ONLY NUMBERS DIFFER: the text matches, but {worst.worst[0]} (stored) became {worst.worst[1]}, "
                f"{worst.worst_excess:.1f}x the allowed difference (abs {held_to.abs:g} + rel {held_to.rel:g}). "
                "This is floating-point drift between machines if the change is small, or a change of behaviour.")
    else:
        head = ("THE TEXT OF THE OUTPUT CHANGED (not only numbers within tolerance): a change of behaviour, "
                "or an output that depends on the machine.")
    return head + "\n" + REFRESH_HINT.format(name=name)


def pytest_configure(config) -> None:
    """Wrap nbval's output comparison once per process (nbval must be installed)."""
    from nbval.plugin import IPyNbCell

    if getattr(IPyNbCell, "_mdn_numbers_installed", False):
        return
    exact_compare = IPyNbCell.compare_outputs

    def compare_outputs(self, test, ref, skip_compare=None):
        if exact_compare(self, test, ref, skip_compare):
            _log_drift(self, [])
            return True
        first_report = list(self.comparison_traceback)
        tolerance = cell_tolerance(self.cell)
        aligned, compared = _align(self, test, ref, tolerance)
        _log_drift(self, compared)
        if compared and exact_compare(self, aligned, ref, skip_compare):
            return True
        self.comparison_traceback = first_report + [_explain(self, compared, tolerance)]
        return False

    IPyNbCell.compare_outputs = compare_outputs
    IPyNbCell._mdn_numbers_installed = True
