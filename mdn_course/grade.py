"""``python -m mdn_course.grade``: the grader's old command, kept so instructors' scripts keep working.

The grader is now ``python -m mdn_course grade`` (same arguments); this says so on stderr and runs it.
"""
import sys

from mdn_course.grading.cli import main

if __name__ == "__main__":
    print("note: `python -m mdn_course.grade` is now `python -m mdn_course grade`; running that", file=sys.stderr)
    sys.exit(main(sys.argv[1:]))
