"""lm_zoo.outputs: output folders checked before the work, written aside, moved into place."""
from __future__ import annotations

import os

import pytest

from lm_zoo.outputs import OutputDirError, check_output_dir, staged_output


def test_check_refuses_a_file_no_space_and_creates_nothing(tmp_path):
    (tmp_path / "taken").write_text("x")
    with pytest.raises(OutputDirError, match=r"--out '.*taken' is a file, not a folder"):
        check_output_dir(tmp_path / "taken", argument="--out")
    with pytest.raises(OutputDirError, match=r"--output '.*new/deeper': .* MiB free on its disk but this run writes"):
        check_output_dir(tmp_path / "new" / "deeper", needed_bytes=2**62)
    assert check_output_dir(tmp_path / "new" / "deeper", needed_bytes=1) == tmp_path / "new" / "deeper"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write anywhere")
def test_check_refuses_a_read_only_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(OutputDirError, match=r"--output '.*locked/out' is not writable"):
            check_output_dir(locked / "out")
    finally:
        locked.chmod(0o700)


def test_failed_run_leaves_nothing_not_even_parents(tmp_path):
    target = tmp_path / "a" / "b" / "out"
    with pytest.raises(RuntimeError):
        with staged_output(target) as staging:
            (staging / "half.csv").write_text("1,2")
            raise RuntimeError("failed after writing half the outputs")
    assert not list(tmp_path.iterdir())


def test_success_replaces_this_runs_files_and_keeps_the_others(tmp_path):
    target = tmp_path / "out"
    with staged_output(target) as staging:
        (staging / "report.md").write_text("run 1")
        assert not target.exists(), "nothing is visible before the run succeeds"
    assert (target / "report.md").read_text() == "run 1"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o777 & ~umask
    (target / "notes.txt").write_text("the user's")
    with pytest.raises(KeyboardInterrupt):
        with staged_output(target) as staging:
            (staging / "report.md").write_text("run 2, interrupted")
            raise KeyboardInterrupt
    assert (target / "report.md").read_text() == "run 1"
    with staged_output(target) as staging:
        (staging / "report.md").write_text("run 3")
    assert {p.name: p.read_text() for p in target.iterdir()} == {"report.md": "run 3", "notes.txt": "the user's"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_resumable_state_is_kept_under_a_fixed_name(tmp_path):
    target = tmp_path / "run"
    with pytest.raises(RuntimeError):
        with staged_output(target, resumable=lambda s: (s / "backup").is_dir()) as staging:
            (staging / "backup").mkdir()
            raise RuntimeError("killed mid-training")
    assert (tmp_path / ".run.partial" / "backup").is_dir() and not target.exists()
    with staged_output(target, resumable=lambda s: (s / "backup").is_dir()) as staging:
        assert (staging / "backup").is_dir()  # the rerun resumes from it
        (staging / "backup").rmdir()
        (staging / "weights.h5").write_text("w")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"] and (target / "weights.h5").exists()
