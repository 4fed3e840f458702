"""The exercise: write ``mdn_loss`` yourself.

``checks`` holds the diagnostic checks (one registry for the notebook's check cells, the
assistant's hints and the instructor's grader); ``student_version`` makes the student copy
of the exercise notebook from its solution.
"""
from .checks import CHECKS, CheckFailed, run_all_checks, run_check

__all__ = ["CHECKS", "CheckFailed", "run_check", "run_all_checks"]
