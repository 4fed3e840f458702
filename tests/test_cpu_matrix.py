"""The CPU perturbation matrix: its design covers what it claims, its settings reach the kernels, its table tells.

The fast tests check the combinations (every pair of settings of two factors in the pairwise
set, the CI set's second run changing every factor) and the environment a run gets. The slow one
runs the matrix's own nbval call on a tiny notebook whose stored output is what the stored
outputs' settings print, and checks that another combination reaches the kernel (the output
changes, and the table names the cell) while the baseline passes.
"""
from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import nbformat
import pytest

from mdn_course.tools.cpu_matrix import (CI_COMBOS, FACTORS, PAIRS, Combo, NotebookOutcome, combo_set,
                                         format_table, full_matrix, main)
from mdn_course.tools.nbval_run import NUMERICS_VARIABLES, nbval_env


def _value(combo: Combo, factor: str):
    return combo.env.get(factor, "1" if factor == "OMP_NUM_THREADS" else None)


def test_pairs_cover_every_pair_of_settings_of_any_two_factors():
    for f, g in itertools.combinations(FACTORS, 2):
        seen = {(_value(c, f), _value(c, g)) for c in PAIRS}
        wanted = set(itertools.product(FACTORS[f], FACTORS[g]))
        assert wanted <= seen, f"{f} x {g}: {sorted(wanted - seen, key=str)} never run"
    assert PAIRS[0].env == {"OMP_NUM_THREADS": "1"}            # first: how the stored outputs were made
    assert len({c.name for c in PAIRS}) == len(PAIRS) == 9


def test_full_matrix_and_ci_set():
    full = full_matrix()
    assert len(full) == len({c.name for c in full}) == 3 * 2 * 3 * 2
    assert {c.name for c in PAIRS} <= {c.name for c in full}
    baseline, other = CI_COMBOS
    assert baseline == PAIRS[0]
    assert all(_value(other, f) != _value(baseline, f) for f in FACTORS), "the CI run should change every factor"
    assert combo_set("ci") == CI_COMBOS
    with pytest.raises(ValueError, match="choose one of"):
        combo_set("most")


def test_nbval_env_starts_from_the_stored_settings_whatever_the_outer_environment():
    outer = {name: "avx2" for name in NUMERICS_VARIABLES} | {"OMP_NUM_THREADS": "4", "PATH": os.environ["PATH"]}
    env = nbval_env(base=outer)
    assert env["OMP_NUM_THREADS"] == "1"
    assert not any(name in env for name in NUMERICS_VARIABLES if name != "OMP_NUM_THREADS")
    env = nbval_env({"MKL_CBWR": "COMPATIBLE", "OMP_NUM_THREADS": "2"}, base=outer)
    assert env["MKL_CBWR"] == "COMPATIBLE" and env["OMP_NUM_THREADS"] == "2" and "ATEN_CPU_CAPABILITY" not in env
    assert env["OMP_WAIT_POLICY"] == "PASSIVE"                 # two threads on a busy machine stay fast


def test_outcome_summary_names_each_failed_cell_and_how_far_it_moved():
    ok = NotebookOutcome(cells={0: "passed", 1: "passed"},
                         drift={1: {"cell": 1, "worst": ["0.50", "0.51"], "excess": 0.4, "differs": True}})
    assert ok.passed and ok.summary() == "ok 0.40"
    bad = NotebookOutcome(cells={0: "passed", 1: "failed", 2: "failed", 3: "failed", 4: "failed"},
                          drift={1: {"worst": ["-1.25", "-1.09"], "excess": 1.9, "differs": True, "same_text": True},
                                 2: {"worst": ["4", "5"], "excess": None, "differs": True, "same_text": False},
                                 4: {"worst": ["0.51", "0.50"], "excess": None, "differs": True, "same_text": True}})
    assert not bad.passed and bad.failed == [1, 2, 3, 4]
    assert bad.summary() == "FAIL c1:1.9x(-1.25->-1.09) c2:text(4->5) c3:error c4:exact(0.51->0.50)"
    assert NotebookOutcome().summary() == "NOT RUN"
    dead = NotebookOutcome(cells={n: "failed" for n in range(5)})       # nothing compared: the kernel died
    assert dead.kernel_failed and not bad.kernel_failed
    assert dead.summary() == "FAIL all 5 cells:error (kernel)"
    dead.rerun = True
    assert dead.summary().endswith("(rerun)")
    table = format_table([(PAIRS[0], {"01_x.ipynb": ok}, 12.0), (PAIRS[1], {"01_x.ipynb": bad}, 13.0)],
                         [Path("01_x.ipynb")])
    assert "t1 " in table and PAIRS[1].name in table and "FAIL c1:1.9x" in table


def _probe_notebook(folder: Path) -> Path:
    """A notebook printing the settings a kernel computes with, stored as the baseline prints them."""
    source = ("import os, torch\n"
              "print('threads', torch.get_num_threads(), 'aten', torch.backends.cpu.get_cpu_capability(),\n"
              "      'mkl', os.environ.get('MKL_CBWR'), 'onednn', os.environ.get('ONEDNN_MAX_CPU_ISA'))\n"
              "print(f'{1 / 3:.3f}')")
    import torch

    stored = (f"threads 1 aten {torch.backends.cpu.get_cpu_capability()} mkl None onednn None\n"
              f"0.330\n")                                   # 0.333 drifts by 0.003: within 0.02 + 5 %
    cell = nbformat.v4.new_code_cell(source, execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stored)]
    nb = nbformat.v4.new_notebook(cells=[cell], metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})
    path = folder / "99_probe.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.notebooks
def test_each_combination_reaches_the_kernel_and_failures_are_reported(tmp_path, monkeypatch, capsys):
    import mdn_course.tools.cpu_matrix as matrix

    path = _probe_notebook(tmp_path)
    monkeypatch.setattr(matrix, "series", lambda names=None: [path])
    report = tmp_path / "matrix.json"
    assert main(["--set", "ci", "--workers", "1", "--json", str(report)]) == 1     # a failed run fails the command
    baseline, changed = json.loads(report.read_text())
    assert baseline["combo"] == CI_COMBOS[0].name and changed["combo"] == CI_COMBOS[1].name
    # the stored settings reproduce the output; |0.333 - 0.330| / (0.02 + 0.05 * 0.33) = 0.08 of the allowance
    assert baseline["notebooks"][path.name]["summary"] == "ok 0.08"
    # every factor of the other run reached the kernel: its first line changed, and the table says where
    assert changed["notebooks"][path.name]["summary"].startswith("FAIL c0:text"), changed
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert "ok 0.08" in rows[CI_COMBOS[0].name] and "FAIL c0:text" in rows[CI_COMBOS[1].name]
