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


def test_publish_never_deletes_a_folder_where_the_run_writes_a_file(tmp_path):
    """issue 27: a report.md that is the user's folder was deleted with its contents."""
    target = tmp_path / "out"
    (target / "report.md").mkdir(parents=True)
    (target / "report.md" / "mine.txt").write_text("the user's")
    (target / "summary.json").write_text("old")
    with pytest.raises(OutputDirError, match=r"report.md is a folder where this run writes a file.*results are in"):
        with staged_output(target) as staging:
            (staging / "report.md").write_text("new")
            (staging / "summary.json").write_text("new")
    assert (target / "report.md" / "mine.txt").read_text() == "the user's"
    assert (target / "summary.json").read_text() == "old", "all or nothing: no file was replaced"
    kept = [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    assert len(kept) == 1 and (kept[0] / "report.md").read_text() == "new", "the run's results are kept"


def test_a_staged_folder_is_merged_into_the_users_folder_of_the_same_name(tmp_path):
    target = tmp_path / "cohort"
    (target / "images").mkdir(parents=True)
    (target / "images" / "users_scan.nii.gz").write_text("the user's")
    with staged_output(target) as staging:
        (staging / "images").mkdir()
        (staging / "images" / "case_0.nii.gz").write_text("new")
    assert sorted(p.name for p in (target / "images").iterdir()) == ["case_0.nii.gz", "users_scan.nii.gz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort"]


def test_a_publish_that_fails_half_way_puts_everything_back(tmp_path, monkeypatch):
    """issue 27: one unwritable target left old and new files mixed and a raw OSError."""
    import lm_zoo.outputs as outputs

    target = tmp_path / "out"
    target.mkdir()
    for name in ("a.csv", "b.csv", "c.csv"):
        (target / name).write_text("old " + name)
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst).endswith("c.csv") and ".partial" in str(src):
            raise PermissionError(13, "Permission denied", str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(outputs.os, "replace", failing_replace)
    with pytest.raises(OutputDirError, match=r"could not move .*c.csv.*as it was before this run"):
        with staged_output(target) as staging:
            for name in ("a.csv", "b.csv", "c.csv"):
                (staging / name).write_text("new " + name)
    assert {p.name: p.read_text() for p in target.iterdir()} == {n: "old " + n for n in ("a.csv", "b.csv", "c.csv")}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".replaced")]


def test_a_second_run_into_the_same_folder_is_refused_while_the_first_writes(tmp_path):
    import subprocess
    import sys

    from lm_zoo.outputs import OutputLockedError, output_lock

    target = tmp_path / "not" / "yet" / "out"
    with output_lock(target, argument="--output"):
        with staged_output(target) as staging:  # the same run may stage inside its own lock
            (staging / "r.md").write_text("1")
        code = ("import sys\nfrom lm_zoo.outputs import output_lock\ntry:\n"
                f"    with output_lock({str(target)!r}): pass\nexcept Exception as e:\n    print(type(e).__name__, e)")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert "OutputLockedError" in done.stdout and "being written by another lm-zoo run (pid" in done.stdout
    with output_lock(target):  # released: the next run goes ahead
        pass
    assert sorted(p.name for p in target.parent.iterdir()) == ["out"], "no lock file in the user's folders"
    assert issubclass(OutputLockedError, OutputDirError)
