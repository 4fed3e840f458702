"""Lesson 9's cost: training C in the dream, dream throughput and the whole lesson, as ratios in one run.

    python benchmarks/bench_controller.py [--no-notebook]

Absolute seconds on a shared machine are noise, so every figure is measured side by side in one run
and printed as a ratio to the lesson model's training (``train_lesson_model``: 60 epochs on 3,600
sequences of 20 steps), which lesson 9 itself also runs, both in wall-clock seconds and in CPU seconds
(which other people's load does not inflate). Everything follows ``get_device()``; run it with
``OMP_NUM_THREADS=1`` to match the notebook kernels. The load average is printed with the result.

Section 6 (the loop on frames) is timed piece by piece, as the lesson runs it: V (``train_lesson_vae``),
M on V's latents with the read-out, C in M's dream (two temperatures, reading [z, h]), and the scoring
in the real pixel world (every step rendered and encoded). The issue's budgets: C in the dream at most
20 s (sections 3 and 6 together), the whole lesson at most 45 s, kernel start included.
"""
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from mdn_course import MDNRNN, describe_device, get_device, set_seed, train_lesson_model, train_model  # noqa: E402
from mdn_course.cma_training import dream_and_real_scores, train_in_dream, train_in_world  # noqa: E402
from mdn_course.control import ForkWorld, cliff_task, fork_road_task  # noqa: E402
from mdn_course.latent_memory import (camera_observer, fit_latent_readout, in_view_sequences,  # noqa: E402
                                      train_memory_on_latents)
from mdn_course.memory_world import generate_memory_world_data  # noqa: E402
from mdn_course.vae import train_lesson_vae  # noqa: E402

TEMPERATURES = (0.1, 0.5, 1.0, 1.5)
FRAME_TEMPERATURES = (0.1, 1.0)                                     # section 6's
BUDGET = dict(popsize=32, generations=60, episodes=32, seed=1)     # the lesson's


def _timed(fn):
    """Wall-clock seconds, CPU seconds of this process, and fn's result. With one thread, CPU seconds are
    what the wall clock would show on a quiet machine: other people's load slows the wall clock, not them."""
    started, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - started, time.process_time() - cpu, out


def main() -> None:
    device = get_device()
    print(f"device: {describe_device(device)}; load average before: {os.getloadavg()[0]:.2f}")
    base, base_cpu, (model, _, z, a) = _timed(lambda: train_lesson_model(seed=0, progress=False, device=device))
    task = cliff_task()
    dream_s, dream_cpu, _ = _timed(lambda: train_in_dream(model, task, TEMPERATURES, reads_memory=False,
                                                           progress=False, **BUDGET))
    dreamed_steps = len(TEMPERATURES) * BUDGET["popsize"] * BUDGET["episodes"] * task.steps * BUDGET["generations"]
    world_s, world_cpu, _ = _timed(lambda: train_in_world(task, reads_memory=False, progress=False, device=device,
                                                           **BUDGET))

    def memory_for_acting():
        z, a = generate_memory_world_data(2000, seq_len=20, seed=0)
        set_seed(0)
        memory = MDNRNN().to(device)
        train_model(memory, z, a, epochs=30, progress=False)
        for reads in (False, True):
            train_in_world(fork_road_task(), model=memory, env=ForkWorld(late_fork=True), reads_memory=reads,
                           popsize=32, generations=100, episodes=32, seed=1, progress=False)

    acting_s, acting_cpu, _ = _timed(memory_for_acting)

    seen_z, seen_a = in_view_sequences(z, a)
    v_s, v_cpu, (vae, _) = _timed(lambda: train_lesson_vae(seen_z, seed=0, progress=False, device=device))

    def memory_and_readout():
        memory, _, latents = train_memory_on_latents(vae, seen_z[:1200], seen_a[:1200], epochs=40, progress=False)
        return memory, fit_latent_readout(latents, seen_z[:1200], degree=3)

    m_s, m_cpu, (memory_on_frames, readout) = _timed(memory_and_readout)
    observe, dream_task = camera_observer(vae), task.read_through(readout, "the read-out")
    c_s, c_cpu, on_frames = _timed(lambda: train_in_dream(memory_on_frames, dream_task, FRAME_TEMPERATURES,
                                                          observe=observe, progress=False, **BUDGET))
    frame_steps = len(FRAME_TEMPERATURES) * BUDGET["popsize"] * BUDGET["episodes"] * task.steps * BUDGET["generations"]
    score_s, score_cpu, _ = _timed(lambda: dream_and_real_scores(
        task, {tau: (run.params, tau) for tau, run in on_frames.items()}, model=memory_on_frames, reads_memory=True,
        dream_task=dream_task, observe=observe))
    print(f"{'':74s} {'wall':>6s} {'ratio':>6s} {'CPU s':>6s} {'ratio':>6s}")
    rows = [("lesson model (train_lesson_model)", base, base_cpu),
            (f"C in the dream: {len(TEMPERATURES)} temperatures x {BUDGET['popsize']} candidates x "
             f"{BUDGET['episodes']} episodes x {BUDGET['generations']} gen.", dream_s, dream_cpu),
            ("C in the real world (yardstick), same budget", world_s, world_cpu),
            ("memory for acting: late-fork memory + two controllers", acting_s, acting_cpu),
            ("frames: V (train_lesson_vae, 16,384 frames, 2 epochs)", v_s, v_cpu),
            ("frames: M on V's latents (1,200 sequences, 40 epochs) + read-out", m_s, m_cpu),
            (f"frames: C in M's dream, {len(FRAME_TEMPERATURES)} temperatures, same budget, reads [z, h]", c_s, c_cpu),
            ("frames: scoring in dream and real pixel world, 500 episodes each", score_s, score_cpu),
            ("frames: section 6 in all", v_s + m_s + c_s + score_s, v_cpu + m_cpu + c_cpu + score_cpu),
            ("C in the dream, sections 3 and 6 together (budget: 20 s)", dream_s + c_s, dream_cpu + c_cpu)]
    if "--no-notebook" not in sys.argv[1:]:
        import resource

        from mdn_course.tools.notebook_runner import run_notebooks

        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        results = run_notebooks(Path("outputs") / "bench_controller", names=["09"], progress=False)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        kernel_cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
        rows.append(("lesson 9 headless, kernel start included (CPU: the kernel's)", results[0][1], kernel_cpu))
    for name, wall, cpu in rows:
        print(f"{name:74s} {wall:6.1f} {wall / base:6.2f} {cpu:6.1f} {cpu / base_cpu:6.2f}")
    print(f"dream throughput: {dreamed_steps / dream_s:,.0f} dreamed candidate-steps per second of wall clock, "
          f"{dreamed_steps / dream_cpu:,.0f} per CPU second ({dreamed_steps:,} steps)")
    print(f"dream throughput on frames: {frame_steps / c_s:,.0f} dreamed candidate-steps per second of wall clock, "
          f"{frame_steps / c_cpu:,.0f} per CPU second ({frame_steps:,} steps)")
    print("with one thread (OMP_NUM_THREADS=1, as in the kernels), CPU seconds are about what a quiet machine's "
          "wall clock shows; the ratios are the load-independent figures")
    print(f"load average after: {os.getloadavg()[0]:.2f} (torch threads: {torch.get_num_threads()})")


if __name__ == "__main__":
    main()
