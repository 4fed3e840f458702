"""A Colab stand-in: Colab's published package set in a venv, a runtime per lesson, ``google.colab`` faked.

Colab is where most students open the course, and Colab cannot run in CI. This module builds the nearest
thing that can, from the package set Google publishes for each Colab runtime (``tests/colab_runtime.txt``,
taken from the googlecolab/backend-info repository; its header says how to refresh it):

* **The preinstalled packages** (:func:`build_base`): a venv holding Colab's versions of everything the
  course touches: the course's requirements that Colab preinstalls and their dependencies, the kernel
  (ipykernel, IPython), the classic Notebook with its widget extension (what Colab's widget manager is
  built for), pip and setuptools. What Colab does not preinstall is left out, as in Colab, so the lessons'
  install cell has to add it. Honest deviations, reported by :func:`deviations`: the Python is this
  machine's (3.11; Colab's is newer) and torch is this machine's CPU wheel (Colab's is a CUDA build of
  several GB that CI cannot download); their own dependencies keep Colab's versions where Colab has them.
  ``google-colab`` is replaced by ``tests/colab_fake``: ``output``, ``drive.mount`` (a folder shared by all
  runtimes, like one Google Drive) and ``files.download``.
* **A runtime per lesson** (:class:`Runtime`): Colab gives every notebook its own machine with ``/content``
  as working directory and nothing else of the course on disk. Here each lesson gets a fresh folder that
  its kernel sees as ``/content`` (a bubblewrap mount namespace; nothing is created on this machine's
  ``/``), an empty home, and its own venv layered over the preinstalled packages, which its kernel sees
  read-only: whatever pip does, Colab's packages cannot change, and a version that changed anyway (a
  package installed over one of them) is caught by comparing what the kernel's Python sees before and
  after. The checkout is hidden from the kernel, so the course can only come from the install cell's clone
  (of a local bare repository, through ``$MDN_COURSE_REPO_URL``). The kernel imports ``google.colab`` at
  start, as Colab's does.
* **A lesson run as a student runs it** (:func:`run_notebook`): every cell top to bottom, the install cell
  first, in that runtime; then one probe cell reports what the lesson imported and asked of Colab.

Built once per test session (several pytest workers share it through a lock) in the cache folder given.
Command line: ``python tests/colab_standin.py refresh BACKEND_INFO_GIT [COMMIT]`` rewrites the runtime file.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RUNTIME_FILE = HERE / "colab_runtime.txt"
FAKE_COLAB = HERE / "colab_fake"

#: Colab's runtime packages built for its GPU or for itself, which the stand-in does not take from Colab.
NOT_FROM_COLAB = frozenset({"torch", "torchvision", "torchaudio", "torchcodec", "torchao", "torchdata",
                            "torchtune", "torchsummary", "google-colab"})
#: torch as CI can have it: this machine's CPU wheel (Colab's CUDA build is several GB).
TORCH_SUBSTITUTE = "torch==2.13.0"
#: What a lesson's runtime touches in Colab beyond the course's own requirements: the kernel, the classic
#: Notebook and its widget extension (the front end Colab's widget manager is built for; the browser test
#: serves it), and the tools the install cell runs.
RUNTIME_TOOLS = ("ipykernel", "notebook", "widgetsnbextension", "jupyterlab-widgets", "pip", "setuptools",
                 "wheel", "packaging")
#: Packages Colab lacks that its own packages need on this machine's older Python (kept, and reported).
KEPT_FOR_THIS_PYTHON = {"overrides": "jupyter_server requires it on Python < 3.12 (Colab's is 3.13)"}
#: Bump when the recipe below changes, so a cached stand-in is rebuilt.
RECIPE = "2"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# ---------------------------------------------------------------- the runtime file

@dataclass
class ColabPackages:
    """One Colab runtime's package set as Google published it."""
    header: Dict[str, str]          # runtime, python, os (from the file's "# key: value" lines)
    versions: Dict[str, str]        # canonical name -> version ("name==version" lines, and files named in URLs)

    @property
    def python(self) -> str:
        return self.header.get("python", "?")

    @property
    def runtime(self) -> str:
        return self.header.get("runtime", "?")

    def constraints(self) -> str:
        """A pip constraints file: every package Colab pins, except those the stand-in does not take from it."""
        return "".join(f"{n}=={v}\n" for n, v in sorted(self.versions.items()) if n not in NOT_FROM_COLAB)


_DIST_URL = re.compile(r"/(?P<name>[A-Za-z0-9_.]+)-(?P<version>[^-/]+?)(-[^/]*\.whl|\.tar\.gz|\.zip)$")


def read_runtime(path: Path = RUNTIME_FILE) -> ColabPackages:
    header, versions = {}, {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("#"):
            key, sep, value = line[1:].strip().partition(": ")
            if sep and re.fullmatch(r"[a-z]+", key):
                header.setdefault(key, value.strip())
            continue
        if "==" in line:
            name, version = line.split("==", 1)
            versions[canonical(name)] = version.strip()
        elif " @ " in line:
            name, url = line.split(" @ ", 1)
            found = _DIST_URL.search(url.split("#")[0].replace("%2B", "+"))
            if found:
                versions[canonical(name)] = found["version"]
    return ColabPackages(header, versions)


def refresh(backend_info_git: Path, commit: str = "HEAD", path: Path = RUNTIME_FILE) -> str:
    """Rewrite the runtime file from a clone of github.com/googlecolab/backend-info; return the commit."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(backend_info_git), *args], capture_output=True, text=True,
                              check=True).stdout

    sha = git("rev-parse", commit).strip()
    date, subject = git("log", "-1", "--format=%ad%n%s", "--date=short", sha).splitlines()[:2]
    os_info = [line for line in git("show", f"{sha}:os-info.txt").splitlines() if not line.startswith("#")]
    python = next((line.split()[1] for line in os_info if line.startswith("Python ")), "?")
    freeze = git("show", f"{sha}:pip-freeze.txt")
    text = (f"# The package set of one Colab runtime, as Google publishes it in github.com/googlecolab/backend-info\n"
            f"# (pip-freeze.txt of the default CPU runtime; the GPU runtime differs only in CUDA builds of torch).\n"
            f"# tests/colab_standin.py builds the Colab stand-in from it; read its docstring for what it takes.\n"
            f"#\n"
            f"# runtime: {sha[:7]} {date} {subject}\n"
            f"# python: {python}\n"
            f"# os: {os_info[0] if os_info else '?'}\n"
            f"#\n"
            f"# Refresh when Colab moves on (then run tests/test_colab_standin.py and commit what changed):\n"
            f"#   git clone --bare https://github.com/googlecolab/backend-info backend-info.git   # or: git -C backend-info.git fetch\n"
            f"#   python3 tests/colab_standin.py refresh backend-info.git [COMMIT]   # COMMIT defaults to the newest\n"
            f"# which writes this header (from git log -1 COMMIT and git show COMMIT:os-info.txt) above the output of\n"
            f"#   git -C backend-info.git show COMMIT:pip-freeze.txt\n"
            f"#\n"
            + freeze)
    path.write_text(text, encoding="utf-8")
    return sha


def github_standin(dest: Path) -> str:
    """A bare git repository holding this checkout as it is on disk (untracked files too, ignored ones not).

    The install cell clones it through ``$MDN_COURSE_REPO_URL`` as it would clone GitHub; what it gets is
    what a commit of the working tree would push. Returns its ``file://`` URL.
    """
    files = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "-co", "--exclude-standard"],
                           capture_output=True, check=True).stdout.decode().split("\0")
    work = dest / "checkout"
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, work / name)
    env = {**_clean_env(), "GIT_AUTHOR_NAME": "stand-in", "GIT_AUTHOR_EMAIL": "stand-in@localhost",
           "GIT_COMMITTER_NAME": "stand-in", "GIT_COMMITTER_EMAIL": "stand-in@localhost"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "the working tree"]):
        subprocess.run(["git", "-C", str(work), *args], check=True, capture_output=True, env=env)
    bare = dest / "mdn-course.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True, capture_output=True, env=env)
    shutil.rmtree(work)
    return bare.as_uri()


def shared_cache(tmp_path_factory) -> Path:
    """The stand-in's build folder: one for every pytest worker of a session (``$MDN_COURSE_STANDIN_CACHE``:
    one kept across runs, for working on the stand-in itself)."""
    if os.environ.get("MDN_COURSE_STANDIN_CACHE"):
        return Path(os.environ["MDN_COURSE_STANDIN_CACHE"])
    base = tmp_path_factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "colab-standin"


# ---------------------------------------------------------------- the preinstalled packages

def course_requirements() -> List[str]:
    """What the lessons' install cell asks for (the course's requirements and its colab extra)."""
    from mdn_course.colab_install import course_requirements as read

    return [str(r) for r in read(REPO)]


def installed(python: Path) -> Dict[str, str]:
    """What ``python`` sees installed: canonical name -> version, the first on its sys.path winning.

    Looked at from ``python``'s own folder, never from the test's working directory: a checkout installed
    editable holds ``mdn_course.egg-info``, which would count as the course installed before the lesson ran.
    """
    from mdn_course.colab_install import installed_versions

    return installed_versions(str(python), env=_clean_env(), cwd=str(Path(python).parent))


def python_over_this_one(dest: Path) -> Path:
    """A new venv at ``dest`` that sees every package the running Python sees; return its python.

    ``venv --system-site-packages`` layers a venv over its *base* interpreter, so run from inside a venv (a
    Python 3.12 venv with torch 2.8, say) it would see neither torch nor setuptools, and a test that means
    "a Python like this one" would install dozens of packages or fail offline. The running venv's own
    site-packages (with their own ``.pth`` files) are added after the new venv's, as Colab's come after a
    runtime's.
    """
    made = subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(dest)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        raise RuntimeError(f"could not make a venv at {dest}: {made.stderr.strip()}")
    python = Path(dest) / "bin" / "python"
    if sys.prefix != sys.base_prefix:
        lend_packages(python, sys.executable)
    return python


def lend_packages(python: Path, lender: str) -> None:
    """Make the venv of ``python`` see ``lender``'s site-packages after its own, through a ``.pth`` file.

    ``site.addsitedir``, not a bare path, so the lender's own ``.pth`` files (an editable install's) work
    there too; and it works where ``--system-site-packages`` does not, for a lender that is itself a venv.
    """
    lent = subprocess.run([lender, "-c", "import sysconfig; p = sysconfig.get_paths(); print(p['purelib']); "
                           "print(p['platlib'])"], capture_output=True, text=True, check=True, env=_clean_env())
    own = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True, env=_clean_env()).stdout.strip()
    paths = list(dict.fromkeys(lent.stdout.split()))
    # one line, run by site.py; map, not a comprehension, whose own scope would not see ``site`` before 3.12
    (Path(own) / "lent-packages.pth").write_text(f"import site; list(map(site.addsitedir, {paths!r}))\n")


def _clean_env(**extra: str) -> Dict[str, str]:
    """This machine's environment without anything that would point Python or pip at the checkout."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV", "MPLBACKEND")
           and not k.startswith(("MDN_COURSE_", "COLAB_STANDIN_", "JPY_", "PYTEST_"))}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", **extra)
    return env


@dataclass
class Base:
    """The built stand-in of Colab's preinstalled packages."""
    venv: Path
    packages: ColabPackages
    build_seconds: float

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def site_packages(self) -> Path:
        return Path(json.loads((self.venv / "standin.json").read_text())["site_packages"])

    def versions(self) -> Dict[str, str]:
        return json.loads((self.venv / "standin.json").read_text())["installed"]


def deviations(base: Base) -> Dict[str, str]:
    """Where the stand-in's packages differ from Colab's: name -> 'stand-in version (Colab: version)'."""
    colab = base.packages.versions
    return {n: f"{v} (Colab: {colab.get(n, 'not installed')})" for n, v in sorted(base.versions().items())
            if colab.get(n) != v}


def _key(python: str) -> str:
    digest = hashlib.sha256()
    for part in (RECIPE, python, TORCH_SUBSTITUTE, RUNTIME_FILE.read_bytes(), "\n".join(course_requirements()),
                 *(p.read_bytes() for p in sorted(FAKE_COLAB.rglob("*")) if p.is_file() and "__pycache__" not in p.parts)):
        digest.update(part if isinstance(part, bytes) else part.encode())
    return digest.hexdigest()[:12]


def build_base(cache: Path, python: str = sys.executable, log=None) -> Base:
    """Build (once; later calls and other processes reuse it) the venv of Colab's preinstalled packages."""
    from filelock import FileLock

    packages = read_runtime()
    cache.mkdir(parents=True, exist_ok=True)
    venv = cache / f"colab-base-{_key(python)}"
    with FileLock(str(venv) + ".lock"):
        if (venv / "standin.json").is_file():
            return Base(venv, packages, json.loads((venv / "standin.json").read_text())["build_seconds"])
        shutil.rmtree(venv, ignore_errors=True)
        started = time.perf_counter()
        try:
            _build(venv, python, packages, log or (lambda *_: None))
        except BaseException:
            shutil.rmtree(venv, ignore_errors=True)
            raise
        seconds = time.perf_counter() - started
        info = json.loads((venv / "standin.json").read_text())
        info["build_seconds"] = seconds
        (venv / "standin.json").write_text(json.dumps(info, indent=1))
        return Base(venv, packages, seconds)


def _build(venv: Path, python: str, packages: ColabPackages, log) -> None:
    def run(*args: str) -> None:
        log(" ".join(args))
        done = subprocess.run(list(args), capture_output=True, text=True, env=_clean_env())
        if done.returncode:
            raise RuntimeError(f"building the Colab stand-in failed: {' '.join(args)}\n{done.stdout}\n{done.stderr}")

    run(python, "-m", "venv", str(venv))
    py = str(venv / "bin" / "python")
    constraints = venv / "colab-constraints.txt"
    constraints.write_text(packages.constraints(), encoding="utf-8")
    pip = (py, "-m", "pip", "install", "-q", "-c", str(constraints))
    run(*pip, "pip")                                        # Colab's pip first: the install cell runs it
    run(py, "-m", "pip", "install", "-q", "--no-deps", TORCH_SUBSTITUTE)
    fits, unfit = _torch_requirements(Path(py), packages)
    with_torch = installed(Path(py))
    wanted = [r for r in course_requirements() if canonical(re.split(r"[<>=!~; \[]", r, 1)[0]) != "torch"]
    run(*pip, *wanted, *RUNTIME_TOOLS, *fits)                 # torch's own requirements at Colab's versions
    # What Colab does not preinstall goes again (the course's bm25s, PyStemmer, cma, and anything only they
    # pulled in): the install cell must add it, as in Colab.
    extra = sorted(n for n in installed(Path(py)) if n not in packages.versions and n not in with_torch
                   and n not in {canonical(f) for f in fits} and n not in KEPT_FOR_THIS_PYTHON)
    if extra:
        run(py, "-m", "pip", "uninstall", "-q", "-y", *extra)
    with tempfile.TemporaryDirectory() as tmp:              # built from a copy: pip builds in the source tree
        fake = Path(tmp) / "google-colab"
        shutil.copytree(FAKE_COLAB, fake, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
        run(py, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(fake))
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (venv / "standin.json").write_text(json.dumps({"runtime": packages.runtime, "site_packages": site,
                                                   "removed_as_not_in_colab": extra,
                                                   "torch_requirements_colab_does_not_meet": unfit,
                                                   "installed": installed(Path(py))}, indent=1))


def _torch_requirements(python: Path, packages: ColabPackages):
    """(the substitute torch's requirements to install at Colab's versions, those Colab's versions do not meet).

    torch 2.13 asks for setuptools>=77.0.3, newer than Colab's; torch needs setuptools only to build C++
    extensions, which the course never does, so Colab's is kept and the mismatch is reported, not fixed.
    """
    from packaging.requirements import Requirement
    from packaging.version import Version

    listed = subprocess.run([str(python), "-c", "import importlib.metadata as m; print('\\n'.join(m.requires('torch') or []))"],
                            capture_output=True, text=True, check=True, env=_clean_env()).stdout.split("\n")
    fits, unfit = [], []
    for line in filter(None, (x.strip() for x in listed)):
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        colab = packages.versions.get(canonical(req.name))
        if colab is None or req.specifier.contains(Version(colab), prereleases=True):
            fits.append(req.name)
        else:
            unfit.append(f"torch 2.13 asks for {req}; kept Colab's {req.name} {colab}")
    return fits, unfit


#: What the browser test adds to this machine's Python (current versions: JupyterLab 4 for ipywidgets 8).
BROWSER_TOOLS = ("playwright", "jupyterlab>=4")
#: A JupyterLab whose widget manager speaks ipywidgets 7's protocol, for the Colab runtime's ipywidgets 7.7.1
#: kernel: jupyterlab_widgets 1.1 is the JupyterLab 3 extension released with ipywidgets 7.7 (which asks for
#: ``jupyterlab_widgets>=1.0.0``); 3.x is ipywidgets 8's.
LAB3_SERVER = ("jupyterlab==3.6.8", "jupyterlab_widgets==1.1.11")


def _tool_venv(cache: Path, name: str, tools: Sequence[str], lend_from: Optional[str] = None) -> Path:
    """A venv in ``cache`` with ``tools`` installed by pip, built once (several workers share it via a lock).

    With ``lend_from``, that Python's site-packages come in (:func:`lend_packages`), so a Python that is
    itself a venv (a maintainer's ``.venv``) lends its packages too. Without it, the venv holds ``tools`` and
    their dependencies only.
    """
    from filelock import FileLock

    venv = cache / (f"{name}-" + hashlib.sha256(f"lent-site{lend_from}{tools}".encode()).hexdigest()[:12])
    cache.mkdir(parents=True, exist_ok=True)
    with FileLock(str(venv) + ".lock"):
        if (venv / "ready").is_file():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        try:
            maker = lend_from or sys.executable
            done = subprocess.run([maker, "-m", "venv", *(["--without-pip"] if lend_from else []), str(venv)],
                                  capture_output=True, text=True, env=_clean_env())
            if done.returncode:
                raise RuntimeError(f"making the {name} venv failed: {done.stderr}")
            if lend_from:
                lend_packages(venv / "bin" / "python", lend_from)
            done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *tools],
                                  capture_output=True, text=True, env=_clean_env())
            if done.returncode:
                raise RuntimeError(f"installing {' '.join(tools)} in the {name} venv failed:\n{done.stderr}")
        except BaseException:
            shutil.rmtree(venv, ignore_errors=True)
            raise
        (venv / "ready").write_text("")
        return venv


def build_browser_venv(cache: Path, python: str = sys.executable) -> Path:
    """A venv over ``python``'s packages (ipywidgets 8) plus playwright and JupyterLab 4; built once.

    Jupyter's data files of ``python``'s packages (JupyterLab's widget manager among them) stay under
    ``python``'s prefix: :func:`browser_jupyter_path` names it.
    """
    return _tool_venv(cache, "browser", BROWSER_TOOLS, lend_from=python)


def build_lab3_server(cache: Path) -> Path:
    """A venv holding only a JupyterLab 3 server with ipywidgets 7's front end (:data:`LAB3_SERVER`).

    Nothing of this machine's is lent to it: its JupyterLab 4 and ipywidgets 8 extensions would be found
    first. Its kernels are Colab stand-in runtimes (:meth:`Runtime.server_kernels`), as Colab's front end
    talks to a kernel it does not share packages with."""
    return _tool_venv(cache, "lab3-server", LAB3_SERVER)


def browser_jupyter_path(venv: Path, python: str = sys.executable) -> str:
    """``$JUPYTER_PATH`` for servers run from the browser venv: its own data files, then ``python``'s."""
    prefix = subprocess.run([python, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True,
                            check=True, env=_clean_env()).stdout.strip()
    return os.pathsep.join([str(venv / "share" / "jupyter"), str(Path(prefix) / "share" / "jupyter")])


# ---------------------------------------------------------------- a runtime per lesson

KERNEL_STARTUP = ("# The Colab stand-in's kernel imports google.colab at start, as Colab's kernel does.\n"
                  "c.InteractiveShellApp.exec_lines = ['import google.colab']\n")


@dataclass
class Runtime:
    """One lesson's Colab runtime: a fresh /content, home and venv over the preinstalled packages."""
    root: Path
    base: Base
    drive: Path                     # the Google Drive folder (holds MyDrive/), shared by the runtimes
    repo_url: str                   # what the install cell clones ($MDN_COURSE_REPO_URL)
    pip_cache: Optional[Path] = None

    def __post_init__(self) -> None:
        if not (self.root / "venv").exists():
            for sub in ("content", "home", "downloads", "kernels/colab"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            subprocess.run([str(self.base.python), "-m", "venv", "--without-pip", str(self.root / "venv")],
                           check=True, env=_clean_env())
            site = subprocess.run([str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip()
            # Colab's packages come after this runtime's own, as /usr/local's do in Colab
            (Path(site) / "colab-preinstalled.pth").write_text(f"{self.base.site_packages}\n")
            profile = self.home / ".ipython" / "profile_default"
            profile.mkdir(parents=True)
            (profile / "ipython_kernel_config.py").write_text(KERNEL_STARTUP)
            self.drive.joinpath("MyDrive").mkdir(parents=True, exist_ok=True)

    @property
    def content(self) -> Path:
        return self.root / "content"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def downloads(self) -> Path:
        return self.root / "downloads"

    @property
    def python(self) -> Path:
        return self.root / "venv" / "bin" / "python"

    def env(self) -> Dict[str, str]:
        keep = {k: v for k, v in os.environ.items()
                if k.startswith("PIP_") or k.lower().endswith("_proxy") or k in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE",
                                                                                   "LANG", "TZ")}
        keep.update(PATH=f"{self.root / 'venv' / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    HOME=str(self.home), XDG_CACHE_HOME=str(self.home / ".cache"), TMPDIR="/tmp",
                    PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", OMP_NUM_THREADS="1",
                    PYDEVD_DISABLE_FILE_VALIDATION="1", COLAB_STANDIN_DRIVE=str(self.drive),
                    COLAB_STANDIN_DOWNLOADS=str(self.downloads), MDN_COURSE_REPO_URL=self.repo_url)
        if self.pip_cache is not None:
            keep["PIP_CACHE_DIR"] = str(self.pip_cache)
        return keep

    def sandbox(self) -> List[str]:
        """bwrap arguments: this machine's files, Colab's packages read-only, no checkout, /content is ours."""
        args = ["bwrap", "--die-with-parent"]
        for entry in sorted(os.listdir("/")):
            path = "/" + entry
            if entry in ("proc", "dev", "content"):
                continue
            if os.path.islink(path):
                args += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                args += ["--bind", path, path]
        args += ["--dev-bind", "/dev", "/dev", "--proc", "/proc",
                 "--ro-bind", str(self.base.venv), str(self.base.venv),
                 "--tmpfs", str(REPO),
                 "--dir", "/content", "--bind", str(self.content), "/content", "--chdir", "/content"]
        return args

    def _write_kernel(self, folder: Path) -> None:
        """This runtime's kernel (in its sandbox) as a kernelspec in ``folder``."""
        argv = self.sandbox() + [str(self.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "kernel.json").write_text(json.dumps(
            {"argv": argv, "display_name": "Python 3 (Colab stand-in)", "language": "python"}))

    def kernel_spec_manager(self):
        from jupyter_client.kernelspec import KernelSpecManager

        self._write_kernel(self.root / "kernels" / "colab")
        return KernelSpecManager(kernel_dirs=[str(self.root / "kernels")], ensure_native_kernel=False)

    def server_kernels(self) -> Path:
        """A ``$JUPYTER_PATH`` folder whose only kernel, ``python3``, is this runtime's: for a notebook server
        run outside the runtime (started with ``KernelSpecManager.ensure_native_kernel=False``)."""
        folder = self.root / "server-jupyter"
        self._write_kernel(folder / "kernels" / "python3")
        return folder

    def installed(self) -> Dict[str, str]:
        return installed(self.python)


def sandbox_works() -> Optional[str]:
    """None if bubblewrap can make the runtimes' mount namespaces here, else why not."""
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    probe = subprocess.run(["bwrap", "--bind", "/", "/", "--dev-bind", "/dev", "/dev", "--tmpfs", "/tmp", "true"],
                           capture_output=True, text=True)
    return None if probe.returncode == 0 else f"bwrap cannot make a mount namespace here: {probe.stderr.strip()}"


# ---------------------------------------------------------------- a lesson, run as a student runs it

PROBE = ("import json, os, sys, IPython, ipywidgets, google.colab, mdn_course\n"
         "print('STANDIN ' + json.dumps({'cwd': os.getcwd(), 'package': mdn_course.__file__,\n"
         "    'python': sys.version.split()[0], 'ipython': IPython.__version__, 'ipywidgets': ipywidgets.__version__,\n"
         "    'colab_calls': google.colab.CALLS}))\n")


@dataclass
class LessonRun:
    name: str
    seconds: float
    install_seconds: Optional[float]
    error: Optional[str]
    nb: object
    probe: dict = field(default_factory=dict)
    before: Dict[str, str] = field(default_factory=dict)
    after: Dict[str, str] = field(default_factory=dict)
    stalled_before: Optional[str] = None    # a first run's error, when a cell of it never finished

    @property
    def stalled(self) -> bool:
        """A cell ran past its timeout (as opposed to raising, or the kernel dying)."""
        return self.error is not None and self.error.startswith("CellTimeoutError")

    def outputs_text(self, index: int) -> str:
        texts = []
        for out in self.nb.cells[index].get("outputs", []):
            texts.append(out.get("text", "") if out.get("output_type") == "stream"
                         else "".join(out.get("data", {}).get("text/plain", "")) + "".join(out.get("traceback", [])))
        return "".join(texts)

    def widget_models(self, index: int) -> List[str]:
        """The model names of the widgets cell ``index`` displayed, children included (empty: none)."""
        state = self.nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
        found, todo = [], []
        for out in self.nb.cells[index].get("outputs", []):
            view = out.get("data", {}).get("application/vnd.jupyter.widget-view+json")
            if view:
                todo.append(view["model_id"])
        while todo:
            model = state.get(todo.pop(0))
            if model is None:
                found.append("<missing model>")
                continue
            found.append(model["model_name"])
            children = model.get("state", {}).get("children", [])
            todo += [c.removeprefix("IPY_MODEL_") for c in children if isinstance(c, str)]
        return found


#: A cell still running after this many seconds has its kernel's stacks written down (py-spy), once.
STALL_SECONDS = 120
#: How long one cell may run in the stand-in (the longest, a lesson's training, takes under a minute here).
CELL_TIMEOUT = int(os.environ.get("MDN_COURSE_STANDIN_CELL_TIMEOUT", "300"))
#: Where those stacks go: outputs/colab-standin/stall-<lesson>-cell<N>.txt
STALL_DIR = REPO / "outputs" / "colab-standin"


def _descendants(pid: int) -> List[int]:
    """``pid`` and every process below it (the kernel runs under bwrap, so the Python is a child)."""
    children: Dict[int, List[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def kernel_stacks(pid: Optional[int]) -> str:
    """What every process under the kernel's ``pid`` is doing: ``py-spy dump`` for each Python among them, else
    each one's kernel wait channel (what a stalled cell is waiting on, for the failure report)."""
    if pid is None:
        return "no kernel process to inspect"
    spy = shutil.which("py-spy")
    parts = []
    for child in _descendants(pid):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200]
            wchan = Path(f"/proc/{child}/wchan").read_text()
        except OSError:
            continue
        parts.append(f"--- pid {child}: {command} (waiting in {wchan or 'nothing'})")
        if spy and "python" in command and "bwrap" not in command.split()[0]:
            dumped = subprocess.run([spy, "dump", "--pid", str(child)], capture_output=True, text=True, timeout=60)
            parts.append(dumped.stdout or dumped.stderr)
    return "\n".join(parts)


class _StallWatch:
    """Write down the kernel's stacks once if a cell runs longer than :data:`STALL_SECONDS` (without stopping it:
    the cell's own timeout still decides), so a hang in a long unattended run says where it hung."""

    def __init__(self, km, name: str):
        self.km, self.name, self.started, self.index, self.reports = km, name, None, None, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def cell_started(self, cell, cell_index, **_):
        self.started, self.index = time.monotonic(), cell_index

    def cell_done(self, cell, cell_index, **_):
        self.started = None

    def _watch(self) -> None:
        reported = set()
        while not self._stop.wait(5):
            started, index = self.started, self.index
            if started is None or index in reported or time.monotonic() - started < STALL_SECONDS:
                continue
            reported.add(index)
            pid = getattr(getattr(self.km, "provisioner", None), "pid", None)
            text = f"{self.name}: cell {index} still running after {STALL_SECONDS} s\n{kernel_stacks(pid)}"
            STALL_DIR.mkdir(parents=True, exist_ok=True)
            path = STALL_DIR / f"stall-{self.name}-cell{index}.txt"
            path.write_text(text, encoding="utf-8")
            self.reports.append(text)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=90)


def run_notebook(runtime: Runtime, notebook, name: str, timeout: int = CELL_TIMEOUT, probe: bool = True) -> LessonRun:
    """Execute ``notebook`` (a path or a NotebookNode) top to bottom in ``runtime``'s kernel.

    A cell gets ``timeout`` seconds; one still running after :data:`STALL_SECONDS` has its kernel's stacks
    written down, and a failed run's error ends with them."""
    import nbformat
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    from mdn_course.tools.notebook_runner import local_kernel_manager_class, notebook_client

    nb = nbformat.read(notebook, as_version=4) if isinstance(notebook, (str, Path)) else notebook
    if probe:
        nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    before = runtime.installed()
    km = local_kernel_manager_class()(kernel_name="colab", kernel_spec_manager=runtime.kernel_spec_manager())
    watch = _StallWatch(km, name)
    client = notebook_client(nb, km=km, timeout=timeout, record_timing=True, store_widget_state=True,
                            resources={"metadata": {"path": str(runtime.content)}},
                            on_cell_start=watch.cell_started, on_cell_executed=watch.cell_done)
    started, error = time.perf_counter(), None
    with watch:
        try:
            client.execute(env=runtime.env())
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # kernel start failures: the run fails, saying why
            error = f"{type(exc).__name__}: {exc}"
    if error is not None and watch.reports:
        error += "\n\nThe kernel's stacks while the cell ran:\n" + watch.reports[-1][-6000:]
    seconds = time.perf_counter() - started
    run = LessonRun(name, seconds, _install_seconds(nb), error, nb, before=before, after=runtime.installed())
    for cell in nb.cells[-1:]:
        for out in cell.get("outputs", []):
            text = out.get("text", "")
            if probe and text.startswith("STANDIN "):
                run.probe = json.loads(text[len("STANDIN "):])
    return run


def _install_seconds(nb) -> Optional[float]:
    from datetime import datetime

    for cell in nb.cells:
        if cell.cell_type == "code" and '"google.colab" in sys.modules' in cell.source:
            timing = cell.metadata.get("execution", {})
            start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
            if start and end:
                parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
                return (parse(end) - parse(start)).total_seconds()
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python tests/colab_standin.py")
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("refresh", help="rewrite tests/colab_runtime.txt from a googlecolab/backend-info clone")
    cmd.add_argument("repo", type=Path, help="a clone (bare or not) of github.com/googlecolab/backend-info")
    cmd.add_argument("commit", nargs="?", default="HEAD")
    args = parser.parse_args(argv)
    sha = refresh(args.repo, args.commit)
    packages = read_runtime()
    print(f"wrote {RUNTIME_FILE.relative_to(REPO)}: runtime {packages.runtime}, Python {packages.python}, "
          f"{len(packages.versions)} packages")
    return 0 if sha else 1


if __name__ == "__main__":
    sys.exit(main())
