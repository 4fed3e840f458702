"""The seeds a claim test retrains with: the lesson's own always, the others when asked for.

A claim the lesson prints (a controller's score, a component that dies) is retrained here with the
lesson's seeds, so the test holds the lesson to what it says. The same claim on other seeds shows
that it is a property of the method, not of one lucky draw; those runs cost most of the suite's
time (lesson 9's claims retrain a memory and four CMA-ES searches per seed), so they run when
``MDN_COURSE_ALL_SEEDS=1`` is set, and are listed as skipped, saying how, otherwise. The README's
Maintainers section gives the command and what it last measured.
"""
import os

import pytest

ALL_SEEDS_ENV = "MDN_COURSE_ALL_SEEDS"


def all_seeds() -> bool:
    return os.environ.get(ALL_SEEDS_ENV, "").strip() == "1"


def lesson_and_other_seeds(lesson, *others, ids=None):
    """``pytest.param``s: ``lesson`` (the lesson's own seed or seeds) runs always; each of ``others`` only with
    MDN_COURSE_ALL_SEEDS=1. ``ids`` names each value (a function, as pytest's ``ids=``)."""
    name = ids or (lambda value: str(value))
    skip = pytest.mark.skipif(not all_seeds(), reason=f"another seed than the lesson's: runs with {ALL_SEEDS_ENV}=1")
    return [pytest.param(lesson, id=name(lesson))] + [pytest.param(v, id=name(v), marks=skip) for v in others]
