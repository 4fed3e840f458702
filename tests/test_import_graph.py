"""The package's import graph has no circle, counting the imports that hide inside functions.

The graph is read from the source with ``ast``: every ``import`` statement of ``mdn_course``,
at module level or inside a function (a function-local import that dodges a circle is still
a circle), but not those under ``if TYPE_CHECKING:`` (never run). An edge A -> B means that
running A's imports runs module B: ``from .x import name`` depends on ``x``, ``from . import
sub`` on the submodule ``sub``, and importing ``p.q.r`` also runs the ``__init__`` of every
package on the way, except packages A itself lives in (they are running already).
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

PACKAGE = Path(__file__).resolve().parent.parent / "mdn_course"


def module_names(package: Path) -> Dict[str, Path]:
    """Every module of ``package`` by its dotted name (a package by the name of its ``__init__``)."""
    names = {}
    for path in sorted(package.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _imports(node: ast.AST):
    """Every import statement in ``node``, in functions too, except those guarded by ``if TYPE_CHECKING:``."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
        return
    typing_only = isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
    for child in (node.orelse if typing_only else ast.iter_child_nodes(node)):
        yield from _imports(child)


def import_graph(package: Path) -> Dict[str, Set[str]]:
    """{module: the modules of ``package`` its import statements run}, self-imports left out."""
    modules = module_names(package)
    graph: Dict[str, Set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        ancestors = {".".join(name.split(".")[:i]) for i in range(1, len(name.split(".")))}
        targets: Set[str] = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            else:
                base = here[: len(here) - node.level + 1] if node.level else []
                source = ".".join(base + ([node.module] if node.module else []))
                subs = [f"{source}.{alias.name}" for alias in node.names]
                found = [s for s in subs if s in modules]
                if len(found) < len(subs):          # some names come from the module itself
                    found.append(source)
                elif source not in ancestors:       # the package's __init__ runs before its submodules
                    found.append(source)
            for target in found:
                parts = target.split(".")
                chain = {".".join(parts[:i]) for i in range(1, len(parts))} - ancestors
                targets |= {t for t in chain | {target} if t in modules}
        graph[name] = targets - {name}
    return graph


def circles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The groups of modules that import each other, directly or not (strongly connected, Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_circle():
    graph = import_graph(PACKAGE)
    assert len(graph) > 40 and graph["mdn_course.grading.cli"] >= {"mdn_course.grading.batch"}
    found = circles(graph)
    assert found == [], f"modules that import each other (directly or through others, in functions too): {found}"


def reachable(graph: Dict[str, Set[str]], start: List[str]) -> Set[str]:
    """Every module that importing ``start`` runs (``start`` included)."""
    seen, todo = set(), list(start)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += graph.get(name, ())
    return seen


#: What lessons and students import: the library, the exercise, lesson 4's loader, the assistant, the player.
STUDENT_FACING = ["mdn_course", "mdn_course.exercise", "mdn_course.exercise.student_loss", "mdn_course.assistant",
                  "mdn_course.narration"]


def test_what_students_import_never_runs_the_course_machinery():
    """The tree is the plan: lessons never import the grader or the authoring tools, and the trust boundary
    (the two files copied into the sandbox) imports nothing of the package."""
    graph = import_graph(PACKAGE)
    students = reachable(graph, STUDENT_FACING)
    assert {"mdn_course.exercise.checks", "mdn_course.sandboxed.oracle", "mdn_course.narration.player"} <= students
    assert sorted(m for m in students if m.startswith(("mdn_course.grading", "mdn_course.tools"))) == []
    assert "mdn_course.narration.build" not in students   # text-to-speech is the authors' business
    assert graph["mdn_course.sandboxed.oracle"] == graph["mdn_course.sandboxed.server"] == set()


def _package(root: Path, files: Dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_a_circle_through_a_function_local_import_is_found(tmp_path):
    pkg = _package(tmp_path, {
        "__init__.py": "",
        "a.py": "from .b import helper\n",
        "b.py": "def helper():\n    from .a import x  # the dodge\n    return x\n",
        "c.py": "from . import a\n",
    })
    assert circles(import_graph(pkg)) == [["pkg.a", "pkg.b"]]


def test_what_is_not_a_circle_is_not_reported(tmp_path):
    pkg = _package(tmp_path, {
        "__init__.py": "from .panel import chat\n",       # the package imports its submodule ...
        "panel.py": "from . import llm\nfrom .llm import ask\ndef chat():\n    return ask\n",   # ... which needs only a sibling
        "llm.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .panel import chat\ndef ask():\n    pass\n",
        "tools/__init__.py": "",
        "tools/x.py": "from ..panel import chat\nimport pkg.tools.y\n",   # pkg and pkg.tools are running already
        "tools/y.py": "",
    })
    graph = import_graph(pkg)
    assert graph["pkg.panel"] == {"pkg.llm"} and graph["pkg.llm"] == set()
    assert graph["pkg.tools.x"] == {"pkg.panel", "pkg.tools.y"}
    assert circles(graph) == []
    (pkg / "llm.py").write_text("from . import chat\n")   # a name from the package's own __init__: a circle
    assert circles(import_graph(pkg)) == [["pkg", "pkg.llm", "pkg.panel"]]
