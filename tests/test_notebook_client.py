"""The notebook client the series and the Colab stand-in run lessons with (``notebook_runner.notebook_client``).

nbclient sends an Output widget's state to the kernel on the shell socket while the cell's task waits on
that socket for the cell's reply; the send can use up the socket's wake-up, and a reply that arrived
meanwhile is then seen only when the wait times out (the whole cell timeout, with the kernel idle). The
client waits in short slices instead. These tests fake a lost wake-up, check the wait still ends at its
timeout, and run a real ``interact`` cell through the client.
"""
from __future__ import annotations

import asyncio
import time
from queue import Empty

import nbformat
import pytest

from mdn_course.tools import notebook_runner
from mdn_course.tools.notebook_runner import notebook_client, sliced_get_msg

REPLY = {"msg_type": "execute_reply"}


class _Channel:
    """A shell channel whose socket misses the wake-up of the first ``lost`` waits (the reply is there all along)."""

    def __init__(self, lost: int = 1, arrives: bool = True):
        self.asked_ms, self.lost, self.arrives = [], lost, arrives
        channel = self

        class Socket:
            async def poll(self, timeout_ms):
                channel.asked_ms.append(timeout_ms)
                if len(channel.asked_ms) <= channel.lost or not channel.arrives:
                    await asyncio.sleep(min(timeout_ms / 1000, 0.05))   # a lost wake-up: the wait sees nothing
                    return 0
                return 1

        self.socket = Socket()

    async def _recv(self):
        return REPLY


def test_a_lost_wake_up_delays_the_reply_by_one_slice_not_by_the_cell_timeout():
    channel = _Channel(lost=1)
    started = time.monotonic()
    assert asyncio.run(sliced_get_msg(channel)(timeout=300)) == REPLY
    assert channel.asked_ms[0] <= 1000, "one poll as long as the cell timeout: the wait that loses the reply"
    assert len(channel.asked_ms) == 2 and time.monotonic() - started < 5


def test_the_sliced_wait_still_ends_at_its_timeout_and_waits_without_one():
    channel = _Channel(arrives=False)
    started = time.monotonic()
    with pytest.raises(Empty):
        asyncio.run(sliced_get_msg(channel)(timeout=1.2))
    assert 1.1 < time.monotonic() - started < 4 and len(channel.asked_ms) >= 3
    assert asyncio.run(sliced_get_msg(_Channel(lost=3))(timeout=None)) == REPLY


def test_an_interact_cell_runs_through_the_client_and_its_output_widget_holds_what_it_printed(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import ipywidgets as widgets\n"
        "def show(a=1.0):\n    print(f'a is {a}')\n"
        "widgets.interact(show, a=(0.0, 2.0));")])
    client = notebook_client(nb, timeout=120, kernel_name="python3", store_widget_state=True,
                             kernel_manager_class=notebook_runner.local_kernel_manager_class(),
                             resources={"metadata": {"path": str(tmp_path)}})
    waits = []
    original = notebook_runner.sliced_get_msg

    def counting(channel):
        waits.append(channel)
        return original(channel)

    notebook_runner.sliced_get_msg = counting
    try:
        client.execute(env=notebook_runner.kernel_env())
    finally:
        notebook_runner.sliced_get_msg = original
    assert len(waits) == 1, "the client's shell channel did not get the sliced wait"
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    outputs = [m["state"].get("outputs", []) for m in state.values() if m["model_name"] == "OutputModel"]
    assert any(o.get("text") == "a is 1.0\n" for out in outputs for o in out), outputs
