"""The `lm-zoo` entry point as a user starts it: a fresh interpreter, no test machinery loaded."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lm_zoo import cli

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_help_in_a_fresh_process_lists_every_command_without_importing_tensorflow():
    code = ("import sys; from lm_zoo.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('TF_LOADED' if 'tensorflow' in sys.modules else 'TF_NOT_LOADED')")
    # -S: no site-packages, so nothing (an editable-install finder, say) pre-imports modules the
    # CLI forgot to import itself, as in a plain `pip install .`; lm_zoo comes from the checkout.
    done = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    for name in cli.COMMANDS:
        assert name in done.stdout
    assert "TF_NOT_LOADED" in done.stdout


def test_no_command_prints_help_and_fails(capsys):
    assert cli.main([]) == 2
    assert "evaluate" in capsys.readouterr().out
