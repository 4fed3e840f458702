"""The exercise: write ``mdn_loss`` yourself.

``oracle`` calls a student's function and reports plain facts about the call (standalone:
stdlib + torch, so the grader can copy it into a sandbox); ``checks`` holds the judges that
turn those facts into verdicts and named mistakes (one registry for the notebook's check
cells, the assistant's hints and the instructor's grader); ``student_version`` makes the
student copy of the exercise notebook from its solution.
"""
from .checks import (CHECKS, MISTAKES, Check, CheckFailed, CheckResult, Mistake, drive, local_oracle,
                     run_all_checks, run_check)
from .oracle import Answer, Request, evaluate

__all__ = ["CHECKS", "MISTAKES", "Check", "CheckFailed", "CheckResult", "Mistake", "drive", "local_oracle",
           "run_check", "run_all_checks", "Answer", "Request", "evaluate"]
