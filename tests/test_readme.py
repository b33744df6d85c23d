"""The README's set-up commands and CI stay in step."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVALUATE = " && .venv/bin/lm-zoo evaluate"


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
