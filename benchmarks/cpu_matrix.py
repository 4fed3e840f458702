"""The CPU perturbation matrix: strict nbval of the lessons under other ways of computing the same floats.

    python benchmarks/cpu_matrix.py [--set pairs|ci|full] [--combo NAME ...] [--only 01 05 ...] [--json FILE]

The same as ``python -m mdn_course.tools.cpu_matrix`` (see that module for the combinations).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mdn_course.tools.cpu_matrix import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
