"""Lesson 8 (dreams you can see), timed headless, as a ratio to the lesson model's own training.

    python benchmarks/bench_pixel_lesson.py [--repeat N]

The lesson must run in at most 30 s on a 2-core CPU, kernel start included. Absolute seconds on
a shared machine are noise, so this measures, in one run and on the same machine: the lesson
model's training (``train_lesson_model``: 60 epochs, 3,600 sequences, on one thread, as the
lesson kernels run), then lesson 8 executed headless in a fresh kernel (what
``python -m mdn_course run-notebooks --only 08`` does), then the lesson model again. It prints
the lesson's seconds, the lesson model's (mean of the two), their ratio and the load average
before and after. On a quiet machine the lesson model takes 4.5-6.5 s, so a ratio of 4.6 or less
keeps the lesson within 30 s there.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from mdn_course import train_lesson_model  # noqa: E402
from mdn_course.tools.notebook_runner import run_notebooks  # noqa: E402
from mdn_course.training import cpu_threads  # noqa: E402

LESSON = "08"


def lesson_model_seconds() -> float:
    started = time.perf_counter()
    with cpu_threads(1):
        train_lesson_model(seed=0, progress=False, device=torch.device("cpu"))
    return time.perf_counter() - started


def lesson_seconds() -> float:
    with tempfile.TemporaryDirectory() as out:
        [(name, seconds, ok)] = run_notebooks(Path(out), names=[LESSON], progress=False)
    if not ok:
        raise SystemExit(f"{name} failed; run python -m mdn_course run-notebooks --only {LESSON} to see why")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="measure the lesson this many times (best counts)")
    args = parser.parse_args()
    load_before = os.getloadavg()
    model = [lesson_model_seconds()]
    lesson = [lesson_seconds() for _ in range(args.repeat)]
    model.append(lesson_model_seconds())
    load_after = os.getloadavg()
    base, best = sum(model) / len(model), min(lesson)
    print(f"lesson model (train_lesson_model, 1 thread): {base:.1f} s (runs: {', '.join(f'{s:.1f}' for s in model)})")
    print(f"lesson 8 headless, kernel start included:    {best:.1f} s (runs: {', '.join(f'{s:.1f}' for s in lesson)})")
    print(f"ratio: {best / base:.2f} x the lesson model; at 6.5 s for the lesson model that is {6.5 * best / base:.0f} s")
    print(f"load average (1, 5, 15 min) before: {', '.join(f'{v:.2f}' for v in load_before)}; "
          f"after: {', '.join(f'{v:.2f}' for v in load_after)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
