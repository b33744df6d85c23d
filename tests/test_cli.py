"""The `lm-zoo` entry point as a user starts it: a fresh interpreter, no test machinery loaded."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

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


@pytest.mark.parametrize("user_level", [None, "3"], ids=["unset", "user_set_3"])
def test_a_tensorflow_command_starts_without_tf_cuda_noise(tmp_path, user_level):
    """First impression: no `failed call to cuInit` / absl start-up lines on a CPU-only machine,
    also when the user set TF_CPP_MIN_LOG_LEVEL (which absl's early lines ignore); one subprocess
    (TF import ~5 s), ending at a cheap argument error after TF is loaded."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if user_level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = user_level
    # train imports Keras (so TF and its C++ runtime start) before it finds the archive missing.
    done = subprocess.run([sys.executable, "-m", "lm_zoo", "train", "cifar", "--archive", str(tmp_path / "no.tar"),
                           "--out", str(tmp_path / "out"), "--smoke"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert done.returncode == 2, done.stderr
    assert f"lm-zoo train: error: CIFAR-10 archive not found: {tmp_path / 'no.tar'}" in done.stderr
    for noise in ("cuInit", "absl::InitializeLog", "cudart_stub", "oneDNN", "cuda"):
        assert noise not in done.stderr, done.stderr
    assert not (tmp_path / "out").exists(), "a run that fails leaves no output folder behind"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_command_leaves_no_partial_output(tmp_path, signum):
    """A long command (phantom cohort, no TF import: ~1 s to start) stopped mid-way by Ctrl-C or
    SIGTERM exits 130 and leaves neither --out nor its staging folder."""
    out = tmp_path / "cohort"
    # A shell starts background jobs with SIGINT ignored, and Python keeps an ignored SIGINT; a
    # terminal user's Ctrl-C is what is tested, so the child starts with the default disposition.
    proc = subprocess.Popen([sys.executable, "-m", "lm_zoo", "phantom", "head-mra", "--cases", "500", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".cohort.*/images/*.nii.gz")):  # the run is writing cases
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
            time.sleep(0.05)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted; outputs of this run were not written" in err
    assert not list(tmp_path.iterdir()), f"left behind: {list(tmp_path.iterdir())}"


def _landmarks_argv(tmp_path, *extra):
    return ["landmarks", "from-segmentation", str(tmp_path / "seg"), "--out", str(tmp_path / "points.csv"), *extra]


def test_any_lm_zoo_error_is_one_line_and_exit_code_2(tmp_path, monkeypatch, capsys):
    """A StaleDatasetError (a RuntimeError, not one of the builtins caught before) reaches the user
    as one line naming the command, not a traceback."""
    from lm_zoo.commands import landmarks
    from lm_zoo.errors import StaleDatasetError

    def stale(args):
        raise StaleDatasetError("/data/tfds/x/1.0.0 was built by other code; delete it and rebuild")

    monkeypatch.setattr(landmarks, "run", stale)
    assert cli.main(_landmarks_argv(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err == "lm-zoo landmarks: error: /data/tfds/x/1.0.0 was built by other code; delete it and rebuild\n"


@pytest.mark.parametrize("error", [ValueError("bad value"), FileNotFoundError("no such file"),
                                   FileExistsError("already there")], ids=lambda e: type(e).__name__)
def test_builtin_input_errors_stay_one_line_and_exit_code_2(tmp_path, monkeypatch, capsys, error):
    from lm_zoo.commands import landmarks

    def fail(args):
        raise error

    monkeypatch.setattr(landmarks, "run", fail)
    assert cli.main(_landmarks_argv(tmp_path)) == 2
    assert capsys.readouterr().err == f"lm-zoo landmarks: error: {error}\n"


def test_other_errors_keep_their_traceback(tmp_path, monkeypatch):
    """A bug (not an input error) is not hidden behind one line."""
    from lm_zoo.commands import landmarks

    def bug(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(landmarks, "run", bug)
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(_landmarks_argv(tmp_path))


@pytest.mark.parametrize("where", ["before", "after", "absent"])
def test_verbose_is_accepted_before_or_after_the_command(tmp_path, monkeypatch, where):
    from lm_zoo.commands import landmarks

    seen = {}
    monkeypatch.setattr(landmarks, "run", lambda args: seen.setdefault("verbose", args.verbose) and 0)
    argv = {"before": ["--verbose", *_landmarks_argv(tmp_path)], "after": _landmarks_argv(tmp_path, "--verbose"),
            "absent": _landmarks_argv(tmp_path)}[where]
    assert cli.main(argv) == 0
    assert seen["verbose"] is (where != "absent")


# ------------------------------------------------------------------ one flag convention (issue 24)
def _commands_and_parsers():
    """(words, parser) of every command and nested action, e.g. (['weights', 'list'], parser)."""
    import argparse

    def walk(words, parser):
        yield words, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    yield from walk([*words, name], child)

    yield from walk([], cli.build_parser())


@pytest.mark.parametrize("flags, dest, value", [
    (["--out", "X"], "out", "X"), (["--output", "X"], "out", "X"),
    (["--no-progress"], "no_progress", True), (["--quiet"], "no_progress", True),
    ([], "no_progress", False), ([], "out", "lm_zoo_evaluation"),
], ids=["out", "output-alias", "no-progress", "quiet-alias", "progress-default", "out-default"])
def test_evaluate_takes_the_documented_spelling_and_the_old_one(flags, dest, value):
    args = cli.build_parser().parse_args(["evaluate", *flags])
    assert getattr(args, dest) == value


@pytest.mark.parametrize("argv", [
    ["detect", "ct.nii.gz", "--out", "p.csv", "--no-progress"],
    ["phantom", "torso-ct", "--cases", "1", "--out", "o", "--no-progress"],
    ["train", "landmark", "--out", "o", "--no-progress"],
    ["landmarks", "from-segmentation", "seg.nii.gz", "--out", "p.csv"],
])
def test_every_command_writes_to_out_and_hides_bars_with_no_progress(argv):
    args = cli.build_parser().parse_args(argv)
    assert args.out in ("p.csv", "o")
    assert getattr(args, "no_progress", True) is True


def test_every_help_exits_0_and_shows_one_spelling(capsys):
    """`--help` of the program, every command and every action: exit 0, no old spelling shown,
    and every option that names what a command writes or its bars uses --out / --no-progress."""
    helps = 0
    for words, _ in _commands_and_parsers():
        with pytest.raises(SystemExit) as done:
            cli.build_parser().parse_args([*words, "--help"])
        assert done.value.code == 0
        text = capsys.readouterr().out
        for old in ("--output", "--quiet"):
            assert old not in text, (words, text)
        if words == ["evaluate"]:
            assert "--out OUT" in text and "--no-progress" in text
        helps += 1
    assert helps >= 12  # the program, 6 commands, landmarks' and weights' actions


def test_every_option_has_help_text():
    import argparse

    for words, parser in _commands_and_parsers():
        for action in parser._actions:
            if action.option_strings and action.help is not argparse.SUPPRESS:
                assert action.help, (words, action.option_strings)
