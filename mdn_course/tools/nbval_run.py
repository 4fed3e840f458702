"""Run nbval on notebooks in a subprocess and read its per-cell results: the one nbval invocation.

The test suite (``tests/test_notebooks.py``) and the CPU perturbation matrix
(``mdn_course.tools.cpu_matrix``) both run the lessons under nbval this way:

* strict (``--nbval``: every stored output must reproduce, with decimal numbers
  within each cell's tolerance through :mod:`mdn_course.tools.nbval_numbers`) or
  lax (``--nbval-lax``: only cells marked to be checked);
* in a subprocess whose environment is ``kernel_env()`` with every variable that
  changes how a CPU computes removed (:data:`NUMERICS_VARIABLES`) and then the
  caller's settings applied, so an outer ``ATEN_CPU_CAPABILITY`` or
  ``OMP_NUM_THREADS`` never leaks into a run that did not ask for it; the
  kernels nbval starts inherit that environment;
* results come back as JUnit XML, read by :func:`cell_results`; with
  ``drift_log`` set, every compared cell also writes how far its numbers moved
  (:func:`read_drift_log`).
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

from .nbval_numbers import DRIFT_LOG_ENV
from .notebook_runner import kernel_env
from .notebooks import NOTEBOOK_DIR, REPO_ROOT

__all__ = ["SANITIZE", "NUMERICS_VARIABLES", "nbval_env", "nbval_command", "run_nbval", "cell_results",
           "failure_reports", "read_drift_log"]

SANITIZE = NOTEBOOK_DIR / "nbval_sanitize.cfg"

#: Environment variables that change which kernels, instruction sets or reductions a CPU run uses:
#: ATen's vector kernels, thread counts (reductions split differently), MKL's code path and oneDNN's ISA.
NUMERICS_VARIABLES = ("ATEN_CPU_CAPABILITY", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "MKL_CBWR",
                      "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")


def nbval_env(settings: Optional[Mapping[str, str]] = None, base: Optional[Mapping[str, str]] = None) -> dict:
    """``kernel_env()`` without any of :data:`NUMERICS_VARIABLES`, then one thread, then ``settings``.

    One thread is what the stored outputs were made with (``run-notebooks`` kernels get
    ``OMP_NUM_THREADS=1``); ``settings`` may change it and any other variable.
    ``OMP_WAIT_POLICY=PASSIVE`` (unless already set) keeps runs with more threads than free cores fast.
    """
    env = kernel_env(dict(base) if base is not None else None)
    for name in NUMERICS_VARIABLES:
        env.pop(name, None)
    env["OMP_NUM_THREADS"] = "1"
    # Idle OpenMP threads sleep instead of spinning. It changes no result (measured: the same
    # trained weights to the last digit), but with two threads per kernel on a busy 2-core machine
    # the spinning made a training 7x slower (37 s vs 5.4 s; a whole strict run 721 s vs 93 s).
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.update({key: str(value) for key, value in (settings or {}).items()})
    env.pop(DRIFT_LOG_ENV, None)
    return env


def nbval_command(paths: Sequence[Path], xml: Path, *, lax: bool = False, rootdir: Path = REPO_ROOT,
                  workers: int = 2, cell_timeout: int = 300) -> List[str]:
    """The pytest command line that runs nbval on ``paths`` and writes JUnit XML to ``xml``."""
    cmd = [sys.executable, "-m", "pytest", "--nbval-lax" if lax else "--nbval",
           "-p", "mdn_course.tools.nbval_numbers",
           "--nbval-sanitize-with", str(SANITIZE), "--nbval-current-env", "--nbval-cell-timeout", str(cell_timeout),
           "-p", "no:cacheprovider", "-q", "--junitxml", str(xml), "-o", "junit_family=xunit1",
           "--rootdir", str(rootdir), "-c", str(REPO_ROOT / "pyproject.toml")]
    if len(paths) > 1 and workers > 1:
        cmd += ["-n", str(workers), "--dist", "loadfile"]
    return cmd + [str(p) for p in paths]


def run_nbval(paths: Sequence[Path], xml: Path, *, lax: bool = False, settings: Optional[Mapping[str, str]] = None,
              rootdir: Path = REPO_ROOT, workers: int = 2, drift_log: Optional[Path] = None,
              timeout: int = 900) -> subprocess.CompletedProcess:
    """Run nbval (strict unless ``lax``) on ``paths`` under :func:`nbval_env` ``(settings)``.

    ``drift_log``: a file each compared cell appends one JSON line to (see :func:`read_drift_log`).
    """
    env = nbval_env(settings)
    if drift_log is not None:
        env[DRIFT_LOG_ENV] = str(drift_log)
    cmd = nbval_command(paths, xml, lax=lax, rootdir=rootdir, workers=workers)
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def cell_results(xml: Path) -> Dict[str, Dict[int, str]]:
    """{notebook file name: {code cell number: 'passed' | 'failed' | 'skipped'}} from nbval's JUnit XML."""
    results: Dict[str, Dict[int, str]] = {}
    if not Path(xml).exists():
        return results
    for case in ET.parse(xml).iter("testcase"):
        match = re.fullmatch(r"Cell (\d+)", case.get("name", ""))
        if not match:
            continue
        source = case.get("file") or case.get("classname", "")
        name = next((part for part in re.split(r"[/\\]", source) if part.endswith(".ipynb")), source)
        if not name.endswith(".ipynb"):
            name = source.split(".ipynb")[0].replace(".", "/").split("/")[-1] + ".ipynb"
        status = "passed"
        if case.find("failure") is not None or case.find("error") is not None:
            status = "failed"
        elif case.find("skipped") is not None:
            status = "skipped"
        results.setdefault(name, {})[int(match.group(1))] = status
    return results


def failure_reports(stdout: str, name: str) -> str:
    """nbval's failure sections for one notebook (the whole tail when none is found)."""
    sections = re.split(r"\n(?=_{5,} )", stdout)
    mine = [s for s in sections if re.match(rf"_+ \S*{re.escape(name)}::Cell \d+ _+", s)]
    return "\n".join(mine)[-8000:] if mine else stdout[-6000:]


def read_drift_log(path: Path) -> List[dict]:
    """The drift log's records: ``{"notebook", "cell", "differs", "worst": [stored, new] | None, "excess"}``.

    ``excess`` is the worst number's move as a multiple of what its tolerance allows (above 1 fails;
    ``None`` when nothing moved or the text itself changed).
    """
    if not Path(path).exists():
        return []
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
