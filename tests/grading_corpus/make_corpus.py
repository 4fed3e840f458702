"""Generate the grader's test corpus: submissions of both exercises and the row each must get.

    python tests/grading_corpus/make_corpus.py          # rewrite the committed .ipynb files + expected.csv

Each submission looks like a student notebook of its exercise (imports, the setup line
``from mdn_course.exercise import run_check``, an answer cell tagged ``answer`` whose nbgrader
``grade_id`` names the exercise, one ``check`` cell per registry entry) with one thing changed:
the ``mdn_loss`` exercise's (numbered below 50) and the training step's (50 and up, from
``steps.py``) in one folder, as an instructor's may be, graded by one command. ``EXPECTED``
holds the row each must get: exercise, status, points, the checks that pass, and words the
message must contain. The attacks on the grader (forged results, import
hooks, patched builtins, the truth from a frame, scratch traps, aggregate
memory/process/disk limits, a process killed mid-check, noise, a huge answer)
are in ``attacks.py``. ``sandbox_probes(...)`` writes the probes that need this
run's paths (delete a file outside the sandbox, open sockets, read a root-only
file and socket, steal a correct answer from disk); the tests generate those
into their own tmp dir (they are not committed).
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional

import nbformat

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
sys.path.insert(0, str(HERE))
import attacks as A  # noqa: E402
import steps as S  # noqa: E402
from mdn_course.exercise import CHECKS, EXERCISES  # noqa: E402

ALL = list(CHECKS)
STEP_ALL = list(EXERCISES["training_step"].checks)

CORRECT = A.CORRECT


def _variant(body: str) -> str:
    return ("def mdn_loss(pi, mu, sigma, z_next):\n"
            "    z = z_next.unsqueeze(-1)\n"
            "    log_n = -0.5 * ((z - mu) / sigma) ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)\n"
            + body)


WRONG_SIGN = _variant("    return torch.logsumexp(torch.log(pi) + log_n, dim=-1).sum(dim=-1).mean()\n")
MEAN_OVER_DIMS = _variant("    return -torch.logsumexp(torch.log(pi) + log_n, dim=-1).mean()\n")
NO_LOG_WEIGHTS = _variant("    return -torch.logsumexp(log_n, dim=-1).sum(dim=-1).mean()\n")
NAIVE_LOGSUMEXP = _variant("    return -torch.log(torch.sum(pi * torch.exp(log_n), dim=-1)).sum(dim=-1).mean()\n")
VARIANCE_AS_STD = '''def mdn_loss(pi, mu, sigma, z_next):
    z = z_next.unsqueeze(-1)
    log_n = -0.5 * (z - mu) ** 2 / sigma - 0.5 * torch.log(sigma) - 0.5 * math.log(2 * math.pi)
    return -torch.logsumexp(torch.log(pi) + log_n, dim=-1).sum(dim=-1).mean()
'''
RETURNS_ITEM = _variant("    return (-torch.logsumexp(torch.log(pi) + log_n, dim=-1).sum(dim=-1).mean()).item()\n")

REFERENCE_PLAIN = '''from mdn_course import mdn_loss as reference_loss

def mdn_loss(pi, mu, sigma, z_next):
    return reference_loss(pi, mu, sigma, z_next)
'''
REFERENCE_IMPORTLIB = '''import importlib
_pkg = importlib.import_module("mdn_" + "course")

def mdn_loss(pi, mu, sigma, z_next):
    return getattr(_pkg, "mdn" + "_loss")(pi, mu, sigma, z_next)
'''
# a copy of the reference's code made at definition time: notebook.reference_guard alone does not see it
REFERENCE_COPY = '''import types
_mod = getattr(__import__("mdn_" + "course.loss"), "lo" + "ss")
_ref = getattr(_mod, "mdn" + "_loss")
_copy = types.FunctionType(_ref.__code__, _ref.__globals__)

def mdn_loss(pi, mu, sigma, z_next):
    return _copy(pi, mu, sigma, z_next)
'''
REBIND_RUN_CHECK = '''def run_check(name, loss_fn):
    print("✓", name)

def mdn_loss(pi, mu, sigma, z_next):
    return torch.zeros((), requires_grad=True)
'''
PATCH_CHECKS = '''import importlib
_checks = importlib.import_module("mdn_" + "course.exercise.notebook")
_checks.run_check.__code__ = (lambda name, loss_fn: None).__code__

def mdn_loss(pi, mu, sigma, z_next):
    return torch.zeros((), requires_grad=True)
'''
INFINITE_LOOP = '''def mdn_loss(pi, mu, sigma, z_next):
    total = 0.0
    while True:  # "until it converges"
        total += 1.0
'''
CRASH = '''import os

def mdn_loss(pi, mu, sigma, z_next):
    os._exit(1)
'''
SYNTAX_ERROR = '''def mdn_loss(pi, mu, sigma, z_next)
    return -torch.logsumexp(torch.log(pi), dim=-1).sum(-1).mean()
'''
MEMORY_HOG = "_buffer = bytearray(8 * 1024 ** 3)  # 8 GiB: over the grader's address-space cap\n" + CORRECT


# ---------------------------------------------------------------- notebooks

def _cell_id(name: str) -> str:
    return name.replace("_", "-")


SETUP = {"mdn_loss": "%matplotlib inline\nimport math\n\nimport torch\n\nfrom mdn_course.exercise import run_check",
         "training_step": "%matplotlib inline\nimport math\n\nimport torch\n\nfrom mdn_course import MDNRNN, mdn_loss\n"
                          "from mdn_course.exercise import run_check"}


def notebook(answer: Optional[str], *, tag_answer: bool = True, edit=None, exercise: str = "mdn_loss",
             grade_id: bool = True) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    # like the distributed notebook, the setup and narration cells carry nbval-ignore-output: not tampering
    cells = [nbformat.v4.new_markdown_cell(f"# Exercise: implement `{exercise}`"),
             nbformat.v4.new_code_cell(SETUP[exercise], metadata={"tags": ["nbval-ignore-output"]}),
             nbformat.v4.new_code_cell('print("narration: your turn")',
                                       metadata={"tags": ["nbval-ignore-output", "narration"]})]
    if answer is not None:
        meta = {"nbgrader": {"grade": False, "solution": True, "locked": False,
                             "grade_id": f"{exercise}_answer", "schema_version": 3}} if grade_id else {}
        if tag_answer:
            meta["tags"] = ["answer"]
        cells.append(nbformat.v4.new_code_cell(answer, metadata=meta))
    cells.append(nbformat.v4.new_code_cell(f"check_summary({exercise})", metadata={"tags": ["summary"]}))
    for name, check in EXERCISES[exercise].checks.items():
        cells.append(nbformat.v4.new_markdown_cell(f"Check `{name}`: {check.description} ({check.points} pt)"))
        cells.append(nbformat.v4.new_code_cell(f'run_check("{name}", {exercise})', metadata={
            "tags": ["check"], "check": name, "points": check.points,
            "nbgrader": {"grade": True, "solution": False, "locked": True, "points": check.points,
                         "grade_id": f"check_{name}", "schema_version": 3}}))
    nb.cells = cells
    if edit is not None:
        edit(nb)
    for i, c in enumerate(nb.cells):
        c["id"] = f"cell-{i}"
    return nb


def _check_cell(nb, name):
    return next(c for c in nb.cells if c.get("metadata", {}).get("check") == name)


def _tamper_cells(nb):
    nb.cells.remove(_check_cell(nb, "far_from_means"))             # deleted
    _check_cell(nb, "mixture").source = "run_check(\"mixture\", lambda *a: None)"   # edited
    _check_cell(nb, "learns").metadata["points"] = 10              # points inflated
    _check_cell(nb, "learns").metadata["nbgrader"]["points"] = 10


def _tamper_markers(nb):
    _check_cell(nb, "mixture").source = "# NBVAL_IGNORE_OUTPUT\n" + _check_cell(nb, "mixture").source
    _check_cell(nb, "gradients").source = "# NBVAL_SKIP\n" + _check_cell(nb, "gradients").source
    _check_cell(nb, "learns").metadata["tags"] = ["check", "nbval-skip"]
    _check_cell(nb, "leading_dims").metadata["tags"] = ["check", "raises-exception"]
    answer = next(c for c in nb.cells if "answer" in c.get("metadata", {}).get("tags", []))
    answer.source = "# NBVAL_RAISES_EXCEPTION\n" + answer.source


def _fake_outputs(nb):
    for name, check in CHECKS.items():
        cell = _check_cell(nb, name)
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                               text=f"✓ {name} ({check.points} pt): passed\n")]
        cell.execution_count = None          # cleared counts, hand-written outputs
    _check_cell(nb, "mixture").outputs[0].text = "✓ learns (1 pt): passed\n"


def _no_answer(nb):
    nb.cells.insert(3, nbformat.v4.new_code_cell("# TODO: I did not get to this one\nx = 1"))


# name -> (answer, notebook kwargs, expected row)
def _exp(status: str, points: int, passed: List[str], words: List[str], exercise: str = "mdn_loss") -> dict:
    return {"status": status, "points": points, "passed": passed, "words": words, "exercise": exercise}


def _step(status: str, passed: List[str], words: List[str]) -> dict:
    checks = EXERCISES["training_step"].checks
    return _exp(status, sum(checks[c].points for c in passed), passed, words, "training_step")


def _all_step_but(*failing: str) -> List[str]:
    return [c for c in STEP_ALL if c not in failing]


def _tamper_step_cells(nb):
    _check_cell(nb, "clips").source = 'run_check("clips", lambda *a: 0.0)'


STEP = {"exercise": "training_step"}


CASES: Dict[str, tuple] = {
    "01_correct": (CORRECT, {}, _exp("ok", 10, ALL, ["7/7 checks passed"])),
    "02_wrong_sign": (WRONG_SIGN, {}, _exp("ok", 1, ["returns_scalar"], ["wrong sign"])),
    "03_mean_over_dims": (MEAN_OVER_DIMS, {}, _exp("ok", 1, ["returns_scalar"], ["mean over the latent dimensions"])),
    "04_missing_log_weights": (NO_LOG_WEIGHTS, {}, _exp("ok", 3, ["returns_scalar", "single_gaussian"],
                                                            ["missing log-weights"])),
    # log(sum(exp)) underflows only far from every mean: the checks keep their other random inputs
    # within 10 sigma, so this mistake fails far_from_means alone, on every run
    "05_naive_logsumexp": (NAIVE_LOGSUMEXP, {}, _exp("ok", 8, [n for n in ALL if n != "far_from_means"],
                                                     ["far_from_means", "underflows"])),
    "06_variance_as_std": (VARIANCE_AS_STD, {}, _exp("ok", 1, ["returns_scalar"], ["sigma used as a variance"])),
    "07_returns_item": (RETURNS_ITEM, {}, _exp("ok", 0, [], [".item()"])),
    "08_tampered_cells": (CORRECT, {"edit": _tamper_cells},
                          _exp("tampered", 10, ALL, ["'far_from_means' was deleted", "'mixture'", "edited",
                                                     "claims 10 points"])),
    "09_tampered_markers": (WRONG_SIGN, {"edit": _tamper_markers},
                            _exp("tampered", 1, ["returns_scalar"], ["NBVAL_IGNORE_OUTPUT", "NBVAL_SKIP",
                                                                    "nbval-skip", "raises-exception",
                                                                    "NBVAL_RAISES_EXCEPTION"])),
    "10_faked_outputs": (RETURNS_ITEM, {"edit": _fake_outputs},
                         _exp("tampered", 0, [], ["no execution count", "faked output"])),
    # the package is not importable where the answer runs
    "11_reference_plain": (REFERENCE_PLAIN, {}, _exp("error", 0, [], ["No module named 'mdn_course'"])),
    "12_reference_importlib": (REFERENCE_IMPORTLIB, {}, _exp("error", 0, [], ["No module named 'mdn_course'"])),
    "13_reference_copy": (REFERENCE_COPY, {}, _exp("error", 0, [], ["No module named 'mdn_course'"])),
    "14_rebind_run_check": (REBIND_RUN_CHECK, {}, _exp("ok", 0, [], ["0/7 checks passed"])),
    "15_patch_checks": (PATCH_CHECKS, {}, _exp("error", 0, [], ["No module named 'mdn_course'"])),
    "16_infinite_loop": (INFINITE_LOOP, {}, _exp("timeout", 0, [], ["took longer than"])),
    "17_crash": (CRASH, {}, _exp("error", 0, [], ["process ended (exit status 1)"])),
    "18_syntax_error": (SYNTAX_ERROR, {}, _exp("error", 0, [], ["answer cell failed", "SyntaxError"])),
    "19_no_answer": (None, {"edit": _no_answer}, _exp("invalid", 0, [], ["no answer cell"], exercise="")),
    "20_untagged_answer": (CORRECT, {"tag_answer": False}, _exp("ok", 10, ALL, ["no cell is tagged 'answer'"])),
    "21_memory_hog": (MEMORY_HOG, {}, _exp("error", 0, [], ["MemoryError"])),
    "24_stub": (A.STUB, {}, _exp("not_attempted", 0, [], ["not attempted", "NotImplementedError"])),
    "25_definition_loop": (A.DEFINITION_LOOP, {}, _exp("timeout", 0, [], ["the answer cell ran out of time"])),
    # attacks: the grade is what the honest part of each answer deserves
    "30_forge_channel": (A.FORGE_CHANNEL, {}, _exp("ok", 0, [], ["0/7 checks passed"])),
    "31_import_hook": (A.IMPORT_HOOK, {}, _exp("ok", 1, ["returns_scalar"], ["wrong sign"])),
    "32_patched_builtins": (A.PATCH_BUILTINS, {}, _exp("ok", 1, ["returns_scalar"], ["wrong sign"])),
    "33_truth_by_frame": (A.FRAME_AND_GC, {}, _exp("ok", 1, ["returns_scalar"], ["wrong sign"])),
    "34_scratch_traps": (A.SCRATCH_TRAPS, {}, _exp("ok", 10, ALL, ["7/7 checks passed"])),
    "35_memory_aggregate": (A.MEMORY_AGGREGATE, {}, _exp("ok", 10, ALL, ["7/7 checks passed"])),
    "36_process_count": (A.PROCESS_COUNT, {}, _exp("ok", 10, ALL, ["7/7 checks passed"])),
    "37_disk_fill": (A.DISK_FILL, {}, _exp("ok", 10, ALL, ["7/7 checks passed"])),
    "38_killed_mid_check": (A.KILLED_MID_CHECK, {}, _exp("error", 4, ["returns_scalar", "mixture", "gradients"],
                                                         ["process ended (exit status 137)"])),
    "39_stdout_noise": (A.STDOUT_NOISE, {}, _exp("ok", 10, ALL, ["7/7 checks passed"])),
    "40_huge_answer": (A.HUGE_ANSWER, {}, _exp("invalid", 0, [], ["over the limit"])),
    # the training-step exercise, in the same folder: each graded as the exercise its answer cell names
    "50_step_correct": (S.CORRECT, STEP, _step("ok", STEP_ALL, ["7/7 checks passed"])),
    "51_step_unshifted_targets": (S.UNSHIFTED, STEP, _step("ok", ["returns_loss"], ["targets not shifted"])),
    "52_step_previous_action": (S.PREVIOUS_ACTION, STEP, _step("ok", ["returns_loss"], ["actions misaligned"])),
    "53_step_carried_state": (S.CARRIED_STATE, STEP, _step("ok", ["returns_loss"], ["LSTM state kept from an earlier batch"])),
    "54_step_no_zero_grad": (S.NO_ZERO_GRAD, STEP, _step("ok", _all_step_but("fresh_gradients"),
                                                          ["gradients accumulated"])),
    "55_step_clip_after_step": (S.CLIP_AFTER_STEP, STEP, _step("ok", _all_step_but("clips"), ["clipped after the step"])),
    "56_step_not_clipped": (S.NOT_CLIPPED, STEP, _step("ok", _all_step_but("clips"), ["not clipped"])),
    "57_step_clip_by_value": (S.CLIP_BY_VALUE, STEP, _step("ok", _all_step_but("clips"), ["each gradient entry"])),
    "58_step_clip_to_one": (S.CLIP_TO_ONE, STEP, _step("ok", _all_step_but("updates", "clips", "fresh_gradients"),
                                                        ["clip_norm ignored"])),
    "59_step_no_step": (S.NO_STEP, STEP, _step("ok", ["returns_loss", "aligned", "independent_batches"],
                                               ["never steps"])),
    "60_step_zero_grad_before_step": (S.ZERO_GRAD_BEFORE_STEP, STEP,
                                      _step("ok", ["returns_loss", "aligned", "independent_batches"],
                                            ["no gradient when the optimiser steps"])),
    "61_step_manual_update": (S.MANUAL_UPDATE, STEP, _step("ok", ["returns_loss", "aligned", "independent_batches"],
                                                           ["ignores the optimiser"])),
    "62_step_new_adam": (S.NEW_ADAM, STEP, _step("ok", ["returns_loss", "aligned", "independent_batches"],
                                                 ["a new optimiser made in every step"])),
    "63_step_whole_sequence": (S.WHOLE_SEQUENCE, STEP, _step("ok", [], ["z has one state more than a has actions", "0/7"])),
    "64_step_returns_nothing": (S.RETURNS_NOTHING, STEP, _step("ok", [], ["returned None"])),
    "65_step_stub": (S.STUB, STEP, _step("not_attempted", [], ["not attempted", "NotImplementedError"])),
    "66_step_crash": (S.CRASH, STEP, _step("error", [], ["process ended (exit status 1)"])),
    "67_step_infinite_loop": (S.INFINITE_LOOP, STEP, _step("timeout", [], ["took longer than"])),
    "68_step_borrows_the_library": (S.BORROWS_THE_LIBRARY, STEP, _step("error", [], ["No module named 'mdn_course'"])),
    "69_step_forged_report": (S.FORGED_REPORT, STEP, _step("ok", ["returns_loss"], ["1/7 checks passed"])),
    "70_step_five_steps": (S.FIVE_STEPS, STEP, _step("ok", ["returns_loss", "aligned", "independent_batches", "trains"],
                                                     ["right but not the update"])),
    "71_step_untagged": (S.CORRECT, {**STEP, "tag_answer": False, "grade_id": False},
                         _step("ok", STEP_ALL, ["no cell is tagged 'answer'"])),
    "72_step_tampered": (S.CLIP_AFTER_STEP, {**STEP, "edit": _tamper_step_cells},
                         _step("tampered", _all_step_but("clips"), ["'clips'", "edited"])),
}
MALFORMED = "22_malformed"
NOT_A_NOTEBOOK = "23_not_a_notebook"
EXPECTED: Dict[str, dict] = {name: case[2] for name, case in CASES.items()}
EXPECTED[MALFORMED] = _exp("invalid", 0, [], ["not valid JSON"], exercise="")
EXPECTED[NOT_A_NOTEBOOK] = _exp("invalid", 0, [], ["no 'cells' list"], exercise="")
# Where the grader cannot create cgroups (a non-root grader, a read-only /sys/fs/cgroup), memory is
# bounded per process only (RLIMIT_AS x RLIMIT_NPROC): this attack then holds its 1.5 GiB, returns
# its wrong constant, and scores 0. The grader says which mechanism it used on stderr.
WITHOUT_CGROUP = {"35_memory_aggregate": _exp("ok", 0, [], ["0/7 checks passed"])}
# the escape probes, generated per test run by sandbox_probes(): escaping costs points
PROBES_EXPECTED = {
    "90_delete_probe": _exp("ok", 10, ALL, ["7/7"]),
    "91_socket_probe": _exp("ok", 10, ALL, ["7/7"]),
    "92_root_probe": _exp("ok", 10, ALL, ["7/7"]),
    "93_steal_files": _exp("ok", 1, ["returns_scalar"], ["wrong sign"]),
}


def _write(nb, path: Path) -> None:
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def build(dest: Path = HERE) -> List[Path]:
    """Write the fixed corpus into ``dest``; return the paths in sorted (grading) order."""
    dest.mkdir(parents=True, exist_ok=True)
    for name, (answer, kwargs, _) in CASES.items():
        _write(notebook(answer, **kwargs), dest / f"{name}.ipynb")
    (dest / f"{MALFORMED}.ipynb").write_text('{"cells": [{"cell_type": "code", "source": "def mdn_loss(',
                                             encoding="utf-8")
    (dest / f"{NOT_A_NOTEBOOK}.ipynb").write_text('{"message": "this is JSON but not a notebook"}\n',
                                                  encoding="utf-8")
    with open(dest / "expected.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["submission", "exercise", "status", "points", *ALL, *STEP_ALL, "message_words"])
        for name, e in EXPECTED.items():
            cols = []
            for exercise in EXERCISES.values():
                checks = exercise.checks
                cols += [("" if e["exercise"] != exercise.function else checks[c].points if c in e["passed"] else 0)
                         for c in checks]
            w.writerow([f"{name}.ipynb", e["exercise"], e["status"], e["points"], *cols, " ; ".join(e["words"])])
    return sorted(dest.glob("*.ipynb"))


def sandbox_probes(dest: Path, *, sentinels, port: int, secret: Path, unix_socket: Path,
                   steal_from: List[str]) -> List[Path]:
    """The escape probes, with this run's paths: delete ``sentinels``; connect to 127.0.0.1:``port`` and out;
    read the root-only ``secret`` and connect to the root-owned ``unix_socket``; find the reference or a
    correct submission under ``steal_from``."""
    dest.mkdir(parents=True, exist_ok=True)
    sources = {
        "90_delete_probe": A.DELETE_PROBE.format(sentinels=[str(p) for p in sentinels]),
        "91_socket_probe": A.SOCKET_PROBE.format(port=int(port)),
        "92_root_probe": A.ROOT_PROBE.format(secret=str(secret), unix_socket=str(unix_socket)),
        "93_steal_files": A.STEAL_FILES.format(paths=[str(p) for p in steal_from]),
    }
    paths = []
    for name, src in sources.items():
        paths.append(dest / f"{name}.ipynb")
        _write(notebook(src), paths[-1])
    return paths


if __name__ == "__main__":
    build()
    print(f"wrote {len(CASES) + 2} submissions and expected.csv to {HERE} "
          "(the sandbox probes are generated by tests/test_grade_attacks.py)")
