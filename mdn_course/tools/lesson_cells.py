"""Run the few code cells of a lesson that define something, outside a kernel.

Lesson 1 defines its toy data and its two small models inline, because seeing them is the point
of the lesson. The tests of what the lesson claims (``tests/test_lesson_claims.py``) and the
training-stability benchmark use *those* definitions rather than copies that could drift apart:
``defining_cells`` finds the cells that define the given names and runs them in a fresh namespace.
"""
from __future__ import annotations

import contextlib
import io
from typing import Optional

import nbformat
import torch

from .notebooks import NOTEBOOK_DIR

__all__ = ["defining_cells"]


def defining_cells(notebook: str, *names: str, device: Optional[torch.device] = None) -> dict:
    """The namespace after running, in order, the code cells of ``notebook`` that define ``names``.

    A cell defines a name with ``def NAME(`` or ``class NAME(``; each cell found runs whole (lesson 1's
    model cell also builds ``regressor`` and ``mixture_model``). The namespace starts with
    ``torch``, ``nn``, everything ``mdn_course`` exports and ``device`` (default: the CPU), as the
    lessons' setup cells provide; what the cells print is discarded.
    """
    nb = nbformat.read(NOTEBOOK_DIR / notebook, as_version=4)
    namespace: dict = {}
    exec("import torch\nfrom torch import nn\nfrom mdn_course import *", namespace)
    namespace["device"] = device or torch.device("cpu")
    cells = []
    for name in names:
        found = [c for c in nb.cells if c.cell_type == "code"
                 and (f"def {name}(" in c.source or f"class {name}(" in c.source)]
        if not found:
            raise LookupError(f"no code cell of {notebook} defines {name!r}")
        cells.extend(c for c in found[:1] if c not in cells)
    for cell in sorted(cells, key=nb.cells.index):
        with contextlib.redirect_stdout(io.StringIO()):
            exec(cell.source, namespace)
    return namespace
