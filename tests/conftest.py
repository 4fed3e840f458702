"""Fixtures shared by the test files: a local HTTP server standing in for GitHub's release downloads."""
from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from pathlib import Path
from typing import Iterator

import pytest


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
