"""What the lessons' new training costs, as ratios to the lesson model's own training.

    python benchmarks/bench_lessons.py [--notebooks]

Absolute seconds on a shared 2-core machine are noise; every figure here is measured
side by side in one run and printed as a ratio to the lesson model (60 epochs, 3,600
sequences of 20 steps), which lessons 4 and 5 already train. ``--notebooks`` also runs
lessons 2, 4, 5, 6 and 7 headless and prints each one's time as a ratio to lesson 2,
which trains nothing (kernel start and imports only).
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from mdn_course import MDNRNN, generate_synthetic_data, set_seed, train_model  # noqa: E402
from mdn_course.architectures import FeedForwardMDN, TransformerMDN  # noqa: E402
from mdn_course.memory_world import generate_memory_world_data  # noqa: E402


def _seconds(build, z, a, **kwargs) -> float:
    set_seed(0)
    model = build()
    started = time.perf_counter()
    train_model(model, z, a, progress=False, cpu_thread_count=1, **kwargs)
    return time.perf_counter() - started


def training_ratios() -> None:
    z, a = generate_synthetic_data(seed=0)
    mz, ma = generate_memory_world_data(2000, seq_len=20, seed=0)
    lz, la = generate_memory_world_data(400, seq_len=100, seed=0)
    base = _seconds(MDNRNN, z, a)
    rows = [("lesson 4: K = 1, 20 epochs", _seconds(lambda: MDNRNN(n_components=1), z, a, epochs=20)),
            ("lesson 6: feed-forward, late-fork world", _seconds(FeedForwardMDN, mz, ma, epochs=30)),
            ("lesson 6: LSTM, late-fork world", _seconds(MDNRNN, mz, ma, epochs=30)),
            ("lesson 6: Transformer, late-fork world", _seconds(lambda: TransformerMDN(n_layers=1), mz, ma, epochs=30)),
            ("lesson 7: LSTM on 100-step sequences", _seconds(MDNRNN, lz, la, epochs=30, batch_size=50))]
    print(f"lesson model (60 epochs, 3,600 x 20 steps): {base:.1f} s on {torch.get_num_threads()} thread(s) = 1.00")
    for name, seconds in rows:
        print(f"{name:42s} {seconds / base:5.2f} x the lesson model")


def notebook_ratios() -> None:
    from mdn_course.tools.notebook_runner import run_notebooks

    results = run_notebooks(Path("outputs") / "bench_lessons", names=["02", "04", "05", "06", "07"], progress=False)
    times = {Path(str(name)).stem[:2]: seconds for name, seconds, _ in results}
    for stem, seconds in times.items():
        print(f"lesson {stem}: {seconds:5.1f} s headless = {seconds / times['02']:4.1f} x lesson 2 (no training)")


if __name__ == "__main__":
    training_ratios()
    if "--notebooks" in sys.argv[1:]:
        notebook_ratios()
