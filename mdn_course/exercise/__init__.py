"""The exercises, as students run them: write ``mdn_loss`` yourself, and get checks that name your mistake.

One job per module:

``registry``      what checks are made of: ``Mistake``, ``Check`` (declared once), ``Exercise``, ``drive``.
``mistakes``      the ``mdn_loss`` mistakes: their catalogue and the diagnosis of a wrong value.
``checks``        the ``mdn_loss`` checks: inputs and judges, each declared once (``CHECKS``).
``exercises``     every exercise, by the function its students write.
``notebook``      the front end: ``run_check``, ``run_all_checks``, the in-process oracle.
``answer_cell``   read a notebook's answer cell(s) without trusting the file.
``student_loss``  lesson 4 trains with the student's own ``mdn_loss`` when it passes; ``save_answer``.
``saved_answer``  where a passing answer is kept across Colab runtimes (Drive) and where lesson 4 looks.

The judges never call student code themselves: they ask an oracle (:mod:`mdn_course.sandboxed`),
in the notebook in-process, in the instructor's grader inside a sandbox (:mod:`mdn_course.grading`).
"""
from ..sandboxed.oracle import Answer, Request, evaluate
from .checks import CHECKS, MDN_LOSS
from .exercises import EXERCISES, find_check
from .mistakes import MISTAKES
from .notebook import local_oracle, run_all_checks, run_check
from .registry import Check, CheckFailed, CheckResult, Exercise, Mistake, drive
from .student_loss import save_answer

__all__ = ["CHECKS", "MDN_LOSS", "MISTAKES", "EXERCISES", "Check", "CheckFailed", "CheckResult", "Exercise",
           "Mistake", "drive", "find_check", "local_oracle", "run_check", "run_all_checks", "save_answer", "Answer",
           "Request", "evaluate"]
