"""Execute the lesson notebooks headless, the way a student's fresh runtime would.

``run_notebooks`` runs each notebook of the series in its own fresh kernel
(with nbclient), with the notebook folder as working directory and
``MPLBACKEND=Agg``, and writes the executed copies plus every figure (as
``<notebook>_<cell>_<k>.png``) into an output folder. The sources are never
modified. A per-notebook timing table is printed at the end; a failing
notebook is reported and the others still run.

``refresh_committed`` is the maintainer's tool: it re-executes the solution
notebooks *in place* so their stored outputs (which nbval compares against)
are current, clears the outputs of the narration cells (they would embed
megabytes of audio), drops run-specific metadata (widget state, timings), and
regenerates the student notebooks.

Command line::

    python -m mdn_course run-notebooks [--out DIR] [--only NAME ...] [--timeout S]
    python -m mdn_course run-notebooks --refresh [--only NAME ...]

Kernels get ``OMP_NUM_THREADS=1`` unless it is already set: the lesson
models are tiny, one thread is faster on a small CPU than two that wait for
each other, and the stored outputs were produced that way.
"""
from __future__ import annotations

import argparse
import base64
import os
import re
import sys
import time
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple

import nbformat
from nbformat import NotebookNode

from .notebooks import NOTEBOOK_DIR, REPO_ROOT, is_student_copy, lessons, notebook_text, read
from .student_version import write_student_notebooks

__all__ = ["series", "kernel_env", "execute_notebook", "extract_figures", "run_notebooks", "refresh_committed",
           "local_kernel_manager_class", "is_narration_cell", "clean_for_commit", "main"]

DEFAULT_OUT = REPO_ROOT / "outputs" / "notebooks"
_NARRATION_CALL = re.compile(r'^\s*play\(\s*["\'][^"\']+["\']\s*\)\s*;?\s*$')

Result = Tuple[str, float, bool]


def series(names: Optional[Iterable[str]] = None, nb_dir: Path = NOTEBOOK_DIR,
           include_students: bool = False) -> List[Path]:
    """The lesson notebooks in order; ``names`` selects by file name, stem or number prefix ("04")."""
    paths = sorted(Path(nb_dir).glob("*.ipynb")) if include_students else lessons(nb_dir)
    if not names:
        return paths
    chosen = []
    for name in names:
        stem = Path(name).name.removesuffix(".ipynb")
        matches = [p for p in sorted(Path(nb_dir).glob("*.ipynb"))
                   if p.stem == stem or (p.stem.startswith(stem + "_") and not is_student_copy(p))]
        if not matches:
            raise ValueError(f"no notebook matches {name!r}; the notebooks are: "
                             + ", ".join(p.name for p in paths))
        chosen.extend(m for m in matches[:1] if m not in chosen)
    return chosen


def kernel_env(base: Optional[dict] = None) -> dict:
    """Environment for the kernels: headless matplotlib, this package importable, one CPU thread."""
    env = dict(os.environ if base is None else base)
    env["MPLBACKEND"] = "Agg"
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return env


def local_kernel_manager_class():
    """The kernel manager class for kernels this machine talks to only locally.

    On POSIX systems the kernel's sockets are Unix domain sockets (ZeroMQ's ``ipc``
    transport) in Jupyter's private runtime folder instead of TCP ports on
    localhost: nothing on the network can listen in, and ipykernel (7.x) has no
    reason to print "Kernel is running over TCP without encryption" at every
    start. jupyter_client removes the socket files when the kernel shuts down.
    Elsewhere (Windows has no ``ipc`` transport) the default TCP manager is kept.
    """
    from jupyter_client.manager import AsyncKernelManager

    if os.name != "posix":
        return AsyncKernelManager

    import uuid

    from jupyter_core.paths import jupyter_runtime_dir
    from traitlets import default

    class LocalIPCKernelManager(AsyncKernelManager):
        @default("transport")
        def _default_transport(self) -> str:
            return "ipc"

        @default("ip")
        def _default_ip(self) -> str:  # socket files beside the connection files, not in the notebook folder
            folder = Path(jupyter_runtime_dir())
            folder.mkdir(parents=True, exist_ok=True)
            return str(folder / f"mdn-course-{uuid.uuid4().hex[:12]}-ipc")

    return LocalIPCKernelManager


#: Longest single wait on the shell socket (see :func:`notebook_client`).
SHELL_POLL_SLICE_S = 0.5


def sliced_get_msg(channel):
    """A ``get_msg(timeout)`` for jupyter_client's asyncio ``channel`` that polls its socket in slices of at most
    :data:`SHELL_POLL_SLICE_S`, so a lost wake-up delays a message by one slice, not by ``timeout``."""
    from queue import Empty

    async def get_msg(timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = SHELL_POLL_SLICE_S if deadline is None else min(SHELL_POLL_SLICE_S, deadline - time.monotonic())
            if await channel.socket.poll(max(0, int(left * 1000))):
                return await channel._recv()
            if deadline is not None and time.monotonic() >= deadline:
                raise Empty

    return get_msg


def notebook_client(nb: NotebookNode, **options):
    """An nbclient ``NotebookClient`` for ``nb`` (``options`` as nbclient's) that waits for a cell's reply in
    short slices.

    nbclient plays a front end's part for Output widgets (``interact`` draws into one): when the kernel
    sends output into a widget, nbclient sends the widget's new state back on the shell channel, from the
    task that reads iopub, while the cell's task waits on that same ZeroMQ socket for the cell's reply, in
    one ``poll`` as long as the cell timeout. A send on a ZeroMQ socket can use up the edge-triggered
    wake-up of a message that arrived meanwhile (jupyter/nbclient#312), and the reply is then noticed only
    when that poll times out: the cell takes the whole cell timeout, with the kernel idle, and then
    succeeds. Measured here: six runs of 21 ``interact`` cells under an 8 s cell timeout took 5.8 to
    22.1 s, the slow ones 8 or 16 s longer; a Colab stand-in lesson waited 300 s in its ``interact`` cell.
    Waiting in slices of :data:`SHELL_POLL_SLICE_S` asks the socket afresh each time, so a lost wake-up
    costs at most one slice. (A second connection for the widgets' sends made ipykernel 7.4 stop
    answering altogether.)
    """
    from nbclient import NotebookClient

    class _SlicedWaitClient(NotebookClient):
        async def async_start_new_kernel_client(self):
            kc = await super().async_start_new_kernel_client()
            if hasattr(kc.shell_channel, "_recv"):      # jupyter_client's asyncio channel
                kc.shell_channel.get_msg = sliced_get_msg(kc.shell_channel)
            return kc

    return _SlicedWaitClient(nb, **options)


def execute_notebook(path: Path, timeout: int = 600) -> Tuple[NotebookNode, float, Optional[str]]:
    """Execute a copy of ``path`` in a fresh kernel; return (executed notebook, seconds, error or None)."""
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    path = Path(path)
    nb = read(path)
    kernel = nb.metadata.get("kernelspec", {}).get("name", "python3")
    client = notebook_client(nb, timeout=timeout, kernel_name=kernel, record_timing=False,
                            store_widget_state=True,  # nbclient fails on Output widgets without it
                            kernel_manager_class=local_kernel_manager_class(),
                            resources={"metadata": {"path": str(path.parent)}})
    started = time.perf_counter()
    error = None
    try:
        client.execute(env=kernel_env())
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
        error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
    except Exception as exc:  # kernel start failures and the like: report, don't crash the series
        error = f"{type(exc).__name__}: {exc}"
    return nb, time.perf_counter() - started, error


def extract_figures(nb: NotebookNode, stem: str, out_dir: Path) -> List[Path]:
    """Write every image/png output as ``<stem>_<cell index>_<k>.png``; return the paths."""
    written = []
    for index, cell in enumerate(nb.cells):
        k = 0
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                target = Path(out_dir) / f"{stem}_{index:02d}_{k}.png"
                target.write_bytes(base64.b64decode(data["image/png"]))
                written.append(target)
                k += 1
    return written


def _print_table(results: Sequence[Result], stream=None) -> None:
    stream = stream or sys.stdout
    width = max([len("notebook")] + [len(name) for name, _, _ in results])
    print(f"\n{'notebook'.ljust(width)}  seconds  status", file=stream)
    for name, seconds, ok in results:
        print(f"{name.ljust(width)}  {seconds:7.1f}  {'ok' if ok else 'FAILED'}", file=stream)
    total = sum(s for _, s, _ in results)
    print(f"{'total'.ljust(width)}  {total:7.1f}  "
          f"{sum(ok for *_, ok in results)}/{len(results)} ok", file=stream)


def run_notebooks(out_dir=DEFAULT_OUT, names: Optional[Iterable[str]] = None, timeout: int = 600,
                  progress: bool = True) -> List[Result]:
    """Execute the series (or ``names``) headless; write executed notebooks and PNGs to ``out_dir``.

    Returns ``[(notebook file name, seconds, ok), ...]``; sources are untouched.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results: List[Result] = []
    for path in series(names):
        if progress:
            print(f"running {path.name} ...", flush=True)
        nb, seconds, error = execute_notebook(path, timeout=timeout)
        nbformat.write(nb, out_dir / path.name)
        figures = extract_figures(nb, path.stem, out_dir)
        if progress:
            status = "ok" if error is None else f"FAILED ({error})"
            print(f"  {seconds:.1f} s, {len(figures)} figures, {status}", flush=True)
        results.append((path.name, seconds, error is None))
    if progress:
        _print_table(results)
    return results


# ---------------------------------------------------------------- committing executed notebooks

def is_narration_cell(cell: NotebookNode) -> bool:
    """A code cell that only calls ``play("<segment>")``."""
    return cell.cell_type == "code" and bool(_NARRATION_CALL.match(cell.source.strip()))


def clean_for_commit(nb: NotebookNode) -> NotebookNode:
    """Clear narration outputs and drop run-specific metadata (in place); return ``nb``."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if is_narration_cell(cell):
            cell.outputs = []
    return nb


def refresh_committed(names: Optional[Iterable[str]] = None, timeout: int = 600,
                      progress: bool = True) -> List[Result]:
    """Re-execute the solution notebooks in place for committing, then regenerate student notebooks.

    A notebook that fails is left as it was (and reported). Narration-cell
    outputs are cleared; nothing time- or machine-dependent is kept beyond the
    cells tagged ``nbval-ignore-output``.
    """
    results: List[Result] = []
    for path in series(names):
        if progress:
            print(f"refreshing {path.name} ...", flush=True)
        nb, seconds, error = execute_notebook(path, timeout=timeout)
        if error is None:
            path.write_text(notebook_text(clean_for_commit(nb)), encoding="utf-8")
        elif progress:
            print(f"  FAILED, left unchanged: {error}", flush=True)
        results.append((path.name, seconds, error is None))
    written = write_student_notebooks(NOTEBOOK_DIR)
    if progress:
        for target in written:
            print(f"regenerated {target.name}")
        _print_table(results)
    return results


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mdn_course run-notebooks",
                                     description="Execute the lesson notebooks headless.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="folder for executed notebooks and figures (default: outputs/notebooks)")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run only this notebook (file name, stem or number like 04); repeatable")
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell (default 600)")
    parser.add_argument("--refresh", action="store_true",
                        help="maintainers: re-execute the solution notebooks IN PLACE for committing "
                             "and regenerate the student notebooks")
    parser.add_argument("--quiet", action="store_true", help="no progress lines or table")
    args = parser.parse_args(argv)
    try:
        if args.refresh:
            results = refresh_committed(args.only, timeout=args.timeout, progress=not args.quiet)
        else:
            results = run_notebooks(args.out, args.only, timeout=args.timeout, progress=not args.quiet)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if all(ok for *_, ok in results) else 1

