"""mdn_course.kernel: the one answer to "in a notebook? in Colab? what did the notebook call x?"."""
import sys
import types

from mdn_course import kernel


class _Shell:
    def __init__(self, with_kernel: bool):
        self.user_ns = {"mdn_loss": len, "In": ["", "x = 1"]}
        if with_kernel:
            self.kernel = object()


def _fake_ipython(monkeypatch, shell):
    module = types.ModuleType("IPython")
    module.get_ipython = lambda: shell
    monkeypatch.setitem(sys.modules, "IPython", module)


def test_plain_python_is_no_notebook(monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert kernel.shell() is None and not kernel.in_notebook()
    assert kernel.notebook_variable("mdn_loss") is None


def test_a_kernel_is_a_notebook_and_its_names_are_read(monkeypatch):
    _fake_ipython(monkeypatch, _Shell(with_kernel=True))
    assert kernel.in_notebook()
    assert kernel.notebook_variable("mdn_loss") is len
    assert kernel.notebook_variable("In") == ["", "x = 1"]
    assert kernel.notebook_variable("missing") is None


def test_a_terminal_ipython_is_not_a_notebook(monkeypatch):
    _fake_ipython(monkeypatch, _Shell(with_kernel=False))
    assert not kernel.in_notebook()
    assert kernel.notebook_variable("mdn_loss") is len     # its names still count (hint() in a terminal IPython)


def test_an_ipython_outside_any_shell_is_no_notebook(monkeypatch):
    _fake_ipython(monkeypatch, None)
    assert not kernel.in_notebook() and kernel.notebook_variable("mdn_loss") is None


def test_a_broken_ipython_is_no_notebook(monkeypatch):
    module = types.ModuleType("IPython")

    def broken():
        raise RuntimeError("half imported")

    module.get_ipython = broken
    monkeypatch.setitem(sys.modules, "IPython", module)
    assert kernel.shell() is None and not kernel.in_notebook()


def test_colab_is_known_by_its_module(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert not kernel.in_colab()
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert kernel.in_colab()
