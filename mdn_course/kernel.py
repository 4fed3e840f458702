"""Where the course's code is running: a notebook kernel or not, Colab or not, and the notebook's own names.

Several features act differently in a notebook (the chat panel shows widgets, narration shows a
player, hints and the panel look up the student's current function, the saved answer reads the
kernel's input history) and in Colab (the answer is saved to Drive, the audio pack is downloaded).
They all ask here, so "are we in a notebook?" has one answer.

IPython is never imported here: a kernel has always imported it already, and a plain script that
has not is not in a notebook.
"""
from __future__ import annotations

import sys
from typing import Any, Optional

__all__ = ["shell", "in_notebook", "in_colab", "notebook_variable"]


def shell() -> Optional[Any]:
    """The running IPython shell (a kernel's or a terminal IPython's), or None in plain Python."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    try:
        return ipython.get_ipython()
    except Exception:  # a half-imported or stubbed IPython: not a notebook
        return None


def in_notebook() -> bool:
    """True inside a Jupyter or Colab kernel (not a terminal IPython, not plain Python)."""
    found = shell()
    return found is not None and getattr(found, "kernel", None) is not None


def in_colab() -> bool:
    """True in a Colab runtime (its kernel imports ``google.colab`` at start)."""
    return "google.colab" in sys.modules


def notebook_variable(name: str) -> Any:
    """The value the notebook's cells gave ``name`` (None when unset or outside IPython)."""
    found = shell()
    if found is None:
        return None
    return getattr(found, "user_ns", {}).get(name)
