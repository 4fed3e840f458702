"""Fixtures shared by the test files: whether the grader's sandbox works here (probed once per session),
a local HTTP server standing in for GitHub's release downloads, and the Colab stand-in's preinstalled
packages (built once per session, shared by the pytest workers; see colab_standin.py).

Helpers shared by several test files are modules beside this one (``wrong_answers.py``,
``grading_helpers.py``); test modules never import each other.
"""
from __future__ import annotations

import contextlib
import functools
import http.server
import os
import threading
from pathlib import Path
from typing import Iterator

import pytest


def _share_the_cores_between_workers() -> None:
    """Give each pytest-xdist worker its share of the cores as torch's (and its child processes') threads.

    Each torch process otherwise starts one thread per core, so ``-n 2`` on two cores runs four busy
    threads there, and small tensor work then crawls: the step checks of four wrong steps took 66 s
    with two threads in each of two processes side by side, 7 s with one. Set before any test imports
    torch, and inherited by the kernels and sandboxes the tests start (a setting of one's own wins:
    the strict notebook runs set theirs, and an ``OMP_NUM_THREADS`` already set is kept).
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))


_share_the_cores_between_workers()


@pytest.fixture(scope="session")
def sandbox_probe():
    """(ok, why): whether a sandboxed interpreter can import torch here, probed once for the whole session."""
    from mdn_course.grading import sandbox  # here, not at the top: a session without grader tests needs no torch

    return sandbox.probe()


@pytest.fixture(scope="session")
def working_sandbox(sandbox_probe):
    """Skip the test, saying why, unless the grader's sandbox works here (the grader itself refuses then)."""
    ok, why = sandbox_probe
    if not ok:
        pytest.skip(f"no working sandbox here: {why}")


@contextlib.contextmanager
def serving(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on 127.0.0.1 (a free port) from a thread; yield the base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def http_server(tmp_path_factory):
    """A folder served over HTTP for a whole test module; yields (folder, base URL)."""
    served = tmp_path_factory.mktemp("served")
    with serving(served) as base:
        yield served, base


@pytest.fixture
def file_server(tmp_path):
    """A folder (tmp_path/served) served over HTTP for one test; yields (folder, base URL)."""
    served = tmp_path / "served"
    served.mkdir()
    with serving(served) as base:
        yield served, base


@pytest.fixture(scope="session")
def colab_preinstalled(tmp_path_factory):
    """The Colab stand-in's venv of Colab's preinstalled packages (colab_standin.build_base), built once."""
    if not (Path(__file__).resolve().parent.parent / ".git").exists():
        pytest.skip("the Colab stand-in clones this checkout's files as git lists them; this is not a git checkout")
    import colab_standin

    return colab_standin.build_base(colab_standin.shared_cache(tmp_path_factory))
