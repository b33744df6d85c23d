"""lm_zoo._atomic: whole files or none, with the user's umask."""
import os
import stat

import pytest

from lm_zoo._atomic import atomic_path, atomic_write_json, atomic_write_text


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def test_outputs_get_the_users_umask_not_mkstemps_0600(tmp_path, umask_027):
    text = atomic_write_text(tmp_path / "a.txt", "x\n")
    assert _mode(text) == 0o640
    with atomic_path(tmp_path / "b.png") as tmp:
        tmp.write_bytes(b"png")
    assert _mode(tmp_path / "b.png") == 0o640
    os.umask(0o002)
    assert _mode(atomic_write_json(tmp_path / "c.json", {"b": 1, "a": 2})) == 0o664
    assert (tmp_path / "c.json").read_text() == '{\n  "a": 2,\n  "b": 1\n}\n'


def test_temporary_name_keeps_the_suffix_and_is_in_the_same_folder(tmp_path):
    with atomic_path(tmp_path / "case.nii.gz") as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith("case.nii.gz") and tmp.name.startswith(".")
        tmp.write_bytes(b"data")
    assert (tmp_path / "case.nii.gz").read_bytes() == b"data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case.nii.gz"]


def test_failure_leaves_the_old_file_and_no_temporary(tmp_path):
    target = atomic_write_text(tmp_path / "report.md", "old\n")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]


def test_writers_that_replace_the_temporary_file_still_land(tmp_path):
    # Some writers (h5py, SimpleITK) delete and re-create their output file.
    with atomic_path(tmp_path / "w.weights.h5") as tmp:
        tmp.unlink()
        tmp.write_bytes(b"h5")
    assert (tmp_path / "w.weights.h5").read_bytes() == b"h5"


def test_no_module_renames_files_outside_the_helper():
    # One implementation: every file output goes through lm_zoo._atomic. Whole folders are moved
    # into place by lm_zoo.outputs.staged_output (command output sets) and the phantom cohort cache
    # (lm_zoo.cohorts.phantom_cohort): a different operation.
    from pathlib import Path

    import lm_zoo
    import lm_zoo.pretrained

    roots = [Path(lm_zoo.__file__).parent, Path(lm_zoo.pretrained.__file__).parent]
    offenders = []
    for root in roots:
        for path in root.rglob("*.py"):
            if path.name == "_atomic.py":
                continue
            text = path.read_text(encoding="utf-8")
            for needle in ("os.replace(", "os.rename(", "mkstemp("):
                if needle in text and not (path.name in ("cohorts.py", "outputs.py") and needle == "os.replace("):
                    offenders.append(f"{path.relative_to(root.parent)}: {needle}")
    assert not offenders, f"write outputs with lm_zoo._atomic instead: {offenders}"
