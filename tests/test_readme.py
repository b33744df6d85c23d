"""The README's set-up commands and CI stay in step; its results are the committed run's."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from lm_zoo.evaluation import EvaluationError, report
from lm_zoo.evaluation.readme import BEGIN, END, current_block, results_block, with_block

ROOT = Path(__file__).resolve().parents[1]
EVALUATE = " && .venv/bin/lm-zoo evaluate"
SUMMARY = "docs/results/evaluate_phantom_summary.json"  # the run the README's results block quotes


def _readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def _summary() -> dict:
    return json.loads((ROOT / SUMMARY).read_text(encoding="utf-8"))


def _readme_commands():
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)
    setup = [b for b in blocks if "python3 -m venv" in b]
    return [line for b in setup for line in b.splitlines() if line and not line.startswith("#")]


def _ci_lines():
    return [l.strip() for l in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]


def test_readme_has_exactly_two_setup_commands():
    commands = _readme_commands()
    assert len(commands) == 2, commands
    assert EVALUATE in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim():
    test_command = next(c for c in _readme_commands() if "pytest" in c)
    assert test_command in _ci_lines()


def test_ci_installs_as_the_first_command_does_before_the_test_command():
    """A newcomer runs command 1 and then command 2 in one clone: CI does the same, so a regular
    install that breaks the editable one (lost lm_zoo.datasets / lm_zoo.pretrained) fails CI."""
    install, test_command = _readme_commands()
    install = install[: install.index(EVALUATE)]
    lines = _ci_lines()
    assert install in lines, f"{install!r} not in .ci/run"
    assert lines.index(install) < lines.index(test_command)
    # Both commands share the venv: nothing between them may remove it.
    between = lines[lines.index(install) + 1: lines.index(test_command)]
    assert not [l for l in between if ".venv" in l and not l.startswith("#")], between


def test_readme_results_block_is_rendered_from_the_committed_summary():
    """Text and run cannot drift: refresh with `python benchmarks/readme_results.py SUMMARY`."""
    assert current_block(_readme()) == results_block(_summary(), source=SUMMARY)


def test_results_block_names_data_weights_machine_and_spread_across_cpus():
    summary = _summary()
    block = results_block(summary, source=SUMMARY)
    ds, machine = summary["dataset"], summary["machine"]
    assert f"`{ds['name']}` v{ds['version']}" in block and "**phantom** data" in block
    for backbone in summary["backbones"].values():
        assert backbone["weights"] in block  # weight set with its sha256 prefix, or the random seed
    assert "sha256" in summary["backbones"]["landmark"]["weights"]
    assert machine["cpu"] in block and f"lm_zoo {machine['lm_zoo']}" in block
    assert f"TensorFlow {machine['tensorflow']}" in block and "third decimal across CPUs" in block
    five = next(r for r in summary["backbones"]["landmark"]["curve"] if r["n_learners"] == 5)
    assert f"{five['auc']:.3f} [{five['ci_low']:.3f}, {five['ci_high']:.3f}]" in block
    assert summary["config"]["command"] in block


def test_results_block_of_a_summary_without_machine_says_so():
    summary = copy.deepcopy(_summary())
    del summary["machine"]
    assert "not recorded" in results_block(summary)
    del summary["backbones"]
    with pytest.raises(EvaluationError, match="not a summary.json"):
        results_block(summary)


def test_readme_block_markers_replace_only_the_block():
    text = f"head\n{BEGIN}\nold\n{END}\ntail\n"
    new = with_block(text, "new figures")
    assert new == f"head\n{BEGIN}\nnew figures\n{END}\ntail\n" and current_block(new) == "new figures"
    for broken in ("no markers", f"{END}\n{BEGIN}", f"{BEGIN}{END}{BEGIN}{END}"):
        with pytest.raises(EvaluationError, match="exactly one"):
            current_block(broken)


def test_readme_lists_every_output_of_the_main_job():
    text = _readme()
    missing = [name for name in report.OUTPUT_FILES if f"`{name}`" not in text]
    assert not missing, f"README does not list {missing}"


def test_readme_starts_with_what_then_the_commands_then_results():
    lines = _readme().splitlines()
    first_command = next(i for i, l in enumerate(lines) if l.startswith("python3 -m venv"))
    assert first_command < 20, "the set-up commands come right after what the package is"
    assert not [l for l in lines[:first_command] if "AUC" in l or "top-1" in l], "no figures before the set-up"
    quick = lines.index("## Quick start")
    assert first_command < quick < lines.index(BEGIN)
    fence = lines.index("```bash", quick)
    assert len(lines[fence + 1: lines.index("```", fence + 1)]) <= 10
