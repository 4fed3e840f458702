"""Every lesson, run the way a Colab student runs it, in a stand-in built from Colab's own package set.

tests/colab_standin.py builds the stand-in (its docstring says what it takes from Colab and where it
differs: this machine's Python 3.11 and CPU torch 2.13). Each lesson gets its own runtime: a fresh
``/content`` with nothing of the course in it, Colab's packages read-only underneath, ``google.colab``
imported at kernel start, one fake Google Drive shared by all runtimes. The install cell runs first
(cloning a bare copy of this working tree through ``$MDN_COURSE_REPO_URL``), then every cell top to
bottom. The exercise runs as a student who solved it (its student copy with the reference answer put
in), and lesson 4 runs after it in a runtime of its own. Asserted here:

* the stand-in's packages are Colab's, bar the stated deviations;
* every lesson runs, from the clone, under Colab's IPython and ipywidgets;
* the install cell changes no preinstalled package, and adds exactly what Colab lacks;
* every widget a lesson shows builds (its models exist, with the sliders and text box expected);
* the answer saved in lesson 3's runtime is what lesson 4's runtime trains with;
* a restarted runtime (a new kernel in the same runtime) still installs nothing and still works.

The README's test command runs lessons 1, 3, 4 and 5 (:data:`CI_LESSONS`: every Colab-specific thing
the course does); ``MDN_COURSE_STANDIN_LESSONS=all`` runs every lesson, ``=01,08`` the ones named. Each
lesson's time (and its install cell's) goes to ``outputs/colab-standin/report.json``. Lessons run in
parallel, ``$MDN_COURSE_STANDIN_JOBS`` at a time (default 2). The browser test is
tests/test_colab_browser.py.

A cell still running after two minutes has its kernel's stacks written down (``py-spy dump``, into
``outputs/colab-standin/stall-<lesson>-cell<N>.txt``). A lesson with a cell that runs past
``$MDN_COURSE_STANDIN_CELL_TIMEOUT`` seconds (300) runs once more in a fresh runtime, with a warning
carrying those stacks, and fails if it stalls again. On 2026-12-02 a clean-clone CI run had lesson 1's
``interact`` cell wait out its 300 s on an idle kernel: nbclient had missed a reply that was already
there, which the lessons' client (``notebook_runner.notebook_client``) no longer does. An earlier run's
8-minute wait in a lesson 4 cell on an idle kernel was most likely the same.
"""
from __future__ import annotations

import copy
import json
import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from mdn_course.tools.notebook_runner import series
from mdn_course.tools.notebooks import NOTEBOOK_DIR, student_path

import colab_standin as standin

pytestmark = pytest.mark.notebooks

REPO = Path(__file__).resolve().parent.parent
EXERCISE = NOTEBOOK_DIR / "03_exercise_mdn_loss.ipynb"
REPORT = REPO / "outputs" / "colab-standin" / "report.json"
#: The packages the install cell may add: what the course needs and Colab lacks, and the course.
EXPECTED_ADDED = {"mdn-course", "bm25s", "pystemmer", "cma"}


@pytest.fixture(scope="session")
def colab_base(colab_preinstalled):
    why = standin.sandbox_works()
    if why:
        pytest.skip(f"the Colab stand-in gives each lesson its own /content with bubblewrap: {why}")
    return colab_preinstalled


def solved_exercise() -> nbformat.NotebookNode:
    """The student copy of the exercise as a student who solved it leaves it: the reference answer put in."""
    student = nbformat.read(student_path(EXERCISE), as_version=4)
    answer = next(c for c in nbformat.read(EXERCISE, as_version=4).cells if "answer" in c.metadata.get("tags", []))
    for cell in student.cells:
        if "answer" in cell.metadata.get("tags", []):
            cell.source = answer.source
    return student


#: The lessons the README's test command runs in the stand-in: every Colab-specific thing the course does
#: (lesson 1's sliders and narration, the exercise's save to Drive and lesson 4 training with it in
#: another runtime, lesson 5's slider over a trained model, the chat panel in each, and a restart).
#: ``MDN_COURSE_STANDIN_LESSONS=all`` runs every lesson (the full run; see the README).
CI_LESSONS = ("01", "03", "04", "05")


def chosen_lessons():
    """The lessons this run covers: :data:`CI_LESSONS`, every lesson (``$MDN_COURSE_STANDIN_LESSONS=all``) or
    those it names (``01,04``: number prefixes or names; lesson 4 brings the exercise along, since it trains
    with the exercise's saved answer)."""
    chosen = os.environ.get("MDN_COURSE_STANDIN_LESSONS", ",".join(CI_LESSONS)).strip()
    if chosen.lower() == "all":
        return series()
    names = [n.strip() for n in chosen.split(",") if n.strip()]
    if any(n.startswith("04") for n in names) and not any(n.startswith("03") for n in names):
        names.append("03")
    return series(sorted(names))


def lessons():
    """(name, notebook) for every chosen lesson, in the order a student meets them."""
    for path in chosen_lessons():
        yield (path.stem, solved_exercise() if path == EXERCISE else nbformat.read(path, as_version=4))


@pytest.fixture(scope="module")
def stand_in(colab_base, tmp_path_factory):
    """Run every lesson in its own runtime (lesson 4 after lesson 3: it uses lesson 3's saved answer)."""
    root = tmp_path_factory.mktemp("colab-runtimes")
    url = standin.github_standin(root / "github")
    drive = root / "google-drive"            # one student's Drive, seen by every runtime
    pip_cache = Path(os.environ.get("PIP_CACHE_DIR", Path.home() / ".cache" / "pip"))
    runtimes = {name: standin.Runtime(root / name, colab_base, drive, url, pip_cache=pip_cache)
                for name, _ in lessons()}
    notebooks = dict(lessons())
    jobs = max(1, int(os.environ.get("MDN_COURSE_STANDIN_JOBS", "2")))
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        def run(name, after=None):
            if after is not None:
                after.result()
            done = standin.run_notebook(runtimes[name], notebooks[name], name)
            if done.stalled:
                # A cell that never finished: its kernel's stacks are in the error and in outputs/colab-standin.
                # nbclient's headless execution of widget cells has open hangs of its own (jupyter/nbclient#312,
                # jupyter/nbconvert#2029), so the lesson runs once more in a fresh runtime; a second stall fails.
                warnings.warn(f"Colab stand-in: {name} stalled and runs again in a fresh runtime:\n{done.error[-3000:]}")
                runtimes[name] = standin.Runtime(root / f"{name}-again", colab_base, drive, url, pip_cache=pip_cache)
                again = standin.run_notebook(runtimes[name], notebooks[name], name)
                again.stalled_before = done.error
                done = again
            return done

        # the longest first, so the parallel runs end together; lesson 4 waits for the exercise
        order = sorted(notebooks, key=lambda n: (n[:2] not in ("09", "03", "06", "07"), n))
        futures = {}
        for name in order:
            if not name.startswith("04"):
                futures[name] = pool.submit(run, name)
        for four in (n for n in notebooks if n.startswith("04")):
            futures[four] = pool.submit(run, four, futures[next(n for n in notebooks if n.startswith("03"))])
        runs = {name: future.result() for name, future in futures.items()}
    wall = time.perf_counter() - started
    restart = standin.run_notebook(runtimes[next(iter(notebooks))], restart_notebook(), "restart")
    _write_report(colab_base, runs, restart, wall, jobs)
    return {"runs": runs, "runtimes": runtimes, "drive": drive, "restart": restart, "base": colab_base}


def restart_notebook() -> nbformat.NotebookNode:
    """What a student runs after Runtime > Restart: the install cell again, the setup, a widget."""
    lesson1 = nbformat.read(series()[0], as_version=4)
    code = [c for c in lesson1.cells if c.cell_type == "code"]
    nb = copy.deepcopy(lesson1)
    nb.cells = [code[0], code[1], nbformat.v4.new_code_cell("from mdn_course.assistant import chat\n\nchat('01')")]
    return nb


def _write_report(base, runs, restart, wall, jobs) -> None:
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps({
        "runtime": base.packages.runtime, "colab_python": base.packages.python,
        "deviations": standin.deviations(base), "build_seconds": round(base.build_seconds, 1),
        "jobs": jobs, "wall_seconds": round(wall, 1), "loadavg": Path("/proc/loadavg").read_text().split()[:3],
        "lessons": {n: {"seconds": round(r.seconds, 1), "install_cell_seconds": r.install_seconds and round(r.install_seconds, 1),
                        "ok": r.error is None, "stalled_once": r.stalled_before is not None} for n, r in runs.items()},
        "restart": {"seconds": round(restart.seconds, 1), "ok": restart.error is None},
    }, indent=1), encoding="utf-8")


def _names():
    return [name for name, _ in lessons()]


def _cells(run, needle):
    return [i for i, c in enumerate(run.nb.cells) if c.cell_type == "code" and needle in c.source]


# ---------------------------------------------------------------- the stand-in itself

def test_the_stand_in_holds_colabs_packages_bar_the_stated_deviations(colab_base):
    deviations = standin.deviations(colab_base)
    assert set(deviations) == {"torch"} | set(standin.KEPT_FOR_THIS_PYTHON), deviations
    versions, colab = colab_base.versions(), colab_base.packages.versions
    for name in ("ipython", "ipywidgets", "ipykernel", "notebook", "numpy", "matplotlib", "tqdm", "gdown",
                 "traitlets", "widgetsnbextension", "pip", "google-colab"):
        assert versions[name] == colab[name], name
    assert not {"bm25s", "pystemmer", "cma"} & set(versions), "the stand-in must lack what Colab lacks"


# ---------------------------------------------------------------- every lesson, as a student runs it

@pytest.mark.parametrize("name", _names())
def test_every_lesson_runs_in_its_own_runtime_from_the_clone(stand_in, name):
    run = stand_in["runs"][name]
    assert run.error is None, f"{name} failed in the Colab stand-in after {run.seconds:.0f} s:\n{run.error[-4000:]}"
    colab = stand_in["base"].packages.versions
    assert run.probe["cwd"] == "/content"
    assert run.probe["package"] == "/content/mdn-course/mdn_course/__init__.py", "the course must come from the clone"
    assert (run.probe["ipython"], run.probe["ipywidgets"]) == (colab["ipython"], colab["ipywidgets"])


@pytest.mark.parametrize("name", _names())
def test_the_install_cell_changes_no_preinstalled_package(stand_in, name):
    run = stand_in["runs"][name]
    changed = {n: f"{v} -> {run.after.get(n, 'removed')}" for n, v in run.before.items() if run.after.get(n) != v}
    assert changed == {}, f"{name}: the lesson changed Colab's own packages"
    assert set(run.after) - set(run.before) == EXPECTED_ADDED
    said = run.outputs_text(_cells(run, '"google.colab" in sys.modules')[0])
    assert "course installed; added bm25s" in said and "packages already here are unchanged" in said, said


@pytest.mark.parametrize("name", _names())
def test_every_widget_builds(stand_in, name):
    run = stand_in["runs"][name]
    chat = _cells(run, "chat(")
    assert chat, f"{name} has no assistant cell"
    for index in range(len(run.nb.cells)):
        assert "<missing model>" not in run.widget_models(index), f"{name}, cell {index}: a widget view has no model"
    assert {"TextModel", "ButtonModel"} <= set(run.widget_models(chat[-1])), "the chat panel's text box and buttons"
    if name.startswith("01"):
        sliders = run.widget_models(_cells(run, "widgets.interact(")[0])
        assert sliders.count("FloatSliderModel") == 9 and "OutputModel" in sliders, sliders
    if name.startswith("05"):
        slider = run.widget_models(_cells(run, "FloatLogSlider(")[0])
        assert {"FloatLogSliderModel", "OutputModel"} <= set(slider), slider


def test_a_correct_answer_in_lesson_3s_runtime_trains_lesson_4_in_its_own(stand_in):
    runs, runtimes = stand_in["runs"], stand_in["runtimes"]
    if not any(n.startswith("04") for n in runs):
        pytest.skip("lesson 4 is not among $MDN_COURSE_STANDIN_LESSONS")
    three, four = (next(n for n in runs if n.startswith(k)) for k in ("03", "04"))
    saved = runs[three].outputs_text(_cells(runs[three], "save_answer(mdn_loss)")[0])
    assert "Saved to your Google Drive as MyDrive/mdn-course/mdn_loss_answer.py" in saved, saved
    assert (stand_in["drive"] / "MyDrive" / "mdn-course" / "mdn_loss_answer.py").is_file()
    assert not any(runtimes[four].content.glob("*03_exercise*")), "lesson 4's runtime must not hold the exercise"
    loaded = runs[four].outputs_text(_cells(runs[four], "load_student_loss()")[0])
    assert loaded.splitlines()[0] == "Mounted at /content/drive", loaded      # Colab asked for Drive access
    assert loaded.splitlines()[1].startswith("training with your mdn_loss: it passes the checks"), loaded
    assert "(from Google Drive: MyDrive/mdn-course/mdn_loss_answer.py)" in loaded, loaded
    assert ["drive.mount", "/content/drive"] in runs[four].probe["colab_calls"]


def test_a_restarted_runtime_installs_nothing_and_still_works(stand_in):
    restart = stand_in["restart"]
    assert restart.error is None, restart.error
    said = restart.outputs_text(0)
    assert "course installed; added nothing; the" in said, said
    assert {n: v for n, v in restart.after.items() if restart.before.get(n) != v} == {}
    assert {"TextModel", "ButtonModel"} <= set(restart.widget_models(2))
