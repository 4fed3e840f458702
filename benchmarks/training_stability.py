"""Do the lessons' trainings end where they are stable? Two measurements per training a lesson prints from.

    python benchmarks/training_stability.py [--set ci|pairs|full | --combo NAME ...] [--quick]

1. **The end of the run.** During the last 10 % of the optimiser steps, the loss the lesson
   prints is evaluated (no gradients, fixed data) after every step; the spread (max - min) says
   how far the printed number could move if the last step landed elsewhere, and the bounce
   (total variation - |net change|) how much of that is up and down rather than a steady
   descent. A training that ends where it is stable bounces far below the printed precision (0.01).
2. **Other CPUs.** The same trainings run again in fresh processes under the CPU perturbation
   matrix's combinations (``mdn_course.tools.cpu_matrix``, default: its ``ci`` set); the final
   evaluated values are printed side by side, with their range.

Lesson 1's mixture fit is also measured with its old recipe (a constant learning rate), to show
what the schedule changed. Everything runs on the CPU; ``--quick`` skips lesson 7's 100-step model.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from mdn_course import (MDNRNN, evaluate_nll, generate_synthetic_data, mdn_nll_from_logs, set_seed,  # noqa: E402
                        train_model)
from mdn_course.architectures import FeedForwardMDN, TransformerMDN  # noqa: E402
from mdn_course.memory_world import generate_memory_world_data  # noqa: E402
from mdn_course.tools.lesson_cells import defining_cells  # noqa: E402
from mdn_course.training import fit_full_batch  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


class Tail:
    """An ``on_step`` callback that evaluates ``measure(model)`` at every step of the last 10 %.

    Switched off (``Tail.enabled = False``) it measures nothing: the runs under the other
    combinations only need the final values.
    """

    enabled = True

    def __init__(self, total_steps: int, measure: Callable[[torch.nn.Module], float]):
        self.first = total_steps - max(1, total_steps // 10) + 1
        self.measure, self.values = measure, []

    def __call__(self, step: int, model: torch.nn.Module) -> None:
        if self.enabled and step >= self.first:
            was_training = model.training
            model.eval()
            with torch.no_grad():
                self.values.append(float(self.measure(model)))
            model.train(was_training)

    @property
    def spread(self) -> float:
        return max(self.values) - min(self.values) if self.values else float("nan")

    @property
    def bounce(self) -> float:
        """How far the values went up and down beyond a steady drift: total variation - |net change|."""
        if len(self.values) < 2:
            return float("nan")
        total = sum(abs(b - a) for a, b in zip(self.values, self.values[1:]))
        return total - abs(self.values[-1] - self.values[0])


def _lesson1(constant_lr: bool) -> Dict[str, Tuple[float, float, float, int]]:
    """Lesson 1's two fits, of the data and models its cells build; ``constant_lr``: its old recipe."""
    lesson = defining_cells("01_why_distributions.ipynb", "two_branch_data", "TinyMixtureModel")
    x, y, regressor, mixture = (lesson[name] for name in ("x", "y", "regressor", "mixture_model"))
    fraction = 1.0 if constant_lr else 1e-3
    results = {}
    for name, model, loss_of in (("squared error", regressor, lambda m: ((m(x) - y) ** 2).mean()),
                                 ("mixture NLL", mixture, lambda m: mdn_nll_from_logs(*m(x), y))):
        tail = Tail(600, loss_of)
        final = fit_full_batch(model, loss_of, steps=600, lr=1e-2, final_lr_fraction=fraction, on_step=tail)
        results[name] = (final, tail.spread, tail.bounce, len(tail.values))
    return results


def _train(build, z, a, measure, steps: int, **kwargs) -> Tuple[float, float, float, int]:
    set_seed(0)
    model = build()
    tail = Tail(steps, measure)
    train_model(model, z, a, progress=False, on_step=tail, **kwargs)
    return float(measure(model)), tail.spread, tail.bounce, len(tail.values)


def _steps(n_sequences: int, epochs: int, batch_size: int = 256) -> int:
    n_train = n_sequences - max(1, round(0.1 * n_sequences))
    return epochs * -(-n_train // batch_size)


def measure_all(quick: bool = False) -> Dict[str, Tuple[float, float, float, int]]:
    """{training: (final evaluated value, spread and bounce over the last 10 % of steps, steps measured)}."""
    rows: Dict[str, Tuple[float, float, float, int]] = {}
    for name, value in _lesson1(constant_lr=True).items():
        rows[f"01 {name}, constant lr (before)"] = value
    for name, value in _lesson1(constant_lr=False).items():
        rows[f"01 {name}, cosine to lr/1000"] = value
    z, a = generate_synthetic_data(seed=0)
    z_new, a_new = generate_synthetic_data(1000, seed=123)
    fresh = lambda m: evaluate_nll(m, z_new, a_new)  # noqa: E731
    rows["04/05 lesson model, fresh-data NLL"] = _train(MDNRNN, z, a, fresh, _steps(4000, 60))
    rows["04 K = 1 model, fresh-data NLL"] = _train(lambda: MDNRNN(n_components=1), z, a, fresh,
                                                    _steps(4000, 20), epochs=20)
    mz, ma = generate_memory_world_data(2000, seq_len=20, seed=0)
    tz, ta = generate_memory_world_data(1000, seq_len=20, seed=7)
    test = lambda m: evaluate_nll(m, tz, ta)  # noqa: E731
    for name, build in (("feed-forward", FeedForwardMDN), ("LSTM (also lesson 7's 20-step)", MDNRNN),
                        ("Transformer", lambda: TransformerMDN(n_layers=1))):
        rows[f"06 {name}, test NLL"] = _train(build, mz, ma, test, _steps(2000, 30), epochs=30)
    if not quick:
        lz, la = generate_memory_world_data(400, seq_len=100, seed=0)
        lz_test, la_test = generate_memory_world_data(200, seq_len=100, seed=7)
        rows["07 LSTM on 100-step sequences, test NLL"] = _train(
            MDNRNN, lz, la, lambda m: evaluate_nll(m, lz_test, la_test), _steps(400, 30, 50), epochs=30, batch_size=50)
    return rows


def _child(quick: bool, tail: bool) -> None:
    Tail.enabled = tail
    print(json.dumps(measure_all(quick)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="ci", choices=("ci", "pairs", "full"))
    parser.add_argument("--combo", nargs="+", metavar="NAME", help="these combinations instead of a set")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tail", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args.quick, args.tail)

    from mdn_course.tools.cpu_matrix import combo_set, full_matrix
    from mdn_course.tools.nbval_run import nbval_env

    combos = combo_set(args.set)
    if args.combo:
        known = {c.name: c for c in full_matrix() + combo_set("ci")}
        combos = [known[name] for name in args.combo]
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ["?"]
    print(f"load average at start: {' '.join(load)}")
    finals: Dict[str, List[float]] = {}
    spreads: Dict[str, Tuple[float, float, int]] = {}
    for combo in combos:
        cmd = ([sys.executable, str(Path(__file__).resolve()), "--child"] + (["--quick"] if args.quick else [])
               + (["--tail"] if combo is combos[0] else []))
        proc = subprocess.run(cmd, cwd=REPO, env=nbval_env(combo.env), capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{combo.name} failed:\n{proc.stderr[-3000:]}")
        for name, (final, spread, bounce, steps) in json.loads(proc.stdout.strip().splitlines()[-1]).items():
            finals.setdefault(name, []).append(final)
            if combo is combos[0]:
                spreads[name] = (spread, bounce, steps)
        print(f"  ran {combo.name}: {combo.describe()}", flush=True)
    heads = [c.name for c in combos]
    width = max(len(n) for n in finals)
    print(f"\n{'training (what the lesson prints)':{width}s}  {'last 10%: steps':>15s} {'spread':>7s} {'bounce':>7s}  "
          + "  ".join(f"{h:>14s}" for h in heads) + f"  {'range':>8s}")
    for name, values in finals.items():
        spread, bounce, steps = spreads[name]
        print(f"{name:{width}s}  {steps:15d} {spread:7.4f} {bounce:7.4f}  " + "  ".join(f"{v:14.4f}" for v in values)
              + f"  {max(values) - min(values):8.4f}")
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ["?"]
    print(f"spread: max - min of the evaluated value over the last 10 % of steps, under {combos[0].name}; bounce: "
          f"how much of that was up-and-down rather than a steady drift (total variation - |net change|); "
          f"range: max - min of the final value across the combinations. Load average at the end: {' '.join(load)}")


if __name__ == "__main__":
    main()
