"""Does a cell's reply wait for the cell timeout? nbclient's own client against the course's, side by side.

    python benchmarks/bench_notebook_client.py [--runs 6] [--cells 20] [--timeout 8]

Each run executes one notebook of ``--cells`` ``interact`` cells (an Output widget each, which nbclient
answers on the shell socket while it waits there for the cell's reply) with each client in turn. A cell
whose reply's wake-up was lost waits for it until the cell timeout and then succeeds: the table counts
the cells that took at least 90 % of ``--timeout``, timed here. The course's client
(``notebook_runner.notebook_client``) waits in 0.5 s slices and should have none.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402

from mdn_course.tools.notebook_runner import kernel_env, notebook_client  # noqa: E402

CELL = ("def show(a=1.0, b=2.0):\n    print('a', a)\n    plt.plot([0, a, b]); plt.show()\n    print('b', b)\n"
        "widgets.interact(show, a=(0.0, 2.0), b=(0.0, 3.0));")


def one_run(make, cells: int, timeout: int):
    """(seconds for the whole notebook, cells that took at least 90 % of the timeout, timed by this process:
    nbclient's recorded timings are the kernel's send times, blind to a reply noticed late)."""
    first = nbformat.v4.new_code_cell("import ipywidgets as widgets, matplotlib.pyplot as plt")
    nb = nbformat.v4.new_notebook(cells=[first] + [nbformat.v4.new_code_cell(CELL) for _ in range(cells)])
    began, took = {}, []

    def start(cell, cell_index, **_):
        began[cell_index] = time.perf_counter()

    def done(cell, cell_index, **_):
        took.append(time.perf_counter() - began[cell_index])

    started = time.perf_counter()
    make(nb, timeout=timeout, kernel_name="python3", store_widget_state=True, on_cell_start=start,
         on_cell_executed=done).execute(env=kernel_env())
    return time.perf_counter() - started, sum(t >= 0.9 * timeout for t in took)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--cells", type=int, default=20)
    parser.add_argument("--timeout", type=int, default=8)
    args = parser.parse_args()
    clients = {"nbclient's wait": NotebookClient, "sliced wait (the course's)": notebook_client}
    runs = {name: [] for name in clients}
    for _ in range(args.runs):                      # alternate, so both see the same load
        for name, make in clients.items():
            runs[name].append(one_run(make, args.cells, args.timeout))
    print(f"{args.runs} runs of {args.cells} interact cells each, cell timeout {args.timeout} s")
    for name, results in runs.items():
        times = [t for t, _ in results]
        waited = sum(w for _, w in results)
        print(f"  {name:28s} {min(times):5.1f}-{max(times):5.1f} s a run   cells that waited the timeout: "
              f"{waited} of {args.runs * args.cells}")


if __name__ == "__main__":
    main()
