"""Dreaming benchmark: batched dream(n=1000) vs a one-at-a-time NumPy sampling loop.

    python benchmarks/bench_dream.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mdn_course.tools.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["--only", "dream", *sys.argv[1:]]))
