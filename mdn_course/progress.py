"""The course's progress bars: tqdm's (a widget in a notebook, text in a terminal), without its monitor thread.

tqdm starts a background thread that redraws a bar which has not moved for ``maxinterval`` seconds
(10). In a notebook that redraw sends widget messages from outside the kernel's main thread, and
a training epoch on a slow or crowded machine easily takes longer than that. tqdm's maintainers
switch the thread off for notebooks (``monitor_interval = 0``); so do these bars: each one moves
only when the loop does, from the thread that runs the loop.
"""
from __future__ import annotations

from typing import Iterable, TypeVar

from tqdm.auto import tqdm

__all__ = ["progress_bar", "CourseBar"]

Item = TypeVar("Item")


class CourseBar(tqdm):
    """tqdm.auto's bar with the monitor thread switched off for every bar of this class."""
    monitor_interval = 0


def progress_bar(iterable: Iterable[Item], desc: str, unit: str, disable: bool = False) -> CourseBar:
    """A bar over ``iterable`` labelled ``desc``, counting in ``unit``s (``disable``: no bar, same loop)."""
    return CourseBar(iterable, desc=desc, unit=unit, disable=disable)
