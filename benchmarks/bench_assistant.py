"""Assistant benchmark: retrieval accuracy on the question bank, offline answer latency, index build time.

    python benchmarks/bench_assistant.py [--repeats 5]

Accuracy: for each question in tests/assistant_questions.json, is its labelled (lesson, section)
the first section ask() would cite (top-1), or among the first three (top-3)? Reported for the
whole corpus and, to show what the written FAQ adds, for lessons and narration alone.
Latency: wall time of ask(question) per question, offline, after the index is built (median and
95th percentile over every question, repeated). Build: reading the notebooks and transcripts and
indexing them (median of repeats), and the one-off import of the retrieval library.
Goals (issue 10): top-3 >= 90 %, latency < 200 ms, build < 2 s.
"""
import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.pop("MDN_COURSE_LLM_URL", None)       # offline figures only


def accuracy(index, questions):
    top1 = top3 = 0
    misses = []
    for q in questions:
        ranked = [(h.notebook, h.section) for h in index.search(q["q"], k=3)]
        want = (q["nb"], q["section"])
        top1 += ranked[:1] == [want]
        top3 += want in ranked
        if want not in ranked:
            misses.append(f'{q["q"]!r} -> {[s for _, s in ranked]} (labelled {q["section"]!r})')
    return top1 / len(questions), top3 / len(questions), misses


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    import mdn_course  # noqa: F401  (torch: already loaded in any lesson, so not counted)

    t0 = time.perf_counter()
    from mdn_course.assistant import ask
    from mdn_course.assistant.retrieval import build_index
    import_s = time.perf_counter() - t0

    builds = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        index = build_index()
        builds.append(time.perf_counter() - t0)
    lessons_only = build_index(include_faq=False)

    bank = json.loads((ROOT / "tests" / "assistant_questions.json").read_text())
    questions = bank["questions"]
    t1, t3, misses = accuracy(index, questions)
    l1, l3, _ = accuracy(lessons_only, questions)

    latencies = []
    for _ in range(args.repeats):
        for q in questions + [{"q": x} for x in bank["off_topic"]]:
            t0 = time.perf_counter()
            ask(q["q"], index=index)
            latencies.append(time.perf_counter() - t0)
    latencies.sort()
    p95 = latencies[int(0.95 * (len(latencies) - 1))]

    print(f"questions: {len(questions)} labelled, {len(bank['off_topic'])} off-topic; "
          f"corpus: {len(index.passages)} passages")
    print(f"retrieval, full corpus (lessons + narration + FAQ): top-1 {t1:.1%}, top-3 {t3:.1%}   (goal top-3 >= 90%)")
    print(f"retrieval, lessons + narration only:                 top-1 {l1:.1%}, top-3 {l3:.1%}")
    print(f"offline ask() latency: median {1000 * statistics.median(latencies):.2f} ms, "
          f"p95 {1000 * p95:.2f} ms, max {1000 * latencies[-1]:.2f} ms   (goal < 200 ms)")
    print(f"index build: median {1000 * statistics.median(builds):.0f} ms over {args.repeats} builds   (goal < 2 s); "
          f"one-off import of the assistant with bm25s/scipy (torch already loaded): {import_s:.2f} s")
    for miss in misses:
        print("  top-3 miss:", miss)
    return 0


if __name__ == "__main__":
    sys.exit(main())
