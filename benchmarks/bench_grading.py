"""Grading throughput: N copies of the correct submission plus a few wrong ones, sandboxed, --jobs 2.

    python benchmarks/bench_grading.py [--copies 16] [--jobs 2] [--no-sandbox]

Prints submissions per minute (goal: at least 20/min for honest submissions on a 2-core
machine), the time of the whole command (sandbox probe and interpreter start included), and
checks every row got the status and points its submission deserves.
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "grading_corpus"
WRONG = ["02_wrong_sign", "05_naive_logsumexp", "07_returns_item", "24_stub"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=16, help="copies of the correct submission")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-sandbox", action="store_true")
    args = parser.parse_args(argv)

    spec = importlib.util.spec_from_file_location("make_corpus", CORPUS / "make_corpus.py")
    mc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mc)
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        subs = Path(tmp) / "subs"
        subs.mkdir()
        expected = {}
        for i in range(args.copies):
            shutil.copy(CORPUS / "01_correct.ipynb", subs / f"correct_{i:03d}.ipynb")
            expected[f"correct_{i:03d}"] = mc.EXPECTED["01_correct"]
        for name in WRONG:
            shutil.copy(CORPUS / f"{name}.ipynb", subs / f"{name}.ipynb")
            expected[name] = mc.EXPECTED[name]
        out = Path(tmp) / "grades.csv"
        cmd = [sys.executable, "-m", "mdn_course", "grade", str(subs), "--out", str(out), "--jobs", str(args.jobs)]
        if args.no_sandbox:
            cmd.append("--no-sandbox")
        env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
        start = time.perf_counter()
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        rows = list(csv.DictReader(open(out, encoding="utf-8")))
        wrong = []
        for r in rows:
            e = expected[Path(r["submission"]).stem]
            if (r["status"], int(r["points"])) != (e["status"], e["points"]):
                wrong.append(r["submission"])
    n = len(rows)
    print(f"graded {n} submissions ({args.copies} correct + {len(WRONG)} wrong) with --jobs {args.jobs} "
          f"on {os.cpu_count()} cores{' without sandbox' if args.no_sandbox else ''}: {elapsed:.1f} s, "
          f"{elapsed / n:.2f} s each, {60 * n / elapsed:.1f} submissions/minute (goal >= 20)")
    load = os.getloadavg()[0]
    print(f"CPU time of the command and the processes it waited for: {cpu:.1f} s ({cpu / n:.2f} s per submission); "
          f"load average {load:.1f} on {os.cpu_count()} cores (other work on the machine slows the figure above)")
    if wrong:
        print(f"UNEXPECTED grades for: {', '.join(wrong)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
