"""Training benchmark: default recipe vs the reference lesson's recipe, side by side.

    python benchmarks/bench_training.py [--seed N] [--no-scaling]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mdn_course.tools.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["--only", "training", *sys.argv[1:]]))
