"""Grading throughput: N copies of the correct submission plus a few wrong ones, sandboxed, --jobs 2.

    python benchmarks/bench_grading.py [--copies 16] [--jobs 2] [--no-sandbox] [any grader option]

Grades with :func:`mdn_course.grading.batch.grade_paths`, the function behind ``python -m
mdn_course grade`` and the Gradescope autograder, with the same options. Prints submissions per
minute (goal: at least 20/min for honest submissions on a 2-core machine), the time of the
sandbox probe apart, the CPU time of the workers and their sandboxes, and checks that every row
got the status and points its submission deserves.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from grading_helpers import CORPUS, mc  # noqa: E402
from mdn_course.grading.batch import grade_paths  # noqa: E402
from mdn_course.grading.options import add_options, options_from, ready  # noqa: E402

WRONG = ["02_wrong_sign", "05_naive_logsumexp", "07_returns_item", "24_stub"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=16, help="copies of the correct submission")
    add_options(parser)
    parser.set_defaults(jobs=2)
    args = parser.parse_args(argv)
    opts = options_from(args)
    started = time.perf_counter()
    if not ready(opts):
        return 1
    probe = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        subs = Path(tmp)
        expected = {}
        for i in range(args.copies):
            shutil.copy(CORPUS / "01_correct.ipynb", subs / f"correct_{i:03d}.ipynb")
            expected[f"correct_{i:03d}"] = mc.EXPECTED["01_correct"]
        for name in WRONG:
            shutil.copy(CORPUS / f"{name}.ipynb", subs / f"{name}.ipynb")
            expected[name] = mc.EXPECTED[name]
        paths = sorted(subs.glob("*.ipynb"))
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        rows = grade_paths(paths, opts, args.jobs)
        elapsed = time.perf_counter() - start
        cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    wrong = [r.submission for r in rows
             if (r.status, r.points) != (expected[Path(r.submission).stem]["status"],
                                         expected[Path(r.submission).stem]["points"])]
    n = len(rows)
    print(f"graded {n} submissions ({args.copies} correct + {len(WRONG)} wrong) with --jobs {args.jobs} "
          f"on {os.cpu_count()} cores{'' if opts.use_sandbox else ' without sandbox'}: {elapsed:.1f} s "
          f"(the sandbox probe before it: {probe:.1f} s), {elapsed / n:.2f} s each, "
          f"{60 * n / elapsed:.1f} submissions/minute (goal >= 20)")
    print(f"CPU time of the grading workers and their sandboxes: {cpu:.1f} s ({cpu / n:.2f} s per submission); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other work on the machine slows the "
          "figure above)")
    if wrong:
        print(f"UNEXPECTED grades for: {', '.join(wrong)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
