"""The exercises, as students run them: write ``mdn_loss`` and ``training_step`` yourself, and get checks
that name your mistake.

One job per module:

``registry``       what checks are made of: ``Mistake``, ``Check`` (declared once), ``Exercise``, ``drive``.
``mistakes``       the ``mdn_loss`` mistakes: their catalogue and the diagnosis of a wrong value.
``checks``         the ``mdn_loss`` checks: inputs and judges, each declared once (``CHECKS``).
``step_mistakes``  the ``training_step`` mistakes, the trusted step they are measured against, their diagnosis.
``step_checks``    the ``training_step`` checks (``TRAINING_STEP``).
``exercises``      every exercise, by the function its students write.
``notebook``       the front end: ``run_check``, ``check_summary``, ``explain_check``, ``run_all_checks``,
                   the in-process oracle.
``answer_cell``    read a notebook's answer cell(s) without trusting the file, and say which exercise it is.
``student_loss``   lesson 4 trains with the student's own ``mdn_loss`` when it passes; ``save_answer``.
``saved_answer``   where a passing answer is kept across Colab runtimes (Drive) and where lesson 4 looks.

The judges never call student code themselves: they ask an oracle (:mod:`mdn_course.sandboxed`),
in the notebook in-process, in the instructor's grader inside a sandbox (:mod:`mdn_course.grading`).
"""
from ..sandboxed.oracle import Answer, Request, evaluate
from .checks import CHECKS, MDN_LOSS
from .exercises import EXERCISES, find_check
from .mistakes import MISTAKES
from .notebook import check_summary, explain_check, local_oracle, run_all_checks, run_check
from .registry import Check, CheckFailed, CheckResult, Exercise, Mistake, drive
from .step_checks import TRAINING_STEP
from .student_loss import save_answer

__all__ = ["CHECKS", "MDN_LOSS", "MISTAKES", "TRAINING_STEP", "EXERCISES", "Check", "CheckFailed", "CheckResult",
           "Exercise", "Mistake", "drive", "find_check", "local_oracle", "run_check", "run_all_checks",
           "check_summary", "explain_check", "save_answer", "Answer", "Request", "evaluate"]
