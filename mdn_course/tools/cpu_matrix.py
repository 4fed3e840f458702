"""The CPU perturbation matrix: the strict notebook tests under other ways of computing the same floats.

A stored output must reproduce on CPUs we cannot test on. What differs between
CPUs is which kernels run and how sums are split, and on one machine four
settings change exactly that:

* ``ATEN_CPU_CAPABILITY``: ATen's vector kernels (``default`` = no vector
  extensions, ``avx2``; unset = the best this CPU has);
* ``OMP_NUM_THREADS``: torch's threads, which split reductions differently;
* ``MKL_CBWR``: the code path MKL's BLAS takes (``COMPATIBLE``: the generic
  one, ``AVX2``);
* ``ONEDNN_MAX_CPU_ISA``: the instruction set oneDNN (the LSTM's kernels) may
  use (``SSE41``).

Each setting alone changes the trained weights of at least one lesson model on
the Intel Xeon (AVX-512) this was built on (measured by checksum after 3 epochs:
``ATEN_CPU_CAPABILITY=avx2`` only the Transformer's, the others the LSTM's too).
The matrix runs the strict nbval
of the lessons (:func:`mdn_course.tools.nbval_run.run_nbval`, the same run as
the test suite's) under each combination and prints combination x notebook:
``ok`` with the largest drift seen (as a share of what the cell's tolerance
allows), or which cells failed and by how much.

Sets of combinations:

* ``pairs`` (the default, 9 runs): every pair of settings of any two factors
  appears in at least one run (a pairwise covering design of the 3 x 2 x 3 x 2
  settings), the first run being how the stored outputs were made;
* ``full``: all 36 combinations;
* ``ci``: what the test suite runs (:data:`CI_COMBOS`).

Command line (``benchmarks/cpu_matrix.py`` is the same)::

    python -m mdn_course.tools.cpu_matrix [--set pairs|ci|full] [--combo NAME ...] [--only 01 05 ...] [--json FILE]

Its exit status is 1 when any run failed.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from .nbval_run import cell_results, read_drift_log, run_nbval
from .notebook_runner import series
from .notebooks import REPO_ROOT

__all__ = ["Combo", "FACTORS", "PAIRS", "CI_COMBOS", "full_matrix", "combo_set", "NotebookOutcome",
           "run_combo", "format_table", "main"]


@dataclass(frozen=True)
class Combo:
    """One way of computing: values for some of the factors; a factor left out is unset (native)."""

    name: str
    settings: Tuple[Tuple[str, str], ...] = ()

    @property
    def env(self) -> Dict[str, str]:
        return dict(self.settings)

    def describe(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.settings) or "native, 1 thread"


#: The factors and their settings; ``None`` means unset (this CPU's own choice). Threads: 1 is how
#: the stored outputs were made.
FACTORS: Dict[str, Tuple[Optional[str], ...]] = {
    "ATEN_CPU_CAPABILITY": (None, "default", "avx2"),
    "OMP_NUM_THREADS": ("1", "2"),
    "MKL_CBWR": (None, "COMPATIBLE", "AVX2"),
    "ONEDNN_MAX_CPU_ISA": (None, "SSE41"),
}
_SHORT = {"ATEN_CPU_CAPABILITY": "aten", "OMP_NUM_THREADS": "t", "MKL_CBWR": "mkl", "ONEDNN_MAX_CPU_ISA": "onednn"}


def _combo(*values: Optional[str]) -> Combo:
    settings = tuple((k, v) for k, v in zip(FACTORS, values) if v is not None)
    parts = [f"{_SHORT[k]}-{v.lower()}" if k != "OMP_NUM_THREADS" else f"t{v}"
             for k, v in zip(FACTORS, values) if v is not None]
    return Combo("-".join(parts), settings)


def full_matrix() -> List[Combo]:
    """All 36 combinations of :data:`FACTORS`."""
    return [_combo(*values) for values in itertools.product(*FACTORS.values())]


#: A pairwise covering design: any two factors take every pair of their settings in some run.
PAIRS: List[Combo] = [
    _combo(None, "1", None, None),                 # the stored outputs' own settings
    _combo(None, "2", "COMPATIBLE", "SSE41"),
    _combo(None, "1", "AVX2", "SSE41"),
    _combo("default", "1", "COMPATIBLE", None),
    _combo("default", "2", None, "SSE41"),
    _combo("default", "2", "AVX2", None),
    _combo("avx2", "2", None, None),
    _combo("avx2", "1", "COMPATIBLE", "SSE41"),
    _combo("avx2", "2", "AVX2", "SSE41"),
]

#: What the test suite's strict run uses: the stored outputs' settings, and one run in which every
#: factor differs from them (no vector kernels, two threads, MKL's generic path, oneDNN on SSE4.1).
CI_COMBOS: List[Combo] = [PAIRS[0], _combo("default", "2", "COMPATIBLE", "SSE41")]


def combo_set(name: str) -> List[Combo]:
    sets = {"pairs": PAIRS, "ci": CI_COMBOS, "full": full_matrix()}
    if name not in sets:
        raise ValueError(f"unknown set {name!r}; choose one of {', '.join(sets)}")
    return list(sets[name])


@dataclass
class NotebookOutcome:
    """One notebook under one combination."""

    cells: Dict[int, str] = field(default_factory=dict)        # code cell -> passed / failed / skipped
    drift: Dict[int, dict] = field(default_factory=dict)       # code cell -> drift record (worst pair, excess)
    rerun: bool = False                                        # the first run's kernel failed; this is the second

    @property
    def kernel_failed(self) -> bool:
        """Every cell failed and none was compared: the kernel died or never started, no numerics result."""
        return bool(self.cells) and len(self.failed) == len(self.cells) and not self.drift

    @property
    def failed(self) -> List[int]:
        return sorted(n for n, status in self.cells.items() if status != "passed")

    @property
    def passed(self) -> bool:
        return bool(self.cells) and not self.failed

    def worst_excess(self) -> float:
        values = [r["excess"] for r in self.drift.values() if r.get("excess") is not None]
        return max(values, default=0.0)

    def summary(self) -> str:
        note = " (rerun)" if self.rerun else ""
        if not self.cells:
            return "NOT RUN"
        if self.passed:
            return f"ok {self.worst_excess():.2f}{note}"
        if self.kernel_failed:
            return f"FAIL all {len(self.cells)} cells:error (kernel){note}"
        return "FAIL " + " ".join(self._cell_failure(n) for n in self.failed) + note

    def _cell_failure(self, n: int) -> str:
        record = self.drift.get(n)
        if record is None:
            return f"c{n}:error"                                # the cell raised, or nothing was compared
        if record.get("excess") is not None:
            stored, new = record["worst"]
            return f"c{n}:{record['excess']:.1f}x({stored}->{new})"
        if record.get("same_text") and record.get("worst"):      # a number moved where nothing may move
            return f"c{n}:exact({record['worst'][0]}->{record['worst'][1]})"
        return f"c{n}:text" + (f"({record['worst'][0]}->{record['worst'][1]})" if record.get("worst") else "")


def _run_once(combo: Combo, paths: Sequence[Path], workers: int, folder: Path, timeout: int
              ) -> Tuple[Dict[str, NotebookOutcome], str]:
    xml, log = folder / f"{combo.name}.xml", folder / f"{combo.name}.drift.jsonl"
    log.unlink(missing_ok=True)
    inside = all(Path(p).resolve().is_relative_to(REPO_ROOT) for p in paths)
    proc = run_nbval(paths, xml, settings=combo.env, workers=workers, drift_log=log, timeout=timeout,
                     rootdir=REPO_ROOT if inside else Path(paths[0]).resolve().parent)
    cells, drift = cell_results(xml), read_drift_log(log)
    outcomes = {p.name: NotebookOutcome(cells=cells.get(p.name, {})) for p in paths}
    for record in drift:
        if record["notebook"] in outcomes:
            outcomes[record["notebook"]].drift[int(record["cell"])] = record
    return outcomes, proc.stdout


def run_combo(combo: Combo, paths: Sequence[Path], *, workers: int = 2, folder: Optional[Path] = None,
              timeout: int = 1800) -> Tuple[Dict[str, NotebookOutcome], float, str]:
    """Strict nbval of ``paths`` under ``combo``: ({notebook name: outcome}, seconds, nbval's stdout).

    A notebook whose kernel failed (every cell failed, none compared) runs once more on its own,
    and its outcome says so: a kernel that did not start says nothing about numerics.
    """
    with tempfile.TemporaryDirectory(prefix="cpu-matrix-") as scratch:
        where = Path(folder or scratch)
        started = time.perf_counter()
        outcomes, stdout = _run_once(combo, paths, workers, where, timeout)
        failed = [p for p in paths if outcomes[p.name].kernel_failed]
        if failed:
            again, more = _run_once(combo, failed, 1, where, timeout)
            for name, outcome in again.items():
                outcome.rerun = True
                outcomes[name] = outcome
            stdout += "\n--- rerun of " + ", ".join(p.name for p in failed) + " ---\n" + more
        seconds = time.perf_counter() - started
    return outcomes, seconds, stdout


def format_table(rows: Sequence[Tuple[Combo, Dict[str, NotebookOutcome], float]], paths: Sequence[Path]) -> str:
    """The combination x notebook table (notebooks by their number), one row per combination."""
    heads = [p.name[:2] for p in paths]
    cells = [[outcomes[p.name].summary() for p in paths] for _, outcomes, _ in rows]
    name_width = max([len("combination")] + [len(c.name) for c, _, _ in rows])
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(heads)]
    lines = ["  ".join(["combination".ljust(name_width)] + [h.ljust(w) for h, w in zip(heads, widths)] + ["seconds"])]
    for (combo, _, seconds), row in zip(rows, cells):
        lines.append("  ".join([combo.name.ljust(name_width)] + [c.ljust(w) for c, w in zip(row, widths)]
                               + [f"{seconds:7.0f}"]))
    lines.append("ok X: passed; X = the largest move of any number, as a share of what its cell's tolerance "
                 "allows (1.00 = at the limit). FAIL cN:Mx(stored->new): code cell N moved M times the allowance; "
                 "cN:exact: a number moved in a cell (or line) that allows no move; cN:text: the text or an integer "
                 "changed; cN:error: the cell raised; (rerun): the first run's "
                 "kernel failed before any output was compared, and this is the second run.")
    return "\n".join(lines)


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mdn_course.tools.cpu_matrix",
                                     description="Strict nbval of the lessons under CPU perturbations.")
    parser.add_argument("--set", default="pairs", choices=("pairs", "ci", "full"),
                        help="which combinations (default: pairs, 9 runs covering every pair of settings)")
    parser.add_argument("--combo", nargs="+", metavar="NAME", help="only these combinations (by name)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these notebooks (name or number)")
    parser.add_argument("--workers", type=int, default=2, help="nbval's xdist workers per run (default 2)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    args = parser.parse_args(argv)

    combos = combo_set(args.set)
    if args.combo:
        known = {c.name: c for c in combos + full_matrix() + CI_COMBOS}
        unknown = [n for n in args.combo if n not in known]
        if unknown:
            parser.error(f"unknown combination(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        combos = [known[n] for n in args.combo]
    paths = series(args.only)
    print(f"{len(combos)} combination(s) x {len(paths)} notebook(s); load average at start: {_load()} "
          f"({os.cpu_count()} CPUs)", flush=True)
    rows, report = [], []
    for combo in combos:
        outcomes, seconds, stdout = run_combo(combo, paths, workers=args.workers)
        rows.append((combo, outcomes, seconds))
        failed = {name[:2]: o.summary() for name, o in outcomes.items() if not o.passed}
        print(f"  {combo.name:36s} {combo.describe():70s} {seconds:5.0f} s  "
              + ("ok" if not failed else "FAILED " + "; ".join(f"{k}: {v}" for k, v in failed.items())),
              flush=True)
        report.append({"combo": combo.name, "settings": combo.env, "seconds": round(seconds, 1),
                       "nbval_tail": stdout[-4000:] if not all(o.passed for o in outcomes.values()) else "",
                       "notebooks": {name: {"cells": o.cells, "summary": o.summary(), "rerun": o.rerun,
                                            "worst_excess": o.worst_excess(),
                                            "drift": {str(k): v for k, v in o.drift.items()}}
                                     for name, o in outcomes.items()}})
        if not any(o.cells for o in outcomes.values()):
            print(stdout[-3000:], file=sys.stderr)
        if args.json:                                   # written after every run: a long matrix can be read early
            args.json.write_text(json.dumps(report, indent=1), encoding="utf-8")
    print()
    print(format_table(rows, paths))
    print(f"load average at the end: {_load()}")
    return 0 if all(o.passed for _, outcomes, _ in rows for o in outcomes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
